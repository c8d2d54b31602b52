"""Small NNI model spaces for tests/test_nni_bridge.py (imported only when NNI is installed)."""
from __future__ import annotations

import os

os.environ.setdefault("NNI_FRAMEWORK", "none")

import nni  # noqa: E402
import torch  # noqa: E402
from nni.nas.nn.pytorch import LayerChoice, ModelSpace, MutableConv2d, MutableLinear  # noqa: E402
from torch import nn  # noqa: E402


class TinySpace(ModelSpace):
    """Width (a mutable conv), the second layer's op (a LayerChoice) and a dropout rate (nni.uniform)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 2, base: int = 8) -> None:
        super().__init__()
        width = nni.choice("width", [base, 2 * base])
        self.stem = nn.Sequential(MutableConv2d(in_channels, width, 3, padding=1), nn.ReLU())
        self.mix = LayerChoice([nn.Identity(), nn.MaxPool2d(3, stride=1, padding=1), nn.AvgPool2d(3, stride=1, padding=1)],
                               label="mix")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.1)
        self.fc = MutableLinear(width, num_classes)
        self.add_mutable(nni.uniform("unused_rate", 0.0, 0.5))   # a searched float (mapped to a float param)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.drop(self.pool(self.mix(self.stem(x))).flatten(1)))


class NormalSpace(ModelSpace):
    """A mutable without bounds (normal distribution): searchlab has no equivalent."""

    def __init__(self) -> None:
        super().__init__()
        self.add_mutable(nni.normal("scale", 0.0, 1.0))
        self.fc = nn.Linear(4, 2)


class DottedSpace(ModelSpace):
    def __init__(self) -> None:
        super().__init__()
        self.op = LayerChoice([nn.Identity(), nn.ReLU()], label="block.op")


class NotASpace(nn.Module):
    pass
