"""A run's history entry (searchlab_runs) from runners of one folder that end together."""
from __future__ import annotations

import multiprocessing

import optuna
import pytest

from searchlab.engine.run_history import KEY, record_run


def _record(storage: str, run_dir: str, runner: int, times: int, together) -> None:
    from pathlib import Path

    ostudy = optuna.load_study(study_name="s", storage=storage)
    together.wait()   # both runners past their imports: their writes overlap (without it, half the time they did not)
    for n in range(times):
        record_run(ostudy, Path(run_dir), 0.0, 1.0, f"runner {runner} run {n}", 0, [])


def test_runners_of_one_folder_ending_at_once_keep_every_entry(tmp_path):
    """Each runner read the list and wrote it back with its entry: the other's entry was lost."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="s", storage=storage)
    context = multiprocessing.get_context("spawn")
    together = context.Barrier(2)
    runners = [context.Process(target=_record, args=(storage, str(tmp_path), runner, 20, together))
               for runner in (0, 1)]
    for process in runners:
        process.start()
    for process in runners:
        process.join(120)
    assert [process.exitcode for process in runners] == [0, 0]
    entries = optuna.load_study(study_name="s", storage=storage).user_attrs[KEY]
    assert sorted(e["stopped_by"] for e in entries) == sorted(f"runner {r} run {n}" for r in (0, 1) for n in range(20))


def test_a_run_that_raised_says_so_in_its_entry_and_the_latest_run_is_said_by_status(write_study, tmp_path,
                                                                                      monkeypatch):
    import searchlab.engine.run as run_module
    from searchlab.config.load import load_study
    from searchlab.engine.run_history import runs_line
    from searchlab.errors import ConfigError
    from test_run import callable_study

    path = callable_study(write_study, n=2)
    run_module.run_study(load_study(path), progress=False)

    def refused(*args, **kwargs):
        raise ConfigError("refused before its first trial")

    monkeypatch.setattr(run_module, "_recover_and_prepare", refused)
    with pytest.raises(ConfigError):
        run_module.run_study(load_study(path), progress=False)
    study = optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    first, second = study.user_attrs[KEY]
    assert first["stopped_by"] == "budget.n_trials" and first["trials_finished"] == 2 and first["pid"]
    assert second["stopped_by"] == "error: ConfigError"
    said = runs_line(study, in_progress=False)
    assert said.startswith("runs:      2 recorded; the latest, started ") and "ended by error: ConfigError" in said
    assert runs_line(study, in_progress=True) == said   # a finished latest run is not called running
    runs = study.user_attrs[KEY]
    study.set_user_attr(KEY, [*runs[:-1], {**runs[-1], "stopped_by": "interrupted"}])   # "stopped by interrupted"
    assert "the latest, started " in (said := runs_line(study, in_progress=False))
    assert "interrupted (Ctrl-C or a stop signal), 0 trial(s) finished" in said


def test_status_tells_runners_that_joined_a_run_from_runs_that_ended_without_a_word():
    """A second `searchlab run` of a folder joins the first (more workers): status called the first, still
    training, a run that ended without a word, as it treated only the latest entry as possibly running."""
    import os
    import socket
    import subprocess
    import sys

    from searchlab.engine.run_history import runs_line

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    here = socket.gethostname()
    study = optuna.create_study()
    study.set_user_attr(KEY, [
        {"started_utc": "2026-12-06T01:00:00+00:00", "host": here, "pid": int(dead), "stopped_by": None},
        {"started_utc": "2026-12-06T02:00:00+00:00", "host": "node-b", "pid": 7, "stopped_by": None},
        {"started_utc": "2026-12-06T02:08:00+00:00", "host": here, "pid": os.getppid(), "stopped_by": None},
        {"started_utc": "2026-12-06T02:08:56+00:00", "host": here, "pid": os.getpid(), "stopped_by": None}])
    said = runs_line(study, in_progress=True)
    assert "2 running on this machine (a run of the folder joined by more)" in said
    assert "1 on other machines (or containers) without an end: running there, or ended without a word" in said
    assert "1 ended without a word (killed -9" in said and "the last started 2026-12-06T01:00:00" in said
    assert said.endswith("the latest, started 2026-12-06T02:08:56+00:00, is running (user attr searchlab_runs)")
    idle = runs_line(study, in_progress=False)   # no runner holds the folder's lock: none of them runs
    assert "3 ended without a word" in idle and idle.endswith("ended without a word (user attr searchlab_runs)")


def test_status_of_one_folder_says_live_runs_of_another_folder_running_not_ended(tmp_path):
    """Runs of one study from two folders share its run list: status of folder A called folder B's live run
    "ended without a word" (A's lock was not held), and a live run that was not the latest went unsaid."""
    import os
    import socket

    from searchlab.engine.run_history import latest_run_live, runs_line

    here, a, b = socket.gethostname(), tmp_path / "a", tmp_path / "b"
    study = optuna.create_study()
    study.set_user_attr(KEY, [
        {"started_utc": "2026-12-07T01:00:00+00:00", "host": here, "pid": os.getpid(), "run_dir": str(b),
         "stopped_by": None},
        {"started_utc": "2026-12-07T01:05:00+00:00", "host": here, "pid": os.getpid(), "run_dir": str(a),
         "stopped_by": "budget.timeout", "trials_finished": 0}])
    said = runs_line(study, in_progress=False, run_dir=a)
    assert f"1 running on this machine from another run folder of the study ({b})" in said
    assert "ended without a word" not in said and "the latest, started 2026-12-07T01:05:00+00:00, stopped by" in said
    assert "1 running on this machine;" in runs_line(study, in_progress=True, run_dir=b)   # B's own, not the latest
    study.set_user_attr(KEY, list(reversed(study.user_attrs[KEY])))
    assert latest_run_live(study, False, a) is True   # B's live run, the latest: running, A's lock or not


def test_a_run_starting_while_status_probes_the_lock_still_knows_it_is_alone(tmp_path):
    """status probes the run folder's lock exclusively for an instant; a run starting in that instant took
    itself for a joining worker (and skipped recovering a killed run's trials). A runner's shared lock, held
    for good, still says another run is there."""
    import fcntl
    import threading

    from searchlab.engine.run import _alone

    lock = tmp_path / ".lock"
    with lock.open("a") as probe, lock.open("a") as starting:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)   # status, probing
        threading.Timer(0.12, lambda: fcntl.flock(probe, fcntl.LOCK_UN)).start()
        assert _alone(starting)
        fcntl.flock(starting, fcntl.LOCK_UN)
        fcntl.flock(probe, fcntl.LOCK_SH)   # a runner of the folder
        assert not _alone(starting, tries=3)


