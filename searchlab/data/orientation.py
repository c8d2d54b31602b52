"""Image files that an earlier searchlab decoded otherwise than this one.

Before decoder 2 (models/image_files.py DECODER) an EXIF orientation was ignored: a camera JPEG stored sideways
was trained on sideways. Now every file is read upright. A run recorded by that earlier searchlab (its record
has no `decoder`) whose files carry such an orientation cannot be resumed (new trials would be ranked with old
ones on turned images) or exported (its test split would be scored, and predict fed, upright images its
network never saw). Only such runs pay for the check: each file's header is opened, nothing is decoded.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from searchlab.data.common import UNREADABLE_IMAGE
from searchlab.data.loading import DataConfig, files_by_split
from searchlab.errors import a_few
from searchlab.models.image_files import DECODER

ORIENTATION_TAG = 0x0112   # EXIF Orientation: 1 is as stored; 2-8 mirror and/or turn


def record_decoder(record: dict[str, Any]) -> int:
    """The decoder a run's record says its images were read with (records before the key: 1)."""
    return int(record.get("decoder", 1))


def turned_files(cfg: DataConfig | None, seed: int, base_dir: Path | None, splits: Sequence[str]) -> list[Path]:
    """Files of these splits whose EXIF orientation turns or mirrors them (none for MedMNIST)."""
    files = files_by_split(cfg, seed, base_dir, splits)
    return [path for split in splits for path in files[split] if _turned(path)]


def turned_since(record: dict[str, Any], cfg: DataConfig | None, seed: int, base_dir: Path | None,
                 splits: Sequence[str]) -> str | None:
    """In words, the files a run recorded before decoder 2 read as stored and this searchlab reads upright;
    None when there are none (or the run used this decoder)."""
    if record_decoder(record) >= DECODER:
        return None
    turned = turned_files(cfg, seed, base_dir, splits)
    if not turned:
        return None
    return (f"{len(turned)} image file(s) of its {'/'.join(splits)} split(s) carry an EXIF orientation "
            f"({a_few(turned)}), which the searchlab that ran its trials ignored and this one applies: they were "
            "trained on as stored, and are now read upright")


def _turned(path: Path) -> bool:
    try:
        with Image.open(path) as img:   # the header only
            return img.getexif().get(ORIENTATION_TAG, 1) not in (1, None)
    except UNREADABLE_IMAGE:
        return False   # unreadable files are named by decoding
