"""Your own splits (train/val/test folders, a CSV's split_column) changing after a search: a changed test split
alone is said, not refused, and stays said by every export after a resume; changed files are named, and patient
groups said to change only when they did."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from searchlab.config.load import load_study
from searchlab.config.schema import CsvData, FolderData
from searchlab.data import clear_cache
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError
from test_data import class_folder, png
from test_run import TINY_CLASSIFY, states


def split_folders(root: Path) -> Path:
    class_folder(root / "train", {"a": 6, "b": 6})
    class_folder(root / "val", {"a": 3, "b": 3})
    class_folder(root / "test", {"a": 3, "b": 3})
    return root


def searched(write_study, folder: Path, n_trials: int = 1):
    study = write_study(TINY_CLASSIFY + f"data: {{source: folder, path: '{folder}', image_size: 8, channels: 3}}\n")
    return study, run_study(load_study(study, {"budget.n_trials": n_trials, "budget.epochs": 1}), progress=False)


def test_a_test_image_added_to_split_folders_resumes_with_a_note_and_the_export_says_it(write_study, tmp_path,
                                                                                        capsys):
    from searchlab.export.exporter import export_run

    folder = split_folders(tmp_path / "imgs")
    study, _ = searched(write_study, folder)
    png(folder / "test" / "b" / "new.png", color=(9, 9, 9))
    clear_cache()
    capsys.readouterr()
    resumed = run_study(load_study(study, {"budget.n_trials": 2, "budget.epochs": 1}), progress=False).study
    assert states(resumed) == {"COMPLETE": 2}
    said = "test: 6 files then, 7 now (b 3 -> 4). By file: test: added test/b/new.png"
    err = capsys.readouterr().err
    assert f"the test split changed since its trials ran ({said})" in err and "search goes on" in err
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=10)
    assert config["test_size"] == 7
    assert f"the test split changed since the search ({said})" in capsys.readouterr().err
    # a training image renamed: your own splits did not move, but the trials trained on other files
    (folder / "train" / "a" / "000.png").rename(folder / "train" / "a" / "aaa.png")
    with pytest.raises(ConfigError) as info:
        run_study(load_study(study, {"budget.n_trials": 3, "budget.epochs": 1}), progress=False)
    message = str(info.value)
    assert "By file: train: removed train/a/000.png, added train/a/aaa.png" in message
    assert "These are your own splits" in message and "drawn from the file list" not in message


def test_a_test_image_replaced_in_place_is_said_on_resume_and_by_every_export_after_it(write_study, tmp_path,
                                                                                     capsys):
    from searchlab.export.exporter import export_run

    folder = split_folders(tmp_path / "imgs")
    study, _ = searched(write_study, folder)
    png(folder / "test" / "a" / "001.png", color=(1, 2, 3))   # same name, other pixels
    clear_cache()
    capsys.readouterr()
    run_study(load_study(study, {"budget.n_trials": 2, "budget.epochs": 1}), progress=False)
    assert "test: 1 of 6 images replaced in place (test/a/001.png) since its trials ran" in capsys.readouterr().err
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=10)   # after the resume: still said
    assert config["data_replaced_since_search"] == "test: 1 of 6 images replaced in place (test/a/001.png)"


def fingerprinted(cfg) -> tuple:
    from searchlab.data.fingerprint import data_fingerprint_and_listing   # the fingerprint and its listing

    return data_fingerprint_and_listing(cfg)


def said(before: tuple, cfg) -> str | None:
    from searchlab.data.fingerprint import moved_members

    now = fingerprinted(cfg)
    return moved_members(before[0], now[0], (before[1], now[1]))


def test_a_test_split_drawn_by_fractions_still_refuses_any_change(tmp_path):
    from searchlab.data.fingerprint import changed_test_split, moved_members

    folder = split_folders(tmp_path / "imgs")
    cfg = FolderData(source="folder", path=folder, image_size=8)
    before = fingerprinted(cfg)
    png(folder / "test" / "b" / "new.png", color=(9, 9, 9))
    now = fingerprinted(cfg)
    assert moved_members(before[0], now[0]) is None and "7 now" in changed_test_split(before[0], now[0])
    drawn = {**now[0], "drawn": ["test", "val"]}   # as a test_fraction draws it: the pool's other files move too
    assert changed_test_split(before[0], drawn) is None and "test: 6 files then, 7 now" in moved_members(
        before[0], drawn)


def test_changed_files_are_named_and_patient_groups_said_only_when_regrouped(tmp_path):
    folder = split_folders(tmp_path / "imgs")
    for i in range(3):   # two patients beside the loose images
        png(folder / "train" / "a" / "p1" / f"x{i}.png", color=(i, 1, 2))
        png(folder / "train" / "a" / "p2" / f"y{i}.png", color=(i, 3, 4))
    cfg = FolderData(source="folder", path=folder, image_size=8)
    before = fingerprinted(cfg)
    (folder / "train" / "a" / "000.png").rename(folder / "train" / "a" / "aaa.png")   # two loose images renamed
    (folder / "train" / "b" / "001.png").rename(folder / "train" / "b" / "bbb.png")
    text = said(before, cfg)
    assert text == ("train: as many files per class, but other files or labels. By file: train: removed "
                    "train/a/000.png, train/b/001.png, added train/a/aaa.png, train/b/bbb.png"), text
    (folder / "train" / "a" / "aaa.png").rename(folder / "train" / "a" / "000.png")
    (folder / "train" / "b" / "bbb.png").rename(folder / "train" / "b" / "001.png")
    shutil.move(folder / "train" / "a" / "p1" / "x0.png", folder / "train" / "a" / "p2" / "x0.png")
    assert "patient groups changed (the patient sub-folders, or the ids of data.group_column), which decide the " \
           "splits and the folds: train/a/p1/x0.png -> train/a/p2/x0.png: train/a/p1 -> train/a/p2" in said(before, cfg)


def write_rows(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows([["path", "label", "pid", "split"], *rows])


def test_a_relabelled_csv_row_and_a_regrouped_one_are_named(tmp_path):
    rows = [[f"i/{n}.png", "ab"[n % 2], f"p{n // 2}", ("train", "train", "val", "test")[(n // 2) % 4]]
            for n in range(24)]
    for row in rows:
        png(tmp_path / row[0], color=(int(row[0][2:-4]),) * 3)
    write_rows(tmp_path / "m.csv", rows)
    cfg = CsvData(source="csv", path=tmp_path / "m.csv", label_columns=("label",), split_column="split",
                  group_column="pid")
    before = fingerprinted(cfg)
    rows[0][1] = "b"
    write_rows(tmp_path / "m.csv", rows)
    text = said(before, cfg)
    assert text == "train: 12 files then, 12 now (a 6 -> 5, b 6 -> 7). By file: train: relabelled i/0.png (a -> b)"
    rows[0][1], rows[1][2] = "a", "p9"   # back, and row 1 given another training patient's id
    write_rows(tmp_path / "m.csv", rows)
    assert said(before, cfg) == ("patient groups changed (the patient sub-folders, or the ids of "
                                 "data.group_column), which decide the splits and the folds: i/1.png: p0 -> p9")


def test_a_record_from_before_the_split_keys_of_patient_folders_takes_a_new_test_image_too(tmp_path):
    """The auditor's runs/s2: recorded without each split's own groups, its grouping (over all splits) changes
    with the test split; a folder's patients follow its file names, so the unchanged train and val tell it."""
    from searchlab.data.fingerprint import changed_test_split, moved_members

    folder = split_folders(tmp_path / "imgs")
    for split in ("train", "val", "test"):   # a patient of two images in each split folder
        png(folder / split / "a" / "pat0" / "x.png", color=(5, 6, 7))
        png(folder / split / "a" / "pat0" / "y.png", color=(5, 6, 8))
    cfg = FolderData(source="folder", path=folder, image_size=8)
    before = fingerprinted(cfg)[0]
    older = {k: v for k, v in before.items() if k not in ("drawn", "split_groups", "groups_from_names")}
    older["splits"] = {split: {k: v for k, v in entry.items() if k != "groups"}
                       for split, entry in before["splits"].items()}
    png(folder / "test" / "b" / "pat0" / "new.png", color=(9, 9, 9))
    now = fingerprinted(cfg)[0]
    assert older["grouping"] != now["grouping"]
    assert moved_members(older, now) is None
    assert changed_test_split(older, now) == "test: 8 files then, 9 now (b 3 -> 4)"
