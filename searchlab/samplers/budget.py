"""What a sampler may ask of the study before a trial trains: whether a proposed child is within the
architecture budgets, a random config that is, and which configs train the same network alike."""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Hashable
from typing import Any

import optuna
from optuna.trial import FixedTrial

from searchlab.samplers.evolution import Identity
from searchlab.throwaway import throwaway_study

RANDOM_DRAWS = 20     # random configs tried for one within the budgets, before the trial takes an unchecked draw
# ... for about this long at most: zen and cells networks are costed from their config (~1 ms each); a network
# costed by building it (timm, ~0.1-1 s) may not get through all 20
RANDOM_SECONDS = 5.0
# searches of all RANDOM_DRAWS that found none, after which the run stops looking: none in 40 draws puts the share
# that fits below ~7% (95% bound), where each further search would mostly cost draws for nothing. A search cut by
# RANDOM_SECONDS before its 20 draws does not count: it says little about the share (a cells space of which ~15%
# fits was given up on after two cut searches of ~3 draws each, when each cells network was built to cost it)
GIVE_UP_AFTER = 2


class BudgetCheck:
    """params -> within the study's architecture budgets? (True, False, or None: cannot be told from these
    params). Also draws random configs that fit, for a strategy's random start."""

    def __init__(self, study: Any, task: Any, limited: bool = True) -> None:
        self.study, self.task = study, task
        self.limited = limited   # False: no budgets to keep, every config fits; draws only skip repeats
        self.misses = 0   # random_fitting calls that costed all RANDOM_DRAWS draws and found nothing

    def __call__(self, params: dict[str, Any]) -> bool | None:
        from searchlab.tasks import sample_trial_config
        from searchlab.tasks.costs import over_budget

        if not self.limited:
            return True
        try:
            config = sample_trial_config(FixedTrial(params), self.study)
            if _outputs_constant(config, self.task):   # no network to train, however cheap
                return False
            costs = self.task.candidate(self.study, config).costs
        except Exception:   # noqa: BLE001 - cannot be told before training: a branch switched on (a parameter
            # these params lack), or a network that cannot be built; the trial says why when it runs. Raised
            # here, inside the sampler's before_trial, it ended the whole run
            return None
        return over_budget(costs, self.study.config.budget) is None

    def random_fitting(self, seed: int, new: Callable[[dict[str, Any]], bool] = lambda params: True,
                       ) -> dict[str, Any] | None:
        """A random config within the budgets that `new` says the study has not drawn yet (the first of
        RANDOM_DRAWS draws that does, looked for during about RANDOM_SECONDS), or None."""
        if self.misses >= GIVE_UP_AFTER:
            return None
        started = time.perf_counter()
        for params in random_params(self.study, seed, RANDOM_DRAWS):
            if time.perf_counter() - started > RANDOM_SECONDS:
                return None   # cut short: not a miss (see GIVE_UP_AFTER)
            if new(params) and self(params):
                return params
        self.misses += 1
        return None


def _outputs_constant(config: dict[str, Any], task: Any) -> bool:
    """A cells network whose last cell has only `none` ops (depth 1, within any budget) predicts a constant: as
    fitting, the check before the run let an unreachable max_depth pass, and evolution could breed such a child."""
    from searchlab.tasks.cells_checks import outputs_constant
    from searchlab.tasks.classify import ClassifyTask, parse_trial_config

    return isinstance(task, ClassifyTask) and outputs_constant(parse_trial_config(config, None).model)


def random_params(study: Any, seed: int, n: int) -> list[dict[str, Any]]:
    """n configs drawn at random from the study's space, as a trial's params."""
    from searchlab.tasks import sample_trial_config

    draws = throwaway_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    drawn = []
    for _ in range(n):
        trial = draws.ask()
        sample_trial_config(trial, study)
        drawn.append(dict(trial.params))
    return drawn


def budget_check(study: Any) -> BudgetCheck:
    """The study's budget check. Without budgets (or for a task without candidates to cost) every config fits,
    and its random draws still skip configs the study already has: in a space of a few dozen configs,
    evolution's random start of 20 had drawn the same one twice."""
    from searchlab.tasks import get_task

    budget = study.config.budget
    task = get_task(study.config.task)
    limited = any(v is not None for v in (budget.max_flops, budget.max_params, budget.max_depth)) \
        and hasattr(task, "candidate")
    return BudgetCheck(study, task, limited)


def config_identity(study: Any) -> Identity:
    """params -> what makes two trials train alike: their config with the architecture as built (its readable
    form), not as drawn. Zen ratios 0.5 and 1 of an 8-wide block build the same network; evolution took them
    for two configs, trained both, and the luckier seed's copy was exported as best."""
    from searchlab.tasks import sample_trial_config

    def identity(params: dict[str, Any]) -> Hashable | None:
        try:
            config = sample_trial_config(FixedTrial(params), study)
            return json.dumps(_as_built(config, study), sort_keys=True, default=str)
        except Exception:   # noqa: BLE001 - params of an older space, or a branch these params lack
            return None

    return identity


def _as_built(config: dict[str, Any], study: Any) -> dict[str, Any]:
    """The config with the model's described settings replaced by the description of what they build."""
    from searchlab.tasks import get_task
    from searchlab.tasks.classify import parse_trial_config

    model = config.get("model")
    if not isinstance(model, dict) or not hasattr(get_task(study.config.task), "candidate"):
        return config   # only classify configs hold a network spec to describe
    spec = parse_trial_config(config, None).model
    described = getattr(spec, "DESCRIBED", ())
    if not described:
        return config
    kept = {key: value for key, value in model.items() if key not in described}
    return {**config, "model": {**kept, "built": spec.describe()}}
