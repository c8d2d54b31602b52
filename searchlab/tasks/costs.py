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
    """A ZenNet's or CellNet's costs from its config alone, without building it: a ZenNet in ~0.1 ms instead of
    ~30 ms, a CellNet in ~0.1 ms instead of 0.5-1.5 s, so a proxy search, a random start and the check before a run
    can cost many draws cheaply. Equal to measure_costs (tests/test_deepmad.py, tests/test_nascost_cells.py)."""
    if model_spec["architecture"] == "cells":
        return cell_costs(model_spec["args"], data.channels, model_spec["num_outputs"], data.image_size)
    if model_spec["architecture"] != "zen":
        return None
    from searchlab.nas.deepmad import analyse, zen_convs

    shape = analyse(zen_convs(model_spec["args"], data.channels, data.image_size), model_spec["num_outputs"])
    return {"params": float(shape.params), "flops": float(shape.flops), "depth": float(shape.depth)}


def cell_costs(args: dict[str, Any], in_channels: int, num_outputs: int, size: tuple[int, int]) -> dict[str, float]:
    """A CellNet's params, FLOPs (as torch's counter counts them: convs and the classifier, a multiply-add 2; pools,
    batch norms and sums 0) and conv_depth, walked as models/cells.py builds it. Invalid args raise its ValueError."""
    from searchlab.models.cells import _cell_check_genotype, _cell_reduction_indices

    normal, reduce = args["normal"], args["reduce"]
    _cell_check_genotype(normal, reduce)
    channels, stem = args.get("channels", 16), args.get("stem_multiplier", 3) * args.get("channels", 16)
    reductions = _cell_reduction_indices(args.get("cells", 5), args.get("reductions", 2))
    pixels = size[0] * size[1]
    params, flops = in_channels * stem * 9 + 2 * stem, 2 * pixels * in_channels * stem * 9   # 3x3 stem, BN
    state_p = (stem, size, 1)            # (channels, side, conv depth) of the cell outputs one and two back
    state_pp = state_p
    for i in range(args.get("cells", 5)):
        reduction = i in reductions
        channels *= 2 if reduction else 1
        cell = _one_cell(reduce if reduction else normal, state_pp, state_p, channels, reduction)
        params, flops = params + cell[0], flops + cell[1]
        state_pp, state_p = state_p, cell[2]
    width = state_p[0]   # the classifier: Linear(width, num_outputs)
    return {"params": float(params + width * num_outputs + num_outputs),
            "flops": float(flops + 2 * width * num_outputs), "depth": float(state_p[2] + 1)}


def _half(side: tuple[int, int]) -> tuple[int, int]:
    return (side[0] + 1) // 2, (side[1] + 1) // 2   # every stride-2 op of a cell: ceil(h/2) x ceil(w/2)


State = tuple[int, tuple[int, int], int]   # channels, side (h, w), conv depth to it


def _one_cell(nodes: list[dict[str, Any]], s0: State, s1: State, c: int, reduction: bool) -> tuple[int, int, State]:
    """(params, FLOPs, output state) of one cell (models/cells.py _cell_Block): two 1x1 preprocessings, then each
    node's two ops on the states they read."""
    side = s1[1]
    n = side[0] * side[1]
    # preprocess0 (a FactorizedReduce after a reduction cell, else a ReLUConvBN) and preprocess1 alike: c_in x c 1x1
    # weights + BN, output at s1's side (the FactorizedReduce halves s0's), depth 1 each
    params, flops = s0[0] * c + 2 * c + s1[0] * c + 2 * c, 2 * n * s0[0] * c + 2 * n * s1[0] * c
    depths, sides = [s0[2] + 1, s1[2] + 1], [side, side]
    for node in nodes:
        ends = []
        for op, source in ((node["op1"], node["in1"]), (node["op2"], node["in2"])):
            stride = 2 if reduction and source < 2 else 1
            out = _half(sides[source]) if stride == 2 else sides[source]
            op_params, per_pixel, convs = _op_costs(op, c, stride)
            params, flops = params + op_params, flops + per_pixel * out[0] * out[1]
            ends.append(0 if convs is None else depths[source] + convs)   # `none` starts afresh
        depths.append(max(ends))
        sides.append(out)
    return params, flops, (len(nodes) * c, sides[-1], max(depths[2:]))


def _op_costs(op: str, c: int, stride: int) -> tuple[int, int, int | None]:
    """(params, FLOPs per output pixel, convs on its chain: None for `none`) of one of models/cells.py's ops."""
    if op.startswith(("sep_conv_", "dil_conv_")):
        k, times = int(op[-1]), 2 if op.startswith("sep") else 1   # sep: depthwise kxk + 1x1 + BN, twice
        return times * (c * k * k + c * c + 2 * c), times * 2 * (c * k * k + c * c), 2 * times
    if op == "skip_connect" and stride == 2:   # FactorizedReduce(c, c): two side-by-side 1x1 halves + BN
        return c * c + 2 * c, 2 * c * c, 1
    if op == "none":
        return 0, 0, None
    return 0, 0, 0   # pools, identity


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
# ... and for at most about this long: zen and cells networks cost ~1 ms (analytic_costs); a timm one is built and
# counted (~0.1-1 s)
COSTING_SECONDS = 3.0
FEWEST_TO_JUDGE = 5     # fewer costed draws than this say nothing of the share: the warning says it cannot tell


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
    started, cut = time.perf_counter(), False
    for params in random_params(study, study.config.seed, DRAWS_COSTED):
        if time.perf_counter() - started > COSTING_SECONDS:
            cut = True
            break
        try:
            costs = candidate(study, sample_trial_config(optuna.trial.FixedTrial(params), study)).costs
        except Exception:   # noqa: BLE001 - a draw that cannot be built: its trial says why
            continue
        reasons.append(over_budget(costs, study.config.budget))
    if len(reasons) < FEWEST_TO_JUDGE:   # silent here, a space mostly over the budget went unsaid
        why = f"costing took over {COSTING_SECONDS:g} s" if cut else "the others could not be built"
        return (f"could not tell what share of this space's random configs is within the architecture budget: only "
                f"{len(reasons)} of {DRAWS_COSTED} draws were costed ({why}). Trials drawn over it are pruned "
                "untrained but count in budget.n_trials. Fix: run a few trials first and see how many are pruned "
                "(searchlab status)")
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
