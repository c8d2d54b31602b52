"""Stops the audit found mishandled: a signal ignored when `searchlab run` starts (nohup's SIGHUP, a script's
background job's Ctrl-C) stopped it all the same; a stop inside Optuna's ask left a trial RUNNING; and SIGTERM
during an export killed it at once, leaving its partial folder and no run summary."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from optuna.trial import TrialState

from searchlab import cli
from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from stop_signals import default_stop_signals
from test_run import REPO, TESTS, TINY_CLASSIFY, callable_study
from test_signals import _ended, _study, _trials, _wait_for_pids


def _ignoring(sig: int):
    def preexec() -> None:
        default_stop_signals()
        signal.signal(sig, signal.SIG_IGN)   # as nohup does SIGHUP, and a script's shell Ctrl-C for `cmd &`
    return preexec


def _start_in_own_group(path: Path, preexec) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    return subprocess.Popen([sys.executable, "-m", "searchlab.cli", "run", str(path), "--no-progress"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=preexec)


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGINT])
def test_a_stop_signal_ignored_at_start_stays_ignored_by_the_run_and_its_workers(write_study, tmp_path, sig):
    """`nohup searchlab run study.yaml &` then a logout: the hang-up reaches every process of the group."""
    path, pid_dir = _study(write_study, tmp_path, n=2, sleep=4)
    proc = _start_in_own_group(path, _ignoring(sig))
    _wait_for_pids(pid_dir, 2)
    os.killpg(proc.pid, sig)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    assert [t.state for t in _trials(tmp_path)] == [TrialState.COMPLETE] * 2, err   # no worker stopped either


def test_a_hang_up_not_ignored_still_stops_the_run_and_its_workers_gracefully(write_study, tmp_path):
    path, pid_dir = _study(write_study, tmp_path, n=4, sleep=120)
    proc = _start_in_own_group(path, default_stop_signals)
    workers = _wait_for_pids(pid_dir, 2)
    os.killpg(proc.pid, signal.SIGHUP)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 128 + signal.SIGHUP, err
    assert _ended(workers, timeout=10) and "Traceback" not in err
    assert [t.user_attrs.get("error") for t in _trials(tmp_path)] == ["interrupted (SIGHUP)"] * 2


STOPS_IN_ASK = '''
import multiprocessing, os, signal, time
import optuna


class StopsInAsk(optuna.samplers.RandomSampler):
    """SIGTERM to the run inside Optuna's ask of trial 1: its row is written, its objective not started."""

    def before_trial(self, study, trial):
        if trial.number == 1:
            os.kill(os.getppid() if multiprocessing.parent_process() else os.getpid(), signal.SIGTERM)
            time.sleep(60)   # a worker process: its run forwards the stop meanwhile
