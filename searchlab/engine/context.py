"""What a running trial may do: report per-epoch metrics (for pruning), record attributes, store files.

Tasks only see this object; they never touch the storage, the sampler or the executor directly.
"""
from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from numbers import Number
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from searchlab.config.load import Study
from searchlab.engine.numbers import is_truth_value, plain_number
from searchlab.engine.ray_schedule import reports_said
from searchlab.engine.signals import raise_if_stopped
from searchlab.engine.trial_time import AliveStamp
from searchlab.errors import ConfigError, TrialFailure

# User attributes searchlab writes and reads back as its own (config_of, status, export, the budget's retry count):
# a callable task's ctx.record(config=...) or (retry_of=...) overwrote them, and what read them read the user's
# values. (`checkpoint` and `architecture` are the user's to record: retention and the trials table read them.)
OWN_ATTRS = frozenset({"alive_at", "bag", "class_names", "config", "config_with_defaults", "curve", "error",
                       "held_by", "metrics", "model_spec", "preprocessing", "pruned", "retry_of", "searchlab",
                       "task_kind", "ran_with", "started_at", "threshold", "traceback"})


@dataclass
class TrialContext:
    trial: optuna.Trial
    study: Study
    artifacts: FileSystemArtifactStore
    seed: int
    deadline: float | None = None   # time.time() after which the study's timeout has passed
    curve: list[dict[str, float]] = field(default_factory=list)   # every epoch's validation metrics
    # called with (epoch, primary metric) after each report: the Ray executor feeds its scheduler with it
    on_epoch: Callable[[int, float], None] | None = None
    alive: AliveStamp = field(default_factory=AliveStamp)   # its last sign of life, for a process killed unseen

    @property
    def primary(self) -> tuple[str, str]:
        """(metric, direction) of the first objective: what early stopping and pruning follow."""
        return self.study.objectives[0]

    def report(self, step: int, metrics: dict[str, float], judge: bool = True) -> None:
        """Record one epoch; raise optuna.TrialPruned when the pruner says so (single-objective only).

        judge=False records the value without letting the pruner (or a Ray scheduler) act on it."""
        raise_if_stopped()   # a stop signal some library swallowed still stops the trial here
        step = _whole_step(step)
        metrics = {name: _number(step, name, value) for name, value in metrics.items()}   # np.float32, 0-d tensors
        metric, _ = self.primary
        self.curve.append({"epoch": step, **{k: v for k, v in metrics.items() if _finite(v)}})
        self.trial.set_user_attr("curve", self.curve)   # one attribute, rewritten: one row, not one per epoch
        self.alive.touch(self.trial)
        value = metrics.get(metric)
        if len(self.study.objectives) > 1 or value is None or not _finite(value):
            return
        self.trial.report(float(value), step)
        if not judge or self._at_callables_last_epoch(step):
            return
        if self.on_epoch is not None:
            self.on_epoch(step, float(value))
        if self.trial.should_prune():
            # counted in the trial's reports, as the Ray schedulers' reason is (ray_schedule.reports_said): epochs,
            # a GAN's evaluations, or the folds / repeats of a trial under train.cv_folds / repeats, whose steps
            # are on the epoch scale ("after 3 epoch(s)" was said of a trial pruned after 2 of 3 folds)
            from searchlab.engine.objective import config_of   # here: objective imports this module

            reason = (f"pruned by the pruner after {reports_said(self.study, config_of(self.trial), step)}, at "
                      f"{metric}={value:.4f}")
            self.trial.set_user_attr("pruned", reason)   # why, for status and the dashboard
            raise optuna.TrialPruned(reason)

    @property
    def device(self) -> torch.device:
        """Where this trial's network trains (executor.device); 'cuda' without a visible GPU fails the trial."""
        choice = self.study.config.executor.device
        if choice == "cuda" and not torch.cuda.is_available():
            raise TrialFailure(f"executor.device is 'cuda' but this trial's process sees no CUDA GPU "
                               f"(CUDA_VISIBLE_DEVICES {_visible_gpus()}). Fix: executor.device: auto (a GPU when "
                               "one is seen, else the CPU); on a Ray cluster with GPUs, give the trials a share "
                               "(executor.resources_per_trial.gpu > 0)")
        return torch.device("cuda" if choice != "cpu" and torch.cuda.is_available() else "cpu")

    def out_of_time(self) -> bool:
        """True once the study's wall-clock budget is spent: long trials stop at the next epoch boundary."""
        return self.deadline is not None and time.time() >= self.deadline

    def _at_callables_last_epoch(self, step: int) -> bool:
        """A trial at its last epoch has finished: pruning it threw its result away (the tasks of searchlab
        pass judge=False there; a callable task's function reports through this alone)."""
        return self.study.config.task.kind == "callable" and step >= self.study.config.budget.epochs - 1

    def record(self, **attrs: Any) -> None:
        """User attributes, numbers of numpy or torch as plain ones; a callable task may not write searchlab's own."""
        if self.study.config.task.kind == "callable" and (own := sorted(OWN_ATTRS & set(attrs))):
            raise TrialFailure(f"ctx.record({own[0]}=...): searchlab keeps its own '{own[0]}' there. Fix: record "
                               f"it under another name, e.g. my_{own[0]}")
        for key, value in attrs.items():
            value = _plain(value)
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                raise TrialFailure(f"ctx.record({key}=...): a {type(value).__name__} cannot be stored (JSON: "
                                   "numbers, strings, booleans, None, lists and dicts of them). Fix: record "
                                   "str(value) or the numbers it holds") from None
            self.trial.set_user_attr(key, value)

    def store_file(self, path: Path, mimetype: str = "application/octet-stream") -> str:
        """Upload a file into the study's artifact store; returns the artifact id."""
        return upload_artifact(artifact_store=self.artifacts, file_path=str(path), study_or_trial=self.trial,
                               mimetype=mimetype)


