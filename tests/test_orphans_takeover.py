"""A trial whose process was killed -9 while another run of the study lives: on a local file (no heartbeats) that
run fails it and trains its config next, while it runs (engine/orphans.py), not once it ends."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from searchlab.config.load import load_study
from searchlab.engine.orphans import HOLDER, holder_stamp, take_over_orphans
from searchlab.engine.process_space import started_ticks
from test_run import REPO, TESTS

RUN = "from searchlab.config.load import load_study; from searchlab.engine.run import run_study; " \
      "import sys; run_study(load_study(sys.argv[1]), progress=False)"
STUDY = """
name: orphans
task: {{kind: callable, function: "test_orphans_takeover:held"}}
space:
  x: {{float: [-3, 3]}}
objective: {{metric: loss, direction: minimize}}
strategy: random
pruner: none
budget: {{n_trials: {n}}}
storage: 'sqlite:///{db}'
run_dir: '{run_dir}'
"""
QUEUED = [2.0, 2.1, 2.2, 2.3, 2.4, 2.5]   # configs queued behind the killed run's trial (as a stage's designs)


def held(config, ctx):
    """The test's task: records its process, then takes ORPHANS_SLEEP seconds (the killed run's: for good)."""
    ctx.record(pid=os.getpid())
    time.sleep(float(os.environ.get("ORPHANS_SLEEP", "0")))
    return {"loss": (config["x"] - 1) ** 2}


def _start(path: Path, sleep: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)]), "ORPHANS_SLEEP": str(sleep)}
    return subprocess.Popen([sys.executable, "-c", RUN, str(path)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(condition, what: str, seconds: float = 60.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if found := condition():
                return found
        except (KeyError, optuna.exceptions.OptunaError, ValueError):   # the study is not made yet
            pass
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


def test_a_live_run_from_another_folder_fails_a_killed_runs_trial_and_trains_its_config_next(write_study, tmp_path):
    """Folder a's run is killed -9 while it trains a trial; folder b's run, on the same SQLite file, trained the
    queued configs, then random ones, and failed a's trial (RUNNING, holding the budget) only as it ended."""
    db = tmp_path / "shared.db"
    paths = {name: write_study(STUDY.format(n=n, db=db, run_dir=tmp_path / name), f"{name}.yaml")
             for name, n in (("a", 10), ("b", 10))}
    storage = f"sqlite:///{db}"
    first = _start(paths["a"], sleep=120)
    second = None
    try:
        study = _wait_for(lambda: optuna.load_study(study_name="orphans", storage=storage), "a's study")
        (held_trial,) = _wait_for(lambda: [t for t in study.get_trials(states=(TrialState.RUNNING,))
                                           if t.user_attrs.get("pid") == first.pid], "a's trial")
        for x in QUEUED:
            study.enqueue_trial({"x": x})
        second = _start(paths["b"], sleep=0.3)
        _wait_for(lambda: any(t.user_attrs.get("pid") == second.pid for t in study.get_trials()), "b's trial")
        # a lives: its trial is its own, not taken
        assert study.get_trials()[held_trial.number].state == TrialState.RUNNING
        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
        assert second.wait(60) == 0, second.stderr.read()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    said = second.stderr.read()
    assert said.count(f"(trial {held_trial.number}) were left by a run of run folder {tmp_path / 'a'}") == 1, said
    assert f"(killed), its process {first.pid} on this machine gone" in said
    trials = optuna.load_study(study_name="orphans", storage=storage).get_trials()
    killed = trials[held_trial.number]
    assert killed.state == TrialState.FAIL and killed.user_attrs["error"].startswith("interrupted")
    (retry,) = [t for t in trials if t.user_attrs.get("retry_of") == killed.number]
    assert retry.state == TrialState.COMPLETE and retry.params == killed.params
    assert retry.user_attrs["pid"] == second.pid   # b trained it, while it ran
    # next: before the queued configs still waiting, and before any random trial
    queued = [t for t in trials if t.params.get("x") in QUEUED]
    randoms = [t for t in trials if t not in queued and t.number not in (killed.number, retry.number)]
    assert any(t.datetime_start > retry.datetime_start for t in queued), [(t.number, t.datetime_start) for t in trials]
    assert all(t.datetime_start > retry.datetime_start for t in randoms)
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == 10
    assert killed.user_attrs[HOLDER]["pid"] == first.pid


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_only_trials_of_gone_holders_on_this_machine_are_taken(write_study, tmp_path, capsys, kind):
    """Unit: a live holder's trial, an unstamped one, another machine's, and a dead worker's whose run still lives
    (it fails it itself) stay RUNNING; a dead holder's, or one whose pid another process has now, are taken."""
    study = load_study(write_study(STUDY.format(n=10, db=tmp_path / "s.db", run_dir=tmp_path / "run")))
    study.run_dir.mkdir(parents=True)
    storage = f"sqlite:///{tmp_path / 's.db'}" if kind == "sqlite" else optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "s.log")))
    ostudy = optuna.create_study(study_name="orphans", storage=storage)
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    dead = {"pid": ended.pid, "since": started_ticks(ended.pid)}
    ended.wait()
    live = holder_stamp(study.run_dir, supervised=False)   # this process
    stamps = {
        "unstamped": None,
        "live": live,
        "live worker, gone run": {**live, "parent": dead["pid"], "parent_since": dead["since"]},
        "other machine": {**live, **dead, "host": socket.gethostname() + "-elsewhere"},
        # a container with the host's network: the same host name, pids of its own
        "other pid namespace": {**live, **dead, "pidns": (live["pidns"] or 0) + 1},
        "other boot": {**live, **dead, "boot": f"{live['boot']}-before"},
        "no pid space": {k: v for k, v in {**live, **dead}.items() if k not in ("boot", "pidns")},
        "dead worker, live run": {**live, **dead, "parent": os.getpid(), "parent_since": live["since"]},
        "dead": {**live, **dead},
        "pid reused": {**live, "since": live["since"] - 1000},
    }
    numbers = {}
    for name, stamp in stamps.items():
        trial = ostudy.ask({"x": optuna.distributions.FloatDistribution(-3, 3)})
        if stamp is not None:
            trial.set_user_attr(HOLDER, stamp)
        numbers[name] = trial.number
    ostudy.enqueue_trial({"x": 0.5})   # queued before the retries
    recovery = take_over_orphans(study, ostudy)
    assert recovery is not None and sorted(recovery.failed) == [numbers["dead"], numbers["pid reused"]]
    assert sorted(recovery.requeued) == sorted(recovery.failed)
    states = {name: ostudy.get_trials()[n].state for name, n in numbers.items()}
    assert [name for name, state in states.items() if state == TrialState.RUNNING] == [
        "unstamped", "live", "live worker, gone run", "other machine", "other pid namespace", "other boot",
        "no pid space", "dead worker, live run"]
    waiting = ostudy.get_trials(states=(TrialState.WAITING,))
    assert sorted(t.user_attrs.get("retry_of", -1) for t in waiting) == [-1, *sorted(recovery.failed)]
    assert capsys.readouterr().err.count("note: 2 trial(s) RUNNING") == 1
    # said once: nothing is left to take, and nothing is written
    count = len(ostudy.get_trials())
    assert take_over_orphans(study, ostudy) is None and len(ostudy.get_trials()) == count
    assert capsys.readouterr().err == ""
    # the retries are this study object's next asks, before the config queued earlier
    assert [ostudy.ask().user_attrs.get("retry_of") for _ in range(3)] == [*recovery.failed, None]
