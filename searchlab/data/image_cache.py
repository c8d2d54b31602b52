"""Decoded image files kept on disk, so a folder or CSV set is decoded once, not by every process of every run.

Decoding is the slow part of reading a folder set (a 1024-px X-ray PNG takes ~15 ms: minutes for tens of
thousands), and every worker process and every resumed run read the set again (MONAI's PersistentDataset
answers the same cost). A split's decoded uint8 array is stored as one .npy file named by a hash of what
decoding depends on: each file's path, size, modification and status-change times (a file replaced by a copy
that keeps its size and modification time, as cp -p and rsync -t do, gets a new ctime), the output size,
channels, fit and bit depth, and the decoder's version. Any change to a file or a setting names another cache
file, so a stale array is never read; a cache file that cannot be read is decoded again and replaced. Files are
written to a temporary name and renamed into place, so processes racing to fill one entry each write a
whole file; a split whose files' stats moved while it was decoded is not stored (its rows could be of the new
contents under the old stats' key).

Beside each entry, an index (`<hash>.files.json`) lists its files as keyed, row by row. A split not cached as a
whole (another seed or fraction draws other splits from the same files) takes the rows of its files that other
entries of the same decoding hold, and decodes only the rest: a new seed decoded the whole set again (25 s for
200 2k-px X-rays, minutes for thousands).

Where: $SEARCHLAB_CACHE, else $XDG_CACHE_HOME/searchlab, else ~/.cache/searchlab (under `images/`);
SEARCHLAB_CACHE=off decodes every time. Deleting the folder is always safe.

Size: an edited data set names new entries and leaves its old ones behind, so the folder would only grow.
Like ccache, it is held under a limit ($SEARCHLAB_CACHE_LIMIT, default 20GB): after each write the least
recently used entries are deleted until the rest fit (a read marks an entry used), and a split larger
than the whole limit is not stored. A process still reading a deleted entry keeps its open file (POSIX);
one that opens it just after decodes again.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
import PIL

from searchlab.errors import DataError

if TYPE_CHECKING:   # types.py imports torch; `searchlab cache` needs neither
    from searchlab.data.types import Decoding

CACHE_ENV = "SEARCHLAB_CACHE"
LIMIT_ENV = "SEARCHLAB_CACHE_LIMIT"
DEFAULT_LIMIT = "20GB"
# raise when read_image_file decodes differently: old entries are then never matched (2: EXIF orientation
# applied, 16-bit PNGs read as such on any Pillow)
DECODER_VERSION = 2
STALE_TMP_SECONDS = 3600   # a temporary file this old was left by a killed writer, not one still writing
ENTRY_NAME = re.compile(r"[0-9a-f]{32}\.npy")   # entry_key's hash: eviction deletes these files only
INDEX_SUFFIX = ".files.json"                      # an entry's index: its files, row by row
INDEX_NAME = re.compile(r"[0-9a-f]{32}\.files\.json")
TMP_PREFIX = ".searchlab-entry-"
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([a-z]*)\s*")


def cache_dir() -> Path | None:
    """The image cache folder, or None when caching is off."""
    setting = os.environ.get(CACHE_ENV)
    if setting is not None and setting.strip().lower() in ("off", "0", "false", "no", "none", ""):
        return None
    if setting:
        return Path(setting).expanduser() / "images"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "searchlab" / "images"


def cache_limit() -> int:
    """The cache's size limit in bytes, from $SEARCHLAB_CACHE_LIMIT (e.g. 500MB, 20GB, 1.5GiB; 0 stores nothing)."""
    text = os.environ.get(LIMIT_ENV) or DEFAULT_LIMIT
    match = _SIZE.fullmatch(text.lower())
    if match is None or match.group(2) not in _UNITS:
        raise DataError(f"{LIMIT_ENV}: must be a size such as 500MB, 20GB or 1.5GiB (got {text!r}). Fix: set it "
                        f"to a number with one of the units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB, or unset it "
                        f"for the default {DEFAULT_LIMIT}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def check_cache_settings() -> None:
    """Raise DataError for a bad $SEARCHLAB_CACHE_LIMIT now (`run` calls this), not in every trial's loader."""
    if cache_dir() is not None:
        cache_limit()


def cached_decode(paths: Sequence[Path], decoding: Decoding,
                  decode: Callable[[Sequence[int]], np.ndarray]) -> np.ndarray:
    """The split's images from the cache, or `decode(rows)`d (the rows of `paths` no entry holds) and stored."""
    folder = cache_dir()
    everything = list(range(len(paths)))
    if folder is None or not paths:
        return decode(everything)
    limit = cache_limit()
    try:
        files = file_stats(paths)
    except OSError:   # a listed file is gone: decoding says which, as a DataError
        return decode(everything)
    entry = folder / f"{entry_key(files, decoding)}.npy"
    expected = (len(paths), decoding.channels, decoding.size, decoding.size)
    try:
        images = np.load(entry, allow_pickle=False)
        if images.shape == expected and images.dtype == np.uint8:
            _mark_used(entry)
            return images
    except (OSError, ValueError):   # absent, truncated or not an array: decode again
        pass
    images = np.zeros(expected, dtype=np.uint8)
    missing = _rows_from_other_entries(folder, _settings_key(decoding), files, images)
    if missing:
        images[missing] = decode(missing)
        if _changed_while_decoded(paths, files):
            return images   # its rows may be of the new contents: not stored under the old stats' key
    if images.nbytes <= limit:
        _store(entry, images, {"settings": _settings_key(decoding), "files": files})
        evict(folder, limit, keep=entry)
    return images


def file_stats(paths: Sequence[Path]) -> list[list[object]]:
    """What an entry is keyed by for each file: its absolute path, size, modification and change times."""
    files = []
    for path in paths:
        stat = Path(path).stat()
        # ctime too: a copy that keeps the old modification time (cp -p, rsync -t) and size still changes it
        files.append([str(Path(path).absolute()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns])
    return files


def _changed_while_decoded(paths: Sequence[Path], files: list[list[object]]) -> bool:
    """A file's stat moved between keying and decoding (rewritten meanwhile): the entry, keyed by the stats before,
    would hold pixels of the contents after, served to any process that stat-ed the files before the change."""
    try:
        return file_stats(paths) != files
    except OSError:
        return True


def entry_key(files: list[list[object]], decoding: Decoding) -> str:
    return hashlib.sha256(json.dumps(_settings(decoding, files)).encode()).hexdigest()[:32]


def _settings(decoding: Decoding, files: list[list[object]] | None) -> dict[str, object]:
    # Pillow's version too: how it opens a format may change (16-bit PNGs did), and a decode cached by another
    # would train on what export and predict no longer read
    settings: dict[str, object] = {"decoder": DECODER_VERSION, "pillow": PIL.__version__, "size": decoding.size,
                                   "channels": decoding.channels, "fit": decoding.fit}
    if files is not None:
        settings["files"] = files
    if decoding.bit_depth is not None:   # left out otherwise, so entries cached before bit_depth still match
        settings["bit_depth"] = decoding.bit_depth
    return settings


def _settings_key(decoding: Decoding) -> str:
    """The decoding alone: entries sharing it hold interchangeable rows of the files they share."""
    return hashlib.sha256(json.dumps(_settings(decoding, None)).encode()).hexdigest()[:32]


def _rows_from_other_entries(folder: Path, settings: str, files: list[list[object]], images: np.ndarray) -> list[int]:
    """Fill `images` with the rows other entries of the same decoding hold for these files (as keyed: the same
    path, size and times); the rows left to decode."""
    wanted = {tuple(stat): row for row, stat in enumerate(files)}
    for index in sorted(folder.glob(f"*{INDEX_SUFFIX}")) if folder.is_dir() else ():
        if not wanted:
            break
        try:
            copied = _copy_rows(index, settings, wanted, images)
        except (OSError, ValueError, KeyError, TypeError):   # evicted meanwhile, or damaged: those rows are decoded
            continue
        for stat in copied:
            del wanted[stat]
    return sorted(wanted.values())


def _copy_rows(index: Path, settings: str, wanted: dict[tuple[object, ...], int], images: np.ndarray) -> list[tuple]:
    """The files of `wanted` (file -> row of `images`) that the entry of `index` holds, copied; which they were."""
    listed = json.loads(index.read_text())
    if listed["settings"] != settings:
        return []
    pairs = [(row, tuple(stat)) for row, stat in enumerate(listed["files"]) if tuple(stat) in wanted]
    if not pairs:
        return []
    entry = _entry_of(index)
    held = np.load(entry, mmap_mode="r", allow_pickle=False)
    if held.shape != (len(listed["files"]),) + images.shape[1:] or held.dtype != np.uint8:
        raise ValueError("an entry unlike its index")
    images[[wanted[stat] for _, stat in pairs]] = held[[row for row, _ in pairs]]
    _mark_used(entry)
    return [stat for _, stat in pairs]


def _store(entry: Path, images: np.ndarray, index: dict[str, object]) -> None:
    """Write whole or not at all, the array before its index (an index never lists rows not yet written); a cache
    that cannot be written (read-only home, full disk) only costs time."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        _write_whole(entry, lambda fh: np.save(fh, images, allow_pickle=False))
        _write_whole(_index_of(entry), lambda fh: fh.write(json.dumps(index).encode()))
    except OSError:
        pass


def _write_whole(path: Path, write: Callable[[BinaryIO], object]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_PREFIX, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _index_of(entry: Path) -> Path:
    return entry.with_name(entry.stem + INDEX_SUFFIX)


def _entry_of(index: Path) -> Path:
    return index.with_name(index.name.removesuffix(INDEX_SUFFIX) + ".npy")


def _mark_used(entry: Path) -> None:
    """A read makes an entry the most recently used (its mtime: atime is often not kept, noatime mounts)."""
    try:
        os.utime(entry)
    except OSError:   # a read-only cache is still read
        pass


def cache_entries(folder: Path) -> list[tuple[Path, os.stat_result]]:
    """The cache's entries with their stats, least recently used first (entries deleted meanwhile left out)."""
    entries = []
    for path in folder.glob("*.npy") if folder.is_dir() else ():
        if not ENTRY_NAME.fullmatch(path.name):   # a user's own .npy put there is not ours to delete
            continue
        try:
            entries.append((path, path.stat()))
        except OSError:
            continue
    return sorted(entries, key=lambda item: item[1].st_mtime_ns)


def evict(folder: Path, limit: int, keep: Path | None = None) -> int:
    """Delete the least recently used entries until the rest take at most `limit` bytes; the bytes freed.

    `keep` (the entry just written) is never deleted. Temporary files of killed writers are removed too.
    """
    freed = 0
    for tmp in folder.glob(f"{TMP_PREFIX}*.tmp") if folder.is_dir() else ():
        try:
            if time.time() - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                tmp.unlink()
        except OSError:
            continue
    for index in folder.glob(f"*{INDEX_SUFFIX}") if folder.is_dir() else ():
        if INDEX_NAME.fullmatch(index.name) and not _entry_of(index).exists():
            index.unlink(missing_ok=True)   # its entry was deleted by hand or by another process's eviction
    entries = cache_entries(folder)
    total = sum(stat.st_size for _, stat in entries)
    for path, stat in entries:
        if total <= limit:
            break
        if path == keep:
            continue
        try:
            path.unlink()
        except FileNotFoundError:   # another process evicted it first: its bytes are gone all the same
            pass
        except OSError:
            continue
        _index_of(path).unlink(missing_ok=True)
        total -= stat.st_size
        freed += stat.st_size
    return freed


def cache_usage() -> str:
    """Where the cache is, its entries and size against the limit: what `searchlab cache` prints."""
    folder = cache_dir()
    if folder is None:
        return f"image cache: off ({CACHE_ENV}={os.environ.get(CACHE_ENV)!r})"
    entries = cache_entries(folder)
    size = sum(stat.st_size for _, stat in entries)
    return (f"image cache: {folder}\n{len(entries)} entries, {_human(size)} of the {_human(cache_limit())} limit "
            f"({LIMIT_ENV}; default {DEFAULT_LIMIT})")


def clear_image_cache() -> str:
    """Delete every entry; what was freed, for `searchlab cache --clear`."""
    folder = cache_dir()
    if folder is None:
        return f"image cache: off ({CACHE_ENV}={os.environ.get(CACHE_ENV)!r}), nothing to clear"
    count = len(cache_entries(folder))
    freed = evict(folder, 0)
    return f"image cache: {folder}\nremoved {count} entries, {_human(freed)}"


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"
