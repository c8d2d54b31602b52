"""What a classify trial's network costs: parameters, forward FLOPs per image and depth, and the study's
architecture budget on them (budget.max_flops / max_params / max_depth)."""
from __future__ import annotations

import math
from typing import Any

import optuna
import torch
from torch.utils.flop_counter import FlopCounterMode

from searchlab.config.schema import BudgetConfig
from searchlab.data.types import ImageDataset
from searchlab.engine.context import TrialContext

# Costs measured for every trial; objectives may name them (e.g. maximise auc, minimise flops).
COST_METRICS = {"params": "minimize", "flops": "minimize", "depth": "minimize", "train_seconds": "minimize",
                "images_per_second": "maximize"}


def measure_costs(model: torch.nn.Module, data: ImageDataset) -> dict[str, float]:
    """Parameters, forward FLOPs per image (torch's own counter; a multiply-add counts as 2) and depth."""
    params = sum(p.numel() for p in model.parameters())
    h, w = data.image_size
    model.eval()
    counter = FlopCounterMode(display=False)
    unseen: list[float] = []   # recurrent layers whose fused kernel the counter could not see into
    before: list[int] = []

    def after(rnn: torch.nn.Module, args: tuple[Any, ...], _: Any) -> None:
        if counter.get_total_flops() == before.pop():   # e.g. LSTM on CPU; GRU and RNN run as counted matmuls
            unseen.append(recurrent_flops(rnn, args[0]))

    rnns = [m for m in model.modules() if isinstance(m, torch.nn.RNNBase)]
    hooks = [h for m in rnns for h in (m.register_forward_pre_hook(lambda *_: before.append(counter.get_total_flops())),
                                       m.register_forward_hook(after))]
    try:
        with counter, torch.no_grad():
            model(torch.zeros(1, data.channels, h, w))
    finally:
        for hook in hooks:
            hook.remove()
    flops = counter.get_total_flops() + sum(unseen)
    return {"params": float(params), "flops": float(flops), "depth": float(model_depth(model))}


_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


def recurrent_flops(rnn: torch.nn.Module, x: torch.Tensor) -> float:
    """A recurrent layer's matmul FLOPs for one sequence, as torch's counter counts them where it sees them
    (a multiply-add is 2): per step, direction and layer, gates x hidden x (layer input + hidden)."""
    assert isinstance(rnn, torch.nn.RNNBase)
    steps = x.shape[1] if rnn.batch_first else x.shape[0]
    gates, hidden, directions = _GATES[rnn.mode], rnn.hidden_size, 2 if rnn.bidirectional else 1
    per_step = sum(2 * gates * hidden * ((rnn.input_size if layer == 0 else hidden * directions) + hidden)
                   for layer in range(rnn.num_layers))
    return float(steps * directions * per_step)


def analytic_costs(model_spec: dict[str, Any], data: ImageDataset) -> dict[str, float] | None:
    """A ZenNet's costs from its shape alone (~0.1 ms instead of building it and counting, ~30 ms), so a proxy
    search can draw many over-budget candidates cheaply; equal to measure_costs (tests/test_deepmad.py)."""
    if model_spec["architecture"] != "zen":
        return None
    from searchlab.nas.deepmad import analyse, zen_convs

    shape = analyse(zen_convs(model_spec["args"], data.channels, data.image_size), model_spec["num_outputs"])
    return {"params": float(shape.params), "flops": float(shape.flops), "depth": float(shape.depth)}


def model_depth(model: torch.nn.Module) -> int:
    """Weighted layers on the longest path: the architecture's own count when it has one (NAS models), else
    every conv, linear and recurrent layer (sequential models, where that is the path)."""
    if hasattr(model, "conv_depth"):
        return int(model.conv_depth())
    layers = (torch.nn.Conv2d, torch.nn.Linear)
    count = sum(isinstance(m, layers) for m in model.modules())
    return count + sum(m.num_layers for m in model.modules() if isinstance(m, torch.nn.RNNBase))


def over_budget(costs: dict[str, float], budget: BudgetConfig) -> str | None:
    """Which architecture limits the costs break ("over budget: flops 3.1e+07 > max_flops 2e+07"), or None."""
    limits = {"flops": budget.max_flops, "params": budget.max_params, "depth": budget.max_depth}
    # a cost missing (a callable task's trial measures none) breaks no limit
    over = [f"{name} {costs[name]:.4g} > max_{name} {limit:.4g}" for name, limit in limits.items()
            if limit is not None and costs.get(name) is not None and costs[name] > limit]
    return "over budget: " + "; ".join(over) if over else None


