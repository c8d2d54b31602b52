"""Searched architectures in classify studies: zen.yaml and cells.yaml spaces, budgets, FLOPs, torch-only export."""
from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
import torch
from optuna.trial import TrialState

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError
from searchlab.export.exporter import export_run
from searchlab.models import cells, standalone, zen
from searchlab.tasks.costs import model_depth
from torch_only import predict_without_searchlab

STUDY = """
name: nas
task: classify
space:
  model: MODEL
  train: {batch_size: 128}
strategy: random
pruner: none
budget: {n_trials: N, epochs: 1BUDGET}
"""
SMALL_ZEN = "{kind: zen, stem: 8, blocks: {b1: {type: basic, width: 8, stride: 2}, b2: {type: inverted, width: 16}}}"
NORMAL = [{"op1": "sep_conv_3x3", "in1": 0, "op2": "skip_connect", "in2": 1},
          {"op1": "dil_conv_3x3", "in1": 2, "op2": "max_pool_3x3", "in2": 0}]
REDUCE = [{"op1": "avg_pool_3x3", "in1": 1, "op2": "sep_conv_5x5", "in2": 0},
          {"op1": "skip_connect", "in1": 2, "op2": "none", "in2": 1}]


def _study(write_study, model: str, n: int = 1, budget: str = ""):
    return load_study(write_study(STUDY.replace("MODEL", model).replace("N", str(n)).replace("BUDGET", budget)))


