"""The study's architecture budgets as a check a sampler can run on a proposed child before it trains."""
from __future__ import annotations

from typing import Any

from optuna.trial import FixedTrial

from searchlab.samplers.evolution import Feasible


def budget_check(study: Any) -> Feasible | None:
    """params -> within the study's architecture budgets? (None: no budgets, or a task without candidates)."""
    from searchlab.tasks import get_task, sample_trial_config
    from searchlab.tasks.costs import over_budget

    budget = study.config.budget
    task = get_task(study.config.task)
    if all(v is None for v in (budget.max_flops, budget.max_params, budget.max_depth)) \
            or not hasattr(task, "candidate"):
        return None

    def feasible(params: dict[str, Any]) -> bool | None:
        try:
            config = sample_trial_config(FixedTrial(params), study)
            costs = task.candidate(study, config).costs
        except Exception:   # noqa: BLE001 - cannot be told before training: a branch switched on (a parameter
            # these params lack), or a network that cannot be built; the trial says why when it runs. Raised
            # here, inside the sampler's before_trial, it ended the whole run
            return None
        return over_budget(costs, budget) is None

    return feasible
