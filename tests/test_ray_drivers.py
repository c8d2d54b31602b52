"""Two Ray drivers of one study on a PostgreSQL server (from two run folders or machines): a driver starting
fails only the trials of a driver that is gone, told by their heartbeats, never another live driver's."""
from __future__ import annotations

import functools
import threading
import time

import optuna
import pytest
from optuna.trial import TrialState

from searchlab.config.load import load_study
from searchlab.engine import driver_liveness
from searchlab.engine.driver_liveness import trials_of_gone_drivers
from searchlab.engine.run import INTERRUPTED, run_study
from searchlab.engine.storage import heartbeat_ages, open_storage
from test_run import callable_study

optuna.logging.set_verbosity(optuna.logging.WARNING)


class Beating:
    """Heartbeats for some trials, sent every 0.3 s from a thread, as a live driver sends them."""

    def __init__(self, storage, trial_ids: list[int]) -> None:
        self.storage, self.trial_ids, self.stop = storage, trial_ids, threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self) -> None:
        while not self.stop.wait(0.3):
            for trial_id in self.trial_ids:
                self.storage.record_heartbeat(trial_id)

    def __enter__(self) -> "Beating":
        for trial_id in self.trial_ids:
            self.storage.record_heartbeat(trial_id)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _heartbeat_study(url: str, name: str) -> optuna.Study:
    return optuna.create_study(study_name=name, storage=open_storage(url, heartbeat=True), load_if_exists=True,
                               direction="minimize")


def test_a_live_drivers_trials_are_told_from_a_gone_drivers_by_their_heartbeats(postgres, capsys):
    study = _heartbeat_study(postgres, "liveness")
    live, stopped, never = (study.ask() for _ in range(3))
    study._storage.record_heartbeat(stopped._trial_id)   # one beat, then its driver was killed
    with Beating(study._storage, [live._trial_id]):
        started = time.monotonic()
        gone = trials_of_gone_drivers(study, grace=2.0, interval=0.5)
        waited = time.monotonic() - started
    assert gone == {stopped.number, never.number}
    assert 1.0 < waited < 5.0   # until the stopped beat was 2 s old; the live trial beat again at once
    assert "have sent heartbeats within 2 s: waiting up to 2 s" in capsys.readouterr().err
    assert trials_of_gone_drivers(_heartbeat_study(postgres, "none_running")) == set()   # no wait, nothing said


def test_a_second_ray_driver_leaves_the_first_drivers_live_trial_and_fails_a_gone_ones(
        write_study, postgres, tmp_path, monkeypatch, capsys):
    """The audit's case: a second `searchlab run` of the study from another run folder failed the first
    driver's live trials as a killed run's ("now FAIL"), the first driver crashed on telling them, and their
    configs ran twice."""
    monkeypatch.setattr(driver_liveness, "trials_of_gone_drivers",
                        functools.partial(trials_of_gone_drivers, grace=3.0, interval=1.0))
    name = "two_drivers"
    other = _heartbeat_study(postgres, name)
    live = other.ask({"x": optuna.distributions.FloatDistribution(-3, 3)})   # the first driver's, running
    gone = other.ask({"x": optuna.distributions.FloatDistribution(-3, 3)})   # a killed driver's
    gone.set_user_attr("ran_with", {"seed": 1, "torch_threads": 1})   # started on a worker before the kill
    other._storage.record_heartbeat(gone._trial_id)
    extra = f"\nexecutor: {{kind: ray}}\nstorage: '{postgres}'\n"
    path = callable_study(write_study, n=3, extra=extra)
    path.write_text(path.read_text().replace("name: fake", f"name: {name}"))
    with Beating(other._storage, [live._trial_id]):
        run_study(load_study(path), progress=False)
        after = optuna.load_study(study_name=name, storage=postgres)
        states = {t.number: t.state for t in after.trials}
        assert states[live.number] == TrialState.RUNNING   # left to its driver
    assert states[gone.number] == TrialState.FAIL and after.trials[gone.number].user_attrs["error"] == INTERRUPTED
    retries = [t for t in after.trials if t.user_attrs.get("retry_of") == gone.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params["x"] == gone.params["x"]   # the gone driver's config ran again
    # the budget: the live trial counts, so this driver ran the gone one's config and one more (3 in all)
    assert sum(t.state == TrialState.COMPLETE for t in after.trials) == 2
    other.tell(live, 1.0)   # the first driver tells its trial: it was never failed under it
    err = capsys.readouterr().err
    assert "2 trial(s) RUNNING in the storage (trial 0, 1) have sent heartbeats" in err and "left RUNNING by a run that ended" in err


def test_a_ray_driver_on_a_server_beats_for_its_trials(write_study, postgres, tmp_path):
    """Without them, a driver's live trials looked like a killed driver's to any other driver starting."""
    extra = f"\nexecutor: {{kind: ray}}\nstorage: '{postgres}'\n"
    path = callable_study(write_study, n=2, extra=extra)
    path.write_text(path.read_text().replace("name: fake", "name: beats"))
    run_study(load_study(path), progress=False)
    study = optuna.load_study(study_name="beats", storage=postgres)
    assert len(heartbeat_ages(study._storage, study.trials)) == 2   # a beat when asked, at least


@pytest.fixture(scope="module", autouse=True)
def one_ray_for_the_module():
    import ray

    ray.shutdown()
    yield
    ray.shutdown()


def test_status_tells_ray_trials_waiting_for_a_worker_from_running_ones():
    """With two drivers sharing a cluster, a trial waiting for a CPU is RUNNING in the storage: status counted it
    as running. A Ray worker marks the trials it starts (ray_node)."""
    import optuna

    from searchlab.summary import _waiting_for_ray

    study = optuna.create_study()
    started, queued = study.ask(), study.ask()
    started.set_user_attr("ray_node", "abc")
    ray = {"executor": {"kind": "ray"}}
    assert _waiting_for_ray(study, ray).startswith(f"  (1 of the 2 running trial(s) (trial {queued.number}) wait "
                                                   "for a Ray worker")
    assert _waiting_for_ray(study, {"executor": {"kind": "local"}}) is None and _waiting_for_ray(study, None) is None
    study.tell(queued, 1.0)
    assert _waiting_for_ray(study, ray) is None
