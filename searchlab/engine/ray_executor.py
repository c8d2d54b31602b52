"""`executor: {kind: ray}`: trials scheduled by Ray Tune, the Optuna study still the source of truth.

The driver keeps the Optuna study with the strategy's sampler. A Ray Tune searcher asks it for each trial
(so the parameters exist in the storage before the trial runs), hands Tune only the trial's id, and tells
the study the outcome: COMPLETE with its values, PRUNED (by the Optuna pruner on the worker, or stopped by a
Ray scheduler from the per-epoch reports), or FAIL. A trial whose worker died is failed with that reason and
its config queued again (executor.max_retries). The trial itself runs in engine/ray_worker.py.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from searchlab.config.load import Study, with_data_root_pinned
from searchlab.engine.ray_cluster import alive_nodes, check_cluster, start_ray, trial_slots
from searchlab.engine.ray_release import placement_groups_given_back
from searchlab.engine.ray_timeout import timed_out
from searchlab.engine.ray_schedule import longest_trial, reports_said
from searchlab.engine.ray_worker import DATA_CHANGED, EPOCH, METRIC, STATE, STORAGE_LOST, VALUES, ray_trial
from searchlab.engine.repeating import repeating
from searchlab.engine.retention import checkpoint_retention
from searchlab.engine.signals import hold_stops, interruption_message, raise_if_stopped, release_stops, stop_on_signals
from searchlab.engine.storage import is_local_file, retry_callback, through_outage
from searchlab.engine.worker import Budget, open_optuna_study
from searchlab.errors import DataChanged

WORKER_DIED = ("the Ray worker running this trial died (its process or node was lost) or failed outside the "
               "objective; Ray's logs are in the cluster's session folder on that node (`ray start --temp-dir`, "
               "by default /tmp/ray/session_latest/logs)")

# The error of the trials a data change stopped (interrupted: run again when the study does, engine/recovery.py)
STOPPED_FOR_CHANGED_DATA = ("interrupted (the Ray run stopped: another trial found files it reads changed since the "
                            "run started; this config runs again when the study does)")

HEARTBEAT_OUTSIDE_OPTIMIZE = "Heartbeat of storage is supposed to be used with Study.optimize"


def run_ray(study: Study, deadline: float | None,
            on_trial: Callable[[optuna.Study, FrozenTrial], None] | None, alone: bool) -> None:
    from ray import tune

    ex = study.config.executor
    start_ray(ex.address)
    check_cluster(study)
    # Results without the scheduler's metric (a trial's final outcome) are expected: not an error
    os.environ["TUNE_DISABLE_STRICT_METRIC_CHECKING"] = "1"
    # No Tune console tables: its new output prints an experiment banner even at verbose=0
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Ctrl-C is ours (engine/signals.py): Tune's own handler ended fit() as if the search were done, leaving
    # the trials in flight RUNNING, exiting 0 and suggesting Tuner.restore, which is not how a study resumes
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    quiet_lost_worker_tracebacks()
    # Heartbeats on a server storage only: another driver may run the study there (engine/driver_liveness.py)
    ostudy = open_optuna_study(study, heartbeat=not is_local_file(study.storage_url))
    searcher = _OptunaSearcher(study, ostudy, deadline, on_trial)
    resources = {"cpu": ex.resources_per_trial.cpu, "gpu": ex.resources_per_trial.gpu}
    trainable = tune.with_resources(tune.with_parameters(ray_trial, study=with_data_root_pinned(study),
                                                         deadline=deadline, started_in=os.getcwd()), resources)
    tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(
        search_alg=searcher, scheduler=build_scheduler(study), num_samples=-1,
        max_concurrent_trials=ex.max_concurrent, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(_tune_folder(study, alone)), verbose=0,
                                  stop=_stop_when_data_changed(searcher),
                                  failure_config=tune.FailureConfig(max_failures=0)))   # retries: ours, below
    slots = trial_slots(study, alive_nodes())
    # Ours again over the SIGTERM handler Ray's core installed (it aborted the driver with a stack dump)
    with _pending_trials(min(ex.max_concurrent or slots, slots)), stop_on_signals(), _heartbeats(ostudy, searcher), \
            placement_groups_given_back():   # a stopped fit left the CPUs held: the next run in this process waited
        try:
            # A Ctrl-C during Ray's start or the cluster checks can land in a callback that swallows it
            # ("Exception ignored in ... WeakKeyDictionary"): the run went on to run every trial and exit 0
            raise_if_stopped()
            tuner.fit()
        except KeyboardInterrupt as exc:   # the run is stopping: its trials in flight will never be told
            searcher.fail_running(interruption_message(exc))
            raise
        except BaseException as exc:   # Tune stopped on an error: its trials in flight say so (not left RUNNING,
            # unsaid), and as interrupted ones their configs run again when the study does
            first = str(exc).splitlines()[0] if str(exc) else ""
            searcher.fail_running(f"interrupted (the Ray run stopped on {type(exc).__name__}: {first})")
            raise
        if searcher.data_changed is not None:   # Tune stopped (_stop_when_data_changed): the run stops with it
            searcher.fail_running(STOPPED_FOR_CHANGED_DATA)
            raise searcher.data_changed


def _stop_when_data_changed(searcher: Any) -> Any:
    """A Tune stopper that ends the Ray run once a trial found the run's data changed (the searcher keeps its
    error): Tune then stops the trials in flight and starts none of those it had queued. The searcher's FINISHED
    alone let them all run, and each failed the same way."""
    from ray.tune.stopper import Stopper

    class DataChangedStopper(Stopper):
        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            return False

        def stop_all(self) -> bool:
            return searcher.data_changed is not None

    return DataChangedStopper()


@contextmanager
def _heartbeats(ostudy: optuna.Study, searcher: Any) -> Iterator[None]:
    """Beat for the trials this driver asked for and has not told, while Tune runs them: the trials run in
    Ray workers, not in Study.optimize, where Optuna would send them. A beat that cannot reach the server is
    skipped (storage.HeartbeatRDBStorage)."""
    interval = _heartbeat_interval(ostudy)
    if interval is None:   # a local file: this driver is the study's only one (the run folder's lock)
        yield
        return

    def beat() -> None:
        for trial in list(searcher.asked.values()):
            ostudy._storage.record_heartbeat(trial._trial_id)

    with repeating(interval, beat, "searchlab-ray-heartbeats", join_timeout=interval):
        yield


def _heartbeat_interval(ostudy: optuna.Study) -> int | None:
    """Seconds between heartbeats of the study's storage; None when it sends none (files, journals)."""
    return getattr(ostudy._storage, "get_heartbeat_interval", lambda: None)()


