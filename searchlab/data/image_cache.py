"""Decoded image files kept on disk, so a folder or CSV set is decoded once, not by every process of every run.

Decoding is the slow part of reading a folder set (a 1024-px X-ray PNG takes ~15 ms: minutes for tens of
thousands), and every worker process and every resumed run read the set again (MONAI's PersistentDataset
answers the same cost). A split's decoded uint8 array is stored as one .npy file named by a hash of what
decoding depends on: each file's path, size and modification time, the output size, channels and fit, and
the decoder's version. Any change to a file or a setting names another cache file, so a stale array is
never read; a cache file that cannot be read is decoded again and replaced. Files are written to a temporary
name and renamed into place, so processes racing to fill one entry each write a whole file.

Where: $SEARCHLAB_CACHE, else $XDG_CACHE_HOME/searchlab, else ~/.cache/searchlab (under `images/`);
SEARCHLAB_CACHE=off decodes every time. Deleting the folder is always safe.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

CACHE_ENV = "SEARCHLAB_CACHE"
DECODER_VERSION = 1   # raise when read_image_file decodes differently: old entries are then never matched


def cache_dir() -> Path | None:
    """The image cache folder, or None when caching is off."""
    setting = os.environ.get(CACHE_ENV)
    if setting is not None and setting.strip().lower() in ("off", "0", "false", "no", "none", ""):
        return None
    if setting:
        return Path(setting).expanduser() / "images"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "searchlab" / "images"


def cached_decode(paths: Sequence[Path], size: int, channels: int, fit: str,
                  decode: Callable[[], np.ndarray]) -> np.ndarray:
    """The split's images from the cache, or `decode()`d and stored there."""
    folder = cache_dir()
    if folder is None or not paths:
        return decode()
    try:
        entry = folder / f"{entry_key(paths, size, channels, fit)}.npy"
    except OSError:   # a listed file is gone: decoding says which, as a DataError
        return decode()
    expected = (len(paths), channels, size, size)
    try:
        images = np.load(entry, allow_pickle=False)
        if images.shape == expected and images.dtype == np.uint8:
            return images
    except (OSError, ValueError):   # absent, truncated or not an array: decode again
        pass
    images = decode()
    _store(entry, images)
    return images


def entry_key(paths: Sequence[Path], size: int, channels: int, fit: str) -> str:
    files = []
    for path in paths:
        stat = Path(path).stat()
        files.append([str(Path(path).absolute()), stat.st_size, stat.st_mtime_ns])
    text = json.dumps({"decoder": DECODER_VERSION, "size": size, "channels": channels, "fit": fit, "files": files})
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _store(entry: Path, images: np.ndarray) -> None:
    """Write whole or not at all; a cache that cannot be written (read-only home, full disk) only costs time."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, images, allow_pickle=False)
            os.replace(tmp, entry)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass
