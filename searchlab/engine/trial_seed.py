"""The random stream of a process of a study: told apart by the first trial number the storage gives it."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState


def stream_seed(seed: int, worker_index: int, first_trial: int) -> int:
    """Distinct streams per worker and per resume (a resumed random search must not replay its first run)."""
    return (seed + 7919 * worker_index + 104729 * first_trial) % 2**32   # samplers take 32-bit seeds


class SeededByFirstTrial(BaseSampler):
    """A sampler whose seed comes from the number of the first trial its process gets.

    The seed came from the count of the study's trials when the process opened it. Runners sharing a server
    storage from different run folders (machines: no AskGate between them), started together, counted the
    same, drew the same configs, and half the budget ran twice. A trial number is unique across every process
    of a study (the storage assigns it), so it tells their streams apart, while a lone runner's first trial is
    the one it counted: its seed, and so its configs, are those it always had. A process whose first trial is
    a queued one (a retry, a NAS stage's designs: numbered before it counted) is seeded by that number, unique
    too and the same on every run of the same study (so since 2026-12-05 such a study draws the settings
    around its queued designs, lr and augmentation, otherwise than before). Why not one seed per trial: the
    samplers (TPE, evolution, plug-ins) take one seed when built and keep their state (a population) between
    trials. So the sampler built for the counted number is used as is, and built again, before it drew
    anything, when the first trial turns out to have another number (another process took that one)."""

    def __init__(self, build: Callable[[int], BaseSampler], expected_first: int) -> None:
        self.build, self.expected_first = build, expected_first
        self.inner = build(expected_first)   # now: a strategy that cannot be built stops the run before any trial
        self.first_seen = False

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if not self.first_seen:
            self.first_seen = True
            if trial.number != self.expected_first:
                self.inner = self.build(trial.number)
        self.inner.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
        return self.inner.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]) -> dict[str, Any]:
        return self.inner.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: Any) -> Any:
        return self.inner.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: list[float] | None) -> None:
        self.inner.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()

    def __getattr__(self, name: str) -> Any:   # the strategy's own attributes (evolution's population...)
        if name in ("build", "expected_first", "inner", "first_seen"):   # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)
