"""A plug-in strategy (`strategy: {class: "module:Class"}`) behind the checks the built-in ones do not need.

Optuna calls a sampler's hooks in two places: sample_* inside the objective (an exception there fails that
trial, and its stored error now names the strategy and the hook), and before_trial / after_trial outside it,
where an exception used to crash the run with a traceback (or end a worker process without a word) and leave
the trial RUNNING. Those stop the run with one message, the trial failed with that reason; once some trials
finished, after their summary and the after-run export (StrategyStop), as a run that ends by itself. A value
outside the space (lr 10 where the space says [1e-4, 1e-2]) fails its trial before anything trains on it.
"""
from __future__ import annotations

import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from searchlab.engine.resume import describe
from searchlab.errors import SearchlabError
from searchlab.space import within


class StrategyError(SearchlabError):
    """A plug-in strategy raised, or proposed a value outside the space. `run_result`: the run it ended after
    some trials finished (engine/run.py), which the command line summarises and exports before saying it."""

    run_result: Any = None


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
        # its first line only: a plug-in's multi-line message (a dump of its state) broke the run's one-line end
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        error = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
        return (f"{raised_in(self.name)}{hook} (trial {trial.number}): {error}. "
                "Fix: correct the strategy class: the error is in its code, not in searchlab or the study's space "
                "(searchlab --debug run ... shows the traceback)")

    def _check(self, trial: FrozenTrial, name: str, value: Any, distribution: BaseDistribution) -> None:
        if not within(distribution, value):
            raise StrategyError(f"strategy '{self.name}' proposed {name}={value!r} for trial {trial.number}, outside "
                                f"the space: {describe(distribution)}; the trial was not trained. Fix: sample from "
                                "the distribution Optuna passes the strategy")


def raised_in(name: str) -> str:
    """How a plug-in's error outside a trial starts: how a run tells it from other errors once a worker process
    passed it up as text (engine/supervise.py raises it as a SearchlabError)."""
    return f"strategy '{name}' raised in "


class StrategyStop:
    """A plug-in strategy's error that stopped a run after some of its trials finished: caught, so that those
    trials are summarised and the best exported as after any run, and said last (cli.py). Raised as before when
    no trial finished: the one-line error is then all there is to say."""

    def __init__(self, study: Any) -> None:
        from searchlab.strategy import resolve

        self.plugin: str | None = resolve(study.config.strategy, study.base_dir).class_
        self.run_dir: Path = study.run_dir
        self.error: StrategyError | None = None

    @property
    def stopped_by(self) -> str | None:
        """What stopped the run, for its history: as a run this error ended was recorded before."""
        return f"error: {type(self.error).__name__}" if self.error is not None else None

    @contextmanager
    def after_trials(self, finished: Callable[[], int]) -> Iterator[None]:
        """Catches the strategy's error once `finished()` (this run's finished trials) is not 0."""
        try:
            yield
        except SearchlabError as exc:
            error = self.strategy_error(exc)
            if error is None:
                raise
            if not finished():   # nothing to summarise: its one line, as before
                raise error
            self.error = error

    def strategy_error(self, exc: SearchlabError) -> StrategyError | None:
        """`exc` as the plug-in's StrategyError: raised in this process, or passed up by a worker process as
        its message. None for any other error."""
        if isinstance(exc, StrategyError):
            return exc
        if self.plugin is not None and str(exc).startswith(raised_in(self.plugin)):
            error = StrategyError(str(exc))
            error.__cause__ = exc
            for kept in sorted((self.run_dir / ".workers").glob(f"*{TRACEBACK}")):
                error.add_note(f"in worker process {kept.name.removesuffix(TRACEBACK)}:\n{kept.read_text()}")
                kept.unlink()
            return error
        return None


TRACEBACK = ".strategy_traceback"   # in the run's .workers folder, beside the error a worker process stops the run with


def keep_traceback(exc: StrategyError, run_dir: Path, pid: int) -> None:
    """The plug-in's traceback in a worker process, which its parent adds to the error it raises: a note, shown
    with `searchlab --debug run` only (its one-line message stays as it is)."""
    (run_dir / ".workers").mkdir(exist_ok=True)
    (run_dir / ".workers" / f"{pid}{TRACEBACK}").write_text("".join(traceback.format_exception(exc)))
