"""DARTS-style cell networks built from a discrete genotype (Liu et al., "DARTS", ICLR 2019).

A genotype is two lists of nodes, one for the normal cell and one for the reduction cell. Node i of a cell is
state i + 2 and computes ``op1(states[in1]) + op2(states[in2])``; states 0 and 1 are the cell's two inputs
(the outputs of the cells two back and one back). Nodes are JSON-friendly dicts::

    {"op1": "sep_conv_3x3", "in1": 0, "op2": "skip_connect", "in2": 1}

Operations follow the reference implementation (quark0/darts, operations.py / model.py); every stride-2
operation maps an h x w input to ceil(h/2) x ceil(w/2), so odd sizes (28 -> 14 -> 7 -> 4) work.

The exporter appends everything below the marker line to another torch-only file to form an export's
``model.py``: that part uses only ``torch``, ``nn``, ``math`` and ``Any``, imports nothing, and prefixes its
module-level helpers with ``_cell_`` so they cannot clash with the other file's names.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

# ---- model.py body ----
CELL_OPS = ("sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "max_pool_3x3", "avg_pool_3x3",
            "skip_connect", "none")
_cell_NODE_KEYS = ("op1", "in1", "op2", "in2")


# ------------------------------------------------------------------ operations
class _cell_ReLUConvBN(nn.Sequential):
    """ReLU -> kxk conv (no bias: BN follows) -> BN; the cells' 1x1 preprocessing."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1, padding: int = 0) -> None:
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out))


def _cell_depthwise_separable(channels: int, kernel: int, stride: int, dilation: int) -> list[nn.Module]:
    """ReLU, depthwise kxk, pointwise 1x1, BN; padding dilation*(k-1)/2 keeps size at stride 1, ceil(h/2) at 2."""
    padding = dilation * (kernel - 1) // 2
    return [nn.ReLU(inplace=False),
            nn.Conv2d(channels, channels, kernel, stride, padding, dilation=dilation, groups=channels, bias=False),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels)]


class _cell_SepConv(nn.Sequential):
    """sep_conv_kxk: the separable block twice; only the first depthwise conv carries the stride (as DARTS)."""

    def __init__(self, channels: int, kernel: int, stride: int) -> None:
        super().__init__(*_cell_depthwise_separable(channels, kernel, stride, 1),
                         *_cell_depthwise_separable(channels, kernel, 1, 1))


class _cell_DilConv(nn.Sequential):
    """dil_conv_kxk: the separable block once, depthwise conv with dilation 2 (padding k - 1)."""

    def __init__(self, channels: int, kernel: int, stride: int) -> None:
        super().__init__(*_cell_depthwise_separable(channels, kernel, stride, 2))


class _cell_Zero(nn.Module):
    """none: zeros shaped like the op's output; multiplying (not torch.zeros) keeps dtype, device and graph."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


class _cell_FactorizedReduce(nn.Module):
    """Halves resolution without dropping pixels: two 1x1 stride-2 convs, the second on the input shifted by
    one pixel, concatenated. The input is zero-padded at the bottom/right first so that the shifted branch
    also yields ceil(h/2) rows on odd sizes. Odd c_out works too (the second branch gets the extra channel)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


def _cell_make_op(name: str, channels: int, stride: int) -> nn.Module:
    """One operation of CELL_OPS on `channels` channels (in == out)."""
    if name.startswith(("sep_conv_", "dil_conv_")):
        kernel = int(name[-1])                      # "..._3x3" -> 3, "..._5x5" -> 5
        block = _cell_SepConv if name.startswith("sep") else _cell_DilConv
        return block(channels, kernel, stride)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        # count_include_pad=False: border averages are not diluted by the zero padding
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else _cell_FactorizedReduce(channels, channels)
    if name == "none":
        return _cell_Zero(stride)
    raise ValueError(f"unknown cell op {name!r}; expected one of {', '.join(CELL_OPS)}")


def _cell_chain_convs(op: nn.Module) -> int | None:
    """Conv2d layers an input passes through in `op` (None for `none`, whose output ignores its input).

    FactorizedReduce's two convs sit side by side, so they count once; every other op is a plain chain."""
    if isinstance(op, _cell_Zero):
        return None
    if isinstance(op, _cell_FactorizedReduce):
        return 1
    return sum(isinstance(m, nn.Conv2d) for m in op.modules())


