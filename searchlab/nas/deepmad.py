"""DeepMAD-style mathematical architecture design (Shen et al., CVPR 2023) over a Zen-NAS space.

A network's "entropy" (expressivity) is computed from its shape alone, and the architecture parameters of the
study's space (model.* of a `kind: zen` space, e.g. spaces/zen.yaml) are chosen to maximise it subject to:
FLOPs <= budget.max_flops, params <= budget.max_params, depth <= budget.max_depth, effectiveness rho <= rho0
and non-decreasing stage widths. The program is solved by scipy's differential evolution (integer variables
for choices and ints), an off-the-shelf solver; the designed networks are then trained by the task.

Definitions (following the reference code, alibaba/lightweight-neural-architecture-search, as documented here):
- each main-path conv l has width w_l = (c_in / groups) * k^2 and entropy term e_l = 0.5 * log(w_l);
- stages end with the layer before every strided layer (its last conv) and at the network's end; stage i's
  entropy is
  log(r_i^2 * c_i) * sum of e_l over all convs up to the end of stage i (r_i, c_i: its output side and width);
- the objective is sum_i beta_i * H_i with beta = 1 for every stage but the last, which gets `last_weight` (8);
- effectiveness rho = D / exp(mean log w_l) over the convs up to each stage end (D: their number); the
  largest over stage ends must be <= rho0 (0.5 by default: the reference's MobileNet setting; deep-and-narrow
  networks exceed it);
- stage widths (c_i) must not decrease (the paper's constraint; the released code does not enforce it).
FLOPs and parameters are counted analytically from the same layer list (2 x multiply-adds of every conv and
the classifier, as torch's flop counter counts; BN adds 2 parameters per channel); tests check both against
the built network.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any



@dataclass(frozen=True)
class Conv:
    cin: int
    cout: int
    kernel: int
    groups: int
    stride: int
    out_side: tuple[int, int]     # output (H, W)
    main: bool = True             # False for a residual shortcut's projection
    unit: int = 0                 # which layer it belongs to: the stem 0, then each block's sub-layers, the head

    @property
    def width(self) -> float:
        return self.cin / self.groups * self.kernel ** 2

    @property
    def flops(self) -> float:
        return 2.0 * self.out_side[0] * self.out_side[1] * self.cout * self.cin / self.groups * self.kernel ** 2

    @property
    def params(self) -> int:
        return self.cout * self.cin // self.groups * self.kernel ** 2 + 2 * self.cout   # conv (no bias) + BN


def _side(side: tuple[int, int], stride: int) -> tuple[int, int]:
    return side if stride == 1 else (math.ceil(side[0] / 2), math.ceil(side[1] / 2))   # padding k // 2


def zen_convs(args: dict[str, Any], in_channels: int, image_size: tuple[int, int]) -> list[Conv]:
    """Every conv of a ZenNet built from `args` (its architecture args), in forward order."""
    side, convs = tuple(image_size), [Conv(in_channels, args["stem"], 3, 1, 1, tuple(image_size))]
    channels = args["stem"]
    for block in args["blocks"]:
        for i in range(block["depth"]):
            stride = block["stride"] if i == 0 else 1
            before, side = side, _side(side, stride)
            unit = convs[-1].unit + 1
            convs += [replace(c, unit=unit) for c in _unit(block, channels, stride, before, side)]
            channels = block["width"]
    if args.get("head"):
        convs.append(Conv(channels, args["head"], 1, 1, 1, side, unit=convs[-1].unit + 1))
    return convs


def _unit(block: dict[str, Any], cin: int, stride: int, before: tuple[int, int],
          side: tuple[int, int]) -> list[Conv]:
    """One sub-layer's convs; `before`/`side`: the sides before and after its stride (1x1 expansions run
    before the strided conv, at the input's side)."""
    from searchlab.models.zen import _zen_round8

    kind, cout, k, ratio = block["type"], block["width"], block["kernel"], block["ratio"]
    if kind == "conv":
        return [Conv(cin, cout, k, 1, stride, side)]
    if kind == "basic":
        btn = _zen_round8(cout * ratio)
        body = [Conv(cin, btn, k, 1, stride, side), Conv(btn, cout, k, 1, 1, side)]
    elif kind == "bottleneck":
        btn = _zen_round8(cout * ratio)
        body = [Conv(cin, btn, 1, 1, 1, before), Conv(btn, btn, k, 1, stride, side),
                Conv(btn, cout, 1, 1, 1, side)]
    else:
        mid = _zen_round8(cin * ratio)
        body = [Conv(cin, mid, 1, 1, 1, before), Conv(mid, mid, k, mid, stride, side),
                Conv(mid, cout, 1, 1, 1, side)]
    shortcut = [] if cin == cout and stride == 1 else [Conv(cin, cout, 1, 1, stride, side, main=False)]
    return body + shortcut


@dataclass(frozen=True)
class Shape:
    """What the program reads of one candidate network."""

    entropy: float
    rho: float                     # largest effectiveness over stage ends
    stage_widths: tuple[int, ...]
    flops: float
    params: float
    depth: int                     # main-path convs + the classifier


def analyse(convs: list[Conv], num_outputs: int, last_weight: float = 8.0) -> Shape:
    main = [c for c in convs if c.main]
    # A stage ends with the layer before each strided one: at its last conv, not at the strided layer's 1x1
    # expansion, which runs first (bottleneck, inverted) and would stand in for the stage's width and side.
    strided = {c.unit for c in main if c.stride == 2}
    ends = [i - 1 for i, c in enumerate(main) if i > 0 and c.unit in strided and main[i - 1].unit != c.unit]
    ends.append(len(main) - 1)
    prefix_e = _prefix([0.5 * math.log(c.width) for c in main])
    prefix_logw = _prefix([math.log(c.width) for c in main])
    entropy, rho = 0.0, 0.0
    for n, end in enumerate(ends):
        last = main[end]
        weight = last_weight if n == len(ends) - 1 else 1.0
        entropy += weight * math.log(last.out_side[0] * last.out_side[1] * last.cout) * prefix_e[end]
        rho = max(rho, (end + 1) / math.exp(prefix_logw[end] / (end + 1)))
    channels = main[-1].cout
    flops = sum(c.flops for c in convs) + 2.0 * channels * num_outputs
    params = sum(c.params for c in convs) + channels * num_outputs + num_outputs
    return Shape(entropy, rho, tuple(main[e].cout for e in ends), flops, float(params), len(main) + 1)


def _prefix(values: list[float]) -> list[float]:
    out, total = [], 0.0
    for value in values:
        total += value
        out.append(total)
    return out
