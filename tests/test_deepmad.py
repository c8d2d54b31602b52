"""DeepMAD: analytic network shape (checked against the built network), entropy, rho, and the strategy."""
from __future__ import annotations

import math
import random

import optuna
import pytest
import torch
from optuna.trial import TrialState
from torch.utils.flop_counter import FlopCounterMode

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError, SearchlabError
from searchlab.models.zen import ZenNet
from searchlab.nas.deepmad import analyse, zen_convs


def random_args(rng: random.Random) -> dict:
    blocks = [{"type": rng.choice(["conv", "basic", "bottleneck", "inverted"]), "width": rng.choice([8, 16, 24]),
               "depth": rng.randint(1, 3), "kernel": rng.choice([3, 5, 7]), "ratio": rng.choice([0.25, 1.0, 3.0]),
               "stride": rng.choice([1, 2])} for _ in range(rng.randint(1, 4))]
    return {"stem": rng.choice([8, 12]), "blocks": blocks, "head": rng.choice([None, 32]), "dropout": 0.0}


@pytest.mark.parametrize("seed", range(8))
def test_analytic_flops_params_depth_match_the_built_network(seed):
    rng = random.Random(seed)
    args, size, channels = random_args(rng), rng.choice([(28, 28), (27, 31)]), rng.choice([1, 3])
    net = ZenNet(channels, 3, **args).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(torch.zeros(1, channels, *size))
    shape = analyse(zen_convs(args, channels, size), 3)
    assert shape.flops == counter.get_total_flops()
    assert shape.params == sum(p.numel() for p in net.parameters())
    assert shape.depth == net.conv_depth()


def test_entropy_and_rho_by_hand_for_two_stages():
    args = {"stem": 8, "blocks": [{"type": "conv", "width": 16, "depth": 1, "kernel": 3, "ratio": 1.0, "stride": 2}]}
    shape = analyse(zen_convs(args, 1, (28, 28)), 2, last_weight=8.0)
    e_stem, e_conv = 0.5 * math.log(1 * 9), 0.5 * math.log(8 * 9)      # 0.5 log(c_in k^2)
    stage0 = math.log(28 * 28 * 8) * e_stem                            # the stem alone, 28x28x8
    stage1 = math.log(14 * 14 * 16) * (e_stem + e_conv)                # cumulative, 14x14x16
    assert shape.entropy == pytest.approx(stage0 + 8.0 * stage1)
    assert shape.rho == pytest.approx(max(1 / 9, 2 / math.sqrt(9 * 72)))
    assert shape.stage_widths == (8, 16)


@pytest.mark.parametrize("kind, ratio", [("basic", 1.0), ("bottleneck", 2.0), ("inverted", 2.0), ("inverted", 0.5)])
def test_a_stage_ends_at_the_last_conv_before_a_strided_layer_not_at_its_expansion(kind, ratio):
    """A bottleneck or inverted layer's 1x1 expansion runs before its strided conv: taken as the end of the
    stage before, it gave that stage its width (48 for a 16-wide stage) and refused increasing designs."""
    blocks = [{"type": "conv", "width": 16, "depth": 1, "kernel": 3, "ratio": 1.0, "stride": 1},
              {"type": kind, "width": 24, "depth": 1, "kernel": 3, "ratio": ratio, "stride": 2},
              {"type": "basic", "width": 32, "depth": 1, "kernel": 3, "ratio": 1.0, "stride": 2}]
    convs = zen_convs({"stem": 16, "blocks": blocks, "head": 64}, 1, (28, 28))
    shape = analyse(convs, 2)
    assert shape.stage_widths == (16, 24, 64)
    main = [c for c in convs if c.main]
    second_end = max(i for i, c in enumerate(main) if c.cout == 24)   # the strided layer's last conv

    def e(upto: int) -> float:
        return sum(0.5 * math.log(c.width) for c in main[:upto])

    # stages 28x28x16 (the stem and the conv), 14x14x24 (to the strided layer's last conv), then 7x7x64
    assert shape.entropy == pytest.approx(math.log(28 * 28 * 16) * e(2) + math.log(14 * 14 * 24) * e(second_end + 1)
                                          + 8.0 * math.log(7 * 7 * 64) * e(len(main)))


def test_wider_means_more_entropy_and_deeper_narrower_means_higher_rho():
    def shape(width: int, depth: int):
        block = {"type": "basic", "width": width, "depth": depth, "kernel": 3, "ratio": 1.0, "stride": 1}
        return analyse(zen_convs({"stem": 8, "blocks": [block]}, 1, (28, 28)), 2)

    assert shape(64, 2).entropy > shape(16, 2).entropy
    assert shape(8, 6).rho > shape(64, 1).rho


STUDY = """
name: dm
task: classify
space:
  model:
    kind: zen
    stem: {choice: [8, 16]}
    blocks:
      b1: {type: {choice: [conv, basic]}, width: {choice: [8, 16, 32]}, depth: {int: [1, 3]}, stride: 2}
      b2: {type: {choice: [basic, bottleneck]}, width: {choice: [16, 32, 64]}, kernel: {choice: [3, 5]}, stride: 2}
  train: {batch_size: 128}
  optim: {lr: {float: [1.0e-3, 1.0e-2], log: true}}
strategy: {name: deepmad, args: {top_k: 2, iterations: 3, popsize: 5}}
pruner: none
budget: {n_trials: 2, epochs: 1, max_flops: FLOPS}
"""


