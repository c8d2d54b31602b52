"""Zen-NAS-style networks (Lin et al., ICCV 2021): a stem conv, then a sequence of super-blocks.

Super-block types follow the reference implementation (idstcv/ZenNAS):

- "conv":       `depth` x (Conv kxk -> BN -> ReLU), stride on the first repeat.
- "basic":      ResKXKX units: Conv k (in->btn, stride) BN ReLU, Conv k (btn->out) BN, + shortcut, ReLU.
- "bottleneck": ResK1KXK1 units: 1x1 (in->btn) BN ReLU, kxk (btn->btn, stride) BN ReLU, 1x1 (btn->out) BN,
                + shortcut, ReLU.
- "inverted":   IDW units (MobileNetV2-like): 1x1 (in->in*ratio) BN ReLU, depthwise kxk (stride) BN ReLU,
                1x1 (->out) BN, + shortcut, ReLU (Zen-NAS keeps a ReLU after the add).

Shortcuts are the identity when shapes match, else 1x1 conv (with stride) + BN. `set_residual(False)` turns
every shortcut off so the Zen-score can be read from the plain network via `forward_pre_gap`.

Everything below the body marker is concatenated into an export's `model.py`, so it may use only `torch`,
`nn`, `math` and `Any`, and its module-level helper names carry a `_zen_` prefix to avoid clashes.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

# ---- model.py body ----
ZEN_BLOCK_TYPES = ("conv", "basic", "bottleneck", "inverted")

# ratio default per type: basic keeps btn == width, bottleneck squeezes 4x (ResNet-50), inverted expands 4x
_zen_default_ratio = {"conv": 1.0, "basic": 1.0, "bottleneck": 0.25, "inverted": 4.0}
_zen_block_keys = ("type", "width", "depth", "kernel", "ratio", "stride")
# used when `blocks` is None: a small ResNet-like net for 28x28 inputs
_zen_default_blocks = (
    {"type": "basic", "width": 32, "depth": 1, "stride": 1},
    {"type": "basic", "width": 64, "depth": 1, "stride": 2},
    {"type": "bottleneck", "width": 128, "depth": 1, "stride": 2},
)


def _zen_round8(value: float) -> int:
    """Channel count rounded to the nearest multiple of 8, at least 8 (as Zen-NAS does for ratio-derived widths)."""
    return max(8, int(math.floor(value / 8 + 0.5)) * 8)


def _zen_is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _zen_block_spec(index: int, raw: dict[str, Any], in_channels: int) -> dict[str, Any] | None:
    """The block dict with defaults filled in and values checked; None for a "none" (skipped) slot."""
    where = f"block {index} ({raw!r})"
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a dict with keys {_zen_block_keys}")
    kind = raw.get("type", "conv")
    if kind == "none":
        return None
    if kind not in ZEN_BLOCK_TYPES:
        raise ValueError(f"{where}: unknown type {kind!r}; expected one of {ZEN_BLOCK_TYPES} or 'none'")
    unknown = sorted(set(raw) - set(_zen_block_keys))
    if unknown:   # a typo such as "kernal" would otherwise silently fall back to the default
        raise ValueError(f"{where}: unknown keys {unknown}; allowed {_zen_block_keys}")
    spec = {"type": kind, "width": raw.get("width", in_channels), "depth": raw.get("depth", 1),
            "kernel": raw.get("kernel", 3), "ratio": raw.get("ratio", _zen_default_ratio[kind]),
            "stride": raw.get("stride", 1)}
    _zen_check_spec(where, spec)
    return spec


def _zen_check_spec(where: str, spec: dict[str, Any]) -> None:
    if not (_zen_is_int(spec["width"]) and spec["width"] >= 1):
        raise ValueError(f"{where}: width must be an int >= 1, got {spec['width']!r}")
    if not (_zen_is_int(spec["depth"]) and spec["depth"] >= 1):
        raise ValueError(f"{where}: depth must be an int >= 1, got {spec['depth']!r}")
    if spec["kernel"] not in (3, 5, 7) or not _zen_is_int(spec["kernel"]):
        raise ValueError(f"{where}: kernel must be 3, 5 or 7, got {spec['kernel']!r}")
    if spec["stride"] not in (1, 2) or not _zen_is_int(spec["stride"]):
        raise ValueError(f"{where}: stride must be 1 or 2, got {spec['stride']!r}")
    ratio = spec["ratio"]
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not (0 < ratio < math.inf):
        raise ValueError(f"{where}: ratio must be a positive number, got {ratio!r}")


def _zen_conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
                 relu: bool = True) -> list[nn.Module]:
    # bias-free: the following BN has its own shift
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups,
                                         bias=False), nn.BatchNorm2d(cout)]
    return layers + [nn.ReLU(inplace=True)] if relu else layers


class _zen_Residual(nn.Module):
    """body(x) + shortcut(x), then ReLU; the shortcut can be switched off (Zen-score's plain network)."""

    def __init__(self, body: list[nn.Module], cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*body)
        same = cin == cout and stride == 1
        self.shortcut = nn.Identity() if same else nn.Sequential(*_zen_conv_bn(cin, cout, 1, stride, relu=False))
        self.residual = True   # a plain attribute, not a buffer: toggling must not touch the state dict

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        if self.residual:
            out = out + self.shortcut(x)
        return torch.relu(out)


def _zen_unit(spec: dict[str, Any], cin: int, stride: int) -> list[nn.Module]:
    """One sub-layer of a super-block as a list of modules (a conv triple or one residual unit)."""
    kind, cout, k, ratio = spec["type"], spec["width"], spec["kernel"], spec["ratio"]
    if kind == "conv":
        return _zen_conv_bn(cin, cout, k, stride)
    if kind == "basic":
        btn = _zen_round8(cout * ratio)
        body = _zen_conv_bn(cin, btn, k, stride) + _zen_conv_bn(btn, cout, k, relu=False)
    elif kind == "bottleneck":
        btn = _zen_round8(cout * ratio)
        body = _zen_conv_bn(cin, btn, 1) + _zen_conv_bn(btn, btn, k, stride) + _zen_conv_bn(btn, cout, 1, relu=False)
    else:   # inverted: expansion is relative to the unit's input, depthwise conv has one group per channel
        mid = _zen_round8(cin * ratio)
        body = (_zen_conv_bn(cin, mid, 1) + _zen_conv_bn(mid, mid, k, stride, groups=mid)
                + _zen_conv_bn(mid, cout, 1, relu=False))
    return [_zen_Residual(body, cin, cout, stride)]


def _zen_super_block(spec: dict[str, Any], cin: int) -> nn.Sequential:
    """`depth` sub-layers; only the first one strides (and changes the channel count)."""
    layers: list[nn.Module] = []
    for i in range(spec["depth"]):
        layers += _zen_unit(spec, cin if i == 0 else spec["width"], spec["stride"] if i == 0 else 1)
    return nn.Sequential(*layers)


class ZenNet(nn.Module):
    """Stem conv 3x3 -> super-blocks -> optional 1x1 head conv -> global average pool -> dropout -> Linear.

    Block dict keys (defaults): type ("conv"; "none" skips the slot), width (incoming channels), depth (1),
    kernel (3), ratio (basic 1.0, bottleneck 0.25, inverted 4.0: btn = round8(width * ratio) for basic and
    bottleneck, expansion of the unit's input channels for inverted; ignored for conv), stride (1).
    """

    head_prefix = "classifier."   # parameters re-initialised when transferring to a new task

    def __init__(self, in_channels: int, num_outputs: int, stem: int = 16, blocks: list[dict[str, Any]] | None = None,
                 head: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self._check_args(in_channels, num_outputs, stem, head, dropout)
        # no stem downsampling: 28x28 inputs are already small
        self.stem = nn.Sequential(*_zen_conv_bn(in_channels, stem, 3))
        self.blocks = nn.ModuleList()
        self.slots: list[int] = []   # index in `blocks` argument of each kept super-block
        channels = stem
        raw_blocks = [dict(b) for b in _zen_default_blocks] if blocks is None else list(blocks)
        for index, raw in enumerate(raw_blocks):
            spec = _zen_block_spec(index, raw, channels)
            if spec is None:
                continue
            self.blocks.append(_zen_super_block(spec, channels))
            self.slots.append(index)
            channels = spec["width"]
        self.head_conv = None if head is None else nn.Sequential(*_zen_conv_bn(channels, head, 1))
        self.num_features = head if head is not None else channels
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.num_features, num_outputs)

    @staticmethod
    def _check_args(in_channels: int, num_outputs: int, stem: int, head: int | None, dropout: float) -> None:
        for name, value in (("in_channels", in_channels), ("num_outputs", num_outputs), ("stem", stem)):
            if not (_zen_is_int(value) and value >= 1):
                raise ValueError(f"ZenNet: {name} must be an int >= 1, got {value!r}")
        if head is not None and not (_zen_is_int(head) and head >= 1):
            raise ValueError(f"ZenNet: head must be None or an int >= 1, got {head!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"ZenNet: dropout must be in [0, 1), got {dropout!r}")

    def forward_pre_gap(self, x: torch.Tensor) -> torch.Tensor:
        """Feature map before global average pooling (after the head conv if any): what Zen-score reads."""
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return x if self.head_conv is None else self.head_conv(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (N, C) before the classifier: forward(x) == classify(embed(x))."""
        return self.forward_pre_gap(x).mean(dim=(2, 3))

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.embed(x))

    def set_residual(self, enabled: bool) -> None:
        """Switch every residual shortcut on or off; parameters are untouched, so toggling back is exact."""
        for module in self.modules():
            if isinstance(module, _zen_Residual):
                module.residual = bool(enabled)

    def parameter_blocks(self) -> list[list[tuple[str, nn.Parameter]]]:
        """(name, parameter) for the stem, each kept super-block, the head conv: input side first, no classifier."""
        parts: list[tuple[str, nn.Module]] = [("stem", self.stem)]
        parts += [(f"blocks.{i}", block) for i, block in enumerate(self.blocks)]
        if self.head_conv is not None:
            parts.append(("head_conv", self.head_conv))
        return [[(f"{prefix}.{n}", p) for n, p in module.named_parameters()] for prefix, module in parts]

    def conv_depth(self) -> int:
        """Conv2d + Linear layers on the main path (shortcut projections excluded): the depth used for budgets."""
        return sum(isinstance(m, (nn.Conv2d, nn.Linear)) for name, m in self.named_modules()
                   if "shortcut" not in name.split("."))