# ------------------------------------------------------------------ genotype checks
def _cell_check_node(cell: str, index: int, node: Any) -> None:
    """Raise ValueError naming the cell, the node index and the bad value."""
    where = f"{cell} cell, node {index}"
    if not isinstance(node, dict):
        raise ValueError(f"{where}: expected a dict with keys {_cell_NODE_KEYS}, got {node!r}")
    missing = [key for key in _cell_NODE_KEYS if key not in node]
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing} in {node!r}")
    for op_key, in_key in (("op1", "in1"), ("op2", "in2")):
        op, source = node[op_key], node[in_key]
        if op not in CELL_OPS:
            raise ValueError(f"{where}: {op_key} = {op!r} is not one of {', '.join(CELL_OPS)}")
        # bool is an int subclass, but True as a state index is certainly a mistake
        if isinstance(source, bool) or not isinstance(source, int) or not 0 <= source < index + 2:
            raise ValueError(f"{where}: {in_key} = {source!r}; node {index} can only read states "
                             f"0..{index + 1} (the two cell inputs and earlier nodes)")


def _cell_check_genotype(normal: Any, reduce: Any) -> None:
    for cell, nodes in (("normal", normal), ("reduce", reduce)):
        if not isinstance(nodes, (list, tuple)) or not nodes:
            raise ValueError(f"{cell} cell: expected a non-empty list of nodes, got {nodes!r}")
        for index, node in enumerate(nodes):
            _cell_check_node(cell, index, node)
    if len(normal) != len(reduce):
        raise ValueError(f"normal cell has {len(normal)} nodes but reduce cell has {len(reduce)}; "
                         f"both cells need the same number of nodes")


