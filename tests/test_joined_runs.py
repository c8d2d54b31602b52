"""Several `searchlab run`s of one study and run folder at once (a run joined by more workers from another
shell), on SQLite with the local executor: what each run records, and what a killed one leaves."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from searchlab.config.load import load_study
from searchlab.engine.run_history import KEY
from searchlab.engine.rundir import MANIFEST
from test_run import REPO, TESTS, callable_study

RUN = "from searchlab.config.load import load_study; from searchlab.engine.run import run_study; " \
      "import sys; run_study(load_study(sys.argv[1]), progress=False)"


def _start_run(path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    return subprocess.Popen([sys.executable, "-c", RUN, str(path)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _study(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")


def _wait_for(condition, tmp_path: Path, seconds: float = 120.0) -> optuna.Study:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if (tmp_path / "run" / MANIFEST).is_file():   # written once the run made its study
            study = _study(tmp_path)
            if condition(study):
                return study
        time.sleep(0.1)
    raise AssertionError("the runs never got there")


def _running_pids(study: optuna.Study) -> set[int]:
    """The processes whose trials are RUNNING (they record their pid as they start: fake_tasks.quadratic)."""
    return {t.user_attrs["pid"] for t in study.get_trials(states=(TrialState.RUNNING,)) if "pid" in t.user_attrs}


def _finished_by(study: optuna.Study, pid: int) -> int:
    return sum(t.user_attrs.get("pid") == pid for t in study.get_trials(states=(TrialState.COMPLETE,)))


def test_each_joined_run_records_the_trials_it_finished_itself(write_study, tmp_path):
    """Three joined runs recorded 6 + 2 + 2 finished trials of a study that held 8: each counted what every
    runner of the folder finished while it ran."""
    path = callable_study(write_study, n=6, sleep=1.0)
    first = _start_run(path)
    _wait_for(lambda s: _running_pids(s), tmp_path)
    second = _start_run(path)
    _wait_for(lambda s: len(_running_pids(s)) == 2, tmp_path)   # both run trials at once
    for proc in (first, second):
        assert proc.wait(120) == 0, proc.stderr.read()
    study = _study(tmp_path)
    runs = study.user_attrs[KEY]
    assert len(runs) == 2 and all(run["stopped_by"] == "budget.n_trials" for run in runs)
    assert {run["pid"]: run["trials_finished"] for run in runs} == {
        proc.pid: _finished_by(study, proc.pid) for proc in (first, second)}
    assert sum(run["trials_finished"] for run in runs) == 6


def test_a_run_whose_joined_run_was_killed_takes_over_its_trials_and_finishes_the_budget(write_study, tmp_path):
    """The run a second one joined was killed -9: its trial stayed RUNNING, holding budget.n_trials (SQLite has
    no heartbeats), and the second stopped "by budget.n_trials" with the budget undone."""
    path = callable_study(write_study, n=6, sleep=1.0)
    first = _start_run(path)
    _wait_for(lambda s: first.pid in _running_pids(s), tmp_path)
    second = _start_run(path)
    _wait_for(lambda s: _running_pids(s) == {first.pid, second.pid}, tmp_path)
    os.kill(first.pid, signal.SIGKILL)
    first.wait(30)
    assert second.wait(120) == 0
    said = second.stderr.read()
    assert "were left by a run of this folder that ended without finishing them (killed)" in said, said
    study = _study(tmp_path)
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 6 and not study.get_trials(states=(TrialState.RUNNING,))
    (left,) = study.get_trials(states=(TrialState.FAIL,))
    assert left.user_attrs["pid"] == first.pid and "interrupted" in left.user_attrs["error"]
    assert any(t.params == left.params for t in complete)   # its config ran again
    latest = study.user_attrs[KEY][-1]
    assert latest["pid"] == second.pid and latest["stopped_by"] == "budget.n_trials"
    assert latest["trials_finished"] == _finished_by(study, second.pid)


def test_a_run_that_cannot_take_over_left_trials_does_not_say_the_budget_stopped_it(write_study, tmp_path, capsys,
                                                                                    monkeypatch):
    """Trials RUNNING with no live runner (under Ray, or one that refuses to take over) are not the budget."""
    import searchlab.engine.run as run_module
    from searchlab.summary import print_run_summary

    path = callable_study(write_study, n=2)
    run_module.run_study(load_study(path), progress=False)
    _study(tmp_path).ask()   # left RUNNING by a run killed after this one started, say
    study = load_study(path, {"budget.n_trials": 3})
    monkeypatch.setattr(run_module, "_recover_and_prepare", lambda *args: None)   # as a joining run: no recovery
    # no takeover, as under Ray (raising=False: the test fails, not errs, without it)
    monkeypatch.setattr(run_module, "_take_over_left_running", lambda *args: False, raising=False)
    result = run_module.run_study(study, progress=False)
    assert result.stopped_by == "trials_left_running"
    assert _study(tmp_path).user_attrs[KEY][-1]["stopped_by"] == "trials_left_running"
    print_run_summary(study, result, None)
    out = capsys.readouterr().out
    assert "stopped: 1 trial(s) RUNNING (trial 2) were left by a run of this folder that ended without " \
           "finishing them (killed)" in out and "Fix: run the study again" in out


def test_status_does_not_say_trials_of_a_killed_ray_driver_wait_for_a_worker(write_study, tmp_path, capsys):
    """A Ray driver killed with trials queued: status said they waited for a Ray worker, and beside it, that
    they were left by a run that stopped."""
    from searchlab.engine.run import create_or_load
    from searchlab.engine.rundir import OpenRun
    from searchlab.summary import print_status

    study = load_study(callable_study(write_study, n=4), {"executor.kind": "ray"})
    (tmp_path / "run").mkdir()
    ostudy = create_or_load(study)
    started = ostudy.ask()
    started.set_user_attr("ray_node", "abc")
    ostudy.ask(), ostudy.ask()   # asked of the study, never started on a node
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ostudy.set_user_attr(KEY, [{"started_utc": "2026-01-01T00:00:00+00:00", "host": socket.gethostname(),
                                "pid": dead.pid, "stopped_by": None}])   # the killed driver's: no end, no process
    run = OpenRun(tmp_path / "run", ostudy, study.storage_url, tmp_path / "run" / "artifacts")
    print_status(run, 3)
    out = capsys.readouterr().out
    assert "3 'running' left by a run that stopped without finishing them" in out
    assert "wait for a Ray worker" not in out, out