'''


@pytest.mark.parametrize("workers, sleep", [(1, 0), (2, 60)])
def test_a_stop_inside_optunas_ask_leaves_no_trial_running(write_study, tmp_path, workers, sleep):
    (tmp_path / "stop_in_ask.py").write_text(STOPS_IN_ASK)
    text = callable_study(write_study, n=4, sleep=sleep).read_text()
    text = text.replace("strategy: random", "strategy: {class: 'stop_in_ask:StopsInAsk'}")
    path = write_study(text + f"executor: {{workers: {workers}}}\n")
    result = run_study(load_study(path), progress=False)
    assert result.interrupted and result.exit_code == 128 + signal.SIGTERM
    trials = _trials(tmp_path)
    assert TrialState.RUNNING not in {t.state for t in trials}
    asked = next(t for t in trials if t.number == 1)
    assert asked.state == TrialState.FAIL and asked.user_attrs["error"].startswith("interrupted")


@pytest.fixture()
def sigterm_inside_the_export(monkeypatch):
    """SIGTERM to this process while the export scores the test split (its staging folder written)."""
    from searchlab.export import exporter

    real = exporter._score_test

    def scoring_then_stopped(*args, **kwargs):
        scored = real(*args, **kwargs)
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:   # it would end pytest itself at once
            raise AssertionError("SIGTERM has its default action during the export: the process ends at once")
        os.kill(os.getpid(), signal.SIGTERM)
        return scored

    monkeypatch.setattr(exporter, "_score_test", scoring_then_stopped)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".*partial-*"))


def test_sigterm_during_the_after_run_export_still_prints_the_summary_and_keeps_the_earlier_export(
        write_study, tmp_path, monkeypatch, capsys, sigterm_inside_the_export):
    path = write_study(TINY_CLASSIFY + "export: {after_run: true, bootstrap: 100}\n")
    best = tmp_path / "run" / "best"
    best.mkdir(parents=True)
    (best / "config.json").write_text('{"format": "searchlab-export/1"}')   # an earlier export
    code = cli.main(["run", str(path), "--no-progress", "--set", "budget.n_trials=1", "--set", "budget.epochs=1"])
    out, err = capsys.readouterr()
    assert code == 128 + signal.SIGTERM, err
    assert "export interrupted (SIGTERM)" in err and "searchlab export" in out and "study 'tiny'" in out, out
    assert _leftovers(tmp_path / "run") == [] and (best / "config.json").read_text().startswith('{"format"')


def test_sigterm_during_searchlab_export_removes_its_partial_folder(write_study, tmp_path, capsys,
                                                                   sigterm_inside_the_export):
    path = write_study(TINY_CLASSIFY + "export: {after_run: false}\n")
    run_study(load_study(path, {"budget.n_trials": 1, "budget.epochs": 1}), progress=False)
    out = tmp_path / "exp3"
    code = cli.main(["export", str(tmp_path / "run"), "--out", str(out), "--bootstrap", "100"])
    assert code == 128 + signal.SIGTERM and "interrupted" in capsys.readouterr().err
    assert _leftovers(tmp_path) == [] and not out.exists()


def test_a_stop_while_the_export_is_moved_into_place_lets_it_finish_whole(write_study, tmp_path, monkeypatch):
    """Between the two renames (the earlier export set aside, the new one not yet in place) a stop left no
    export under --out at all."""
    path = write_study(TINY_CLASSIFY + "export: {after_run: false}\n")
    run_study(load_study(path, {"budget.n_trials": 1, "budget.epochs": 1}), progress=False)
    out = tmp_path / "exp3"
    export = ["export", str(tmp_path / "run"), "--out", str(out), "--bootstrap", "100"]
    assert cli.main(export) == 0
    real_rename = Path.rename

    def stopped_before_the_new_one_is_in(self, target):
        if self.name.startswith(".exp3.partial-"):
            os.kill(os.getpid(), signal.SIGTERM)
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", stopped_before_the_new_one_is_in)
    cli.main(export)
    assert (out / "config.json").is_file() and (out / "weights.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.glob(".exp3*")) == []


def test_a_stop_before_the_objective_starts_fails_its_trial_as_interrupted(write_study, tmp_path, monkeypatch):
    """A stop as the worker releases its budget lock, before the objective (which records its own stops), left
    the trial FAIL without a word: counted as a failed config, and its config never ran again."""
    from searchlab.engine import worker

    real_release = worker.AskGate.release

    def stopped_as_the_trial_starts(self):
        real_release(self)
        if sys._getframe(1).f_code.co_name == "gated_objective":
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(worker.AskGate, "release", stopped_as_the_trial_starts)
    result = run_study(load_study(callable_study(write_study, n=2)), progress=False)
    assert result.interrupted and result.exit_code == 128 + signal.SIGTERM
    [trial] = _trials(tmp_path)
    assert trial.state == TrialState.FAIL and trial.user_attrs.get("error") == "interrupted (SIGTERM)"


# a command that is done, in a process whose teardown is slow (as a run's, ~2 s of garbage collection)
SLOW_TEARDOWN = """
import atexit, sys, time
from searchlab.cli import main
atexit.register(lambda: (print("tearing down", flush=True), time.sleep(20)))
sys.argv = ["searchlab", "cache"]
sys.exit(main())
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_after_the_command_is_done_ends_the_process_with_its_code(sig):
    """A batch job's time limit or a Ctrl-C in the seconds after a finished run's summary made it exit 143 (or
    print a KeyboardInterrupt traceback): `run && use best/` took a finished run for a failed one."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    child = subprocess.Popen([sys.executable, "-c", SLOW_TEARDOWN], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=default_stop_signals)
    while "tearing down" not in child.stdout.readline():   # the command's own lines first
        assert child.poll() is None, child.stderr.read()
    child.send_signal(sig)
    _, err = child.communicate(timeout=15)   # at once, not after the 20 s teardown
    assert child.returncode == 0 and "Traceback" not in err, err


# the same, in the interpreter's garbage collection after its exit hooks (Python's handlers are reset by then)
SLOW_COLLECTION = """
import sys, time
from searchlab.cli import main

class Slow:
    def __del__(self):
        print("collecting", flush=True)
        time.sleep(3)

kept = Slow()
sys.argv = ["searchlab", "cache"]
sys.exit(main())
"""


def test_a_stop_in_the_interpreters_garbage_collection_cannot_kill_a_finished_command():
    """A finished run or export stopped ~1 s after its summary exited 143: Python's teardown resets the signal
    handlers to the default before it collects garbage, so end_at_a_stop_with's handler never ran. Stops are
    ignored there, and the teardown ends as it would (it closes SQLite's connections, which folds its log into
    study.db)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    child = subprocess.Popen([sys.executable, "-c", SLOW_COLLECTION], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=default_stop_signals)
    for line in child.stdout:   # the command's own lines, then the collection
        if "collecting" in line:
            child.send_signal(signal.SIGTERM)
            break
    _, err = child.communicate(timeout=30)
    assert "collecting" in line and child.returncode == 0 and "Traceback" not in err, (child.returncode, err)


def test_a_finished_cli_runs_trials_are_in_its_study_db_alone(write_study, tmp_path):
    """Ending the process without its teardown left every trial in study.db-wal: a copy of study.db alone (sent
    to a colleague, opened by optuna-dashboard elsewhere) held none."""
    import shutil
    import sqlite3

    path = callable_study(write_study, n=2)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    done = subprocess.run([sys.executable, "-m", "searchlab.cli", "run", str(path), "--no-progress"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    shutil.copy(tmp_path / "run" / "study.db", tmp_path / "copy.db")
    with sqlite3.connect(tmp_path / "copy.db") as db:
        assert db.execute("SELECT COUNT(*) FROM trials WHERE state = 'COMPLETE'").fetchone() == (2,)