def _tune_folder(study: Study, alone: bool) -> Path:
    """Where Tune keeps its experiment files. Its tuner.pkl pickles the trainable with the study, storage URL
    and password included, so for a server storage the folder is its owner's only, as searchlab.json is.

    The study is the record, not these files (Tune's own restore is not how a study resumes): a run alone in
    its folder deletes the earlier runs' experiments, which grew the folder by ~35 KB and 5 files per trial
    with every run, and keeps the latest for TensorBoard (its event files) and Tune's own logs."""
    folder = (study.run_dir / "ray").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if not is_local_file(study.storage_url):
        folder.chmod(0o700)
    if alone:   # not beside another runner of this folder: its experiment is in use
        for experiment in [p for p in folder.iterdir() if (p / "tuner.pkl").is_file()]:
            shutil.rmtree(experiment, ignore_errors=True)
    return folder


class _LostWorkerTracebacks(logging.Filter):
    """Drops Tune's traceback of a trial whose worker process died (a stack of Ray internals after the one
    line the searcher prints with the stored reason) and its closing list of those trials; a trial that
    failed otherwise keeps its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        # ActorUnavailableError: the actor's node was lost (its raylet killed) while Tune handed it a trial
        lost = (type(exc).__name__ in ("ActorDiedError", "ActorUnavailableError")
                and record.getMessage().startswith("Trial task failed"))
        return not lost and not record.getMessage().startswith("Trials did not complete")


def quiet_lost_worker_tracebacks() -> None:
    for name in ("ray.tune.execution.tune_controller", "ray.tune.tune"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _LostWorkerTracebacks) for f in log.filters):
            log.addFilter(_LostWorkerTracebacks())


@contextmanager
def _pending_trials(count: int) -> Iterator[None]:
    """Let Tune start as many trials at once as the cluster holds. For a custom searcher Tune keeps one trial
    pending (Ray 2.41-2.52 even with max_concurrent_trials; 2.60 honours that), so a cluster filled one actor
    start at a time, seconds each, and short trials never reached a second node. A value the user set stays."""
    if "TUNE_MAX_PENDING_TRIALS_PG" in os.environ:
        yield
        return
    os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(max(1, count))
    try:
        yield
    finally:
        del os.environ["TUNE_MAX_PENDING_TRIALS_PG"]


def build_scheduler(study: Study) -> Any:
    """The Ray scheduler, judging trials by the first objective at each epoch (None: the Optuna pruner)."""
    cfg = study.config.executor.scheduler
    if cfg is None:
        return None
    from ray.tune.schedulers import AsyncHyperBandScheduler

    from searchlab.engine.ray_median import EpochMedianStoppingRule

    common = dict(time_attr="training_iteration", metric=METRIC,
                  mode="max" if study.directions[0] == "maximize" else "min")
    if cfg.kind == "median":
        return EpochMedianStoppingRule(grace_period=cfg.grace_period, min_samples_required=3, **common)
    # max_t past the longest trial's last epoch report, so no trial is stopped for merely training its epochs
    # (sized by budget.epochs alone, a trial of a larger train.epochs was stopped there and recorded PRUNED)
    return AsyncHyperBandScheduler(grace_period=cfg.grace_period, reduction_factor=cfg.reduction_factor,
                                   brackets=1 if cfg.kind == "asha" else cfg.brackets,
                                   max_t=longest_trial(study)[0] + 1, **common)


class _OptunaSearcher:
    """Built lazily as a ray.tune.search.Searcher subclass (ray is an optional import)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        from ray.tune.search import Searcher

        class OptunaSearcher(Searcher):
            def __init__(self, study: Study, ostudy: optuna.Study, deadline: float | None,
                         on_trial: Callable[[optuna.Study, FrozenTrial], None] | None) -> None:
                super().__init__()
                self.study, self.ostudy, self.deadline, self.on_trial = study, ostudy, deadline, on_trial
                self.budget = Budget(study)
                self.retry = retry_callback(study.config.executor.max_retries)
                self.retention = checkpoint_retention(study)
                self.asked: dict[str, optuna.Trial] = {}
                self.said_outage: list[bool] = []   # the storage's server was away once: said then
                self.data_changed: DataChanged | None = None   # a trial found the run's data changed: it stops

            def suggest(self, trial_id: str) -> dict[str, Any] | None:
                if self.data_changed is not None:
                    return Searcher.FINISHED
                if self.deadline is not None and time.time() >= self.deadline:
                    return Searcher.FINISHED
                if not self.budget.left(self.ostudy):
                    # Tune never asks a searcher again once it says FINISHED: while trials run, one may still
                    # fail (or its worker die, its config queued again) and open room for one more
                    return None if self.asked and not self.budget.capped(self.ostudy) else Searcher.FINISHED
                from searchlab.tasks import sample_trial_config

                trial = through_outage(lambda: self._ask_registered(trial_id), said=self.said_outage)
                if _heartbeat_interval(self.ostudy) is not None:   # a server storage: beat at once, so the
                    self.ostudy._storage.record_heartbeat(trial._trial_id)   # trial never looks a gone driver's
                try:   # the strategy's parameters, stored before the trial runs
                    sample_trial_config(trial, self.study)
                except Exception as exc:   # a plug-in's bad draw fails this trial, as it does locally
                    trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
                    self.ostudy.tell(trial, state=TrialState.FAIL)
                    self.asked.pop(trial_id, None)   # after the tell: a stop in between finds it told
                    return None
                return {"trial_id": trial._trial_id}

            def _ask_registered(self, trial_id: str) -> optuna.Trial:
                """A new trial, in self.asked before a stop can land: the storage holds it RUNNING from the ask
                on, and a Ctrl-C before its registration (during its sampling) left it RUNNING for good, unseen
                by fail_running. A stop meanwhile is held, and raised once the trial is registered."""
                hold_stops()
                try:
                    with warnings.catch_warnings():
                        # Optuna warns of heartbeats used outside Study.optimize: here the driver itself beats
                        # for the trials its Ray workers run (_heartbeats), knowingly
                        warnings.filterwarnings("ignore", HEARTBEAT_OUTSIDE_OPTIMIZE, UserWarning)
                        trial = self.ostudy.ask()
                    self.asked[trial_id] = trial
                    return trial
                finally:
                    release_stops()
                    raise_if_stopped()

            def save(self, checkpoint_path: str) -> None:
                """Nothing to save: the study in the storage is the searcher's whole state."""

            def restore(self, checkpoint_path: str) -> None:
                """Nothing to restore: a resumed run reopens the study (engine/run.py)."""

            def fail_running(self, reason: str) -> None:
                """Fail the trials Tune still runs, with `reason` (the next run re-queues interrupted ones)."""
                for trial in self.asked.values():
                    with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):   # see below
                        trial.set_user_attr("error", reason)
                        self.ostudy.tell(trial, state=TrialState.FAIL)
                self.asked.clear()

            def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
                trial = self.asked.pop(trial_id, None)
                if trial is None:
                    return
                try:
                    frozen = through_outage(lambda: tell_outcome(self.ostudy, trial, result or {}, error, self.study),
                                            said=self.said_outage)
                except optuna.exceptions.UpdateFinishedTrialError:   # another process finished it in the storage
                    print(f"warning: trial {trial.number} was finished in the storage by another run of this "
                          "study (it judged this driver gone); its outcome here is not recorded", file=sys.stderr)
                    return
                lost = error or bool((result or {}).get(STORAGE_LOST))   # its worker, or the worker's storage
                if frozen.state == TrialState.FAIL and lost and not timed_out(frozen.user_attrs.get("error")):
                    self.retry(self.ostudy, frozen)
                if (result or {}).get(DATA_CHANGED):   # the run stops; the next one runs its config again
                    self.data_changed = self.data_changed or DataChanged(result[DATA_CHANGED])
                if self.retention is not None:
                    self.retention(self.ostudy, frozen)
                if self.on_trial is not None:
                    self.on_trial(self.ostudy, frozen)

        return OptunaSearcher(*args, **kwargs)


