"""A trial that finds the run's data changed (files replaced, added or removed since the run started) fails, and
the whole run stops at once with that reason said once: every later trial would fail the same way. Restored, the
files pass, and `searchlab run` again continues the study, the stopped trials' configs first."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from PIL import Image

import searchlab.engine.study_record as study_record
from searchlab.cli import main
from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import DataChanged

from test_inplace_changed_files import _folder


def _study(tmp_path: Path, folder: Path, n_trials: int = 4, executor: str = "") -> Path:
    path = tmp_path / "study.yaml"
    path.write_text("name: datastop\ntask: classify\nspace:\n  model: {kind: cnn, depth: 1, width: 4}\n"
                    "  optim: {lr: {float: [0.001, 0.01]}}\n"
                    f"data: {{source: folder, path: '{folder}', image_size: 8}}\nstrategy: random\npruner: none\n"
                    f"budget: {{n_trials: {n_trials}, epochs: 1}}\nrun_dir: '{tmp_path / 'run'}'\n{executor}")
    return path


def _rewrite(path: Path) -> bytes:
    """Replace the image in place (a re-export: same name, other pixels); its bytes before, to restore."""
    kept = path.read_bytes()
    Image.new("RGB", (12, 12), (0, 250, 0)).save(path)
    later = os.stat(path).st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(later, later))
    return kept


def _changed_once_recorded(monkeypatch, path: Path) -> list[bytes]:
    """Rewrite `path` just after the run recorded its data, in the run's own process: every trial of every
    worker process (spawned later) then finds it changed. Only the first run: the kept bytes restore it."""
    record, kept = study_record.data_record, []

    def data_record(study):
        recorded = record(study)
        if not kept:
            kept.append(_rewrite(path))
        return recorded

    monkeypatch.setattr(study_record, "data_record", data_record)
    return kept


def _states(ostudy) -> list[TrialState]:
    return [t.state for t in ostudy.get_trials(deepcopy=False)]


def rewrite_in_the_first_trial(monkeypatch) -> list[tuple[Path, bytes]]:
    """A training file rewritten inside trial 0, after its own check; (the file, its bytes before) kept."""
    import searchlab.tasks.classify as classify

    check, kept = classify.split_as_recorded, []

    def split_as_recorded(data, record):
        check(data, record)
        if not kept:
            kept.append((path := Path(data.extra["files"]["train"][0]), _rewrite(path)))

    monkeypatch.setattr(classify, "split_as_recorded", split_as_recorded)
    return kept


def test_the_first_trial_that_finds_the_data_changed_stops_the_run_and_a_restore_continues_it(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "images")
    kept = rewrite_in_the_first_trial(monkeypatch)
    study = load_study(_study(tmp_path, folder))
    with pytest.raises(DataChanged, match=r"1 file this trial reads changed since the run started \(train ") as said:
        run_study(study, progress=False)
    assert "The run stops here" in str(said.value) and "`searchlab run` the same study again" in str(said.value)
    trials = optuna.load_study(study_name="datastop", storage=study.storage_url).get_trials(deepcopy=False)
    # trial 0 ran on the files as recorded; trial 1 found the change and failed; nothing after it ran, and its
    # config is queued again by the next run, not this one (a sibling worker would take it, and fail it again)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL]
    assert trials[1].user_attrs["error"].startswith("DataChanged: ")

    path, original = kept[0]
    path.write_bytes(original)   # restored: the study goes on, the refused config first
    result = run_study(load_study(_study(tmp_path, folder)), progress=False)
    trials = result.study.get_trials(deepcopy=False)
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 4 and trials[2].state == TrialState.COMPLETE
    assert trials[2].user_attrs["retry_of"] == 1 and trials[2].params == trials[1].params
    assert result.stopped_by == "budget.n_trials"


def test_supervised_workers_stop_the_run_once_saying_why_and_run_exits_non_zero(tmp_path, monkeypatch, capsys):
    folder = _folder(tmp_path / "images")
    path = sorted((folder / "a").iterdir())[0]
    kept = _changed_once_recorded(monkeypatch, path)
    study_file = _study(tmp_path, folder, n_trials=6, executor="executor: {kind: local, workers: 2}\n")
    code = main(["run", str(study_file), "--no-progress"])
    err = capsys.readouterr().err
    assert code != 0
    assert err.count("changed since the run started") == 1 and "The run stops here" in err
    ostudy = optuna.load_study(study_name="datastop", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    states = _states(ostudy)
    # each worker met the change at most once before the run stopped (budget.max_failed is 6 here), no trial is
    # left RUNNING, and no config is queued again by the run stopping: a sibling worker took such a retry, and
    # the same config failed twice
    assert TrialState.COMPLETE not in states and 1 <= states.count(TrialState.FAIL) <= 2, states
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    assert not any("retry_of" in t.user_attrs for t in ostudy.get_trials(deepcopy=False))
    failed = {t.number for t in ostudy.get_trials(deepcopy=False)}
    assert f"error: {DataChanged.__name__}" in str(ostudy.user_attrs)   # the run's history names it

    path.write_bytes(kept[0])   # restored: continued (in this process, to keep the test short)
    study_file.write_text(study_file.read_text().replace("workers: 2", "workers: 1"))
    result = run_study(load_study(study_file), progress=False)
    assert _states(result.study).count(TrialState.COMPLETE) == 6 and result.stopped_by == "budget.n_trials"
    retried = {t.user_attrs.get("retry_of") for t in result.study.get_trials(deepcopy=False)}
    assert failed <= retried   # the failed configs ran again in this run


def _npz(path: Path, test_value: int = 0, val_label: int = 0) -> None:
    np.savez(path, train_images=np.zeros((4, 8, 8), np.uint8), train_labels=np.zeros((4, 1), np.uint8),
             val_images=np.zeros((2, 8, 8), np.uint8), val_labels=np.full((2, 1), val_label, np.uint8),
             test_images=np.full((2, 8, 8), test_value, np.uint8), test_labels=np.zeros((2, 1), np.uint8))


def test_a_medmnist_file_resaved_with_other_test_arrays_only_passes_other_train_or_val_arrays_fail(tmp_path):
    from searchlab.data.fingerprint import sampled_digest
    from searchlab.data.recorded_split import files_unchanged, medmnist_stat
    from searchlab.data.types import ImageDataset

    path = tmp_path / "breastmnist.npz"
    _npz(path)
    record = {"data_stat": medmnist_stat(path),
              "data_file": {"file": path.name, "bytes": path.stat().st_size, "digest": sampled_digest(path).hex()}}
    data = ImageDataset(splits={}, class_names=("a", "b"), kind="binary", extra={"file": str(path)})
    _npz(path, test_value=9)   # only the test split re-saved other: trials read train and val
    files_unchanged(data, record)
    _npz(path, test_value=9, val_label=1)
    with pytest.raises(DataChanged, match=r"breastmnist.npz: its val_labels array\)"):
        files_unchanged(data, record)
    _npz(path, test_value=3)   # restored train and val: passes again
    files_unchanged(data, record)


def _resave(path: Path, changed: str) -> None:
    """Save the .npz again with one array's first image or label changed (another export of the set)."""
    with np.load(path) as npz:
        arrays = {name: npz[name].copy() for name in npz.files}
    arrays[changed][0] = 255 - arrays[changed][0]
    np.savez(path, **arrays)
    later = os.stat(path).st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(later, later))


