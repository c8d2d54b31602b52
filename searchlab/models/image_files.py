"""Reading image files as an export's model reads them: part of every classifier export's model.py (below the
body marker, after standalone.py), and the decoder searchlab's own data loaders use, so training and a deployed
model decode a file alike (size, channels, fit, bit depth, EXIF orientation). These need Pillow and numpy.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

# ---- model.py body ----
FITS = ("stretch", "pad", "crop")


def load_images(paths: str | Path | list[str | Path], config: dict[str, Any]) -> torch.Tensor:
    """Image files (a list, or one path) -> uint8 (N, C, H, W) for predict/predict_proba, decoded and resized
    exactly as searchlab read the training images (config["input"]: channels, height, width, fit). No files
    give N = 0, which predict_proba scores as no probabilities."""
    files = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)   # a str would be read letter by letter
    for path in files:
        if Path(path).is_dir():   # the rows carry no names: which file each is must be the caller's own list
            raise IsADirectoryError(f"{path} is a folder; load_images reads image files, one row each, in the "
                                    f"order given. Fix: list its files, e.g. files = sorted(Path({str(path)!r})"
                                    ".glob('*.png')), and pass that list")
    if not files:
        spec = config["input"]
        return torch.empty((0, spec["channels"], spec["height"], spec["width"]), dtype=torch.uint8)
    return torch.stack([read_input_file(p, config) for p in files])


def read_input_file(path: str | Path, config: dict[str, Any]) -> torch.Tensor:
    """One image file -> uint8 (C, H, W), the export's input (exports older than `fit` were stretched)."""
    spec = config["input"]
    # exports before decoder 2 read files as stored: their models learned EXIF-rotated camera JPEGs so, and get them so
    return read_image_file(path, spec["height"], spec["width"], spec["channels"], spec.get("fit", "stretch"),
                           spec.get("bit_depth"), upright=spec.get("decoder", 1) >= 2)


# How image files are decoded; an export records it (config["input"]["decoder"]). 2: EXIF orientation applied.
DECODER = 2


def read_image_file(path: str | Path, height: int, width: int, channels: int, fit: str = "stretch",
                    bit_depth: int | None = None, upright: bool = True) -> torch.Tensor:
    """One image file -> uint8 (channels, height, width): 16-bit and float images rescaled to 8 bits (integer
    ones from 0..2^bit_depth - 1 when given, else their type's range), then grayscale or RGB, resized
    bilinearly to the size: `stretch`ed to it, or with the aspect ratio kept, the whole image `pad`ded with
    black borders or its centre `crop`ped."""
    import numpy as np
    from PIL import Image, ImageOps

    if fit not in FITS:
        raise ValueError(f"unknown fit {fit!r}; this model.py knows {FITS}")
    with Image.open(path) as img:
        img.load()
        if upright:   # as a viewer shows it: a camera's JPEG stored sideways with an EXIF orientation was read so
            img = ImageOps.exif_transpose(img)
        if img.mode in ("I", "F") or img.mode.startswith("I;16"):
            img = _to_8bit(img, bit_depth, sixteen_bit=_sixteen_bit_png(img, path))
        if img.mode == "P" and isinstance(img.info.get("transparency"), bytes):
            # converted straight to L or RGB, Pillow warns (to stderr, from inside PIL) that such a palette's
            # transparency is lost; through RGBA the same pixels come out, without the warning
            img = img.convert("RGBA")
        img = _fitted(img.convert("L" if channels == 1 else "RGB"), width, height, fit)
        arr = np.array(img, dtype=np.uint8)   # a copy: PIL's buffer is read-only
    arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(arr))


def _sixteen_bit_png(img: Any, path: str | Path) -> bool:
    """A PNG in mode I is a 16-bit one (PNG holds no 32-bit integers): Pillow before 10.3 opens 16-bit PNGs
    as I, later ones as I;16, and read as I they were stretched by each image's own range."""
    return img.mode == "I" and str(path).lower().endswith(".png")


def _to_8bit(img: Any, bit_depth: int | None = None, sixteen_bit: bool = False) -> Any:
    """16/32-bit and float images (common for X-ray/CT exports) would be clipped by convert('L'); rescale."""
    import numpy as np
    from PIL import Image

    arr = np.asarray(img, dtype=np.float64)
    if bit_depth is not None and img.mode != "F":
        arr = arr / float(2 ** bit_depth - 1) * 255.0
    elif img.mode.startswith("I;16") or sixteen_bit:
        arr = arr / 65535.0 * 255.0
    else:   # from the image's own range; NaN and -inf pixels as its minimum, +inf as its maximum
        finite = np.isfinite(arr)
        lo, hi = (float(arr[finite].min()), float(arr[finite].max())) if finite.any() else (0.0, 0.0)
        arr = np.where(finite, arr, np.where(arr > 0, hi, lo))
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


def _fitted(img: Any, width: int, height: int, fit: str) -> Any:
    from PIL import Image

    bilinear = Image.Resampling.BILINEAR
    if fit == "stretch":
        return img.resize((width, height), bilinear)
    scale = (min if fit == "pad" else max)(width / img.width, height / img.height)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    resized = img.resize(size, bilinear)
    left, top = (width - size[0]) // 2, (height - size[1]) // 2
    if fit == "crop":
        return resized.crop((-left, -top, -left + width, -top + height))
    canvas = Image.new(img.mode, (width, height), 0)
    canvas.paste(resized, (left, top))
    return canvas