def _trials(tmp_path):
    return optuna.load_study(study_name="nas", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials


@pytest.mark.parametrize("space", ["zen.yaml", "cells.yaml"])
def test_shipped_nas_spaces_compile_and_fit_the_classify_task(write_study, space):
    study = _study(write_study, f"{{include: {space}}}")   # probes every choice and range end through the schema
    assert study.space is not None


def independent_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """2 x multiply-adds of every conv and linear layer, from the shapes their forward hooks see."""
    total = 0

    def conv(module, inputs, output):
        nonlocal total
        kh, kw = module.kernel_size
        total += 2 * output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear(module, inputs, output):
        nonlocal total
        total += 2 * output.numel() * module.in_features

    hooks = [m.register_forward_hook(conv if isinstance(m, torch.nn.Conv2d) else linear)
             for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model.eval()(x)
    for hook in hooks:
        hook.remove()
    return total


@pytest.mark.parametrize("spec", [
    {"architecture": "zen", "args": {"stem": 8, "head": 32, "blocks": [
        {"type": "conv", "width": 8}, {"type": "basic", "width": 16, "stride": 2, "kernel": 5},
        {"type": "bottleneck", "width": 16, "depth": 2}, {"type": "inverted", "width": 24, "stride": 2, "kernel": 7}]}},
    {"architecture": "cells", "args": {"normal": NORMAL, "reduce": REDUCE, "channels": 8, "cells": 3, "reductions": 2}},
    {"architecture": "plain_cnn", "args": {"depth": 2, "width": 8}},
])
def test_flop_count_matches_an_independent_count(write_study, spec):
    from searchlab.tasks.costs import measure_costs

    net = standalone.build_model({**spec, "in_channels": 1, "num_outputs": 2})

    class Data:   # what measure_costs reads of a data set
        image_size, channels = (28, 28), 1

    costs = measure_costs(net, Data())
    assert costs["flops"] == independent_flops(net, torch.zeros(1, 1, 28, 28)) > 0
    assert costs["params"] == sum(p.numel() for p in net.parameters())
    assert costs["depth"] == model_depth(net) > 1


def test_over_budget_configs_are_pruned_before_training_with_the_reason(write_study, tmp_path):
    space = "{include: zen.yaml}"
    run_study(_study(write_study, space, n=6, budget=", max_flops: 2.0e+7, max_depth: 40"), progress=False)
    trials = _trials(tmp_path)
    over = [t for t in trials if t.state == TrialState.PRUNED]
    fits = [t for t in trials if t.state == TrialState.COMPLETE]
    assert over and all("over budget: flops" in t.user_attrs["over_budget"] for t in over)
    assert all(t.user_attrs["flops"] > 2e7 for t in over) and all("checkpoint" not in t.user_attrs for t in over)
    assert all(t.user_attrs["flops"] <= 2e7 and t.user_attrs["depth"] <= 40 for t in fits)
    assert all(t.user_attrs["architecture"].startswith("ZenNet(stem ") for t in trials)


@pytest.mark.parametrize("model", [SMALL_ZEN, "{kind: cells, channels: 4, cells: 2, reductions: 1, normal: NODES, "
                                              "reduce: NODES}"])
def test_searched_architectures_export_as_torch_only_code(write_study, tmp_path, breastmnist_root, model):
    nodes = "{n1: {op1: sep_conv_3x3, in1: 0, op2: max_pool_3x3, in2: 1}, n2: {op1: skip_connect, in1: 2, " \
            "op2: dil_conv_5x5, in2: 0}}"
    run_study(_study(write_study, model.replace("NODES", nodes)), progress=False)
    (trial,) = _trials(tmp_path)
    assert trial.state == TrialState.COMPLETE
    if "cells" in model:
        assert trial.user_attrs["architecture"].startswith("Genotype(normal=[('sep_conv_3x3', 0), ('max_pool_3x3', 1)")
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=100)
    fresh = predict_without_searchlab(tmp_path / "best", breastmnist_root / "breastmnist.npz")
    saved = json.loads((tmp_path / "best" / "test_predictions.json").read_text())["probabilities"]
    assert np.allclose(fresh, saved, atol=1e-6) and config["model"]["architecture"] in ("zen", "cells")
    source = (tmp_path / "best" / "model.py").read_text()
    own, other = ("CellNet", "ZenNet") if "cells" in model else ("ZenNet", "CellNet")
    assert f"class {own}" in source and "import searchlab" not in source
    assert f"class {other}" not in source and "class TimmClassifier" not in source   # only what it needs


def test_architectures_register_and_unknown_ones_are_refused():
    assert standalone.ARCHITECTURES["zen"] is zen.ZenNet and standalone.ARCHITECTURES["cells"] is cells.CellNet
    with pytest.raises(ValueError, match="unknown architecture 'os.system'"):
        standalone.build_model({"architecture": "os.system", "args": {}, "in_channels": 1, "num_outputs": 2})


@pytest.mark.parametrize("model, key", [
    ("{kind: cells, normal: {n1: {in1: 2}}, reduce: {n1: {}}}", "space.model.normal.n1.in1: not a valid classify config: node 0 of the normal cell can only read states 0..1 (the two inputs and earlier nodes) (got 2). Fix: in1: {int: [0, 1]} at most"),
    ("{kind: cells, normal: {n1: {}, n2: {in2: {int: [0, 4]}}}, reduce: {n1: {}, n2: {}}}",   # named at space.model
     "space.model.normal.n2.in2: not a valid classify config: node 1 of the normal cell can only read states 0..2"),
    ("{kind: cells, normal: {n1: {in1: {float: [0, 1]}}}, reduce: {n1: {}}}", "Fix: search whole numbers: in1: "
     "{int: [0, 1]}"),
    ("{kind: cells, channels: {float: [7.5, 16.5]}, normal: {n1: {}}, reduce: {n1: {}}}", "Fix: search whole numbers: "
     "channels: {int: [8, 16]}"),
    ("{kind: zen, blocks: {b1: {type: none}}}", "every slot is 'none'"),
    ("{kind: zen, blocks: {b1: {type: basic, kernel: 4}}}", "model.blocks.b1.kernel"),
])
def test_bad_architectures_are_named(write_study, model, key):
    with pytest.raises(ConfigError) as err:
        _study(write_study, model)
    assert key in str(err.value)


@pytest.mark.parametrize("seed", range(8))
def test_searched_reductions_beyond_searched_cells_are_refused_whatever_the_seed(write_study, seed):
    """The probes met reductions 4 with cells 3 on seeds 4 and 6 only: the others loaded, and failed trials."""
    model = "{kind: cells, cells: {int: [3, 6]}, reductions: REDUCTIONS, normal: {n1: {}}, reduce: {n1: {}}}"
    text = STUDY.replace("N", "2").replace("BUDGET", "") + f"seed: {seed}\n"
    with pytest.raises(ConfigError, match="space.model.reductions: reductions reach 4 while cells go down to 3"):
        load_study(write_study(text.replace("MODEL", model.replace("REDUCTIONS", "{int: [1, 4]}"))))
    load_study(write_study(text.replace("MODEL", model.replace("REDUCTIONS", "{choice: [1, 3]}"))))


def test_a_plain_cnn_deeper_than_its_image_is_warned_about_with_the_depth_that_fits():
    from searchlab.tasks.shape_advice import stages_that_fit, too_deep_warning

    assert [stages_that_fit(side) for side in (1, 2, 7, 28, 56)] == [1, 2, 4, 6, 7]
    configs = [{"model": {"depth": depth, "input_scale": 1}} for depth in (3, 8)]
    assert too_deep_warning(configs, (28, 28)) == (
        "space.model.depth reaches 8 on 28-px images (input_scale 1): stages 7-8 see 1x1 maps, where pooling halves "
        "nothing and a convolution sees one pixel. Fix: depth <= 6, or a larger input_scale")
    assert too_deep_warning([{"model": {"depth": 7, "input_scale": 2}}], (28, 28)) is None
    assert too_deep_warning([{"model": {"kind": "timm", "backbone": "resnet18"}}], (28, 28)) is None