@pytest.mark.parametrize("changed", ["test_images", "val_labels"])
def test_a_medmnist_run_goes_on_past_a_changed_test_split_and_stops_at_a_changed_val_split(
        tmp_path, monkeypatch, breastmnist_root, changed):
    import shutil

    import searchlab.tasks.classify as classify

    (tmp_path / "data").mkdir()
    path = Path(shutil.copy(breastmnist_root / "breastmnist.npz", tmp_path / "data"))
    check, done = classify.split_as_recorded, []

    def split_as_recorded(data, record):   # the file saved again inside trial 0, after its own check
        check(data, record)
        if not done:
            done.append(_resave(path, changed))

    monkeypatch.setattr(classify, "split_as_recorded", split_as_recorded)
    study_file = tmp_path / "study.yaml"
    study_file.write_text("name: datastop\ntask: classify\nspace:\n  model: {kind: cnn, depth: 1, width: 4}\n"
                          "  optim: {lr: {float: [0.001, 0.01]}}\n  train: {batch_size: 256}\n"
                          f"data: {{source: medmnist, name: breastmnist, root: '{tmp_path / 'data'}', "
                          "download: false}\nstrategy: random\npruner: none\nbudget: {n_trials: 3, epochs: 1}\n"
                          f"run_dir: '{tmp_path / 'run'}'\n")
    if changed.startswith("test"):   # trials read train and val only
        result = run_study(load_study(study_file), progress=False)
        assert _states(result.study) == [TrialState.COMPLETE] * 3
    else:
        with pytest.raises(DataChanged, match=r"\(breastmnist.npz: its val_labels array\)"):
            run_study(load_study(study_file), progress=False)


def test_a_split_of_other_files_than_recorded_raises_the_error_that_stops_the_run(tmp_path):
    """Files added, removed or relabelled, as a process that lists data.path after the run recorded it sees them
    (a worker started later, a Ray actor): the same DataChanged as files replaced in place."""
    from searchlab.config.schema import FolderData
    from searchlab.data.fingerprint import fingerprint_with_listing
    from searchlab.data.loading import clear_cache, load_dataset, plan_files
    from searchlab.data.recorded_split import member_stats, split_as_recorded

    cfg = FolderData(source="folder", path=_folder(tmp_path / "images"), image_size=8)
    plan = plan_files(cfg)
    files, listing = fingerprint_with_listing(plan)
    record = {"data_stat": member_stats(plan), "data_files": files, "data_listing": listing}
    plan.files["train"][0].unlink()
    clear_cache()
    with pytest.raises(DataChanged, match=r"were added, removed or relabelled.*The run stops here.*`searchlab run`"):
        split_as_recorded(load_dataset(cfg), record)
