"""Images a generative model made (`searchlab sample`), found among a data set's files, which must be acquired
images: validated or tested on, they would grade a model on a generator's output; in a folder searchlab splits,
or under cross-validation, they would be dealt to held-out images. `augment.synthetic` is how a generator's
images join the training split (and only it).

Known three ways: by the mark `searchlab sample` writes in each PNG (a text chunk, MARK_KEY, naming the export
and its weights' SHA-256), which stays on a file renamed or copied without its record; by `searchlab sample`'s
file names (synthetic_s<seed>_<i>.png); and by its record (synthetic.json, in its --out folder, above the class
folders) in the image's folder or the one above it. A record that lists the files its draws wrote counts those
alone; an older one, without the lists, every image beside it.

The mark is read from the chunks before the pixels (IDAT), so no image is decoded: this runs while the splits
are planned (plan_folder, plan_csv), on every load, before the decoded-image cache is consulted, so an image
cached by an earlier run is checked all the same.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from searchlab.errors import DataError

RECORD = "synthetic.json"
SYNTHETIC_NAME = re.compile(r"^synthetic_s\d+_\d+\.png$")
MARK_KEY = "searchlab-synthetic"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")   # each starts with its keyword and a NUL byte
PIXEL_CHUNKS = (b"IDAT", b"IEND")           # past the header chunks: a mark written by PIL is before these
LONGEST_MARK = 4096                         # bytes: a text chunk longer than this is not ours, and is skipped

# how an image was known, as refuse_synthetic says it
BY_MARK = f"the '{MARK_KEY}' text chunk `searchlab sample` writes in each PNG (kept by a renamed copy)"
BY_NAME = "`searchlab sample`'s file names, synthetic_s<seed>_<i>.png"
BY_RECORD = f"the {RECORD} record in their folder or the one above"


def synthetic_name(seed: int, index: int) -> str:
    """The file name `searchlab sample` gives its `index`-th image of a draw with `seed`."""
    return f"synthetic_s{seed}_{index:05d}.png"


def synthetic_mark(path: Path) -> str | None:
    """The text of `path`'s searchlab-synthetic mark ('' when not in a tEXt chunk), or None: no mark, not a PNG,
    or not readable (decoding says so later). Only the chunks before the pixels are read."""
    try:
        with open(path, "rb") as fh:
            if fh.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
                return None
            return _mark_in_chunks(fh)
    except OSError:
        return None


def _mark_in_chunks(fh: BinaryIO) -> str | None:
    """The mark among the chunks before the first IDAT (PNG: 4-byte length, 4-byte type, data, 4-byte CRC);
    other chunks are skipped, not read."""
    while len(head := fh.read(8)) == 8:
        length, kind = int.from_bytes(head[:4], "big"), head[4:]
        if kind in PIXEL_CHUNKS:
            return None
        if kind in TEXT_CHUNKS and length <= LONGEST_MARK:
            keyword, _, text = fh.read(length).partition(b"\0")
            if keyword == MARK_KEY.encode():
                return text.decode("latin-1") if kind == b"tEXt" else ""
            fh.seek(4, 1)   # the chunk's CRC
        else:
            fh.seek(length + 4, 1)
    return None


def synthetic_reasons(files: Iterable[Path]) -> dict[Path, str]:
    """Those of `files` a generative model made, in their order, each with how it was known (BY_*)."""
    listed = _RecordedFiles()
    return {path: why for path in files if (why := _known_as_synthetic(path, listed))}


def not_synthetic(files: Iterable[Path]) -> Iterator[Path]:
    """Those of `files` not known as a generative model's, lazily (a caller may stop at the first)."""
    listed = _RecordedFiles()
    return (path for path in files if not _known_as_synthetic(path, listed))


def _known_as_synthetic(path: Path, listed: _RecordedFiles) -> str | None:
    """How `path` is known as made by a generative model (BY_*), or None. The cheapest test first: the name
    costs no read, a record one per folder, the mark one per file."""
    if SYNTHETIC_NAME.match(path.name):
        return BY_NAME
    if listed.holds(path):
        return BY_RECORD
    return BY_MARK if synthetic_mark(path) is not None else None


