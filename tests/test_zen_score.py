"""Zen-score (Zen-NAS): reference choices checked independently, and the ordering the paper relies on."""
from __future__ import annotations

import math

import pytest
import torch

from searchlab.models.zen import ZenNet
from searchlab.nas.zen_score import zen_score


def zen_net(width: int = 16, depth: int = 1, kind: str = "basic", stem: int = 8):
    blocks = [{"type": kind, "width": width, "depth": depth}, {"type": kind, "width": width, "stride": 2}]
    return lambda: ZenNet(1, 2, stem=stem, blocks=blocks)


def test_score_is_deterministic_per_seed_and_finite():
    build = zen_net()
    a, b = zen_score(build, 1, (16, 16), seed=3), zen_score(build, 1, (16, 16), seed=3)
    assert a == b and math.isfinite(a)
    assert zen_score(build, 1, (16, 16), seed=4) != a


def test_wider_and_deeper_networks_score_higher():
    narrow = zen_score(zen_net(width=8), 1, (28, 28), repeats=2)
    wide = zen_score(zen_net(width=64), 1, (28, 28), repeats=2)
    shallow = zen_score(zen_net(depth=1), 1, (28, 28), repeats=2)
    deep = zen_score(zen_net(depth=4), 1, (28, 28), repeats=2)
    assert wide > narrow and deep > shallow


def test_score_ignores_shortcuts_and_the_classifier():
    blocks = [{"type": "basic", "width": 16, "depth": 2}]
    plain = zen_score(lambda: ZenNet(1, 2, stem=8, blocks=blocks), 1, (12, 12), seed=0)
    more_classes = zen_score(lambda: ZenNet(1, 7, stem=8, blocks=blocks), 1, (12, 12), seed=0)
    assert plain == more_classes   # the head after pooling plays no part

    class ShortcutsKept(ZenNet):   # ignores the scorer's set_residual(False)
        def set_residual(self, enabled: bool) -> None:
            pass

    class ShortcutsOffAlready(ShortcutsKept):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            ZenNet.set_residual(self, False)

    kept = zen_score(lambda: ShortcutsKept(1, 2, stem=8, blocks=blocks), 1, (12, 12), seed=0)
    off = zen_score(lambda: ShortcutsOffAlready(1, 2, stem=8, blocks=blocks), 1, (12, 12), seed=0)
    assert off == plain != kept   # scored as the plain network: the shortcuts switched off by the scorer


class ConvBN(torch.nn.Module):
    """One conv + BN + ReLU: small enough to recompute the score by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4)

    def forward_pre_gap(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))

    def set_residual(self, enabled: bool) -> None:
        pass


def test_matches_a_hand_computation_with_running_variance():
    made: list[ConvBN] = []

    def build() -> ConvBN:
        made.append(ConvBN())
        return made[-1]

    score = zen_score(build, 1, (6, 6), batch_size=8, seed=5)
    net = made[0]
    # redo both passes by hand on the weights the score used, from the same inputs
    gen = torch.Generator().manual_seed(5)
    torch.randint(0, 2**31 - 1, (1,), generator=gen)           # the draw that seeded the weights
    x, eps = torch.randn((8, 1, 6, 6), generator=gen), torch.randn((8, 1, 6, 6), generator=gen)

    def by_hand(inp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = net.conv(inp)
        mean, var = z.mean(dim=(0, 2, 3), keepdim=True), z.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
        return torch.relu((z - mean) / torch.sqrt(var + net.bn.eps)), z.var(dim=(0, 2, 3), unbiased=True)

    with torch.no_grad():
        out1, v1 = by_hand(x)
        out2, v2 = by_hand(x + 0.01 * eps)
    delta = (out1 - out2).abs().flatten(1).sum(dim=1).mean()
    running_var = 0.9 * (0.9 * 1.0 + 0.1 * v1) + 0.1 * v2       # momentum 0.1, from 1, clean pass first
    expected = math.log(float(delta)) + math.log(math.sqrt(float(running_var.mean())))
    assert score == pytest.approx(expected, rel=1e-4)
    assert net.conv.weight.std().item() == pytest.approx(1.0, abs=0.5)   # Gaussian N(0, 1) weights
