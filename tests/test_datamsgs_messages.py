"""What a run stopped mid-run by changed data says (data/recorded_split.py): for splits searchlab drew from one pool,
the file the user changed (then how many others moved between the splits), as a resume says it; a file deleted
from under a CSV that still lists it, as gone (not as 'other contents'); and a set of more folders than
LISTING_MAX_SOURCES still has its split and class folders watched (data/listing_stat.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState
from PIL import Image

import searchlab.data.listing_stat as listing_stat
from searchlab.config.load import load_study
from searchlab.data.listing_stat import listing_signatures
from searchlab.data.loading import plan_files
from searchlab.engine.run import run_study
from searchlab.errors import DataChanged

from test_inplace_changed_files import _during_first_trial, _folder
from test_leftovers2_listing_changed import _after_the_first_trial, _csv, _later, _states, _study, split_class_patient


def test_a_file_renamed_in_a_drawn_pool_is_named_as_the_change_and_the_moved_files_are_counted(tmp_path,
                                                                                                monkeypatch):
    folder = _folder(tmp_path / "images", per_class=12)

    def rename() -> None:
        (folder / "a" / "03.png").rename(folder / "a" / "zz.png")
        _later(folder / "a")

    _after_the_first_trial(monkeypatch, rename)
    with pytest.raises(DataChanged) as said:
        run_study(load_study(_study(tmp_path, f"{{source: folder, path: '{folder}', image_size: 8}}")),
                  progress=False)
    message = str(said.value)
    # the default val and test fractions draw all three splits from the folder
    assert "(train, val and test together (drawn from one pool): removed a/03.png, added a/zz.png; " in message, message
    assert "moved between these splits as a result)" in message
    assert "without" not in message   # the per-split wording, which named files that only moved
    assert _states(tmp_path / "study.yaml") == [TrialState.COMPLETE, TrialState.FAIL]


def test_an_image_deleted_from_under_an_unchanged_csv_is_said_gone(tmp_path, monkeypatch):
    csv = _csv(tmp_path)
    study_file = _study(tmp_path, f"{{source: csv, path: '{csv}', image_column: image, label_columns: [label], "
                                  "image_size: 8}")
    deleted: list[str] = []

    def delete(path: Path) -> None:
        deleted.append(str(path.relative_to(tmp_path)))
        path.unlink()

    _during_first_trial(monkeypatch, delete)
    with pytest.raises(DataChanged) as said:
        run_study(load_study(study_file), progress=False)
    message = str(said.value)
    assert f"1 file this trial reads is gone since the run started (train {deleted[0]}): deleted, moved or " \
           "renamed while the run ran, though the data still lists it under that name" in message, message
    assert "other contents" not in message and "replaced in place" not in message
    assert "Fix: restore the files as they were" in message
    assert _states(study_file) == [TrialState.COMPLETE, TrialState.FAIL]


def test_over_the_folder_limit_the_top_two_levels_are_recorded_and_fewer_while_still_too_many(tmp_path,
                                                                                               monkeypatch):
    root = split_class_patient(tmp_path / "split")
    plan = plan_files(load_study(_study(tmp_path, f"{{source: folder, path: '{root}', image_size: 8}}")).config.data,
                      0, tmp_path)
    monkeypatch.setattr(listing_stat, "LISTING_MAX_SOURCES", 7)
    assert [name for name, _ in listing_signatures(plan, lambda path: "sig")] == [
        "", "train", "train/a", "train/b", "val", "val/a", "val/b"]
    monkeypatch.setattr(listing_stat, "LISTING_MAX_SOURCES", 3)
    assert listing_stat.within_limit(["", "train", "train/a", "val", "val/a"]) == ["", "train", "val"]
    monkeypatch.setattr(listing_stat, "LISTING_MAX_SOURCES", 1)
    assert listing_stat.within_limit(["", "train", "train/a", "val", "val/a"]) == [""]   # data.path is always watched


def test_over_the_folder_limit_a_patient_folder_added_to_a_class_folder_still_stops_the_run(tmp_path, monkeypatch):
    root = split_class_patient(tmp_path / "split")
    monkeypatch.setattr(listing_stat, "LISTING_MAX_SOURCES", 7)   # 11 sources: the patient folders are left out

    def a_new_patient() -> None:
        (root / "train" / "a" / "p9").mkdir()
        Image.new("RGB", (12, 12), (0, 250, 0)).save(root / "train" / "a" / "p9" / "new.png")
        _later(root / "train" / "a")

    _after_the_first_trial(monkeypatch, a_new_patient)
    with pytest.raises(DataChanged, match=r"train: 8 files then, 9 now, added train/a/p9/new\.png"):
        run_study(load_study(_study(tmp_path, f"{{source: folder, path: '{root}', image_size: 8}}")),
                  progress=False)
    assert _states(tmp_path / "study.yaml") == [TrialState.COMPLETE, TrialState.FAIL]
