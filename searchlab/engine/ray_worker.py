"""The Ray side of `executor: {kind: ray}`: one searchlab trial inside a (reused) Ray Tune actor.

The driver has asked the Optuna study for the trial already (its parameters are in the storage) and will tell
its outcome; here the trial is bound by id and runs the same objective as the local executor, so params,
intermediate values, user attrs and artifacts land as locally, plus the Ray node that ran it. What costs
more than the trial itself on small trials (opening the storage, importing the task) happens once per actor.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import optuna
import torch

from searchlab.config.load import Study
from searchlab.engine.ray_schedule import reports_said
from searchlab.engine.ray_timeout import TrialWatchdog
from searchlab.engine.trial_time import AFTER_THE_DEADLINE, STARTED_AT
from searchlab.errors import DataChanged

# Tune flattens nested results for searchers and schedulers, so everything travels as flat keys
STATE, VALUES = "searchlab_state", "searchlab_values"
METRIC, EPOCH = "searchlab_objective", "searchlab_epoch"    # per-epoch reports, for a Ray scheduler
STORAGE_LOST = "searchlab_storage_lost"   # why the worker could not reach the storage's server
DATA_CHANGED = "searchlab_data_changed"   # the trial found the run's data changed: the driver stops the Ray run


@dataclass
class _Actor:
    """What one Ray actor keeps between the trials it runs (reuse_actors=True)."""

    ostudy: optuna.Study
    task: Any
    artifacts: optuna.artifacts.FileSystemArtifactStore
    node_id: str
    node_ip: str | None


_ACTORS: dict[tuple[str, str], _Actor] = {}


def _actor_state(study: Study) -> _Actor:
    key = (study.storage_url, study.config.name)
    if key not in _ACTORS:
        _ACTORS[key] = _open(study)
    return _ACTORS[key]


def _open(study: Study) -> _Actor:
    import ray

    from searchlab.config.load import make_study_folder_importable
    from searchlab.engine.storage import artifact_store, open_storage, through_outage
    from searchlab.strategy import build_pruner
    from searchlab.tasks import get_task, pruner_steps

    ex = study.config.executor
    torch.set_num_threads(ex.ray_threads)
    # the study's own modules before those of the folder Ray started the worker in (PYTHONPATH), as locally
    make_study_folder_importable(study.base_dir / study.file.name)   # absolute: Ray runs it in a folder of its own
    # The parameters are in the storage already, so no sampler work happens here (a random sampler only
    # reads them back); the Optuna pruner prunes here unless a Ray scheduler stops trials instead.
    pruner = optuna.pruners.NopPruner() if ex.scheduler else build_pruner(study.config.pruner, pruner_steps(study))
    ostudy = through_outage(lambda: optuna.load_study(study_name=study.config.name,
                                                      storage=open_storage(study.storage_url),
                                                      sampler=optuna.samplers.RandomSampler(), pruner=pruner))
    node_id = ray.get_runtime_context().get_node_id()
    node_ip = next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node_id), None)
    return _Actor(ostudy, get_task(study.config.task), artifact_store(study.run_dir), node_id, node_ip)


def ray_trial(config: dict[str, Any], study: Study, deadline: float | None, started_in: str | None = None) -> None:
    """Run trial `config["trial_id"]`; its outcome goes to the driver as the last Tune report."""
    from ray import tune

    from searchlab.engine.storage import outage_reason, server_away

    _work_where_the_run_started(started_in)
    try:
        outcome = _run_trial(config, study, deadline)
    except Exception as exc:
        if not server_away(exc):
            raise
        # The storage's server stayed away past storage.through_outage's wait: raised, the trial was failed as
        # "worker died" under ~160 lines of traceback; the driver fails it with this reason and retries it
        outcome = {STATE: "FAIL", VALUES: "[]", STORAGE_LOST: outage_reason(exc)}
    # Without METRIC on purpose: the outcome is no epoch, and a scheduler judging it would count one more
    # (ASHA skips results without its metric; ray_executor's median rule does too)
    tune.report(outcome)


def _run_trial(config: dict[str, Any], study: Study, deadline: float | None) -> dict[str, Any]:
    from searchlab.engine.objective import make_objective
    from searchlab.engine.storage import server_away, through_outage

    actor = _actor_state(study)
    trial = through_outage(lambda: _started_trial(actor, config["trial_id"]))
    if deadline is not None and time.time() >= deadline:
        # asked before budget.timeout, started after it: run, it would train an epoch and rank as complete
        through_outage(lambda: trial.set_user_attr("error", AFTER_THE_DEADLINE))
        return {STATE: "FAIL", VALUES: "[]"}
    # what a stop reason counts: epochs, a GAN's evaluations, the folds or repeats of a trial of repeated runs
    on_epoch = partial(_report_epoch, said=partial(_reports_said, study, trial)) \
        if study.config.executor.scheduler else None
    objective = make_objective(study, actor.task, actor.artifacts, deadline, on_epoch=on_epoch)
    outcome: dict[str, Any] = {STATE: "FAIL", VALUES: "[]"}
    watchdog = TrialWatchdog(trial, study.config.budget.trial_timeout)
    try:
        values = objective(trial)
        listed = list(values) if isinstance(values, (list, tuple)) else [values]
        outcome = {STATE: "COMPLETE", VALUES: json.dumps(listed)}
    except StoppedByScheduler:
        # Tune has ended this trial and may already hand the actor the next one: report nothing more, and
        # end the way Tune ends a stopped function (the driver records the trial PRUNED)
        raise SystemExit(0) from None
    except optuna.TrialPruned:
        outcome[STATE] = "PRUNED"
    except Exception as exc:   # the objective stored the error and traceback on the trial
        if server_away(exc):   # unless it was the storage that failed: ray_trial says so
            raise
        if isinstance(exc, DataChanged):   # every later trial would find it too: the driver stops the run
            outcome[DATA_CHANGED] = str(exc)
    finally:   # before anything reaches Tune: a timer left running would kill this reused actor's next trial
        watchdog.finish()
    return outcome


def _started_trial(actor: _Actor, trial_id: int) -> optuna.Trial:
    """The driver's trial, bound here, with where and when it started (Tune's queue held it since the ask)."""
    trial = optuna.trial.Trial(actor.ostudy, trial_id)
    trial.set_user_attr("ray_node", actor.node_id)
    trial.set_user_attr("ray_node_ip", actor.node_ip)
    trial.set_user_attr(STARTED_AT, round(time.time(), 3))
    return trial


def _work_where_the_run_started(folder: str | None) -> None:
    """A trial works in the folder `searchlab run` started in, as a local one does, when this node has it: Tune
    moves each trial into a folder of its own, where a task function's relative paths (`open("labels.csv")`)
    named nothing. (searchlab's own paths are absolute.) A node without that folder keeps Tune's."""
    if folder and os.path.isdir(folder):
        os.chdir(folder)


class StoppedByScheduler(optuna.TrialPruned):
    """The Ray scheduler stopped the trial; a TrialPruned so the task's code unwinds as for Optuna's pruner."""


def _report_epoch(epoch: int, value: float, said: Callable[[int], str] = lambda step: f"{step + 1} epoch(s)") -> None:
    """Feed the Ray scheduler; Tune ends a trial it stops by raising SystemExit in the report. `said` tells how
    far the trial got at a report (ray_schedule.reports_said): "3 epoch(s)", "2 evaluation(s)", "2 of 3 folds"."""
    from ray import tune

    try:
        tune.report({METRIC: value, EPOCH: epoch})
    except SystemExit:
        raise StoppedByScheduler(f"stopped by the Ray scheduler after {said(epoch)}") from None


def _reports_said(study: Study, trial: optuna.Trial, step: int) -> str:
    """reports_said of this worker's trial, whose config is the one its objective ran (stored, or its params)."""
    from searchlab.engine.objective import config_of

    return reports_said(study, config_of(trial), step)
