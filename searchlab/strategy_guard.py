"""A plug-in strategy (`strategy: {class: "module:Class"}`) behind the checks the built-in ones do not need.

Optuna calls a sampler's hooks in two places: sample_* inside the objective (an exception there fails that
trial, and its stored error now names the strategy and the hook), and before_trial / after_trial outside it,
where an exception used to crash the run with a traceback (or end a worker process without a word) and leave
the trial RUNNING. Those stop the run with one message, the trial failed with that reason. A value outside
the space (lr 10 where the space says [1e-4, 1e-2]) fails its trial before anything trains on it.
"""
from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from searchlab.engine.resume import describe
from searchlab.errors import SearchlabError
from searchlab.space import within


class StrategyError(SearchlabError):
    """A plug-in strategy raised, or proposed a value outside the space."""


class GuardedSampler(BaseSampler):
    def __init__(self, inner: BaseSampler, name: str) -> None:
        self.inner, self.name = inner, name

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self._call("infer_relative_search_space", trial, study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        values = self._call("sample_relative", trial, study, trial, search_space)
        for name, value in values.items():
            if name in search_space:
                self._check(trial, name, value, search_space[name])
        return values

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        value = self._call("sample_independent", trial, study, trial, param_name, param_distribution)
        self._check(trial, param_name, value, param_distribution)
        return value

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._call_outside_trial("before_trial", study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: list[float] | None) -> None:
        self._call_outside_trial("after_trial", study, trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()

    def __getattr__(self, name: str) -> Any:   # the plug-in's own attributes (evolution's population...)
        return getattr(self.inner, name)

    def _call(self, hook: str, trial: FrozenTrial, *args: Any) -> Any:
        try:
            return getattr(self.inner, hook)(*args)
        except Exception as exc:   # noqa: BLE001 -- whatever a plug-in raises, said as the plug-in's
            raise StrategyError(self._raised(hook, trial, exc)) from exc

    def _call_outside_trial(self, hook: str, study: optuna.Study, trial: FrozenTrial, *args: Any) -> None:
        try:
            getattr(self.inner, hook)(study, trial, *args)
        except Exception as exc:   # noqa: BLE001
            message = self._raised(hook, trial, exc)
            if hook == "before_trial":   # Optuna leaves it RUNNING; nothing else would ever finish it
                study._storage.set_trial_user_attr(trial._trial_id, "error", message)
                study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            raise StrategyError(message) from exc

    def _raised(self, hook: str, trial: FrozenTrial, exc: Exception) -> str:
        return (f"strategy '{self.name}' raised in {hook} (trial {trial.number}): {type(exc).__name__}: {exc}. Fix: "
                "correct the strategy class (searchlab --debug run ... shows the traceback)")

    def _check(self, trial: FrozenTrial, name: str, value: Any, distribution: BaseDistribution) -> None:
        if not within(distribution, value):
            raise StrategyError(f"strategy '{self.name}' proposed {name}={value!r} for trial {trial.number}, outside "
                                f"the space: {describe(distribution)}; the trial was not trained. Fix: sample from "
                                "the distribution Optuna passes the strategy")
