"""A plug-in strategy (`strategy: {class: "module:Class"}`) behind the checks the built-in ones do not need.

Optuna calls a sampler's hooks in two places: sample_* inside the objective (an exception there fails that
trial, and its stored error now names the strategy and the hook), and before_trial / after_trial outside it,
where an exception used to crash the run with a traceback (or end a worker process without a word) and leave
the trial RUNNING. Those stop the run with one message, the trial failed with that reason; once some trials
finished, after their summary and the after-run export (StrategyStop), as a run that ends by itself. A value
outside the space (lr 10 where the space says [1e-4, 1e-2]) fails its trial before anything trains on it.

A sampler that refuses a kind of parameter (BruteForceSampler: a float range without a step) is told from a bug
in its code (refusal_of): the fix is then the study's space or the strategy's args, and since every trial
that draws that parameter would fail the same way, the run stops after the first, with that one message.
"""
from __future__ import annotations

import contextlib
import math
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from searchlab.engine.resume import describe
from searchlab.errors import ConfigError, SearchlabError
from searchlab.space import within
from searchlab.throwaway import throwaway_study


class StrategyError(SearchlabError):
    """A plug-in strategy raised, or proposed a value outside the space. `run_result`: the run it ended after
    some trials finished (engine/run.py), which the command line summarises and exports before saying it."""

    run_result: Any = None
    refusal: Refusal | None = None   # the space's kind the sampler refused, when that is what it raised


class GuardedSampler(BaseSampler):
    def __init__(self, inner: BaseSampler, name: str) -> None:
        self.inner, self.name = inner, name
        self.refusals: dict[int, Refusal] = {}   # by trial number: said again, as the run's stop, in after_trial

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
        value = self._call("sample_independent", trial, study, trial, param_name, param_distribution,
                           param=(param_name, param_distribution))
        self._check(trial, param_name, value, param_distribution)
        return value

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._call_outside_trial("before_trial", study, trial)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState,
                    values: list[float] | None) -> None:
        refusal = self.refusals.pop(trial.number, None)
        if refusal is not None and state == TrialState.FAIL:   # the trial failed by it: so would the next ones
            # the refusal is the news, not what the sampler makes of a trial without that parameter (BruteForce
            # took it for a searched-out space and stopped the run after one trial, unsaid)
            with contextlib.suppress(Exception):
                self.inner.after_trial(study, trial, state, values)
            raise StrategyError(refusal.message(self.name, stopped=True))
        stopped_before = getattr(study, "_stop_flag", False)
        self._call_outside_trial("after_trial", study, trial, state, values)
        if getattr(study, "_stop_flag", False) and not stopped_before:
            say_sampler_stopped(self.name, trial.number)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()

    def __getattr__(self, name: str) -> Any:   # the plug-in's own attributes (evolution's population...)
        if name in ("inner", "name", "refusals"):   # not set yet (unpickling): not the plug-in's
            raise AttributeError(name)
        return getattr(self.inner, name)

    def _call(self, hook: str, trial: FrozenTrial, *args: Any,
              param: tuple[str, BaseDistribution] | None = None) -> Any:
        try:
            return getattr(self.inner, hook)(*args)
        except Exception as exc:   # noqa: BLE001 -- whatever a plug-in raises, said as the plug-in's
            space = args[-1] if hook == "sample_relative" else {}
            refusal = refusal_of(hook, trial.number, exc, param, space)
            if refusal is None:
                raise StrategyError(self._raised(hook, trial, exc)) from exc
            self.refusals[trial.number] = refusal
            error = StrategyError(refusal.message(self.name, stopped=False))
            error.refusal = refusal
            raise error from exc

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
        return (f"{raised_in(self.name)}{hook} (trial {trial.number}): {one_line(exc)}. "
                "Fix: correct the strategy class: the error is in its code, not in searchlab or the study's space "
                "(searchlab --debug run ... shows the traceback)")

    def _check(self, trial: FrozenTrial, name: str, value: Any, distribution: BaseDistribution) -> None:
        if not within(distribution, value):
            raise StrategyError(f"strategy '{self.name}' proposed {name}={value!r} for trial {trial.number}, outside "
                                f"the space: {describe(distribution)}; the trial was not trained. Fix: sample from "
                                "the distribution Optuna passes the strategy")


def one_line(exc: Exception) -> str:
    """Its first line only: a plug-in's multi-line message (a dump of its state) broke the run's one-line end;
    without its closing full stop, which the message's own follows."""
    first = str(exc).strip().splitlines()[0].rstrip(". ") if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


