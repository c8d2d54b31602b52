"""A user's own objective, `task: {kind: callable, function: "module:function"}`.

The function receives the sampled config (a plain dict: the user's own shape) and the trial context
(`ctx.report(step, metrics)` for pruning), and returns a dict of metrics that includes the objectives.
numpy and 0-d torch numbers are taken as the floats they hold (metrics computed with either come as such).
"""
from __future__ import annotations

import hashlib
import inspect
import sys
from pathlib import Path
from typing import Any

from searchlab.config.schema import ObjectiveConfig, TaskConfig
from searchlab.config.yamlsrc import KeyPath, Located
from searchlab.engine.numbers import plain_number
from searchlab.errors import RegistryError, TrialFailure
from searchlab.registry import import_object


class CallableTask:
    def __init__(self, cfg: TaskConfig) -> None:
        assert cfg.function is not None  # TaskConfig guarantees it for kind=callable
        self.function = import_object(cfg.function, "task function")
        _check_signature(self.function, cfg.function)

    def resolve_objective(self, objective: ObjectiveConfig, src: Located, at: KeyPath) -> tuple[str, str]:
        if objective.direction is None:
            raise src.error(at, "a callable task's objective needs a direction", got=objective.metric,
                            fix="add direction: maximize (or minimize)")
        return objective.metric, objective.direction

    def validate_space(self, study: Any, src: Located) -> None:
        """The user's function owns its config shape; only budget limits it would never be held to are refused."""
        _check_no_architecture_limits(study, src)

    def prepare(self, study: Any) -> None:
        """Nothing to check: the function reads what it needs."""

    def run(self, config: dict[str, Any], ctx: Any) -> dict[str, float]:
        try:
            metrics = self.function(config, ctx)
        except SystemExit as exc:   # the user's code ending the process: a failure of this trial, not a lost worker
            raise TrialFailure(f"the task function called sys.exit({exc.code!r})") from None
        if not isinstance(metrics, dict):
            raise TrialFailure(f"the task function returned {type(metrics).__name__}, expected a dict of metrics. "
                               "Fix: end it with return {'metric': value, ...}, naming every objective")
        return {name: plain_number(value) for name, value in metrics.items()}


def _check_no_architecture_limits(study: Any, src: Located) -> None:
    """budget.max_params / max_flops / max_depth are measured of the network the classify task builds; a callable
    task's network (if any) is its own, never costed, so a limit was silently ignored and every trial ran. A
    function may report such a cost as a metric, but nothing compares a metric with these limits."""
    from searchlab.strategy import STAGED

    if study.config.strategy.name in STAGED:   # their own refusal, when the run starts, names the task itself
        return
    objective = ", ".join(f"{{metric: {metric}, direction: {direction}}}" for metric, direction in study.objectives)
    for key in ("max_params", "max_flops", "max_depth"):
        limit = getattr(study.config.budget, key)
        if limit is not None:
            metric = key.removeprefix("max_")
            raise src.error(("budget", key), "a callable task's trials are not costed (searchlab measures params, "
                            "flops and depth of the networks the classify task builds), so this limit would be "
                            "ignored", got=limit, fix=f"remove budget.{key}; to keep within it, end an over-limit "
                            "trial in your function (raise optuna.TrialPruned(reason)), or return the cost as a "
                            f"metric and make it an objective, e.g. objective: [{objective}, {{metric: {metric}, "
                            "direction: minimize}]")


def code_digest(spec: str) -> str | None:
    """A digest of the file that defines the task function (None if it has none): a resumed study whose
    function changed is warned about, since its new values would be ranked with values of the old code."""
    module_name, _, name = spec.partition(":")
    module = sys.modules.get(module_name)
    files = {getattr(module, "__file__", None), _source_file(getattr(module, name, None))}
    paths = sorted({Path(f).resolve() for f in files if f and Path(f).is_file()})   # one file: its digest as before
    if not paths:
        return None
    digest = hashlib.sha256()
    for path in paths:   # a package's __init__ importing the function from its own file: that file counts
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _source_file(function: Any) -> str | None:
    try:
        return inspect.getsourcefile(function)
    except TypeError:   # a builtin
        return None


def _check_signature(function: Any, spec: str) -> None:
    """f(config, ctx) is what every trial calls: a function that cannot take it would fail every trial."""
    if not callable(function):
        raise RegistryError(f"task function '{spec}' is a {type(function).__name__}, not a function. Fix: name a "
                            "function def f(config, ctx) -> dict of metrics")
    asynchronous = inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)
    if asynchronous or inspect.isgeneratorfunction(function):   # every trial failed, "returned coroutine"
        raise RegistryError(f"task function '{spec}' is {'an async' if asynchronous else 'a generator'} function: "
                            "calling it returns no metrics. Fix: a plain def f(config, ctx) returning the dict "
                            "(run async code inside it with asyncio.run)")
    try:
        inspect.signature(function).bind({}, None)
    except TypeError as exc:
        raise RegistryError(f"task function '{spec}' cannot be called as f(config, ctx) ({exc}). Fix: define it "
                            "as def f(config, ctx): ... return {'metric': value}") from None
    except ValueError:   # a builtin without a signature: called as it is
        return