def tell_outcome(ostudy: optuna.Study, trial: optuna.Trial, result: dict[str, Any], error: bool,
                 study: Study) -> FrozenTrial:
    """Record what Tune reports: the worker's outcome, a stop by the scheduler, or a lost worker."""
    state = result.get(STATE)
    if state == "COMPLETE":
        return ostudy.tell(trial, json.loads(result[VALUES]))
    if result.get(STORAGE_LOST):   # the worker could not reach the storage's server: not the config's fault
        trial.set_user_attr("error", storage_lost_reason(result[STORAGE_LOST]))
        return ostudy.tell(trial, state=TrialState.FAIL)
    if error:   # the actor died: killed past budget.trial_timeout (it said so first), or lost
        if not timed_out(_stored_error(ostudy, trial)):
            trial.set_user_attr("error", WORKER_DIED)
        state = "FAIL"
    elif state is None:   # Tune ended the trial after an epoch report: the scheduler stopped it
        kind = study.config.executor.scheduler.kind if study.config.executor.scheduler else "Tune"
        reports = "" if result.get(EPOCH) is None else f" after {_reports_said(ostudy, trial, study, result[EPOCH])}"
        trial.set_user_attr("pruned", f"stopped by the Ray {kind} scheduler{reports}")
        state = "PRUNED"
    elif state == "FAIL" and _stored_error(ostudy, trial) is None:
        trial.set_user_attr("error", WORKER_DIED)
    return ostudy.tell(trial, state=TrialState[state])


def _reports_said(ostudy: optuna.Study, trial: optuna.Trial, study: Study, step: Any) -> str:
    """How far a trial the scheduler stopped got (ray_schedule.reports_said): epochs, a GAN's evaluations, or the
    folds / repeats of a trial of repeated runs. Its config as its worker stored it: this process's trial holds
    only the parameters sampled here, not the config's fixed values."""
    from searchlab.engine.objective import config_of

    return reports_said(study, config_of(ostudy._storage.get_trial(trial._trial_id)), int(step))


def storage_lost_reason(reason: str) -> str:
    return (f"the Ray worker running this trial could not reach the storage's server ({reason}); its config is queued "
            "again, up to executor.max_retries times")


def _stored_error(ostudy: optuna.Study, trial: optuna.Trial) -> str | None:
    """The error the worker recorded on the trial, read from the storage (not this process's copy)."""
    return ostudy._storage.get_trial(trial._trial_id).user_attrs.get("error")
