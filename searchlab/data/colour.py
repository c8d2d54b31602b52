"""Colour images read as grey, said when a run starts.

`channels: 1` is the default, as most X-ray and ultrasound data is grey (and often saved as RGB with three
equal channels). Dermoscopy, histology or endoscopy images carry their finding partly in colour, and reading
them as grey drops it without a word. So a sample of the training files is decoded small, and when most of
them have channels that differ, a study reading them as grey is told.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from searchlab.data.common import UNREADABLE_IMAGE, spread
from searchlab.data.types import SplitPlan

SAMPLE = 16          # training files decoded (at most 64 px a side) to judge
THUMB = (64, 64)
COLOUR_LEVELS = 6.0  # mean difference between channels (of 255) beyond which an image's colour is real


def colour_dropped_warning(plan: SplitPlan, channels: int) -> str | None:
    if channels != 1:
        return None
    sampled = spread(plan.files.get("train", []), SAMPLE)
    coloured = [path for path in sampled if in_colour(path)]
    if not sampled or len(coloured) * 2 < len(sampled):
        return None
    return (f"data: {len(coloured)} of {len(sampled)} sampled training images are in colour (their channels "
            f"differ, e.g. {coloured[0]}), but data.channels is 1, so they are read as grey and their colour is "
            "lost. Fix: data.channels: 3 where colour carries the finding (dermoscopy, histology, endoscopy); "
            "else nothing")


def grey_mode(mode: str) -> bool:
    """Whether a Pillow mode holds one band of grey (or bits): no colour to look for."""
    return mode in ("1", "L", "LA", "La", "I", "F") or mode.startswith("I;")


def in_colour(path: Path, levels: float = COLOUR_LEVELS) -> bool:
    """Whether a file's channels differ by more than `levels` (of 255) on average, decoded small: an RGB file of
    three equal channels (a grey X-ray saved so) or an RGB JPEG of a grey image is not in colour."""
    try:
        with Image.open(path) as img:
            if grey_mode(img.mode):
                return False
            img.draft("RGB", THUMB)   # a JPEG decodes at a fraction of its size
            img.thumbnail(THUMB)
            rgb = np.asarray(img.convert("RGB"), dtype=np.int16)
    except UNREADABLE_IMAGE:
        return False   # decoding names unreadable files
    spread_ = np.abs(rgb[..., 0] - rgb[..., 1]) + np.abs(rgb[..., 1] - rgb[..., 2])
    return float(spread_.mean()) / 2 > levels