def budget_excess(costs: dict[str, float], budget: BudgetConfig) -> float:
    """How far the costs are over the architecture limits (sum of log-ratios over the limits broken; 0 when
    within all): a distance to descend on when looking for a config that fits."""
    limits = {"flops": budget.max_flops, "params": budget.max_params, "depth": budget.max_depth}
    return sum(math.log(max(costs[name], 1.0) / max(limit, 1e-12)) for name, limit in limits.items()
               if limit is not None and costs[name] > limit)


def check_budget(costs: dict[str, float], budget: BudgetConfig, ctx: TrialContext) -> None:
    """Prune a config over the study's architecture budget before it trains, saying which limit it broke."""
    reason = over_budget(costs, budget)
    if reason:
        ctx.record(over_budget=reason)
        _mark_infeasible(costs, budget, ctx.trial)
        raise optuna.TrialPruned(reason)


def _mark_infeasible(costs: dict[str, float], budget: BudgetConfig, trial: Any) -> None:
    """Each broken limit as an Optuna constraint (its excess, relative): TPE then ranks the trial among the
    infeasible, last. As a PRUNED trial without values it sat among the pruned, which TPE counts among the good
    ones while few trials have completed; NSGA-II and optuna-dashboard read the same constraints."""
    set_constraint = getattr(trial, "set_constraint", None)   # Optuna >= 5.0
    if set_constraint is None:
        return
    limits = {"flops": budget.max_flops, "params": budget.max_params, "depth": budget.max_depth}
    for name, limit in limits.items():
        if limit is not None and costs.get(name) is not None and costs[name] > limit:
            set_constraint(f"max_{name}", costs[name] / max(limit, 1e-12) - 1.0)


DRAWS_COSTED = 24       # random configs costed at a run's start, at most: a share seen in 24 is within ~+-20 points
COSTING_SECONDS = 3.0   # ... and for at most about this long: a cells network costs ~0.5 s to build and count
FEWEST_TO_JUDGE = 5


def draws_over_budget_warning(study: Any, candidate: Any) -> str | None:
    """Most random draws of the space over the architecture budgets: random and TPE trials drawn so are pruned
    untrained, yet count in budget.n_trials (11 of 12 trials of a cells study were), which nothing said."""
    import time

    from searchlab.samplers.budget import RANDOM_DRAWS, random_params
    from searchlab.strategy import STAGED, resolve
    from searchlab.tasks import sample_trial_config

    strategy = resolve(study.config.strategy, study.base_dir)
    # evolution's random draws (the staged strategies' too, once their designs ran) look for configs within the
    # budgets, RANDOM_DRAWS at a time: said only when so few fit that they mostly find none
    looks = strategy.name if strategy.class_ is None and (strategy.name == "evolution" or strategy.name in STAGED) \
        else None
    if looks in STAGED and _designs_queued(strategy) >= study.config.budget.n_trials:
        return None   # every trial is one of the stage's designs, queued: no random draw happens
    reasons: list[str | None] = []
    started = time.perf_counter()
    for params in random_params(study, study.config.seed, DRAWS_COSTED):
        if time.perf_counter() - started > COSTING_SECONDS:
            break
        try:
            costs = candidate(study, sample_trial_config(optuna.trial.FixedTrial(params), study)).costs
        except Exception:   # noqa: BLE001 - a draw that cannot be built: its trial says why
            continue
        reasons.append(over_budget(costs, study.config.budget))
    if len(reasons) < FEWEST_TO_JUDGE:
        return None
    over = [r for r in reasons if r]
    if len(over) * 2 < len(reasons) or (looks and (len(reasons) - len(over)) * RANDOM_DRAWS > len(reasons)):
        return None
    if looks:
        return (f"{len(over)} of {len(reasons)} random configs of this space are over the architecture budget (e.g. "
                f"{over[0].removeprefix('over budget: ')}): {looks}'s random draws look for one within it among "
                f"{RANDOM_DRAWS} at a time and, finding none, take one unchecked, pruned untrained but counted in "
                "budget.n_trials. Fix: narrow the space to smaller networks, or loosen the budget")
    return (f"{len(over)} of {len(reasons)} random configs of this space are over the architecture budget (e.g. "
            f"{over[0].removeprefix('over budget: ')}): trials drawn so are pruned untrained but count in "
            "budget.n_trials. Fix: narrow the space to smaller networks, loosen the budget, or search with "
            "evolution (its random start and mutations keep within the budgets)")


def _designs_queued(strategy: Any) -> int:
    """How many designs a zen_nas or deepmad stage queues as the run's first trials (its top_k): those trials
    are not drawn at random (fewer when a reused stage leaves some over the budget, which it says itself)."""
    from searchlab.nas.stage import settings_from_args
    from searchlab.strategy import STAGED

    return settings_from_args(STAGED[strategy.name][0], strategy.name, strategy.args).top_k
