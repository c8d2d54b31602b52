"""A process that runs trials lists a folder or CSV set once and keeps it, so a CSV relabelled, or an image added to a
class folder, while the run ran went unseen: every later trial ran (on the list as first read) and export then
refused the changed data. The run records what its list is read from (the CSV, the folders of its files:
data/listing_stat.py); the first trial after such a change lists the data again, finds other members and stops the
run, once. A change that lists alike (a README beside the class folders, the CSV saved again as it was) does not."""
from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from PIL import Image

import searchlab.tasks.classify as classify
from searchlab.config.load import load_study
from searchlab.data.listing_stat import listing_sources
from searchlab.data.loading import plan_files
from searchlab.engine.run import run_study
from searchlab.errors import DataChanged

from test_inplace_changed_files import _folder


def _csv(tmp_path: Path) -> Path:
    folder = _folder(tmp_path / "images")
    rows = [f"{path.relative_to(tmp_path)},{path.parent.name}" for path in sorted(folder.glob("*/*.png"))]
    path = tmp_path / "labels.csv"
    path.write_text("image,label\n" + "\n".join(rows) + "\n")
    return path


def _study(tmp_path: Path, data: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text("name: listing\ntask: classify\nspace:\n  model: {kind: cnn, depth: 1, width: 4}\n"
                    f"  optim: {{lr: {{float: [0.001, 0.01]}}}}\ndata: {data}\nstrategy: random\npruner: none\n"
                    f"budget: {{n_trials: 3, epochs: 1}}\nrun_dir: '{tmp_path / 'run'}'\n")
    return path


def _after_the_first_trial(monkeypatch, *changes) -> None:
    """changes[i]() as trial i ends: the run's process has listed and kept the data by then."""
    run, ended = classify.ClassifyTask.run, []

    def run_then_change(self, config, ctx):
        result = run(self, config, ctx)
        if len(ended) < len(changes):
            ended.append(changes[len(ended)]())
        return result

    monkeypatch.setattr(classify.ClassifyTask, "run", run_then_change)


def _later(path: Path) -> None:
    """A modification time 2 s on: the edit is seen whatever the file system's time resolution."""
    later = os.stat(path).st_mtime_ns + 2_000_000_000
    os.utime(path, ns=(later, later))


def _relabel(csv: Path) -> str:
    kept = csv.read_text()
    csv.write_text(kept.replace("images/a/00.png,a", "images/a/00.png,b"))
    _later(csv)
    return kept


def _states(study_file: Path) -> list[TrialState]:
    storage = f"sqlite:///{study_file.parent / 'run' / 'study.db'}"
    return [t.state for t in optuna.load_study(study_name="listing", storage=storage).get_trials(deepcopy=False)]


def test_a_csv_relabelled_while_the_run_runs_stops_it_at_the_next_trial_and_a_restore_continues(tmp_path,
                                                                                                 monkeypatch):
    csv = _csv(tmp_path)
    study_file = _study(tmp_path, f"{{source: csv, path: '{csv}', image_column: image, label_columns: [label], "
                                  "image_size: 8}")
    kept = []
    _after_the_first_trial(monkeypatch, lambda: kept.append(_relabel(csv)))
    with pytest.raises(DataChanged, match=r"labels\.csv: this trial's .*split.* differ.* the run recorded") as said:
        run_study(load_study(study_file), progress=False)
    assert "The run stops here" in str(said.value) and "restore the files" in str(said.value)
    assert _states(study_file) == [TrialState.COMPLETE, TrialState.FAIL]

    csv.write_text(kept[0])   # restored (a new mtime, the recorded rows): the study goes on
    monkeypatch.undo()
    result = run_study(load_study(study_file), progress=False)
    assert [t.state for t in result.study.get_trials(deepcopy=False)].count(TrialState.COMPLETE) == 3


def test_an_image_added_to_a_class_folder_while_the_run_runs_stops_it(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "images")

    def add_an_image() -> None:
        Image.new("RGB", (12, 12), (0, 250, 0)).save(folder / "b" / "new.png")
        _later(folder / "b")

    folder_run_stopped_by(add_an_image, r"added b/new\.png|added .*new\.png", folder, tmp_path, monkeypatch)


def folder_run_stopped_by(change, said: str, folder: Path, tmp_path: Path, monkeypatch) -> None:
    """A run on the folder set, `change`d as its first trial ends, stops at the next one with DataChanged `said`."""
    _after_the_first_trial(monkeypatch, change)
    with pytest.raises(DataChanged, match=said):
        run_study(load_study(_study(tmp_path, f"{{source: folder, path: '{folder}', image_size: 8}}")),
                  progress=False)
    assert _states(tmp_path / "study.yaml") == [TrialState.COMPLETE, TrialState.FAIL]


def test_a_change_that_lists_alike_lets_the_run_go_on(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "images")

    def readme_and_a_touch() -> None:
        (folder / "README.txt").write_text("scans from site 2\n")   # no image: in no split
        _later(folder)
        _later(folder / "a")   # a folder's time moved, nothing in it did

    _after_the_first_trial(monkeypatch, readme_and_a_touch)
    result = run_study(load_study(_study(tmp_path, f"{{source: folder, path: '{folder}', image_size: 8}}")),
                       progress=False)
    assert [t.state for t in result.study.get_trials(deepcopy=False)] == [TrialState.COMPLETE] * 3


def test_the_listing_sources_are_the_csv_or_each_folder_of_a_file_and_those_above_it(tmp_path):
    csv = _csv(tmp_path)
    config = load_study(_study(tmp_path, f"{{source: csv, path: '{csv}', image_column: image, "
                                         "label_columns: [label], image_size: 8}")).config
    assert listing_sources(plan_files(config.data, 0, tmp_path)) == [""]
    root = split_class_patient(tmp_path / "split")
    config = load_study(_study(tmp_path, f"{{source: folder, path: '{root}', image_size: 8}}")).config
    assert listing_sources(plan_files(config.data, 0, tmp_path)) == [
        "", "train", "train/a", "train/a/p1", "train/b", "train/b/p1", "val", "val/a", "val/a/p1", "val/b",
        "val/b/p1"]


def test_a_folder_that_listed_alike_is_looked_at_again_when_it_changes_again(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "images")

    def touch() -> None:
        _later(folder / "a")

    def add_an_image() -> None:
        Image.new("RGB", (12, 12), (0, 250, 0)).save(folder / "a" / "new.png")
        _later(folder / "a")

    _after_the_first_trial(monkeypatch, touch, add_an_image)
    with pytest.raises(DataChanged, match=r"added .*new\.png"):
        run_study(load_study(_study(tmp_path, f"{{source: folder, path: '{folder}', image_size: 8}}")),
                  progress=False)
    assert _states(tmp_path / "study.yaml") == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL]


def split_class_patient(root: Path) -> Path:
    """root/{train,val}/{a,b}/p1/*.png: 11 listing sources, 7 of them at most 2 levels below root."""
    for split in ("train", "val"):
        _folder(root / split / "p", per_class=4)
        for name in ("a", "b"):
            (root / split / name).mkdir()
            (root / split / "p" / name).rename(root / split / name / "p1")
        (root / split / "p").rmdir()
    return root
