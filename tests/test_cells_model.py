"""DARTS-style cell networks (searchlab/models/cells.py): ops, shapes, validation, and the torch-only body."""
from __future__ import annotations

import ast
import math
import typing
from pathlib import Path

import pytest
import torch

from searchlab.models import cells
from searchlab.models.cells import CELL_OPS, CellNet, genotype_string

MARKER = "# ---- model.py body ----"


def node(op1: str, in1: int, op2: str, in2: int) -> dict[str, typing.Any]:
    return {"op1": op1, "in1": in1, "op2": op2, "in2": in2}


# every op appears, reads both inputs and an earlier node, in both cells
NORMAL = [node("sep_conv_3x3", 0, "skip_connect", 1), node("dil_conv_5x5", 2, "max_pool_3x3", 0),
          node("avg_pool_3x3", 1, "none", 3)]
REDUCE = [node("max_pool_3x3", 0, "sep_conv_5x5", 1), node("skip_connect", 0, "dil_conv_3x3", 2),
          node("avg_pool_3x3", 1, "skip_connect", 3)]


def small_net(**overrides: typing.Any) -> CellNet:
    args = {"in_channels": 1, "num_outputs": 3, "normal": NORMAL, "reduce": REDUCE, "channels": 4, "cells": 3,
            "reductions": 2}
    torch.manual_seed(0)
    return CellNet(**(args | overrides))


def images(channels: int = 1) -> torch.Tensor:
    return torch.randn(2, channels, 28, 28, generator=torch.Generator().manual_seed(1))


def body_text() -> str:
    text = Path(cells.__file__).read_text()
    assert text.count(MARKER + "\n") == 1
    return text.split(MARKER + "\n", 1)[1]


# ------------------------------------------------------------------ operations
@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("op", CELL_OPS)
def test_every_op_keeps_channels_and_gives_ceil_size(op: str, stride: int, size: int) -> None:
    x = torch.randn(2, 4, size, size + 1)                 # non-square too: height and width handled separately
    y = cells._cell_make_op(op, 4, stride)(x)
    assert y.shape == (2, 4, math.ceil(size / stride), math.ceil((size + 1) / stride))


def test_factorized_reduce_odd_sizes_and_channels() -> None:
    y = cells._cell_FactorizedReduce(3, 5)(torch.randn(2, 3, 7, 7))
    assert y.shape == (2, 5, 4, 4)


def test_none_is_zero_and_unknown_op_rejected() -> None:
    assert not cells._cell_make_op("none", 4, 2)(torch.randn(2, 4, 7, 7)).any()
    with pytest.raises(ValueError, match="conv_7x7"):
        cells._cell_make_op("conv_7x7", 4, 1)


# ------------------------------------------------------------------ network
@pytest.mark.parametrize("reductions, n_cells, side", [(0, 3, 28), (1, 3, 14), (2, 5, 7), (3, 4, 4)])
def test_output_shapes_and_feature_width(reductions: int, n_cells: int, side: int) -> None:
    net = small_net(reductions=reductions, cells=n_cells)
    seen = []
    net.pool.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].shape))
    x = images()
    assert net(x).shape == (2, 3)
    nodes, channels = len(NORMAL), 4 * 2 ** reductions     # every reduction doubles C
    assert seen == [(2, nodes * channels, side, side)]
    assert net.embed(x).shape == (2, nodes * channels)


def test_reduction_placement() -> None:
    assert cells._cell_reduction_indices(8, 2) == [2, 5]   # as in DARTS
    assert cells._cell_reduction_indices(5, 2) == [1, 3]
    assert cells._cell_reduction_indices(5, 0) == []
    assert cells._cell_reduction_indices(3, 3) == [0, 1, 2]
    net = small_net(cells=5, reductions=2)
    assert [cell.reduction for cell in net.cells] == [False, True, False, True, False]


def test_forward_equals_classify_of_embed() -> None:
    net = small_net(in_channels=3, dropout=0.5).eval()
    x = images(3)
    with torch.no_grad():
        assert torch.allclose(net(x), net.classify(net.embed(x)))


def test_node_with_both_ops_none_builds_runs_and_trains() -> None:
    dead = [node("none", 0, "none", 1), node("sep_conv_3x3", 2, "skip_connect", 1)]
    net = small_net(normal=dead, reduce=dead, cells=3, reductions=1)
    out = net(images())
    out.sum().backward()
    assert out.shape == (2, 3) and net.classifier.weight.grad is not None