def _cell_reduction_indices(cells: int, reductions: int) -> list[int]:
    """Indices of the reduction cells: floor((j + 1) * cells / (reductions + 1)) for j < reductions.

    This is DARTS's rule (cells=8, reductions=2 -> [2, 5]); cells=5, reductions=2 -> [1, 3]. For
    0 <= reductions <= cells it always yields `reductions` distinct indices below `cells` (consecutive
    values differ by cells / (reductions + 1), and when that is < 1 the floor still steps by one)."""
    if not 0 <= reductions <= cells:
        raise ValueError(f"reductions = {reductions}; must be between 0 and cells ({cells})")
    return [(j + 1) * cells // (reductions + 1) for j in range(reductions)]


# ------------------------------------------------------------------ cells and network
class _cell_Block(nn.Module):
    """One cell: preprocess both inputs to `channels`, then the genotype's nodes; output = all nodes concat."""

    def __init__(self, nodes: list[dict[str, Any]], c_prev_prev: int, c_prev: int, channels: int,
                 reduction: bool, reduction_prev: bool) -> None:
        super().__init__()
        self.reduction = reduction
        self.output_channels = len(nodes) * channels
        # after a reduction cell, s0 has twice s1's resolution: FactorizedReduce brings it down to match
        self.preprocess0 = (_cell_FactorizedReduce(c_prev_prev, channels) if reduction_prev
                            else _cell_ReLUConvBN(c_prev_prev, channels))
        self.preprocess1 = _cell_ReLUConvBN(c_prev, channels)
        self.wiring = [(node["in1"], node["in2"]) for node in nodes]
        ops = []
        for node in nodes:
            for op_key, in_key in (("op1", "in1"), ("op2", "in2")):
                # a reduction cell halves resolution on the edges leaving its inputs; later nodes are already small
                stride = 2 if reduction and node[in_key] < 2 else 1
                ops.append(_cell_make_op(node[op_key], channels, stride))
        self.ops = nn.ModuleList(ops)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i, (in1, in2) in enumerate(self.wiring):
            states.append(self.ops[2 * i](states[in1]) + self.ops[2 * i + 1](states[in2]))
        return torch.cat(states[2:], dim=1)

    def output_depth(self, depth0: int, depth1: int) -> int:
        """Longest conv chain to the cell output, given the chains to its two inputs (see CellNet.conv_depth)."""
        depths = [depth0 + _cell_chain_convs(self.preprocess0), depth1 + _cell_chain_convs(self.preprocess1)]
        for i, (in1, in2) in enumerate(self.wiring):
            ends = []
            for op, source in ((self.ops[2 * i], in1), (self.ops[2 * i + 1], in2)):
                convs = _cell_chain_convs(op)
                ends.append(0 if convs is None else depths[source] + convs)   # `none` starts afresh
            depths.append(max(ends))
        return max(depths[2:])


class CellNet(nn.Module):
    """DARTS evaluation network: 3x3 stem, `cells` cells (reduction cells double the width and halve the
    resolution), global average pooling, dropout, linear classifier.

    normal / reduce: lists of {"op1", "in1", "op2", "in2"} nodes of the same length N >= 1; each cell outputs
    N * C channels. Reduction cells sit at floor((j + 1) * cells / (reductions + 1)), j < reductions (DARTS's rule).
    """

    head_prefix = "classifier."   # parameters re-initialised when transferring to a new task

    def __init__(self, in_channels: int, num_outputs: int, normal: list[dict[str, Any]],
                 reduce: list[dict[str, Any]], channels: int = 16, cells: int = 5, reductions: int = 2,
                 stem_multiplier: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        _cell_check_genotype(normal, reduce)
        for name, value in (("in_channels", in_channels), ("num_outputs", num_outputs), ("channels", channels),
                            ("cells", cells), ("stem_multiplier", stem_multiplier)):
            if value < 1:
                raise ValueError(f"{name} = {value}; must be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout = {dropout}; must be in [0, 1)")
        self.normal = [dict(node) for node in normal]     # copies: the caller's lists may change later
        self.reduce = [dict(node) for node in reduce]
        self.reduction_indices = _cell_reduction_indices(cells, reductions)

        c_stem = stem_multiplier * channels
        self.stem = nn.Sequential(nn.Conv2d(in_channels, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        self.cells = nn.ModuleList(self._build_cells(c_stem, channels, cells))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.cells[-1].output_channels, num_outputs)

    def _build_cells(self, c_stem: int, channels: int, cells: int) -> list[_cell_Block]:
        blocks = []
        c_prev_prev, c_prev, reduction_prev = c_stem, c_stem, False
        for i in range(cells):
            reduction = i in self.reduction_indices
            if reduction:
                channels *= 2
            nodes = self.reduce if reduction else self.normal
            block = _cell_Block(nodes, c_prev_prev, c_prev, channels, reduction, reduction_prev)
            blocks.append(block)
            c_prev_prev, c_prev, reduction_prev = c_prev, block.output_channels, reduction
        return blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features of the last cell, (N, nodes * C_last): forward(x) == classify(embed(x))."""
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.pool(s1).flatten(1)

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(z))

    def parameter_blocks(self) -> list[list[tuple[str, nn.Parameter]]]:
        """(name, parameter) of the stem, then of each cell, input side first, classifier excluded."""
        blocks = [[(f"stem.{n}", p) for n, p in self.stem.named_parameters()]]
        blocks += [[(f"cells.{i}.{n}", p) for n, p in cell.named_parameters()] for i, cell in enumerate(self.cells)]
        return blocks

    def conv_depth(self) -> int:
        """Conv2d layers on the longest input-to-output chain, plus the classifier's Linear (as ZenNet counts).

        Stem and each preprocessing conv count 1, sep_conv 4 (two depthwise + two pointwise), dil_conv 2,
        skip_connect at stride 2 (FactorizedReduce, two parallel convs) 1, pools and identity 0. `none` outputs
        zeros whatever its input, so no chain passes through it: its output starts at 0. A node takes the longer
        of its two edges; a cell's output, the longest of its nodes.
        """
        d0 = d1 = _cell_chain_convs(self.stem)
        for cell in self.cells:
            d0, d1 = d1, cell.output_depth(d0, d1)
        return d1 + 1


def genotype_string(normal: list[dict[str, Any]], reduce: list[dict[str, Any]]) -> str:
    """The genotype in DARTS's printed form, e.g. Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3],
    reduce=[...], reduce_concat=[2, 3]): two (op, input) pairs per node in node order; all nodes are concatenated."""
    _cell_check_genotype(normal, reduce)

    def edges(nodes: list[dict[str, Any]]) -> str:
        pairs = [f"({node[op]!r}, {node[src]})" for node in nodes for op, src in (("op1", "in1"), ("op2", "in2"))]
        return "[" + ", ".join(pairs) + "]"

    def concat(nodes: list[dict[str, Any]]) -> str:
        return str(list(range(2, len(nodes) + 2)))

    return (f"Genotype(normal={edges(normal)}, normal_concat={concat(normal)}, "
            f"reduce={edges(reduce)}, reduce_concat={concat(reduce)})")
