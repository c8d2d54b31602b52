"""Loading and sampling an exported generator (torch only). A generator export is `model.py` + `config.json` (the
generator's spec: family, image size, channels, constructor args, class names) + `weights.safetensors`. Its
model.py opens with the docstring and imports of searchlab/models/gan_sampling.py and ends with that file's body;
between them are safetensors_reading.py's body (reading the weights, checking their sha256), gan_common.py's and
the generator of the export's family, gan_dcgan.py's (dcgan, wgan_gp) or stylegan2.py's (no discriminator, no
classifier code; searchlab/models/__init__.py: generator_source). Usage:

    import model
    G, config = model.load_generator("best")
    images = model.sample_images(G, 16, labels="malignant")   # uint8 (16, C, H, W); labels if conditional
    drawn = model.sample_class(G, 64, "malignant", seed=3)   # `searchlab sample --seed 3`'s malignant PNGs, in order
    # (an unconditional generator: sample_class(G, 64, seed=3)); the same pixels on any device
"""
from __future__ import annotations

import hashlib  # noqa: F401  (hashlib, json, struct, warnings: used by the safetensors_reading.py body of model.py)
import json  # noqa: F401
import math  # noqa: F401  (used by the stylegan2.py body of a stylegan2 generator export's model.py)
import re
import struct  # noqa: F401
import warnings  # noqa: F401
from pathlib import Path
from typing import Any

import torch
from torch import nn

from searchlab.models.gan import build_generator
from searchlab.models.safetensors_reading import export_config, read_safetensors

# ---- model.py body ----
# (what config.json misstates for weights it does not describe, the fix): a generator export holds no test metrics
# or thresholds, and its model.py no save() (a classifier's text, CLASSIFIER_NOT_ITS, offers one)
GENERATOR_NOT_ITS = ("trial, metrics (MedFID, KID, ... of that trial's samples) and provenance in config.json are "
                     "not these weights'", "export the GAN run again, or copy all of one export's files together")


def load_generator(export_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """The exported generator in eval mode, and its config.json."""
    export_dir = Path(export_dir)
    config = export_config(export_dir)
    if "generator" not in config:
        raise ValueError(f"{export_dir} is a classifier export: load it with model.load(dir)")
    spec = config["generator"]
    net = build_generator(spec["family"], int(spec["image_size"]), int(spec["channels"]), **spec["args"])
    net.load_state_dict(read_safetensors(export_dir / "weights.safetensors", config.get("weights_sha256"),
                                         GENERATOR_NOT_ITS))
    net.class_names = tuple(spec.get("class_names") or ())   # so sample_images takes labels by name too
    return net.eval(), config


def sample_images(generator: nn.Module, n: int, labels: Any = None, seed: int | None = None) -> torch.Tensor:
    """n (a whole number >= 1) images as uint8 (N, C, H, W). `labels`, for a conditional generator: n class
    indices or class names (config['generator']['class_names']), one per image, or one name or index for all n
    (labels="malignant": n malignant images); drawn uniformly when omitted. A new draw on each call, from torch's
    random state (torch.manual_seed repeats it), unless `seed` is given: the same seed, the same images."""
    n = _image_count(n)
    gen = None if seed is None else torch.Generator().manual_seed(seed)
    n_classes = int(getattr(generator, "n_classes", 0))
    indices = _class_indices(labels, n, n_classes, tuple(getattr(generator, "class_names", ())))
    return as_uint8(generator.sample(n, indices, generator=gen))


SAMPLE_BATCH = 256   # images per generator call in sample_class: memory stays bounded for large draws


def sample_class(generator: nn.Module, n: int, class_index: Any = None, seed: int = 0) -> torch.Tensor:
    """The n images of one class (an index or name; None for an unconditional generator) that `searchlab sample
    --seed SEED` writes, synthetic_s<SEED>_00000.png first, as uint8 (N, C, H, W): drawn SAMPLE_BATCH at a time from
    class_stream(seed, class), which is what `searchlab sample` itself calls (sample_class_batches)."""
    return torch.cat(list(sample_class_batches(generator, n, class_index, seed)))


def sample_class_batches(generator: nn.Module, n: int, class_index: Any = None, seed: int = 0) -> Any:
    """sample_class's images, SAMPLE_BATCH at a time (an iterator of uint8 tensors)."""
    n, index = _image_count(n), _one_class(generator, class_index)
    stream = class_stream(seed, index)
    for start in range(0, n, SAMPLE_BATCH):
        count = min(SAMPLE_BATCH, n - start)
        labels = None if index is None else torch.full((count,), index, dtype=torch.long)
        yield as_uint8(generator.sample(count, labels, generator=stream))


def class_stream(seed: int, class_index: int | None = None) -> torch.Generator:
    """The random stream of one (seed, class): a class's images do not depend on which other classes are drawn, and
    no two seeds share a stream. Its torch seed is numpy's SeedSequence([seed, class_index]).generate_state(1,
    uint64)[0] >> 1 (torch takes seeds below 2**63), computed here in plain Python: model.py needs no numpy."""
    values = [seed] if class_index is None else [seed, class_index]
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in values):
        raise ValueError(f"seed and class index are whole numbers >= 0; got seed {seed!r}, class {class_index!r}. "
                         "Fix: pass integers, e.g. sample_class(G, 16, 0, seed=3)")
    # SeedSequence's entropy: each int's 32-bit pieces, least significant first ([0] for 0)
    words = [v >> shift & 0xFFFFFFFF for v in values for shift in range(0, max(v.bit_length(), 1), 32)]
    return torch.Generator().manual_seed(_seed_sequence_state(words) >> 1)