# The hooks that meet the space's distributions, and how a sampler there says it cannot take a kind of parameter:
# Optuna's own raise these, naming the distribution ("FloatDistribution.step must be given for BruteForceSampler"),
# their grid ("The parameter name, y, is not found in the given grid") or the search space. Anything else (an
# AttributeError, a ZeroDivisionError, a message about neither) is a bug in the sampler's code.
SAMPLING = ("infer_relative_search_space", "sample_relative", "sample_independent")
REFUSAL_TYPES = (ValueError, NotImplementedError, TypeError)
ABOUT_THE_SPACE = re.compile(r"distribution|search[ _]?space|\bgrid\b|\bstep\b|categorical|continuous|discrete|"
                             r"not supported|only supports?|supports? only", re.IGNORECASE)
ABOUT_CODE = re.compile(r"unsupported operand|not subscriptable|not callable|not iterable|positional argument|"
                        r"keyword argument|has no len", re.IGNORECASE)   # Python's own TypeErrors
TAKES_EVERY_KIND = "a strategy that takes every kind (strategy: {name: tpe}, or random)"


@dataclass(frozen=True)
class Refusal:
    """A sampler's refusal of a parameter of the space: the parameter (when the hook or the message names it)."""

    hook: str
    trial: int
    error: str
    name: str | None
    distribution: BaseDistribution | None

    def message(self, strategy: str, stopped: bool) -> str:
        what = f"space.{self.name} ({describe(self.distribution)})" if self.name and self.distribution else \
            "a parameter of the study's space"
        said = f"{raised_in(strategy)}{self.hook} (trial {self.trial}): {self.error}: it cannot sample {what}"
        if stopped:
            draws = f"draws {self.name}" if self.name else "draws it"
            said += (f", so the run stopped after trial {self.trial}: every trial that {draws} would fail the "
                     "same way")
        else:
            said += "; the cause is the study's space (or the strategy's args), not the strategy's code"
        return f"{said}. Fix: {space_fix(self)}"


def refusal_of(hook: str, trial: int, exc: Exception, param: tuple[str, BaseDistribution] | None,
               search_space: dict[str, BaseDistribution]) -> Refusal | None:
    """`exc` as the sampler's refusal of a parameter's kind; None when it is a bug in the sampler's code."""
    error = one_line(exc)
    if hook not in SAMPLING or not isinstance(exc, REFUSAL_TYPES):
        return None
    if not ABOUT_THE_SPACE.search(error) or ABOUT_CODE.search(error):
        return None
    if param is None:   # sample_relative: the parameter its message names, if any
        param = next(((name, dist) for name, dist in search_space.items()
                      if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w.])", error)), None)
    name, distribution = param if param is not None else (None, None)
    return Refusal(hook, trial, error, name, distribution)


def space_fix(refusal: Refusal) -> str:
    """What to change for the sampler to take the parameter it refused: the space, or its grid."""
    name, dist = refusal.name, refusal.distribution
    leaf = name.rsplit(".", 1)[-1] if name else "key"
    kind = _fix_kind(refusal)
    if kind == "grid":   # GridSampler: a parameter its search_space argument does not list
        return (f"list {name}'s values in the strategy's grid (strategy.args.search_space: {{{name}: [...]}}: "
                f"the sampler draws every parameter from it), or make {name} a fixed value in the space")
    if kind == "log step":   # Optuna takes a step or a log scale, not both
        middle = math.sqrt(dist.low * dist.high)   # type: ignore[union-attr]
        return (f"the strategy needs a finite grid and a log-scale range cannot take a step: write {name} as "
                f"values, e.g. {leaf}: {{choice: [{dist.low:g}, {middle:.2g}, {dist.high:g}]}}, or use "
                f"{CONTINUOUS}")
    if kind == "step":
        return (f"give every float range a step (a finite grid), e.g. {leaf}: {{float: [{dist.low:g}, "
                f"{dist.high:g}], step: {(dist.high - dist.low) / 10:g}}}, or use {CONTINUOUS}")   # type: ignore
    where = f"space.{name}" if name else "the parameter it names"
    return f"write {where} as a kind the strategy takes (its message says which), or use {TAKES_EVERY_KIND}"


CONTINUOUS = "a strategy that takes continuous ranges (strategy: {name: tpe}, or random)"


