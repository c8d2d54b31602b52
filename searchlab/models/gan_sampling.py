"""Loading and sampling an exported generator: the end of a generator export's model.py (torch only).

A generator export is `config.json` (the generator's spec: family, image size, channels, constructor args,
class names) + `weights.safetensors` + `model.py` = standalone.py (its safetensors reader) + the bodies of
gan_common.py, stylegan2.py and gan.py + this file's body:

    import model
    G, config = model.load_generator("best")
    images = model.sample_images(G, 16, labels=[0] * 16, seed=0)   # uint8 (16, C, H, W); labels if conditional
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from searchlab.models.gan import build_generator
from searchlab.models.standalone import read_safetensors

# ---- model.py body ----


def load_generator(export_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The exported generator in eval mode, and its config.json."""
    export_dir = Path(export_dir)
    config = json.loads((export_dir / "config.json").read_text())
    spec = config["generator"]
    net = build_generator(spec["family"], int(spec["image_size"]), int(spec["channels"]), **spec["args"])
    net.load_state_dict(read_safetensors(export_dir / "weights.safetensors"))
    return net.eval(), config


def sample_images(generator: nn.Module, n: int, labels: Any = None, seed: int = 0) -> torch.Tensor:
    """n images as uint8 (N, C, H, W) from a seeded generator; `labels` (n class indices) when conditional,
    drawn uniformly when omitted."""
    gen = torch.Generator().manual_seed(seed)
    out = generator.sample(n, None if labels is None else torch.as_tensor(labels), generator=gen)
    return ((out + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
