"""Image files whose contents are replaced in place (same names) while a run runs fail the trials after the change
(data/recorded_split.py files_unchanged); files only read, touched or chmod-ed do not. The image cache keeps no
entry decoded from files that changed while it was decoded (data/image_cache.py)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from optuna.trial import TrialState
from PIL import Image

import searchlab.tasks.classify as classify
from searchlab.config.load import load_study
from searchlab.engine.run import run_study

COLOURS = {"a": (250, 0, 0), "b": (0, 0, 250)}


def _folder(root: Path, per_class: int = 8) -> Path:
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (12, 12), colour).save(root / name / f"{i:02d}.png")
    return root


def _study(tmp_path: Path, folder: Path) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text("name: inplace\ntask: classify\nspace:\n  model: {kind: cnn, depth: 1, width: 4}\n"
                    "  optim: {lr: {float: [0.001, 0.01]}}\n"
                    f"data: {{source: folder, path: '{folder}', image_size: 8}}\nstrategy: random\npruner: none\n"
                    f"budget: {{n_trials: 3, epochs: 1}}\nrun_dir: '{tmp_path / 'run'}'\n")
    return path


def _during_first_trial(monkeypatch, change) -> None:
    """Call change(first training file) once, inside the first trial, just after its files were checked."""
    check = classify.split_as_recorded   # called at each trial's start only
    done: list[bool] = []

    def split_as_recorded(data, record):
        check(data, record)
        if not done:
            done.append(True)
            change(Path(data.extra["files"]["train"][0]))

    monkeypatch.setattr(classify, "split_as_recorded", split_as_recorded)


def _later_by_a_second(path: Path) -> None:
    """Move the file's modification time on, as a second write would on any file system's clock."""
    later = os.stat(path).st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(later, later))


def test_a_file_rewritten_while_the_run_runs_fails_the_trial_after_it_and_stops_the_run(tmp_path, monkeypatch):
    import optuna

    from searchlab.errors import DataChanged

    folder = _folder(tmp_path / "images")

    def rewrite(path: Path) -> None:
        Image.new("RGB", (12, 12), (0, 250, 0)).save(path)   # a re-export: same name, other pixels
        _later_by_a_second(path)

    _during_first_trial(monkeypatch, rewrite)
    with pytest.raises(DataChanged) as said:
        run_study(load_study(_study(tmp_path, folder)), progress=False)
    trials = optuna.load_study(study_name="inplace", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials
    # the trial after the change failed (its config runs again when the study next runs); none after it ran
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL]
    error = trials[1].user_attrs["error"]
    assert error == f"DataChanged: {said.value}"
    assert "1 file this trial reads changed since the run started (train " in error
    assert "Files must not change while a run runs" in error and "Fix: restore the files" in error
    assert "resuming this one would refuse them" in error


def test_files_touched_chmod_ed_or_read_do_not_fail_a_trial(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "images")

    def touch(path: Path) -> None:
        path.read_bytes()
        _later_by_a_second(path)       # touched: contents alike
        os.chmod(path, 0o640)          # its ctime moves too

    _during_first_trial(monkeypatch, touch)
    result = run_study(load_study(_study(tmp_path, folder)), progress=False)
    states = [t.state for t in result.study.get_trials(deepcopy=False)]
    assert states == [TrialState.COMPLETE] * 3


def test_a_medmnist_file_is_checked_the_same_way(tmp_path):
    from searchlab.data.fingerprint import sampled_digest
    from searchlab.data.recorded_split import files_unchanged, medmnist_stat
    from searchlab.data.types import ImageDataset
    from searchlab.errors import DataError

    path = tmp_path / "breastmnist.npz"
    np.savez(path, train_images=np.zeros((4, 8, 8), np.uint8))
    record = {"data_stat": medmnist_stat(path),
              "data_file": {"file": path.name, "bytes": path.stat().st_size, "digest": sampled_digest(path).hex()}}
    data = ImageDataset(splits={}, class_names=("a", "b"), kind="binary", extra={"file": str(path)})
    files_unchanged(data, record)
    _later_by_a_second(path)
    files_unchanged(data, record)   # touched: alike
    np.savez(path, train_images=np.ones((4, 8, 8), np.uint8))
    with pytest.raises(DataError, match="breastmnist.npz: 1 file this trial reads changed since the run started"):
        files_unchanged(data, record)


def test_checking_2000_files_costs_little(tmp_path):
    from searchlab.data.recorded_split import files_unchanged, member_stats
    from searchlab.data.types import ImageDataset, SplitPlan

    files = []
    for i in range(2000):
        files.append(tmp_path / f"{i:04d}.png")
        files[-1].write_bytes(b"x" * 64)
    plan = SplitPlan(files={"train": files}, labels={"train": np.zeros(2000, np.int64)}, classes=("a", "b"),
                     kind="binary", root=tmp_path, source=str(tmp_path))
    record = {"data_stat": member_stats(plan)}
    data = ImageDataset(splits={}, class_names=("a", "b"), kind="binary",
                        extra={"files": {"train": tuple(map(str, files))}, "root": str(tmp_path)})
    started = time.perf_counter()
    files_unchanged(data, record)
    seconds = time.perf_counter() - started
    print(f"files_unchanged: {seconds * 1000:.1f} ms for 2,000 files; record {len(str(record))} characters")
    assert seconds < 1.0


def test_the_image_cache_keeps_no_entry_decoded_from_a_file_rewritten_meanwhile(tmp_path, monkeypatch):
    from searchlab.data import image_cache
    from searchlab.data.types import Decoding

    monkeypatch.setenv("SEARCHLAB_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "x.png"
    Image.new("RGB", (12, 12), (250, 0, 0)).save(path)

    def decode_after_a_rewrite(rows):
        Image.new("RGB", (12, 12), (0, 250, 0)).save(path)   # rewritten after it was keyed, before it was read
        _later_by_a_second(path)
        return np.full((len(rows), 3, 8, 8), 7, np.uint8)

    image_cache.cached_decode([path], Decoding(8, 3), decode_after_a_rewrite)
    assert not list((tmp_path / "cache" / "images").glob("*.npy"))   # else keyed by the stats before the rewrite


@pytest.mark.parametrize("with_listing", [True, False])
def test_restored_files_pass_again_with_or_without_the_runs_listing(tmp_path, with_listing):
    """Without a listing (a set too large to keep one) the split's contents hash tells restored files."""
    from searchlab.config.schema import FolderData
    from searchlab.data.fingerprint import fingerprint_with_listing
    from searchlab.data.loading import load_dataset, plan_files
    from searchlab.data.recorded_split import files_unchanged, member_stats
    from searchlab.errors import DataError

    cfg = FolderData(source="folder", path=_folder(tmp_path / "images"), image_size=8)
    plan = plan_files(cfg)
    files, listing = fingerprint_with_listing(plan)
    record = {"data_stat": member_stats(plan), "data_files": files, "data_listing": listing if with_listing else None}
    data = load_dataset(cfg)
    path = Path(data.extra["files"]["val"][0])
    kept = path.read_bytes()
    Image.new("RGB", (12, 12), (0, 250, 0)).save(path)
    _later_by_a_second(path)
    with pytest.raises(DataError, match=r"\(val [ab]/\d\d.png\)"):
        files_unchanged(data, record)
    path.write_bytes(kept)
    files_unchanged(data, record)