def _plain(value: Any) -> Any:
    """numpy / torch numbers inside lists and dicts too, as stored user attributes must be JSON."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return plain_number(value)


def _whole_step(step: Any) -> int:
    number = plain_number(step)   # np.arange's int64 epochs
    if isinstance(number, bool) or not isinstance(number, int):
        raise TrialFailure(f"ctx.report(step={step!r}, ...): the step must be a whole number (the epoch). Fix: "
                           "pass the loop's epoch index")
    return number


def _number(step: int, name: str, value: Any) -> Any:
    """`value` as a plain number; anything else fails the trial. A string or a tensor of several values was
    left out of the curve without a word: the pruner got no value and never acted. (NaN and inf are numbers,
    undefined at that epoch: kept out of the curve, which is JSON, and of the pruner, as before.)"""
    number = plain_number(value)
    if isinstance(number, Number) and not isinstance(number, (int, float, complex)):
        number = float(number)   # a Decimal
    if is_truth_value(number):   # True became 1.0 in the curve and the pruner's value, as objectives may not
        raise TrialFailure(f"ctx.report({step}, {{{name!r}: ...}}): the value is a bool ({value!r}), not a number. "
                           "Fix: report the number it was judged from (e.g. the accuracy, not whether it passed)")
    if not isinstance(number, (int, float)):
        shape = getattr(value, "shape", None)
        kind = f"{type(value).__name__} of shape {tuple(shape)}" if shape is not None else type(value).__name__
        raise TrialFailure(f"ctx.report({step}, {{{name!r}: ...}}): the value is a {kind}, not a number. Fix: report "
                           "one number per metric (float(value), tensor.item(), or a mean of the values), or "
                           "float('nan') for an epoch without it")
    return number


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def refuse_unseen_cuda(study: Study) -> None:
    """executor.device: cuda with kind: local on a machine whose torch sees no CUDA GPU: every trial runs here,
    and each failed alone for it, after the run had prepared (a GAN run trained its MedFID network first). A Ray
    run's trials may land on nodes that have one: those fail alone (TrialContext.device), as they should."""
    executor = study.config.executor
    if executor.device != "cuda" or executor.kind != "local" or torch.cuda.is_available():
        return
    raise ConfigError(f"this machine's torch sees no CUDA GPU (CUDA_VISIBLE_DEVICES "
                      f"{_visible_gpus()}; torch {torch.__version__}), and "
                      "executor.kind local runs every trial here, so each would fail", key="executor.device",
                      got="cuda", fix="executor.device: auto (a GPU when one is seen, else the CPU), or install a "
                      "CUDA build of torch on a machine with an NVIDIA GPU")


def _visible_gpus() -> str:
    """CUDA_VISIBLE_DEVICES as a message shows it: an empty value hides every GPU, unlike an unset one."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return "unset" if visible is None else repr(visible)