def test_a_run_joining_another_queues_the_configs_of_trials_interrupted_since(write_study, tmp_path, capsys):
    """A run Ctrl-C'd beside another runner of its folder, then started again, joined that runner and skipped
    recovery: the interrupted config never ran again. A joining run leaves RUNNING trials alone (they are the
    other runner's) but queues interrupted configs; its summary says the other run goes on."""
    import fcntl
    from types import SimpleNamespace

    from optuna.distributions import FloatDistribution

    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study
    from searchlab.summary import print_run_summary
    from test_run import callable_study

    path = callable_study(write_study, n=2)
    run_study(load_study(path), progress=False)
    study = optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    cut = study.ask({"x": FloatDistribution(-3, 3)})   # a trial Ctrl-C stopped in the other run's process
    study._storage.set_trial_user_attr(cut._trial_id, "error", "interrupted (Ctrl-C)")
    study.tell(cut, state=optuna.trial.TrialState.FAIL)
    running = study.ask({"x": FloatDistribution(-3, 3)})   # the other runner's, still training
    with (tmp_path / "run" / ".lock").open("a") as other_runner:
        fcntl.flock(other_runner, fcntl.LOCK_SH)
        result = run_study(load_study(path, overrides={"budget.n_trials": 4}), progress=False)
        print_run_summary(load_study(path), SimpleNamespace(**{**vars(result), "interrupted": True}), None)
    trials = result.study.get_trials(deepcopy=False)
    assert [t.user_attrs.get("retry_of") for t in trials].count(cut.number) == 1   # queued once, and run
    assert trials[running.number].state == optuna.trial.TrialState.RUNNING   # not this run's to fail
    out = capsys.readouterr()
    assert "this one joins it as more workers" in out.err
    assert "another `searchlab run` of this folder goes on, and the running trials are its own" in out.out


def test_a_run_that_raised_after_its_trials_records_how_many_it_finished(write_study, tmp_path, monkeypatch):
    """A plug-in strategy raising at trial 1 left "ended by error: StrategyError, 0 trial(s) finished" beside
    the trial it had completed."""
    import searchlab.engine.run as run_module
    from searchlab.config.load import load_study
    from test_run import callable_study

    trials = run_module._run_trials

    def then_raise(*args, **kwargs):
        trials(*args, **kwargs)
        raise RuntimeError("a plug-in's bug")

    monkeypatch.setattr(run_module, "_run_trials", then_raise)
    with pytest.raises(RuntimeError):
        run_module.run_study(load_study(callable_study(write_study, n=2)), progress=False)
    study = optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    [entry] = study.user_attrs[KEY]
    assert entry["stopped_by"] == "error: RuntimeError" and entry["trials_finished"] == 2
