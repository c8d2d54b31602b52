"""executor: {kind: ray}: a stop while the driver asks for a trial; a storage server away while a worker runs one."""
from __future__ import annotations

import signal
import warnings

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

pytest.importorskip("ray")

from searchlab.config.load import load_study  # noqa: E402
from searchlab.engine.run import run_study  # noqa: E402
from test_ray_executor import RAY, _trials, one_ray_for_the_module  # noqa: E402,F401  (a Ray per module)
from test_run import callable_study  # noqa: E402

SHUTTING_DOWN = "the database system is shutting down"


def _assert_the_stopped_trial_failed_as_interrupted(result, tmp_path):
    import ray

    ray.shutdown()   # a driver stopped in fit() leaves Tune's actors holding the CPUs the next run needs
    trials = _trials(tmp_path)
    assert result.interrupted and trials
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]          # none left RUNNING for good
    assert trials[-1].state == TrialState.FAIL and trials[-1].user_attrs["error"] == "interrupted (Ctrl-C)"


def test_a_stop_while_the_driver_samples_a_trial_fails_it_as_interrupted(write_study, tmp_path, monkeypatch):
    """The trial exists in the storage from Optuna's ask on; a Ctrl-C during its sampling left it RUNNING."""
    import searchlab.tasks as tasks

    sample = tasks.sample_trial_config

    def stopped_at_the_third(trial, study):
        if trial.number == 2:
            raise KeyboardInterrupt   # as a Ctrl-C lands there
        return sample(trial, study)

    monkeypatch.setattr(tasks, "sample_trial_config", stopped_at_the_third)
    result = run_study(load_study(callable_study(write_study, n=6, sleep=0.5, extra=RAY)), progress=False)
    _assert_the_stopped_trial_failed_as_interrupted(result, tmp_path)


def test_a_stop_inside_optunas_ask_fails_the_new_trial_as_interrupted(write_study, tmp_path, monkeypatch):
    """A Ctrl-C arriving as Optuna's ask returns (the trial stored, not yet handed to the driver)."""
    ask = optuna.Study.ask

    def signalled_at_the_third(self, *args, **kwargs):
        trial = ask(self, *args, **kwargs)
        if trial.number == 2:
            signal.raise_signal(signal.SIGINT)   # its handler runs before this frame returns
        return trial

    monkeypatch.setattr(optuna.Study, "ask", signalled_at_the_third)
    result = run_study(load_study(callable_study(write_study, n=6, sleep=0.5, extra=RAY)), progress=False)
    _assert_the_stopped_trial_failed_as_interrupted(result, tmp_path)


def _server_shutting_down() -> Exception:
    """What Optuna raises for a query while PostgreSQL restarts: its generic wrapper over the driver's error."""
    cause = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception(SHUTTING_DOWN))
    error = optuna.exceptions.StorageInternalError("An exception is raised during the commit. This typically "
                                                   "happens due to invalid data in the commit, e.g. exceeding max "
                                                   "length. ")
    error.__cause__ = cause
    return error


def _worker_on(study, ostudy, monkeypatch, away_for_calls):
    """ray_trial as a Ray worker runs it, on `ostudy`, whose server is away for its next `away_for_calls`
    reads of a trial; returns what it reports to Tune."""
    from ray import tune

    from searchlab.engine import ray_worker
    from searchlab.engine.storage import artifact_store
    from searchlab.tasks import get_task

    actor = ray_worker._Actor(ostudy, get_task(study.config.task), artifact_store(study.run_dir), "n", "127.0.0.1")
    monkeypatch.setattr(ray_worker, "_actor_state", lambda study: actor)
    get_trial, calls = ostudy._storage.get_trial, []

    def away_a_while(trial_id):
        calls.append(trial_id)
        if len(calls) <= away_for_calls:
            raise _server_shutting_down()
        return get_trial(trial_id)

    monkeypatch.setattr(ostudy._storage, "get_trial", away_a_while)
    reported = []
    monkeypatch.setattr(tune, "report", reported.append)
    return reported


def _asked(write_study, tmp_path):
    from searchlab.engine.run import create_or_load

    study = load_study(callable_study(write_study, n=2, extra=RAY))
    tmp_path.joinpath("run").mkdir()
    ostudy = create_or_load(study)
    return study, ostudy, ostudy.ask({"x": optuna.distributions.FloatDistribution(-3, 3)})