def synthetic_among(files: Sequence[Path]) -> list[Path]:
    """Those of `files` a generative model made, in their order."""
    return list(synthetic_reasons(files))


class _RecordedFiles:
    """Which files the synthetic.json records beside them name, each folder's record read once."""

    def __init__(self) -> None:
        self.records: dict[Path, tuple[Path, frozenset[str] | None] | None] = {}

    def holds(self, path: Path) -> bool:
        """`path` is in the files a record in its folder or the one above lists (any file there, for a record
        that lists none)."""
        if (record := self.record_of(path.parent)) is None:
            return False
        folder, files = record
        return files is None or path.relative_to(folder).as_posix() in files

    def record_of(self, folder: Path) -> tuple[Path, frozenset[str] | None] | None:
        if folder not in self.records:
            holder = next((f for f in (folder, folder.parent) if (f / RECORD).is_file()), None)
            self.records[folder] = None if holder is None else (holder, recorded_files(holder))
        return self.records[folder]


def recorded_files(folder: Path) -> frozenset[str] | None:
    """The files (relative to `folder`, as POSIX paths) the draws of its synthetic.json wrote, or None when
    the record does not list them all (written before it did, or damaged): then every image there counts."""
    try:
        draws = json.loads((folder / RECORD).read_text())["draws"]
        if not draws or not all(isinstance(draw.get("files"), list) for draw in draws):
            return None
        return frozenset(str(name) for draw in draws for name in draw["files"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def refuse_synthetic(where: Path, files: dict[str, list[Path]], remove: str = "move them out of data.path") -> None:
    """DataError naming the synthetic images among the splits' files, if any, and how they were known."""
    found = {split: synthetic_reasons(paths) for split, paths in files.items()}
    found = {split: reasons for split, reasons in found.items() if reasons}
    if not found:
        return
    every = {path: why for reasons in found.values() for path, why in reasons.items()}
    counts = ", ".join(f"{len(reasons)} in {split}" for split, reasons in found.items())
    shown = ", ".join(str(path) for path in list(every)[:3]) + (", ..." if len(every) > 3 else "")
    raise DataError(f"{where}: {len(every)} image(s) ({counts}) were made by a generative model, recognised "
                    f"by {_how_known(every.values())}: {shown}. A data set's images "
                    "are validated, tested and cross-validated on as acquired ones, so a generator's would grade "
                    f"the models on its own output. Fix: {remove}, and add a generator's images to "
                    f"the training split with augment.synthetic{_named_export(list(every))} and synthetic_per_class "
                    "(they never reach validation or test)")


def _how_known(reasons: Iterable[str]) -> str:
    """'<reason> (<n> files)' for each reason, the most common first."""
    counts: dict[str, int] = {}
    for why in reasons:
        counts[why] = counts.get(why, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    return " and by ".join(f"{why} ({n} file{'s' if n != 1 else ''})" for why, n in ranked)


def _named_export(files: list[Path]) -> str:
    """': <the export(s) they were drawn from>' when a record beside them, or a file's mark, names one."""
    for path in files:
        for folder in (path.parent, path.parent.parent):
            if exports := drawn_from(folder):
                return f": {' or '.join(exports)}"
    for path in files[:10]:   # a few: a renamed copy's marks name the same export
        if export := _marked_export(path):
            return f": {export}"
    return ""


def _marked_export(path: Path) -> str | None:
    try:
        return str(json.loads(synthetic_mark(path) or "")["export"])
    except (ValueError, KeyError, TypeError):
        return None


def drawn_from(folder: Path) -> list[str]:
    """The generator exports the draws recorded in `folder`'s synthetic.json came from (none: no record)."""
    try:
        draws = json.loads((folder / RECORD).read_text())["draws"]
        return list(dict.fromkeys(str(draw["export"]) for draw in draws))
    except (OSError, ValueError, KeyError, TypeError):
        return []
