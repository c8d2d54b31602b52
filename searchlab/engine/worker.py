"""One local worker: runs trials of a study until the shared budget is reached.

Workers (processes) share only the storage. Each counts finished + running trials before starting one, so
the study stops at `budget.n_trials` in total, across workers and across resumed runs.
"""
from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from searchlab.config.load import Study
from searchlab.engine.objective import make_objective
from searchlab.engine.storage import artifact_store, open_storage
from searchlab.strategy import build_pruner, build_sampler
from searchlab.tasks import get_task

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def limit_threads(study: Study) -> int:
    """workers x threads never exceeds the cores: oversubscribed BLAS threads make everyone slower."""
    ex = study.config.executor
    threads = ex.threads_per_worker or max(1, (os.cpu_count() or 1) // ex.workers)
    torch.set_num_threads(threads)
    return threads


def open_optuna_study(study: Study, worker_index: int = 0) -> optuna.Study:
    storage = open_storage(study.storage_url)
    existing = len(storage.get_all_trials(_study_id(storage, study.config.name), deepcopy=False)) \
        if _has_study(storage, study.config.name) else 0
    # Distinct streams per worker and per resume: a resumed random search must not replay its first run.
    seed = study.config.seed + 7919 * worker_index + 104729 * existing
    return optuna.load_study(study_name=study.config.name, storage=storage,
                             sampler=build_sampler(study.config.strategy, seed, study.base_dir),
                             pruner=build_pruner(study.config.pruner, study.config.budget.epochs))


def _has_study(storage: optuna.storages.BaseStorage, name: str) -> bool:
    return any(s.study_name == name for s in storage.get_all_studies())


def _study_id(storage: optuna.storages.BaseStorage, name: str) -> int:
    return storage.get_study_id_from_name(name)


def budget_left(ostudy: optuna.Study, study: Study) -> bool:
    budget = study.config.budget
    trials = ostudy.get_trials(deepcopy=False)
    finished = sum(t.state in FINISHED for t in trials)
    running = sum(t.state == TrialState.RUNNING for t in trials)   # WAITING (queued retries) run next
    failed = sum(t.state == TrialState.FAIL for t in trials)
    return finished + running < budget.n_trials and failed < (budget.max_failed or budget.n_trials)


def run_worker(study: Study, worker_index: int = 0, deadline: float | None = None,
               on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None) -> None:
    """Run trials until the budget, the failure cap or the wall-clock deadline (time.time()) is reached."""
    limit_threads(study)
    ostudy = open_optuna_study(study, worker_index)
    objective = make_objective(study, get_task(study.config.task), artifact_store(study.run_dir))
    callbacks = [on_trial] if on_trial else None
    while budget_left(ostudy, study):
        if deadline is not None and time.time() >= deadline:
            break
        ostudy.optimize(objective, n_trials=1, catch=(Exception,), callbacks=callbacks)
        gc.collect()   # each trial's model, optimiser and tensors go before the next one starts


def worker_process_main(study_file: str, overrides: dict[str, object], worker_index: int,
                        deadline: float | None) -> None:
    """Entry point of a spawned worker process: re-read the study (nothing is pickled across)."""
    from searchlab.config.load import load_study

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        run_worker(load_study(study_file, overrides), worker_index, deadline)
    except KeyboardInterrupt:
        pass   # the running trial is already marked FAIL by Optuna; the parent reports