def test_designs_meet_the_constraints_and_the_best_train_first(write_study, tmp_path):
    run_study(load_study(write_study(STUDY.replace("FLOPS", "4.0e+6"))), progress=False)
    storage = f"sqlite:///{tmp_path / 'run' / 'study.db'}"
    designs = optuna.load_study(study_name="dm.deepmad", storage=storage).trials
    main = optuna.load_study(study_name="dm", storage=storage).trials
    feasible = [t for t in designs if t.state == TrialState.COMPLETE]
    assert feasible and any(t.state == TrialState.PRUNED for t in designs)
    for t in feasible:
        widths = t.user_attrs["stage_widths"]
        assert t.user_attrs["flops"] <= 4e6 and t.user_attrs["rho"] <= 0.5 and widths == sorted(widths)
        assert t.value == t.user_attrs["entropy"]
    top = sorted(feasible, key=lambda t: -t.value)[:2]
    assert [t.params for t in main] == [{**t.params, "optim.lr": m.params["optim.lr"]} for t, m in zip(top, main)]
    assert all(t.state == TrialState.COMPLETE and t.user_attrs["flops"] <= 4e6 for t in main)


def test_an_impossible_budget_is_said_plainly(write_study):
    with pytest.raises(SearchlabError, match="no architecture found in this space fits the budget"):
        run_study(load_study(write_study(STUDY.replace("FLOPS", "1.0e+3"))), progress=False)


def test_an_impossible_effectiveness_bound_is_said_by_the_solver(write_study):
    text = STUDY.replace("FLOPS", "4.0e+6").replace("popsize: 5}", "popsize: 5, rho0: 0.001}")
    with pytest.raises(SearchlabError, match=r"deepmad found no design within the budgets and rho <= rho0 "
                                             r"\(0\.001\) among the \d+ it solved for in this space; the nearest: "
                                             r"rho \d\.\d+ > 0\.001\. Fix: loosen"):
        run_study(load_study(write_study(text)), progress=False)


def test_a_branching_model_space_is_refused(write_study):
    text = STUDY.replace("FLOPS", "4.0e+6").replace("  model:\n    kind: zen\n", "  model:\n    one_of:\n"
                                                     "      cnn: {depth: {int: [1, 2]}}\n      zen:\n")
    text = text.replace("\n    stem:", "\n        stem:").replace("\n    blocks:", "\n        blocks:")
    text = text.replace("\n      b1:", "\n          b1:").replace("\n      b2:", "\n          b2:")
    with pytest.raises(ConfigError, match="exists only on a branch"):
        run_study(load_study(write_study(text)), progress=False)


def test_the_solver_stops_at_the_studys_deadline_keeping_what_it_found(write_study):
    import time

    from searchlab.nas.deepmad_design import DeepMADSettings, Program

    class Counted(Program):
        calls = 0

        def objective(self, x):
            Counted.calls += 1
            return super().objective(x)

    study = load_study(write_study(STUDY.replace("FLOPS", "4.0e+6")))
    settings = DeepMADSettings(top_k=2, iterations=50, popsize=5)
    full = Counted(study, settings).solve()
    full_calls, Counted.calls = Counted.calls, 0
    stopped = Counted(study, settings).solve(deadline=time.time())
    assert Counted.calls < full_calls / 10           # the initial population and one generation, not fifty
    assert 0 < len(stopped) <= len(full)


def test_a_stepped_float_is_solved_on_its_grid_so_every_design_is_a_valid_trial():
    """A value off the grid of {float: [0, 0.3], step: 0.1} made Optuna refuse the design, after the solve."""
    from searchlab.nas.deepmad_design import _bounds, _middle, _value
    from searchlab.space.params import FloatParam

    dropout = FloatParam("model.dropout", 0.0, 0.3, step=0.1)
    low, high = _bounds(dropout)
    values = [_value(dropout, low + (high - low) * k / 97) for k in range(98)] + [_middle(dropout)]
    assert all(dropout.distribution()._contains(v) for v in values)
    assert sorted(set(round(v, 9) for v in values)) == [0.0, 0.1, 0.2, 0.3]


def test_designs_of_one_network_differing_only_in_dropout_are_queued_once(write_study, tmp_path):
    """Designs recorded no architecture, so the stage told them apart by params, dropout included: the top-k
    trained one network k times."""
    text = STUDY.replace("FLOPS", "4.0e+6").replace("    kind: zen\n", "    kind: zen\n    dropout: {float: [0.0, 0.3]}\n")
    run_study(load_study(write_study(text.replace("n_trials: 2", "n_trials: 3"))), progress=False)
    storage = f"sqlite:///{tmp_path / 'run' / 'study.db'}"
    designs = optuna.load_study(study_name="dm.deepmad", storage=storage).trials
    main = optuna.load_study(study_name="dm", storage=storage).trials
    assert all("dropout" not in t.user_attrs["architecture"] for t in designs)
    networks = [t.user_attrs["architecture"] for t in designs if t.state == TrialState.COMPLETE]
    assert len(networks) > len(set(networks))   # the case: designs of one network, differing in dropout
    queued = [t.user_attrs["architecture"] for t in main if "entropy" in t.user_attrs]
    assert len(queued) == len(set(queued)) == 2


def test_a_boolean_for_a_numeric_argument_is_refused():
    """rho0: true was read as 1."""
    from searchlab.nas.deepmad_design import DeepMADSettings
    from searchlab.nas.stage import settings_from_args

    with pytest.raises(ConfigError, match=r"strategy\.args\.rho0: deepmad arguments must be finite positive numbers "
                                          r"\(got True\)"):
        settings_from_args(DeepMADSettings, "deepmad", {"rho0": True})
    for value in (float("nan"), float("inf")):   # nan passed `<= 0`; neither bounds a design
        with pytest.raises(ConfigError, match="must be finite positive numbers"):
            settings_from_args(DeepMADSettings, "deepmad", {"rho0": value})