def test_a_worker_binds_its_trial_through_a_short_server_outage(write_study, tmp_path, monkeypatch):
    """The worker's first read of its trial was not retried: a server restart then failed it as "worker died"."""
    from searchlab.engine import ray_worker

    study, ostudy, asked = _asked(write_study, tmp_path)
    reported = _worker_on(study, ostudy, monkeypatch, away_for_calls=2)
    ray_worker.ray_trial({"trial_id": asked._trial_id}, study, deadline=None)
    assert [r[ray_worker.STATE] for r in reported] == ["COMPLETE"]
    assert ostudy._storage.get_trial(asked._trial_id).user_attrs["ray_node_ip"] == "127.0.0.1"


def test_a_trial_whose_worker_cannot_reach_the_server_is_failed_with_that_reason_and_retried(
        write_study, tmp_path, monkeypatch):
    from searchlab.engine import ray_worker, storage
    from searchlab.engine.ray_executor import _OptunaSearcher

    monkeypatch.setattr(storage, "OUTAGE_SECONDS", 0.5)
    study, ostudy, asked = _asked(write_study, tmp_path)
    reported = _worker_on(study, ostudy, monkeypatch, away_for_calls=10 ** 6)
    ray_worker.ray_trial({"trial_id": asked._trial_id}, study, deadline=None)   # reports, raises nothing
    assert reported == [{ray_worker.STATE: "FAIL", ray_worker.VALUES: "[]", ray_worker.STORAGE_LOST: SHUTTING_DOWN}]
    monkeypatch.undo()   # the server is back for the driver
    searcher = _OptunaSearcher(study, ostudy, None, None)
    searcher.asked["tune_1"] = optuna.Trial(ostudy, asked._trial_id)
    searcher.on_trial_complete("tune_1", result=reported[0], error=False)
    failed, retry = ostudy.trials
    assert failed.state == TrialState.FAIL and failed.user_attrs["error"].startswith(
        f"the Ray worker running this trial could not reach the storage's server ({SHUTTING_DOWN})")
    assert retry.state == TrialState.WAITING and retry.user_attrs["retry_of"] == failed.number
    assert retry.params == failed.params


def test_the_outage_note_gives_the_servers_words_not_optunas_wrapper(capsys):
    from searchlab.engine.storage import through_outage

    calls = []

    def away_once():
        calls.append(1)
        if len(calls) == 1:
            raise _server_shutting_down()
        return "read"

    assert through_outage(away_once, seconds=5, said=[]) == "read"
    err = capsys.readouterr().err
    assert f"cannot be reached ({SHUTTING_DOWN})" in err and "invalid data" not in err


def test_the_driver_asks_with_heartbeats_without_optunas_misuse_warning(write_study, tmp_path):
    """The driver beats for the trials its Ray workers run: Optuna's "Heartbeat of storage is supposed to be used
    with Study.optimize" was printed at every Ray run on a server storage."""
    from searchlab.engine.ray_executor import _OptunaSearcher
    from searchlab.engine.run import create_or_load
    from searchlab.engine.storage import open_storage

    study = load_study(callable_study(write_study, n=2, extra=RAY))
    tmp_path.joinpath("run").mkdir()
    create_or_load(study)
    ostudy = optuna.load_study(study_name="fake", storage=open_storage(study.storage_url, heartbeat=True))
    searcher = _OptunaSearcher(study, ostudy, None, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert searcher.suggest("tune_1") == {"trial_id": ostudy.trials[0]._trial_id}
    assert not [w for w in caught if "Heartbeat" in str(w.message)], [str(w.message) for w in caught]
    searcher.fail_running("interrupted (test)")


def test_a_ray_trial_meeting_the_server_gone_is_failed_with_that_reason_and_its_config_runs_again(
        write_study, tmp_path, capfd):
    """It was failed as "the Ray worker ... died", its config never ran again, under ~160 lines of traceback."""
    run_study(load_study(callable_study(write_study, fn="storage_away_in_trial_0", n=3, extra=RAY)), progress=False)
    trials = _trials(tmp_path)
    assert [t.state for t in trials] == [TrialState.FAIL] + [TrialState.COMPLETE] * 3
    assert trials[0].user_attrs["error"].startswith(
        f"the Ray worker running this trial could not reach the storage's server ({SHUTTING_DOWN})")
    retry = [t for t in trials if t.user_attrs.get("retry_of") == 0]
    assert len(retry) == 1 and retry[0].params == trials[0].params
    assert "Traceback" not in capfd.readouterr().err
