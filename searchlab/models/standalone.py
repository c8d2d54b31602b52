"""Model definitions that need only torch (and timm for timm backbones).

This file is copied verbatim into every export as `model.py`, so searchlab trains and users load the very
same code. Keep it free of searchlab imports. Usage of an export:

    import model                                   # this file, next to config.json
    net, config = model.load("best/")              # weights.safetensors + config.json
    probs = model.predict_proba(net, config, images_uint8_NCHW)
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import torch
from torch import nn

ARCHITECTURES = ("plain_cnn", "timm")   # a config.json can only ever name one of these: no imports by name


# ------------------------------------------------------------------ architectures
def _activation(name: str) -> nn.Module:
    table = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "leaky_relu": nn.LeakyReLU}
    return table[name]()


def _norm(name: str, channels: int) -> nn.Module:
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "group":
        return nn.GroupNorm(min(8, channels), channels)
    return nn.Identity()


class PlainCNN(nn.Module):
    """Stages of (conv, norm, activation) x convs_per_stage, halving resolution and doubling width."""

    def __init__(self, in_channels: int, num_outputs: int, depth: int = 3, width: int = 32, kernel: int = 3,
                 convs_per_stage: int = 2, norm: str = "batch", activation: str = "relu",
                 dropout: float = 0.0, max_width: int = 512) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for stage in range(depth):
            out = min(width * 2 ** stage, max_width)
            for _ in range(convs_per_stage):
                layers += [nn.Conv2d(channels, out, kernel, padding=kernel // 2, bias=norm == "none"),
                           _norm(norm, out), _activation(activation)]
                channels = out
            if stage < depth - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(channels, num_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class TimmClassifier(nn.Module):
    """A timm backbone by name; optionally resizes inputs first (28x28 is below most backbones' stride)."""

    def __init__(self, in_channels: int, num_outputs: int, backbone: str, input_size: int | None = None,
                 drop_rate: float = 0.0) -> None:
        super().__init__()
        import timm  # only timm exports need timm

        self.input_size = input_size
        self.net = timm.create_model(backbone, pretrained=False, in_chans=in_channels,
                                     num_classes=num_outputs, drop_rate=drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_size is not None and x.shape[-1] != self.input_size:
            x = nn.functional.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                                          align_corners=False)
        return self.net(x)


def build_model(spec: dict[str, Any]) -> nn.Module:
    """spec = {"architecture": one of ARCHITECTURES, "args": {...}, "in_channels": C, "num_outputs": K}."""
    arch = spec["architecture"]
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; this model.py knows {ARCHITECTURES}")
    cls = PlainCNN if arch == "plain_cnn" else TimmClassifier
    return cls(int(spec["in_channels"]), int(spec["num_outputs"]), **spec["args"])


# ------------------------------------------------------------------ inputs and outputs
def preprocess(images: torch.Tensor, prep: dict[str, Any]) -> torch.Tensor:
    """uint8 (N, C, H, W) -> normalised float32, with the training split's per-channel mean and std."""
    return normalize(images.to(torch.float32) / 255.0, prep)


def normalize(x: torch.Tensor, prep: dict[str, Any]) -> torch.Tensor:
    """float32 images in [0, 1] -> zero mean, unit variance per channel (training-split statistics)."""
    mean = torch.tensor(prep["mean"], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(prep["std"], dtype=torch.float32).view(1, -1, 1, 1)
    return (x - mean) / std


def probabilities(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """binary: P(class 1) as (N,); multiclass: softmax (N, K); multilabel: sigmoid (N, L)."""
    if kind == "multilabel":
        return torch.sigmoid(logits)
    probs = torch.softmax(logits, dim=1)
    return probs[:, 1] if kind == "binary" else probs


@torch.no_grad()
def predict_proba(net: nn.Module, config: dict[str, Any], images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    net.eval()
    chunks = [probabilities(net(preprocess(images[i:i + batch_size], config["preprocessing"])), config["task"])
              for i in range(0, images.shape[0], batch_size)]
    return torch.cat(chunks)


def predict(net: nn.Module, config: dict[str, Any], images: torch.Tensor) -> torch.Tensor:
    """Hard labels with the export's decision threshold(s): class index (N,), or 0/1 (N, L) for multi-label."""
    probs = predict_proba(net, config, images)
    if config["task"] == "multiclass":
        return probs.argmax(dim=1)
    threshold = torch.as_tensor(config["threshold"], dtype=probs.dtype)
    return (probs >= threshold).to(torch.int64)


# ------------------------------------------------------------------ loading an export
_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """A plain reader of the safetensors format (no pickle, no extra package): header JSON + raw bytes."""
    data = Path(path).read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    body = memoryview(data)[8 + header_len:]
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        dtype = _DTYPES[meta["dtype"]]
        flat = torch.frombuffer(bytearray(body[start:end]), dtype=dtype) if end > start else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(meta["shape"])
    return tensors


def load(export_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the exported model from config.json and weights.safetensors; returns (model in eval mode, config)."""
    export_dir = Path(export_dir)
    config = json.loads((export_dir / "config.json").read_text())
    net = build_model(config["model"])
    net.load_state_dict(read_safetensors(export_dir / "weights.safetensors"))
    return net.eval(), config
