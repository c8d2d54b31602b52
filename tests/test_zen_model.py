"""ZenNet (searchlab/models/zen.py): shapes, residual switch, parameter blocks, depth, validation, export body."""
from __future__ import annotations

import ast
import math
import typing
from pathlib import Path

import pytest
import torch

from searchlab.models import zen
from searchlab.models.zen import ZEN_BLOCK_TYPES, ZenNet

MARKER = "# ---- model.py body ----"
RESIDUAL_TYPES = ("basic", "bottleneck", "inverted")


def _body() -> str:
    text = Path(zen.__file__).read_text()
    assert text.count(MARKER + "\n") == 1, "the exporter splits the file at exactly one marker line"
    return text.split(MARKER + "\n", 1)[1]


def _net(blocks: list[dict], **kwargs) -> ZenNet:
    torch.manual_seed(0)
    return ZenNet(kwargs.pop("in_channels", 1), kwargs.pop("num_outputs", 3), stem=8, blocks=blocks, **kwargs).eval()


def _x(n: int = 2, c: int = 1, size: int = 28) -> torch.Tensor:
    return torch.randn(n, c, size, size, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("kind", ZEN_BLOCK_TYPES)
@pytest.mark.parametrize("stride", [1, 2])
def test_shapes_per_block_type_and_stride(kind: str, stride: int) -> None:
    net = _net([{"type": kind, "width": 16, "depth": 2, "kernel": 3, "stride": stride}])
    x = _x()
    side = 28 // stride
    assert net.forward_pre_gap(x).shape == (2, 16, side, side)
    assert net.embed(x).shape == (2, 16)
    assert net(x).shape == (2, 3)


@pytest.mark.parametrize("size,in_channels", [(8, 1), (9, 3), (28, 3)])
def test_small_and_odd_inputs_with_several_stride2_blocks(size: int, in_channels: int) -> None:
    blocks = [{"type": t, "width": 16, "kernel": 5, "stride": 2} for t in ZEN_BLOCK_TYPES]
    net = _net(blocks, in_channels=in_channels, head=24)
    x = _x(3, in_channels, size)
    assert net.forward_pre_gap(x).shape[:2] == (3, 24)
    assert net(x).shape == (3, 3)


def test_default_blocks_and_key_defaults() -> None:
    assert ZenNet(1, 2)(_x()).shape == (2, 2)
    net = _net([{"type": "bottleneck", "width": 32}])   # ratio 0.25 -> btn 8; depth 1, kernel 3, stride 1
    first = net.blocks[0][0].body[0]
    assert (first.in_channels, first.out_channels) == (8, 8)
    assert net.blocks[0][0].body[3].kernel_size == (3, 3)
    assert len(net.blocks[0]) == 1


def test_forward_equals_classify_of_embed() -> None:
    net = _net([{"type": "basic", "width": 16, "stride": 2}], head=32, dropout=0.5)   # eval: dropout inactive
    x = _x(4)
    assert torch.allclose(net(x), net.classify(net.embed(x)))


@pytest.mark.parametrize("kind", RESIDUAL_TYPES)
def test_set_residual_changes_residual_types_and_restores_exactly(kind: str) -> None:
    # one unit with an identity shortcut (8 -> 8), one with a projection (8 -> 16, stride 2)
    net = _net([{"type": kind, "width": 8, "depth": 2}, {"type": kind, "width": 16, "stride": 2}])
    x = _x()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        with_res = net(x)
        net.set_residual(False)
        plain = net(x)
        net.set_residual(True)
        again = net(x)
    assert not torch.allclose(with_res, plain)
    assert torch.equal(with_res, again)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_set_residual_is_a_no_op_for_conv_only_nets() -> None:
    net = _net([{"type": "conv", "width": 16, "depth": 2}, {"type": "conv", "width": 8, "stride": 2}])
    x = _x()
    with torch.no_grad():
        ref = net(x)
        net.set_residual(False)
        assert torch.equal(net(x), ref)


def test_none_slots_are_skipped() -> None:
    blocks = [{"type": "none", "width": 999}, {"type": "conv", "width": 16}, {"type": "none"},
              {"type": "basic", "width": 8}]
    net = _net(blocks)
    assert len(net.blocks) == 2
    assert net.slots == [1, 3]
    assert net.forward_pre_gap(_x()).shape[1] == 8
    assert len(net.parameter_blocks()) == 3   # stem + 2 kept super-blocks


@pytest.mark.parametrize("head", [None, 24])
def test_parameter_blocks_cover_everything_but_the_classifier_once(head: int | None) -> None:
    blocks = [{"type": t, "width": 16, "stride": 2} for t in ZEN_BLOCK_TYPES] + [{"type": "none"}]
    net = _net(blocks, head=head)
    parts = net.parameter_blocks()
    assert len(parts) == 1 + 4 + (head is not None)
    named = dict(net.named_parameters())
    listed = [name for part in parts for name, _ in part]
    assert len(listed) == len(set(listed))
    assert set(listed) == {n for n in named if not n.startswith(ZenNet.head_prefix)}
    assert all(named[name] is p for part in parts for name, p in part)
    assert {n for n in named if n.startswith(ZenNet.head_prefix)} == {"classifier.weight", "classifier.bias"}


def test_conv_depth_hand_computed() -> None:
    blocks = [{"type": "conv", "width": 8, "depth": 2},              # 2
              {"type": "basic", "width": 8, "depth": 2},             # 2 x 2 = 4
              {"type": "bottleneck", "width": 16, "stride": 2},      # 3 (projection shortcut not counted)
              {"type": "none"},                                      # 0
              {"type": "inverted", "width": 16, "depth": 2}]         # 2 x 3 = 6
    # stem 1 + 2 + 4 + 3 + 6 + head conv 1 + classifier 1
    assert _net(blocks, head=32).conv_depth() == 18
    assert _net(blocks).conv_depth() == 17


@pytest.mark.parametrize("bad,message", [
    ({"type": "transformer"}, "unknown type"),
    ({"type": "basic", "kernel": 4}, "kernel"),
    ({"type": "conv", "stride": 3}, "stride"),
    ({"type": "conv", "depth": 0}, "depth"),
    ({"type": "inverted", "ratio": 0}, "ratio"),
    ({"type": "conv", "kernal": 3}, "unknown keys"),
])
def test_bad_blocks_raise_naming_the_block(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        ZenNet(1, 2, blocks=[{"type": "conv", "width": 8}, bad])
    assert "block 1" in str(err.value)


def test_bad_network_arguments_raise() -> None:
    with pytest.raises(ValueError, match="head"):
        ZenNet(1, 2, head=0)
    with pytest.raises(ValueError, match="dropout"):
        ZenNet(1, 2, dropout=1.0)


def test_round8() -> None:
    assert [zen._zen_round8(v) for v in (1, 4, 11.9, 12, 20, 64 * 0.25)] == [8, 8, 8, 16, 24, 16]


def test_body_has_no_imports_and_prefixed_helpers() -> None:
    tree = ast.parse(_body())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert "searchlab" not in _body()
    defined = {t.id for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign))
               for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
    defined |= {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert {n for n in defined if not n.startswith("_zen_")} == {"ZEN_BLOCK_TYPES", "ZenNet"}


def test_body_runs_on_its_own() -> None:
    namespace = {"torch": torch, "nn": torch.nn, "math": math, "Any": typing.Any}
    exec(compile(_body(), "zen_body", "exec"), namespace)   # noqa: S102 - our own file, the export's view of it
    net = namespace["ZenNet"](3, 2, stem=8, head=16, blocks=[{"type": t, "width": 8, "stride": 2}
                                                             for t in namespace["ZEN_BLOCK_TYPES"]])
    assert net.eval()(_x(2, 3)).shape == (2, 2)
    net.set_residual(False)
    assert net.forward_pre_gap(_x(2, 3)).shape == (2, 16, 2, 2)