def _fix_kind(refusal: Refusal) -> str:
    dist, error = refusal.distribution, refusal.error.lower()
    if refusal.name and "grid" in error:
        return "grid"
    if isinstance(dist, FloatDistribution) and dist.step is None and re.search(r"step|infinite|continuous", error):
        return "log step" if dist.log else "step"
    return "other"


def fix_for_all(refused: list[Refusal]) -> str:
    """One fix for each kind of refusal (a log-scale range takes values, not a step), the first one's first."""
    fixes, kinds = [space_fix(refused[0])], {_fix_kind(refused[0])}
    for refusal in refused[1:]:
        if (kind := _fix_kind(refusal)) not in kinds:
            kinds.add(kind)
            fixes.append(f"and space.{refusal.name}: {space_fix(refusal).split(', or use ')[0]}")
    return "; ".join(fixes)




def say_sampler_stopped(name: str, trial: int) -> None:
    """A sampler that ends the study itself (Optuna's GridSampler and BruteForceSampler, once their grid is
    tried): the run ended short of budget.n_trials, and its end said only how many trials ran."""
    print(f"note: strategy '{name}' ended the run itself after trial {trial} (its after_trial called "
          "study.stop(), as Optuna's GridSampler and BruteForceSampler do once every point of their grid was "
          "tried), whatever budget.n_trials says", file=sys.stderr)


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


def refuse_space_it_cannot_sample(sampler: BaseSampler, plugin: str, params: list[Any],
                                  args: dict[str, Any]) -> None:
    """Before the run's folder: a plug-in sampler asked once, in a throwaway study, for each searchable
    parameter, so that one refusing a kind of parameter (BruteForceSampler: a float range without a step) is
    said with every parameter it refuses, at the space's line. Only a refusal counts: anything else the probe
    meets (a bug, a value out of range) is left to the real trials, whose guard says it."""
    if isinstance(sampler, optuna.samplers.GridSampler):
        check_grid(args.get("search_space"), params)
    refused = _refusals_of(GuardedSampler(sampler, plugin), params)
    if not refused:
        return
    first = refused[0]
    also = f"; it refuses {', '.join(f'space.{r.name}' for r in refused[1:])} too" if refused[1:] else ""
    raise ConfigError(f"strategy class '{plugin}' cannot sample {describe(first.distribution)} "
                      f"({first.error}){also}", key=f"space.{first.name}", fix=fix_for_all(refused))


def _refusals_of(guarded: GuardedSampler, params: list[Any]) -> list[Refusal]:
    refused: list[Refusal] = []
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # an experimental sampler's, or its "independent sampling" notes
            trial = throwaway_study(sampler=guarded).ask()
            for param in params:
                try:
                    param.suggest(trial)
                except StrategyError as exc:
                    if exc.refusal is not None:
                        refused.append(exc.refusal)
                except Exception:   # noqa: BLE001 -- not a refusal: see the docstring above
                    continue
    except Exception:   # noqa: BLE001 -- its before_trial broke: the run's first trial says it
        return refused
    finally:
        optuna.logging.set_verbosity(verbosity)
    return refused


def check_grid(grid: Any, params: list[Any]) -> None:
    """GridSampler's search_space against the study's space: a parameter it does not list failed every trial,
    a value outside the space failed its trial, and a key the space does not search was never drawn."""
    if not isinstance(grid, dict):   # the sampler's construction said it
        return
    searched = {param.name: param for param in params}
    for name, values in grid.items():
        if name not in searched:
            raise ConfigError("the grid names a parameter the space does not search", key="strategy.args.search_space",
                              got=name, fix=f"remove it from the grid, or search it in the space; the space searches "
                              f"{', '.join(searched) or 'nothing'}")
        outside = [value for value in values if not within(searched[name].distribution(), value)] \
            if isinstance(values, list) else []
        if outside:
            raise ConfigError(f"the grid's values for {name} must be within the space's {name}: "
                              f"{describe(searched[name].distribution())}", key=f"strategy.args.search_space.{name}",
                              got=outside, fix=f"keep the grid's {name} values within the space, or widen space.{name}")
    if missing := [name for name in searched if name not in grid]:
        raise ConfigError(f"GridSampler draws every parameter from its grid, which does not list "
                          f"{', '.join(missing)}", key="strategy.args.search_space", got=sorted(grid),
                          fix=f"add {missing[0]}: [its values] to strategy.args.search_space, or make "
                          f"{missing[0]} a fixed value in the space")