# ------------------------------------------------------------------ validation
@pytest.mark.parametrize("normal, reduce, pattern", [
    ([node("conv_9x9", 0, "none", 1)], [node("none", 0, "none", 1)], r"normal cell, node 0: op1 = 'conv_9x9'"),
    ([node("none", 0, "none", 1)], [node("none", 0, "none", 1), node("none", 0, "bogus", 2)],
     r"reduce cell, node 1: op2 = 'bogus'"),
    ([node("none", 0, "none", 1), node("none", 0, "none", 4)], [node("none", 0, "none", 1)] * 2,
     r"normal cell, node 1: in2 = 4"),
    ([node("none", 0, "none", 1)], [node("none", -1, "none", 1)], r"reduce cell, node 0: in1 = -1"),
    ([node("none", 0, "none", 1)], [node("none", True, "none", 1)], r"reduce cell, node 0: in1 = True"),
    ([{"op1": "none", "in1": 0}], [node("none", 0, "none", 1)], r"normal cell, node 0: missing key"),
    ([node("none", 0, "none", 1)], [node("none", 0, "none", 1)] * 2, r"normal cell has 1 nodes but reduce cell has 2"),
    ([], [], r"normal cell: expected a non-empty list"),
])
def test_invalid_genotypes_name_cell_node_and_value(normal: list, reduce: list, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        small_net(normal=normal, reduce=reduce)
    with pytest.raises(ValueError, match=pattern):
        genotype_string(normal, reduce)


def test_invalid_sizes_rejected() -> None:
    with pytest.raises(ValueError, match=r"reductions = 4"):
        small_net(cells=3, reductions=4)
    with pytest.raises(ValueError, match=r"channels = 0"):
        small_net(channels=0)


# ------------------------------------------------------------------ parameter blocks, depth, genotype text
def test_parameter_blocks_cover_everything_but_classifier_once() -> None:
    net = small_net(cells=4)
    blocks = net.parameter_blocks()
    assert len(blocks) == 1 + 4                             # stem, then one per cell
    named = dict(net.named_parameters())
    listed = [(name, p) for block in blocks for name, p in block]
    assert all(named[name] is p for name, p in listed)      # full names as named_parameters() spells them
    names = [name for name, _ in listed]
    assert len(names) == len(set(names))
    assert set(names) == {n for n in named if not n.startswith(net.head_prefix)}
    assert {n for n in named if n.startswith(net.head_prefix)} == {"classifier.weight", "classifier.bias"}
    assert [n for n, _ in blocks[0]] == ["stem.0.weight", "stem.1.weight", "stem.1.bias"]


def test_conv_depth_counts_longest_conv_chain() -> None:
    normal = [node("sep_conv_3x3", 1, "skip_connect", 0)]
    reduce = [node("max_pool_3x3", 0, "dil_conv_3x3", 1)]
    # stem 1 -> preprocess 1 -> sep_conv 4, then the classifier's Linear (+ 1)
    assert small_net(normal=normal, reduce=reduce, cells=1, reductions=0).conv_depth() == 6 + 1
    # cell 1 reads cell 0 (6): preprocess 7, sep_conv 11
    assert small_net(normal=normal, reduce=reduce, cells=2, reductions=0).conv_depth() == 11 + 1
    # normal 6 -> reduce: preprocess 7 + dil_conv 2 = 9 -> normal: preprocess 10 + sep_conv 4 = 14
    assert small_net(normal=normal, reduce=reduce, cells=3, reductions=1).conv_depth() == 14 + 1
    # stride-2 skip_connect is a FactorizedReduce (1 conv); `none` cuts the chain
    skip = [node("skip_connect", 0, "none", 1)]
    assert small_net(normal=skip, reduce=skip, cells=1, reductions=1).conv_depth() == 3 + 1
    dead = [node("none", 0, "none", 1)]
    assert small_net(normal=dead, reduce=dead, cells=2, reductions=0).conv_depth() == 1   # the classifier alone


def test_genotype_string_darts_format() -> None:
    normal = [node("sep_conv_3x3", 0, "skip_connect", 1), node("none", 2, "dil_conv_5x5", 0)]
    reduce = [node("max_pool_3x3", 0, "avg_pool_3x3", 1), node("skip_connect", 2, "sep_conv_5x5", 1)]
    assert genotype_string(normal, reduce) == (
        "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('none', 2), ('dil_conv_5x5', 0)], "
        "normal_concat=[2, 3], reduce=[('max_pool_3x3', 0), ('avg_pool_3x3', 1), ('skip_connect', 2), "
        "('sep_conv_5x5', 1)], reduce_concat=[2, 3])")


# ------------------------------------------------------------------ the exported body
def test_body_imports_nothing_and_prefixes_helpers() -> None:
    tree = ast.parse(body_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    defined = []
    for stmt in tree.body:
        if isinstance(stmt, (ast.ClassDef, ast.FunctionDef)):
            defined.append(stmt.name)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            defined += [t.id for t in targets if isinstance(t, ast.Name)]
    public = {"CELL_OPS", "CellNet", "genotype_string"}
    assert public <= set(defined)
    assert all(name in public or name.startswith("_cell_") for name in defined), defined


def test_body_runs_with_only_torch_nn_math_any() -> None:
    namespace = {"torch": torch, "nn": torch.nn, "math": math, "Any": typing.Any}
    exec(compile(body_text(), "model_body.py", "exec"), namespace)  # noqa: S102 - our own file, by design
    torch.manual_seed(0)
    net = namespace["CellNet"](1, 3, NORMAL, REDUCE, channels=4, cells=3, reductions=2).eval()
    with torch.no_grad():
        assert net(images()).shape == (2, 3)
    assert net.conv_depth() == small_net().conv_depth()
    assert namespace["genotype_string"](NORMAL, REDUCE) == genotype_string(NORMAL, REDUCE)
