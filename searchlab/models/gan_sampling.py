"""Loading and sampling an exported generator: the end of a generator export's model.py (torch only).

A generator export is `config.json` (the generator's spec: family, image size, channels, constructor args,
class names) + `weights.safetensors` + `model.py` = standalone.py (its safetensors reader) + the bodies of
gan_common.py, stylegan2.py and gan.py + this file's body:

    import model
    G, config = model.load_generator("best")
    images = model.sample_images(G, 16, labels=["malignant"] * 16)   # uint8 (16, C, H, W); labels if conditional
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from searchlab.models.gan import build_generator
from searchlab.models.standalone import export_config, read_safetensors

# ---- model.py body ----


def load_generator(export_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The exported generator in eval mode, and its config.json."""
    export_dir = Path(export_dir)
    config = export_config(export_dir)
    if "generator" not in config:
        raise ValueError(f"{export_dir} is a classifier export: load it with model.load(dir)")
    spec = config["generator"]
    net = build_generator(spec["family"], int(spec["image_size"]), int(spec["channels"]), **spec["args"])
    net.load_state_dict(read_safetensors(export_dir / "weights.safetensors", config.get("weights_sha256")))
    net.class_names = tuple(spec.get("class_names") or ())   # so sample_images takes labels by name too
    return net.eval(), config


def sample_images(generator: nn.Module, n: int, labels: Any = None, seed: int | None = None) -> torch.Tensor:
    """n images as uint8 (N, C, H, W); `labels` (n class indices, or class names) when conditional, drawn
    uniformly when omitted. A new draw on each call, from torch's random state (torch.manual_seed repeats it),
    unless `seed` is given: the same seed, the same images."""
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    n_classes = int(getattr(generator, "n_classes", 0))
    indices = _class_indices(labels, n, n_classes, tuple(getattr(generator, "class_names", ())))
    return as_uint8(generator.sample(n, indices, generator=gen))


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """A generator's output (tanh range, -1..1) as uint8 pixels."""
    return ((images + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def _class_indices(labels: Any, n: int, n_classes: int, names: tuple[str, ...] = ()) -> torch.Tensor | None:
    """`labels` as n class indices, or a ValueError saying what they must be (not an index error inside)."""
    if labels is None or n_classes == 0:   # the generator says which of these is a mistake
        return None if labels is None else torch.as_tensor(labels)
    named = f" or names {list(names)}" if names else ""
    rule = (f"labels are {n} class indices 0..{n_classes - 1}{named}, one per image (as "
            "config['generator']['class_names'] orders them)")
    if names and not isinstance(labels, torch.Tensor) and all(isinstance(v, str) for v in labels):
        if not set(labels) <= set(names):
            raise ValueError(f"{rule}; got {sorted(set(labels) - set(names))}, which are not its classes")
        labels = [names.index(v) for v in labels]
    try:
        indices = torch.as_tensor(labels, dtype=torch.long)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{rule}; got {labels!r}") from None
    if indices.shape != (n,) or (n and not 0 <= int(indices.min()) <= int(indices.max()) < n_classes):
        raise ValueError(f"{rule}; got {indices.tolist()}")
    return indices
