"""Run folders on disks that refuse writes. One this user cannot write (a colleague's run, an archive, a
read-only disk) is still read: status, trials and export opened its WAL database read-write and failed with
"attempt to write a readonly database"; `run` on it failed with a raw traceback from the first INSERT. A disk
that fills during a run ended it in a 90-line traceback. Made with a read-only bind mount (which root obeys too)
and a small tmpfs, skipped where mounting is not allowed."""
from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from searchlab.config.load import load_study
from searchlab.engine.rundir import open_run
from searchlab.engine.run import run_study
from searchlab.errors import StorageError
from test_run import TINY_CLASSIFY, callable_study


def _mount(*commands: list[str]) -> None:
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            subprocess.run(["umount", command[-1]], capture_output=True)
            pytest.skip(f"cannot mount here: {done.stderr.strip()}")


@pytest.fixture
def read_only_run(write_study, tmp_path):
    run_study(load_study(callable_study(write_study, n=3)), progress=False)
    view = tmp_path / "view"
    view.mkdir()
    _mount(["mount", "--bind", str(tmp_path / "run"), str(view)], ["mount", "-o", "remount,ro,bind", str(view)])
    yield view
    subprocess.run(["umount", "--lazy", str(view)], check=True)   # lazy: this process may still hold the file


def test_a_run_folder_nobody_may_write_is_read(read_only_run):
    run = open_run(read_only_run)
    assert [t.state for t in run.study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    done = subprocess.run([sys.executable, "-m", "searchlab.cli", "status", str(read_only_run)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "3 complete" in done.stdout, done.stderr


def test_a_run_into_it_is_refused_saying_why(read_only_run):
    from searchlab.engine.storage import open_storage

    with pytest.raises(StorageError, match=r"cannot write the study database .*study\.db: this user cannot write it "
                                           r"or its folder .* Fix: run in a copy you can write"):
        open_storage(f"sqlite:///{read_only_run / 'study.db'}")


def test_a_disk_that_fills_during_a_run_is_said_in_one_line(write_study, tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    _mount(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(full)])
    try:   # a database and a few 64-wide checkpoints fill 1.2 MB
        path = write_study(TINY_CLASSIFY.replace("width: {choice: [4, 8]}", "width: {choice: [48, 64]}")
                           .replace("n_trials: 2", "n_trials: 8") + "export: {after_run: false}\n")
        done = subprocess.run([sys.executable, "-m", "searchlab.cli", "run", str(path), "--no-progress", "--set",
                               f"run_dir={full / 'run'}"], capture_output=True, text=True, timeout=300)
        status = subprocess.run([sys.executable, "-m", "searchlab.cli", "status", str(full / "run")],
                                capture_output=True, text=True, timeout=120)
    finally:
        subprocess.run(["umount", "--lazy", str(full)], check=True)
    assert done.returncode == 1, done.stderr
    assert f"error: the disk holding {full / 'run'} is full: " in done.stderr and "Traceback" not in done.stderr
    assert "Fix: free space there" in done.stderr
    # its end could not be written to the full disk: status said only "ended without a word"
    assert re.search(rf"ended without a word \(the disk holding {re.escape(str(full / 'run'))} has \d+ kB free: most "
                     "likely it stopped as the disk filled", status.stdout), status.stdout + status.stderr


def test_a_full_disk_is_found_in_the_chain_of_errors_optuna_raises():
    import sqlite3

    from searchlab.engine.disks import disk_full_error

    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError:
            raise AssertionError("Should not reach")   # what Optuna's tell raises over it
    except AssertionError as exc:
        assert "database or disk is full" in str(disk_full_error(Path("/runs/x"), exc))
    assert disk_full_error(Path("/runs/x"), OSError(errno.ENOSPC, "No space left on device")).exit_code == 1
    assert disk_full_error(Path("/runs/x"), ValueError("a bug")) is None


def test_a_sqlite_database_on_a_network_file_system_is_warned_of(tmp_path):
    from searchlab.engine.disks import network_filesystem, sqlite_on_network_warning

    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/vda / ext4 rw 0 0\nfiler:/export /mnt/share nfs4 rw 0 0\n"
                      "/dev/vdb /mnt/share/local\\040disk ext4 rw 0 0\n")
    assert network_filesystem(Path("/mnt/share/team/runs/x"), mounts) == "nfs4"
    assert network_filesystem(Path("/mnt/share/local disk/runs"), mounts) is None   # a local disk mounted inside
    assert network_filesystem(Path("/home/me/runs"), mounts) is None
    assert network_filesystem(Path("/mnt/shared"), mounts) is None   # a sibling name, not inside the share
    assert sqlite_on_network_warning(f"sqlite:///{tmp_path / 'study.db'}") is None   # this test's own disk
    assert sqlite_on_network_warning("postgresql://db/x") is None


def test_reading_commands_on_it_say_what_they_could_not_write(read_only_run, tmp_path):
    done = subprocess.run([sys.executable, "-m", "searchlab.cli", "report", str(read_only_run)], capture_output=True,
                          text=True, timeout=300)
    # the report's default place is in the run folder: named, not the hidden partial file beside it
    assert done.returncode == 1 and f"error: {read_only_run / 'report.html'}: Read-only file system" in done.stderr
    assert ".partial" not in done.stderr


def test_an_export_of_it_says_its_test_scoring_is_not_recorded(write_study, tmp_path):
    from searchlab.export.exporter import export_run

    run_study(load_study(write_study(TINY_CLASSIFY)), progress=False)
    view = tmp_path / "view"
    view.mkdir()
    _mount(["mount", "--bind", str(tmp_path / "run"), str(view)], ["mount", "-o", "remount,ro,bind", str(view)])
    try:
        config = export_run(view, tmp_path / "best", bootstrap=100)
    finally:
        subprocess.run(["umount", "--lazy", str(view)], check=True)
    # it said "recorded" (times: N) though nothing could be written there
    assert config["test_split_scored"]["times"] is None
    assert "read-only here" in config["test_split_scored"]["not_recorded"]


def test_a_checkpoint_the_disk_had_no_room_for_leaves_no_part_of_it(tmp_path, monkeypatch):
    import io
    import shutil

    from searchlab.engine.storage import artifact_store

    store = artifact_store(tmp_path)

    def copy_until_full(source, target, *args, **kwargs):
        target.write(source.read(10))   # some of it written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfileobj", copy_until_full)
    with pytest.raises(OSError, match="No space left"):
        store.write("trial-0.safetensors", io.BytesIO(b"x" * 100))
    assert list((tmp_path / "artifacts").iterdir()) == []


def test_a_run_into_it_says_why_not_and_calls_it_no_copy(read_only_run, tmp_path):
    done = subprocess.run([sys.executable, "-m", "searchlab.cli", "run", str(tmp_path / "study.yaml"), "--set",
                           f"run_dir={read_only_run}", "--set", "budget.n_trials=4"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)})
    # said before the data is read, naming run_dir (it was said as study.db, after the data had loaded)
    assert done.returncode == 2 and f"error: run_dir {read_only_run}: a run this user cannot write" in done.stderr \
        and "Fix: run in a copy you can write (cp -r" in done.stderr, done.stderr
    assert "is a copy of the run folder" not in done.stderr   # the same folder, mounted at another path


def test_a_run_dir_on_a_read_only_disk_is_refused_before_the_data_is_read(write_study, tmp_path, capsys):
    """Into an existing folder it was said as a storage the user never set; under one, as a bare Permission
    denied once the data had loaded."""
    from searchlab.cli import main

    (tmp_path / "empty").mkdir()
    view = tmp_path / "view"
    view.mkdir()
    _mount(["mount", "--bind", str(tmp_path / "empty"), str(view)], ["mount", "-o", "remount,ro,bind", str(view)])
    try:
        study = callable_study(write_study, n=1)
        for run_dir, where in ((view, "it"), (view / "new", f"{view}, where it would be made")):
            assert main(["run", str(study), "--no-progress", "--set", f"run_dir={run_dir}"]) == 2
            err = capsys.readouterr().err
            assert f"error: run_dir {run_dir}: this user cannot write {where} (a colleague's folder" in err
            assert "Fix: --set run_dir=DIR with a folder you can write" in err and "storage" not in err
    finally:
        subprocess.run(["umount", "--lazy", str(view)], check=True)
