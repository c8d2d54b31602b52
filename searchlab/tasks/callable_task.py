"""A user's own objective, `task: {kind: callable, function: "module:function"}`.

The function receives the sampled config (a plain dict: the user's own shape) and the trial context
(`ctx.report(step, metrics)` for pruning), and returns a dict of metrics that includes the objectives.
"""
from __future__ import annotations

from typing import Any

from searchlab.config.schema import ObjectiveConfig, TaskConfig
from searchlab.config.yamlsrc import KeyPath, Located
from searchlab.errors import TrialFailure
from searchlab.registry import import_object


class CallableTask:
    def __init__(self, cfg: TaskConfig) -> None:
        assert cfg.function is not None  # TaskConfig guarantees it for kind=callable
        self.function = import_object(cfg.function, "task function")
        if not callable(self.function):
            raise TypeError(f"task function '{cfg.function}' is not callable")

    def resolve_objective(self, objective: ObjectiveConfig, src: Located, at: KeyPath) -> tuple[str, str]:
        if objective.direction is None:
            raise src.error(at, "a callable task's objective needs a direction", got=objective.metric,
                            fix="add direction: maximize (or minimize)")
        return objective.metric, objective.direction

    def validate_space(self, study: Any, src: Located) -> None:
        """The user's function owns its config shape; nothing to check ahead of time."""

    def prepare(self, study: Any) -> None:
        """Nothing to check: the function reads what it needs."""

    def run(self, config: dict[str, Any], ctx: Any) -> dict[str, float]:
        metrics = self.function(config, ctx)
        if not isinstance(metrics, dict):
            raise TrialFailure(f"the task function returned {type(metrics).__name__}, expected a dict of metrics")
        return metrics
