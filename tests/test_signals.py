"""Stopping a run from outside: SIGTERM (a scheduler, `kill`, `docker stop`) and SIGHUP are handled like Ctrl-C,
supervised workers stop with their parent (even one killed -9), and a stop swallowed by library code still
stops the trial. Interrupted trials are FAIL with the reason, and their configs run again on resume."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from stop_signals import default_stop_signals
from test_run import REPO, TESTS, callable_study

WORKERS = "\nexecutor: {workers: 2, max_retries: 1}\n"


def _study(write_study, tmp_path, n, sleep, extra=WORKERS):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir(exist_ok=True)
    text = callable_study(write_study, fn="slow_with_pid_file", n=n, sleep=sleep).read_text()
    return write_study(text.replace("  sleep:", f"  pid_dir: '{pid_dir}'\n  sleep:") + extra), pid_dir


def _start_run(path: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    return subprocess.Popen([sys.executable, "-m", "searchlab.cli", "run", str(path), "--no-progress"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_stop_signals)


def _wait_for_pids(pid_dir: Path, count: int, timeout: float = 180) -> list[int]:
    deadline = time.time() + timeout   # late when the 2 cores are busy: each worker imports torch first
    while time.time() < deadline and len(list(pid_dir.glob("*.pid"))) < count:
        time.sleep(0.1)
    time.sleep(0.5)   # the trials are sleeping now
    return [int(p.read_text()) for p in pid_dir.glob("*.pid")]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"   # a zombie has ended; only its exit status waits to be collected


def _ended(pids: list[int], timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.1)
    return not any(_alive(p) for p in pids)


def _trials(tmp_path):
    return optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").get_trials()


def test_sigterm_to_the_run_stops_its_workers_and_their_configs_run_again_on_resume(write_study, tmp_path):
    path, pid_dir = _study(write_study, tmp_path, n=4, sleep=120)
    proc = _start_run(path)
    workers = _wait_for_pids(pid_dir, 2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert len(workers) == 2 and _ended(workers, timeout=10), "a worker went on running the study unsupervised"
    trials = _trials(tmp_path)
    assert [t.state for t in trials] == [TrialState.FAIL] * 2
    assert all(t.user_attrs["error"] == "interrupted (SIGTERM)" for t in trials)
    assert "interrupted" in out and "Traceback" not in err
    resumed = run_study(load_study(path, {"space.sleep": 0}), progress=False).study
    complete = resumed.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 4 and TrialState.RUNNING not in {t.state for t in resumed.get_trials()}
    retried = {t.user_attrs.get("retry_of"): t.params for t in complete}
    assert all(retried[t.number] == t.params for t in trials)   # the interrupted configs ran, not lost


def test_ctrl_c_to_the_run_alone_is_recorded_as_ctrl_c_in_its_workers_trials(write_study, tmp_path):
    path, pid_dir = _study(write_study, tmp_path, n=4, sleep=120)
    proc = _start_run(path)
    _wait_for_pids(pid_dir, 2)
    proc.send_signal(signal.SIGINT)   # `kill -INT PID`: the workers get what the run got, not a SIGTERM
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert [t.user_attrs.get("error") for t in _trials(tmp_path)] == ["interrupted (Ctrl-C)"] * 2


def test_ctrl_c_while_the_workers_start_prints_no_traceback(write_study, tmp_path):
    path, _ = _study(write_study, tmp_path, n=4, sleep=120)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    proc = subprocess.Popen([sys.executable, "-m", "searchlab.cli", "run", str(path), "--no-progress"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=default_stop_signals)
    deadline = time.time() + 120
    while time.time() < deadline and len(_children(proc.pid)) < 2:
        time.sleep(0.02)
    time.sleep(0.2)   # the workers are importing torch now
    os.killpg(proc.pid, signal.SIGINT)   # what a terminal's Ctrl-C does: every process of the group
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130 and "Traceback" not in err and "Fatal Python error" not in err, err


def _children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (the run's worker processes, and multiprocessing's helper)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_workers_stop_when_their_parent_is_killed(write_study, tmp_path):
    path, pid_dir = _study(write_study, tmp_path, n=4, sleep=120)
    proc = _start_run(path)
    workers = _wait_for_pids(pid_dir, 2)
    proc.kill()   # SIGKILL: the parent can tell nobody
    proc.communicate(timeout=30)
    assert _ended(workers, timeout=20)
    trials = _trials(tmp_path)
    assert [t.user_attrs.get("error") for t in trials] == ["interrupted (its run's main process ended)"] * 2


def test_a_worker_told_to_stop_alone_has_its_trial_retried_and_is_replaced(write_study, tmp_path):
    path, pid_dir = _study(write_study, tmp_path, n=3, sleep=2)
    stopped: list[int] = []

    def stop_first_worker() -> None:
        stopped.extend(_wait_for_pids(pid_dir, 1)[:1])
        os.kill(stopped[0], signal.SIGTERM)

    threading.Thread(target=stop_first_worker, daemon=True).start()
    result = run_study(load_study(path), progress=False)
    trials = result.study.get_trials()
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert stopped and not result.interrupted   # the run itself was not told to stop
    assert len(failed) == 1 and failed[0].user_attrs["error"] == "interrupted (SIGTERM)"
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == 3
    assert any(t.user_attrs.get("retry_of") == failed[0].number for t in trials)


def test_a_stop_swallowed_by_a_bare_except_still_stops_the_trial_at_its_next_report(write_study, tmp_path):
    marker = tmp_path / "stopped"
    text = callable_study(write_study, fn="swallows_a_stop_once", n=3).read_text()
    path = write_study(text.replace("  sleep:", f"  marker: '{marker}'\n  sleep:"))
    before = signal.getsignal(signal.SIGTERM)   # Python's default, or Ray's once a test started Ray here
    result = run_study(load_study(path), progress=False)
    assert result.interrupted and result.exit_code == 128 + signal.SIGTERM
    [trial] = result.study.get_trials()
    assert trial.state == TrialState.FAIL and trial.user_attrs["error"] == "interrupted (SIGTERM)"
    assert signal.getsignal(signal.SIGTERM) == before   # the run's handler is gone with the run
    resumed = run_study(load_study(path), progress=False)   # the stop is not remembered into the next run
    assert not resumed.interrupted
    assert len(resumed.study.get_trials(states=(TrialState.COMPLETE,))) == 3


def test_a_second_stop_signal_arriving_with_the_first_is_ignored_by_a_worker(tmp_path):
    """Ctrl-C reaches a worker, then its parent's SIGTERM: both pending at once. With the later signals set to
    SIG_IGN, CPython printed an OSError traceback for the second one while the worker recorded its trial."""
    script = """
