"""PostgreSQL storage, on a real server started for the tests (tests/postgres_server.py; 127.0.0.1 only)."""
from __future__ import annotations

import os

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from searchlab.config.load import load_study
from searchlab.engine.bulk import bulk_add_trials
from searchlab.engine.run import run_study
from searchlab.engine.storage import open_storage
from searchlab.errors import StorageError
from test_run import callable_study


def test_two_workers_run_one_study_on_postgresql(write_study, postgres):
    extra = f"\nexecutor: {{kind: local, workers: 2}}\nstorage: '{postgres}'\n"
    path = callable_study(write_study, n=6, sleep=0.3, extra=extra)
    study = run_study(load_study(path), progress=False).study
    reloaded = optuna.load_study(study_name=study.study_name, storage=open_storage(postgres))
    trials = reloaded.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert sorted(t.number for t in trials) == list(range(6))                      # none lost or duplicated
    pids = {t.user_attrs["pid"] for t in trials}
    assert len(pids) == 2 and os.getpid() not in pids


def test_a_proxy_study_is_written_in_one_batch_on_postgresql(postgres):
    study = optuna.create_study(study_name="batch", storage=open_storage(postgres), direction="maximize")
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    trials = [create_trial(params={"x": i / 100}, distributions=dist, value=float(i), user_attrs={"i": i})
              for i in range(100)]
    assert bulk_add_trials(study, trials) == "rdb-batch"
    read = optuna.load_study(study_name="batch", storage=open_storage(postgres)).trials
    assert [(t.number, t.params["x"], t.value, t.user_attrs["i"]) for t in read] == \
        [(i, i / 100, float(i), i) for i in range(100)]


def test_an_unreachable_server_is_named_with_the_fix():
    with pytest.raises(StorageError, match="cannot open storage 'postgresql://nobody@127.0.0.1:1/x'.*Fix: check "
                                           "the URL, that the server is running"):
        open_storage("postgresql://nobody@127.0.0.1:1/x")


def test_an_interrupted_trial_on_postgresql_runs_again_on_resume(write_study, tmp_path, postgres):
    """PostgreSQL may be shared by other machines, so trials left RUNNING are not failed on resume; but a trial
    Ctrl-C already failed is this run's own, and the interrupted run promised its config would run again."""
    import signal

    from test_signals import _start_run, _study, _wait_for_pids

    path, pid_dir = _study(write_study, tmp_path, n=2, sleep=120, extra=f"\nstorage: '{postgres}'\n")
    path.write_text(path.read_text().replace("name: fake", "name: pg_interrupted"))   # the server is shared
    proc = _start_run(path)
    _wait_for_pids(pid_dir, 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    [stopped] = optuna.load_study(study_name="pg_interrupted", storage=open_storage(postgres)).get_trials()
    assert stopped.state == TrialState.FAIL
    resumed = run_study(load_study(path, {"space.sleep": 0}), progress=False).study
    complete = resumed.get_trials(states=(TrialState.COMPLETE,))
    assert len(complete) == 2
    assert [t.params for t in complete if t.user_attrs.get("retry_of") == stopped.number] == [stopped.params]


def test_a_trial_left_running_by_a_killed_last_trial_is_failed_and_run_again(write_study, postgres, monkeypatch):
    """PostgreSQL's RUNNING trials may be other machines', so a restart does not fail them; Optuna fails a
    dead one (stale heartbeat) only when asked for a new trial. With the budget used up by it, the restart
    found no budget left and exited: the trial stayed RUNNING for good and its config never ran."""
    import time

    from searchlab.engine import storage as storage_module

    monkeypatch.setattr(storage_module, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(storage_module, "GRACE_SECONDS", 1)
    extra = f"\nstorage: '{postgres}'\n"
    path = callable_study(write_study, n=2, extra=extra)
    path.write_text(path.read_text().replace("name: fake", "name: pg_killed"))   # the server is shared
    run_study(load_study(path), progress=False)
    ostudy = optuna.load_study(study_name="pg_killed", storage=open_storage(postgres, heartbeat=True))
    killed = ostudy.ask({"x": optuna.distributions.FloatDistribution(-3, 3)})
    ostudy._storage.record_heartbeat(killed._trial_id)   # its process then died: no more heartbeats
    time.sleep(2)
    study = run_study(load_study(path, {"budget.n_trials": 3}), progress=False).study
    trials = study.get_trials()
    assert trials[killed.number].state == TrialState.FAIL
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3 and [t.params for t in complete if t.number > killed.number] == [killed.params]


def test_the_report_shows_the_storage_without_its_password(write_study, tmp_path, postgres):
    """A report is made to be shared: it printed postgresql://user:password@host/db (the server trusts us here,
    so any password opens it)."""
    from searchlab.report.build import write_report

    with_password = postgres.replace("://searchlab@", "://searchlab:s3cret@")
    assert with_password != postgres
    text = callable_study(write_study, n=1, extra=f"\nstorage: '{with_password}'\n").read_text()
    path = write_study(text.replace("name: fake", "name: with_password"))   # not the module's other studies
    run_study(load_study(path), progress=False)
    page = write_report(tmp_path / "run", tmp_path / "report.html").read_text()
    assert "s3cret" not in page and "searchlab:***@" in page


def test_a_new_run_folder_joining_a_study_on_the_server_says_so(write_study, tmp_path, postgres, capsys):
    """A second machine's run folder (same study, same server) joined the study's trials under `run: ... (new)`,
    and an export there failed on another folder's checkpoint blaming keep_checkpoints or a moved folder. Now
    the folder that trained the trial is recorded: on this machine, its checkpoint is read there."""
    from searchlab.engine.rundir import write_manifest
    from searchlab.export.exporter import export_run
    from searchlab.summary import print_run_header
    from test_run import TINY_CLASSIFY

    text = TINY_CLASSIFY.replace("name: tiny", "name: joined").replace("n_trials: 2", "n_trials: 1") + \
        f"storage: '{postgres}'\n"
    run_study(load_study(write_study(text, name="first.yaml")), progress=False)
    second = load_study(write_study(text + f"run_dir: '{tmp_path / 'other'}'\n", name="second.yaml"))
    capsys.readouterr()
    print_run_header(second)
    header = capsys.readouterr().out
    assert f"run:  {tmp_path / 'other'} (new folder, joining study 'joined' in" in header
    assert "which holds 1 trial(s) run from other folders or machines" in header
    second.run_dir.mkdir()
    write_manifest(second)   # as its run does, before its own trials
    export_run(second.run_dir, tmp_path / "best")
    assert f"checkpoint read from {tmp_path / 'run' / 'artifacts'}" in capsys.readouterr().err
    assert (tmp_path / "best" / "weights.safetensors").is_file()
