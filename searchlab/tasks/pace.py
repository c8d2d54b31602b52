"""Before a run: would one trial fit inside the study's time limits at this machine's pace?

A heavy space (a ResNet trained 5 times for cross-validation, at 224 px, on a laptop CPU) with a timeout of
minutes used to show it only afterwards: the timeout cut the first trial, which was pruned, and the run
ended with nothing. Here one config of the space trains batches with its own recipe (augmentation, loss,
precision) on the threads a worker gets, and scores batches as validation, for up to ~1.5 s and ~0.3 s
(`steady_seconds`: the first batches of a fresh process are many times slower than the rest, and were the
pace that over-estimated small nets 4-10x); that pace times the trial's epochs, runs and images gives the
estimate, said when it exceeds budget.timeout or trial_timeout. Early stopping and pruning may end trials
sooner, so it is said as a warning, never a refusal.
"""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import count
from typing import Any

import torch

from searchlab.augment.synthetic import synthetic_count
from searchlab.config.load import Study
from searchlab.config.schema import BudgetConfig
from searchlab.data.types import ImageSplit
from searchlab.models.standalone import build_model
from searchlab.tasks.classify_config import ClassifyTrialConfig
from searchlab.tasks.train import Batches, one_epoch, evaluate, make_recipe


def trial_time_warning(study: Study, batches: Batches, spec: ClassifyTrialConfig,
                       model_spec: dict[str, Any]) -> str | None:
    limit, key = tightest_limit(study.config.budget)
    estimate = estimated_trial(study, batches, spec, model_spec) if limit is not None else None
    if estimate is None or estimate.seconds <= limit:
        return None
    runs, epochs = estimate.runs, estimate.epochs
    folds = f" x {len(runs)} runs ({_runs_said(spec)})" if len(runs) > 1 else ""
    return (f"one trial of this space takes about {duration(estimate.seconds)} here, more than {key}={limit:g} s: "
            f"{epochs} epochs{folds} of ~{runs[0][0]} training images{_synthetic_said(estimate.synthetic)} at the "
            f"pace of one of its configs ({config_said(spec)}; "
            f"measured now: {1 / estimate.train_seconds:.0f} images/s training, on "
            f"{study.config.executor.local_threads} thread(s)). {_consequence(key, len(runs) > 1)} (early stopping "
            f"may end some sooner). Fix: raise {key}, lower budget.epochs (or train.cv_folds), or search smaller "
            "networks")


def timed_config(specs: list[ClassifyTrialConfig]) -> ClassifyTrialConfig | None:
    """The config whose pace is measured: the first that trains its network. A `features` trial trains only a
    head on cached features, which batches of the whole network would not time; a mixed space whose first
    config was one went unestimated."""
    return next((spec for spec in specs if spec.model.transfer != "features"), None)


def config_said(spec: ClassifyTrialConfig) -> str:
    """'timm resnet18, transfer full': which config was timed, so a user can tell how typical it is."""
    model = spec.model
    name = f"{model.kind} {model.backbone}" if isinstance(getattr(model, "backbone", None), str) else model.kind
    return name + (f", transfer {model.transfer}" if model.transfer != "scratch" else "")


def _synthetic_said(added: int) -> str:
    return f" ({added} of them synthetic)" if added else ""


def tightest_limit(budget: BudgetConfig) -> tuple[float | None, str]:
    """The shorter of budget.timeout and trial_timeout, and its key; (None, "") without either."""
    limits = [(budget.timeout, "budget.timeout"), (budget.trial_timeout, "budget.trial_timeout")]
    return min(((s, k) for s, k in limits if s), default=(None, ""))


@dataclass(frozen=True)
class Estimate:
    seconds: float                  # the whole trial: every run's epochs of training and validation
    train_seconds: float            # per training image
    runs: list[tuple[int, int]]     # (training images, validation images) of each model the trial trains
    epochs: int                     # of each run
    synthetic: int = 0              # of each run's training images, added by augment.synthetic


def estimated_trial(study: Study, batches: Batches, spec: ClassifyTrialConfig,
                    model_spec: dict[str, Any]) -> Estimate | None:
    """None where a local CPU measurement says nothing: trials on a GPU or Ray's nodes, cached features (each
    epoch trains only the head, which two batches cannot show), or a config that cannot train (its trial
    will fail with why)."""
    executor = study.config.executor
    on_gpu = executor.device != "cpu" and torch.cuda.is_available()
    if executor.kind != "local" or on_gpu or spec.model.transfer == "features":
        return None
    try:
        train_seconds, val_seconds = measured_pace(batches, spec, model_spec, executor.local_threads)
    except Exception:   # noqa: BLE001 -- advice only
        return None
    epochs = spec.train.epochs or study.config.budget.epochs
    added = synthetic_count(batches.train.labels, spec.augment)   # a generator's images train with the real ones
    runs = [(n_train + added, n_val) for n_train, n_val in trial_runs(spec, len(batches.train), len(batches.val))]
    seconds = epochs * sum(n_train * train_seconds + n_val * val_seconds for n_train, n_val in runs)
    return Estimate(seconds, train_seconds, runs, epochs, added)