def _seed_sequence_state(words: list[int]) -> int:
    """numpy's SeedSequence(words).generate_state(1, uint64)[0] for entropy given as 32-bit words: mix_entropy
    into a 4-word pool, then generate_state's two hashed words, low first."""
    const = [0x43B0D7E5, 0x931E8875]   # mix_entropy's hash constant and multiplier

    def hashmix(value: int) -> int:   # a multiplicative hash whose constant advances on every call
        value ^= const[0]
        const[0] = const[0] * const[1] & 0xFFFFFFFF
        value = value * const[0] & 0xFFFFFFFF
        return value ^ value >> 16

    def mix(x: int, y: int) -> int:
        value = (0xCA01F9DD * x - 0x4973F715 * y) & 0xFFFFFFFF
        return value ^ value >> 16

    pool = [hashmix(words[i] if i < len(words) else 0) for i in range(4)]
    for src, dst in [(src, dst) for src in range(4) for dst in range(4) if src != dst]:
        pool[dst] = mix(pool[dst], hashmix(pool[src]))
    for word, dst in [(word, dst) for word in words[4:] for dst in range(4)]:
        pool[dst] = mix(pool[dst], hashmix(word))
    const[:] = [0x8B51F9DD, 0x58F38DED]   # generate_state's
    low, high = hashmix(pool[0]), hashmix(pool[1])
    return high << 32 | low


def _one_class(generator: nn.Module, class_index: Any) -> int | None:
    """class_index as one int (None for an unconditional generator), as `searchlab sample --class` takes it."""
    n_classes = int(getattr(generator, "n_classes", 0))
    if class_index is None and n_classes > 0:
        raise ValueError(f"class_index: this generator is class-conditional ({n_classes} classes) and each class "
                         "has its own stream. Fix: pass a class index or name, e.g. sample_class(G, 16, 0, seed=3)")
    if class_index is None:
        return None
    if n_classes == 0:
        raise ValueError(f"sample_class's class_index {class_index!r}: this generator is unconditional (no classes). "
                         "Fix: leave class_index out, e.g. sample_class(G, 16, seed=3)")
    names = tuple(getattr(generator, "class_names", ())) or tuple(str(i) for i in range(n_classes))
    return class_named(class_index, names, "sample_class's class_index", "this generator (config.json's generator."
                       "class_names)", f", e.g. sample_class(G, 16, {names[0]!r}, seed=3)")