import os, signal
from searchlab.engine.signals import Interrupted, stop_worker_on_signals
stop_worker_on_signals()
both = {signal.SIGINT, signal.SIGTERM}
signal.pthread_sigmask(signal.SIG_BLOCK, both)
os.kill(os.getpid(), signal.SIGINT)
os.kill(os.getpid(), signal.SIGTERM)
try:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, both)
    sum(range(100000))
except Interrupted as exc:
    print("stopped:", exc.reason)
sum(range(1000000))   # where a pending second signal would surface
print("recorded")
"""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "race condition" not in done.stderr, done.stderr
    assert done.stdout.split("\n")[:2] == ["stopped: Ctrl-C", "recorded"]


@pytest.fixture()
def ctrl_c_as_from_a_terminal():
    """This process's Ctrl-C as a terminal's foreground job gets it: the suite may run as a script's background
    job (CI: `nohup bash .ci/run &`), for which the shell ignores Ctrl-C, and a run keeps a signal ignored."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_a_stop_while_optuna_records_a_trial_stops_the_run_after_it_not_inside_it(write_study, tmp_path, monkeypatch,
                                                                             ctrl_c_as_from_a_terminal):
    """A Ctrl-C landing in Optuna's tell broke its clean-up (UnboundLocalError: 'updated_state'): the run crashed
    with exit 1 and left the trial RUNNING, later retried as a process that died without a word."""
    from optuna.study import _optimize

    real_tell = _optimize._tell_with_warning
    told = []

    def tell_with_a_ctrl_c_inside(**kwargs):
        if not told:
            told.append(kwargs["trial"].number)
            os.kill(os.getpid(), signal.SIGINT)   # the handler runs here, mid-tell
        return real_tell(**kwargs)

    monkeypatch.setattr(_optimize, "_tell_with_warning", tell_with_a_ctrl_c_inside)
    result = run_study(load_study(callable_study(write_study, n=3)), progress=False)
    assert result.interrupted and result.exit_code == 130
    assert [t.state for t in _trials(tmp_path)] == [TrialState.COMPLETE]   # recorded whole, then the run stopped


def test_a_ctrl_c_swallowed_while_the_study_loads_still_stops_the_run(write_study, tmp_path, monkeypatch, capsys,
                                                                        ctrl_c_as_from_a_terminal):
    """medmnist's import wraps its own imports in a bare `except:`: a Ctrl-C in the first seconds of `searchlab
    run` landed there, and the whole search ran and exited 0."""
    import searchlab.config.load as load
    from searchlab import cli

    real = load.load_study

    def swallowing(*args, **kwargs):
        try:   # as medmnist/__init__.py does around its imports
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except:  # noqa: E722
            pass
        return real(*args, **kwargs)

    monkeypatch.setattr(load, "load_study", swallowing)
    path = callable_study(write_study, fn="slow_with_pid_file", n=1, sleep=0)
    assert cli.main(["run", str(path), "--no-progress"]) == 130
    assert "interrupted" in capsys.readouterr().err and not (tmp_path / "run").exists()