def _consequence(key: str, several_runs: bool) -> str:
    if key == "budget.trial_timeout":
        return "Trials past it are killed and fail"
    if several_runs:   # classify.py _stop_as_cut_short / _stop_as_refit_cut_short
        return "The timeout will cut trials short, and a trial of several runs cut short is pruned"
    return "The timeout will stop trials before their last epoch (each keeps its best epoch so far)"


TRAIN_SECONDS = 1.5   # how long training batches are timed for, at most (a batch slower than that: two batches)
VAL_SECONDS = 0.3     # validation batches likewise
MOST_CALLS = 30       # batches of each, at most: a small net's steady pace shows well before


def measured_pace(batches: Batches, spec: ClassifyTrialConfig, model_spec: dict[str, Any], threads: int,
                  train_budget: float = TRAIN_SECONDS, val_budget: float = VAL_SECONDS) -> tuple[float, float]:
    """Seconds per training image and per validation image, at the steady pace of repeated batches
    (`steady_seconds`), not the first batches' warm-up."""
    size = max(2, min(spec.train.batch_size, len(batches.train)))   # batch norm trains on 2 images or more
    pick = torch.randperm(len(batches.train), generator=torch.Generator().manual_seed(0))[:size]
    train = ImageSplit(batches.train.images[pick], batches.train.labels[pick])
    val = ImageSplit(batches.val.images[:size], batches.val.labels[:size])
    sample = Batches(train, val, batches.kind, batches.n_classes, batches.preprocessing, batches.class_names)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = build_model(model_spec)
        opt = torch.optim.SGD(model.parameters(), lr=0.0)   # lr 0: the step costs the same and changes nothing
        recipe, gen, epochs = make_recipe(sample, spec.augment, spec.imbalance, spec.train), torch.Generator(), count()
        train_seconds = steady_seconds(lambda: one_epoch(model, opt, sample, recipe, spec.train, gen, next(epochs)),
                                       train_budget)
        val_seconds = steady_seconds(lambda: evaluate(model, val, sample), val_budget)
    finally:
        torch.set_num_threads(before)
    return train_seconds / len(train), val_seconds / max(1, len(val))


SLOW_TIMED = 3   # calls timed after the warm-up at least, past the ceiling: a spike in one is outvoted


def steady_seconds(step: Callable[[], Any], budget: float, most: int = MOST_CALLS, fewest: int = 1,
                   ceiling: float | None = None) -> float:
    """Seconds a call of `step` takes once warmed up. A fresh process's first batches pay one-time costs
    (allocations, kernel choice, threads starting: a small CNN ran 35-110 images/s for its first 1-5 batches,
    then 640-960), so `step` is called until `budget` seconds have passed and `fewest` calls after the first are
    timed (`most` calls at most). A slow step stops at `ceiling` seconds (default `budget`) once min(fewest,
    SLOW_TIMED) are timed: one timed call was the estimate, and a GAN iteration's second call took 3.3 s where
    the rest took 0.13-0.29. The pace is the median of the later half of the calls after the first: past a
    warm-up shorter than that half, and, as trials would, slowed by other processes on shared cores when they
    run through it, not by one burst."""
    times: list[float] = []
    started = time.perf_counter()
    while not _timed_enough(len(times) - 1, time.perf_counter() - started, most - 1, budget, fewest,
                            budget if ceiling is None else ceiling):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    timed = times[1:]
    return statistics.median(timed[len(timed) // 2:])


def _timed_enough(timed: int, elapsed: float, most: int, budget: float, fewest: int, ceiling: float) -> bool:
    """Whether `steady_seconds` has timed enough calls (`timed`, after the warm-up one) in `elapsed` seconds."""
    if timed >= max(1, most):
        return True
    return (timed >= fewest and elapsed >= budget) or (timed >= max(1, min(fewest, SLOW_TIMED)) and elapsed >= ceiling)


def trial_runs(spec: ClassifyTrialConfig, n_train: int, n_val: int) -> list[tuple[int, int]]:
    """(training images, validation images) of each model a trial trains."""
    k, repeats = spec.train.cv_folds, spec.train.repeats
    if not k:
        return [(n_train, n_val)] * repeats
    pool = n_train + n_val
    folds = [(pool - pool // k, pool // k)] * (k * repeats)
    return folds + ([(n_train, n_val)] if spec.train.cv_model == "refit" else [])


def _runs_said(spec: ClassifyTrialConfig) -> str:
    k, repeats = spec.train.cv_folds, spec.train.repeats
    if not k:
        return f"{repeats} repeats"
    runs = f"{k} folds" + (f" x {repeats} repeats" if repeats > 1 else "")
    return runs + (" + the model trained on the training split" if spec.train.cv_model == "refit" else "")


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{math.ceil(seconds)} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"
