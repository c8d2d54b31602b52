"""Runs of one study on one machine that find its stage before training's writer killed: exactly one continues it.

Two runs that waited for one killed writer both continued the stage (two searches wrote one record): only a random
pause and a second look of the storage separated them, and two runs that first looked after the kill were not
separated at all. Every writer now holds the stage's lock of this machine while it searches: the run that takes it
continues the stage, the other finds it held and waits. The kernel releases a killed writer's lock at once.

Real processes on a real SQLite study; each runs nas/stage.py run_stage with a stand-in search (no torch network).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna

from searchlab.nas.stage import WRITER

REPO = Path(__file__).resolve().parents[1]
# run_stage of stage `s.zen_proxy` beside study `s` in the SQLite file argv[1], once the file argv[2] exists; its
# search appends this pid to the file argv[3], then sleeps argv[4] seconds (a kill lands there) and scores nothing
RUN_STAGE = """
import os, sys, time
import optuna
from searchlab.nas.stage import Stage, run_stage
db, go, searched, seconds = sys.argv[1:5]
url = f"sqlite:///{db}"
main = optuna.create_study(study_name="s", storage=url, load_if_exists=True)
def produce(before, state, checkpoint):
    with open(searched, "a") as out:
        out.write(f"{os.getpid()}\\n")
    time.sleep(float(seconds))
    return [], None, None
stage = Stage("s.zen_proxy", produce, {"candidates": 1}, grows="candidates", top_k=1, score_attr="zen_score",
              storage_url=url)
while not os.path.exists(go):
    time.sleep(0.005)
run_stage(main, stage)
print("stage run", flush=True)
"""


def _run_stage(tmp_path: Path, go: Path, seconds: float, log: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(tmp_path / log, "w") as out:
        return subprocess.Popen([sys.executable, "-c", RUN_STAGE, str(tmp_path / "study.db"), str(go),
                                 str(tmp_path / "searched"), str(seconds)], env=env, stdout=out,
                                stderr=subprocess.STDOUT)


def _searchers(tmp_path: Path) -> list[str]:
    path = tmp_path / "searched"
    return path.read_text().split() if path.exists() else []


def _until(said, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while not said():
        assert time.time() < deadline
        time.sleep(0.05)


def _killed_writer(tmp_path: Path) -> dict:
    """A run killed with -9 while it searched the stage: its stamp, fresh, names a pid dead now."""
    (tmp_path / "go-writer").touch()
    writer = _run_stage(tmp_path, tmp_path / "go-writer", 60, "writer.log")
    try:
        _until(lambda: _searchers(tmp_path))
    finally:
        writer.kill()
        assert writer.wait() == -signal.SIGKILL
    record = optuna.load_study(study_name="s.zen_proxy", storage=f"sqlite:///{tmp_path / 'study.db'}")
    stamp = record.user_attrs[WRITER]
    assert stamp["pid"] == writer.pid
    return stamp


def test_two_runs_finding_the_writer_killed_continue_its_stage_once(tmp_path):
    _killed_writer(tmp_path)
    go = tmp_path / "go"
    runs = [_run_stage(tmp_path, go, 2, f"run{i}.log") for i in range(2)]
    try:
        time.sleep(2.0)   # both imported and polling for `go`: they look at the record within milliseconds
        go.touch()
        for run in runs:
            assert run.wait(timeout=30) == 0, (tmp_path / "run0.log").read_text() + (tmp_path / "run1.log").read_text()
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.wait()
    continued = _searchers(tmp_path)[1:]   # the first is the killed writer's
    logs = [(tmp_path / f"run{i}.log").read_text() for i in range(2)]
    assert len(continued) == 1, logs   # the stage was continued by one run, not two at once
    waited = logs[[str(run.pid) for run in runs].index(continued[0]) ^ 1]
    assert "the stage before training is being searched by another run of this study" in waited, logs
    record = optuna.load_study(study_name="s.zen_proxy", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert record.user_attrs["searchlab:stage_done"]


def test_a_killed_writers_lock_is_free_at_once_and_its_stage_no_longer_live(tmp_path):
    from searchlab.nas.stage_live import StageLock, live_writer, lock_held, stage_lock_key

    db = tmp_path / "study.db"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from searchlab.nas.stage_live import StageLock; lock = StageLock(sys.argv[1]); "
        "assert lock.take(); print(lock.path, flush=True); time.sleep(60)"), stage_lock_key(f"sqlite:///{db}", "s.x")],
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True)
    try:
        path = holder.stdout.readline().strip()
        stamp = {"host": socket.gethostname(), "pid": holder.pid, "at": time.time() - 3600, "lock": path}
        # held: live, however old its last stamp (a stamp missed while its storage was busy)
        assert lock_held(path) is True and live_writer(stamp, None, 10.0).startswith(f"pid {holder.pid} on ")
        assert not StageLock(stage_lock_key(f"sqlite:///{db}", "s.x")).take()
        holder.kill()
        holder.wait()
        started = time.time()
        lock = StageLock(stage_lock_key(f"sqlite:///{tmp_path / '.' / 'study.db'}", "s.x"))   # the same file
        assert lock.take() and lock.path == path and time.time() - started < 0.2
        assert live_writer({**stamp, "at": time.time()}, None, 10.0) is None   # held by this process: not the writer's
        lock.release()
        assert lock_held(path) is False
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_a_live_pid_whose_stage_lock_is_free_writes_the_stage_no_more(tmp_path):
    """Its pid alive (reused by another process, or a run that raised out of its stage) read as a live writer."""
    from searchlab.nas.stage_live import live_writer

    free = tmp_path / "free.stage.lock"   # the lock its stamp names, held by nobody
    free.touch()
    other = subprocess.Popen(["sleep", "30"])
    try:
        stamp = {"host": socket.gethostname(), "pid": other.pid, "at": time.time(), "lock": str(free)}
        assert live_writer(stamp, None, 10.0) is None
        assert live_writer({k: v for k, v in stamp.items() if k != "lock"}, None, 10.0) is not None   # no lock: pid
    finally:
        other.kill()
        other.wait()


def test_a_lock_folder_that_cannot_be_made_falls_back_to_the_run_folder(tmp_path, monkeypatch):
    import tempfile

    from searchlab.nas.stage_live import StageLock

    (tmp_path / "not-a-folder").touch()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "not-a-folder"))   # searchlab-locks cannot be made in it
    lock = StageLock("sqlite:////x.db\ns.z", tmp_path / ".stage.lock")
    try:
        assert lock.take() and lock.path == str(tmp_path / ".stage.lock")
        assert not StageLock("sqlite:////x.db\ns.z", tmp_path / ".stage.lock").take()
    finally:
        lock.release()