def class_named(value: Any, names: tuple[str, ...] | list[str], arg: str, owner: str, example: str = "") -> int:
    """The class `value` names, by the rule of `searchlab sample --class` and model.sample_class; else why not."""
    if "bool" in str(getattr(value, "dtype", type(value).__name__)):   # True is an int: it was taken as class 1
        raise ValueError(f"{arg} {value!r} is a bool, not a class of {owner}. Fix: pass one of {list(names)} (or its "
                         f"index 0..{len(names) - 1}){example}")
    try:   # its exact name, or an index as sample_images takes one label (an int, a whole float, a 0-d tensor)
        found = [int(_class_indices(value, 1, len(names), tuple(names))[0])]
    except ValueError:   # else its index as text ("1"), folder name as a draw writes it (normal_benign), in any case
        forms = [(name.lower(), class_folder_name(name, i).lower(), str(i)) for i, name in enumerate(names)]
        found = [i for i, form in enumerate(forms) if isinstance(value, str) and value.lower() in form]
    if len(found) > 1:
        raise ValueError(f"{arg} {value!r} names more than one class of {owner} ({[names[i] for i in found]}). Fix: "
                         "give the class's exact name or its index")
    if not found:
        folders = [class_folder_name(name, i) for i, name in enumerate(names)]
        also = f", or its folder name, one of {folders}" if folders != list(names) else ""
        raise ValueError(f"{arg} {value!r} is not a class of {owner}. Fix: one of {list(names)} (or its index "
                         f"0..{len(names) - 1}{also}){example}")
    return found[0]


def class_folder_name(name: str, index: int) -> str:
    """A class's folder in a draw: class_<index> for '', '..' or the draw's record's name; no leading dot (hidden)."""
    cleaned = re.sub(r"[^\w.-]+", "_", name)
    unusable = not cleaned.strip(".") or cleaned.lower() == "synthetic.json"   # synthetic_files.RECORD
    return f"class_{index}" if unusable else re.sub(r"^\.+", lambda dots: "_" * len(dots.group()), cleaned)


def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """A generator's output (tanh range, -1..1) as uint8 pixels."""
    return ((images + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def _class_indices(labels: Any, n: int, n_classes: int, names: tuple[str, ...] = ()) -> torch.Tensor | None:
    """`labels` as n class indices, or a ValueError saying what they must be (not an index error inside)."""
    if labels is None:
        return None
    if n_classes == 0:   # said here: a string or other non-number failed in torch before the generator's own check
        raise ValueError(f"labels: this generator is unconditional (n_classes 0), got {labels!r}. Fix: leave them out")
    named = f" or names {list(names)}" if names else ""
    rule = (f"labels are {n} class indices 0..{n_classes - 1}{named}, one per image (as "
            "config['generator']['class_names'] orders them), or one of them for all")
    if isinstance(labels, (str, int, float)) or getattr(labels, "ndim", None) == 0:   # one class for every image
        labels = [labels] * n
    if names and not isinstance(labels, torch.Tensor) and all(isinstance(v, str) for v in labels):
        if not set(labels) <= set(names):
            raise ValueError(f"{rule}; got {sorted(set(labels) - set(names))}, which are not its classes")
        labels = [names.index(v) for v in labels]
    try:
        values = torch.as_tensor(labels)
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{rule}; got {labels!r}") from None
    _check_whole(values, rule)
    indices = values.to(torch.long)
    if indices.shape != (n,) or not 0 <= int(indices.min()) <= int(indices.max()) < n_classes:
        raise ValueError(f"{rule}; got {indices.tolist()}")
    return indices


def _check_whole(values: torch.Tensor, rule: str) -> None:
    """Class indices that are not whole numbers refused, the first named: a cast to long cut 1.5 to class 1."""
    flat = values.reshape(-1)
    if flat.is_complex():
        whole = torch.zeros_like(flat, dtype=torch.bool)   # no class index is complex
    elif flat.is_floating_point():
        whole = torch.isfinite(flat) & (flat == flat.round())
    else:
        return
    if not bool(whole.all()):
        first = int((~whole).nonzero()[0])
        raise ValueError(f"{rule}; got {flat[first].item()!r} at position {first}, which is not a whole number. "
                         "Fix: pass class indices as integers (or class names)")


def _image_count(n: Any) -> int:
    """n as an int, or a ValueError: 0 failed deep inside StyleGAN2 ('non-positive groups'), -1 in torch.randn."""
    try:   # __index__: an int, numpy or one-element integer tensor; not a float (2.0) nor a bool
        count = None if isinstance(n, bool) else n.__index__()
    except (AttributeError, TypeError):
        count = None
    if count is None or count < 1:
        raise ValueError(f"n is the number of images to draw, a whole number >= 1; got {n!r}. Fix: pass e.g. "
                         "sample_images(G, 16)")
    return count
