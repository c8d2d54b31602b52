"""Which splits a folder or CSV set gives of its own (split folders, a CSV's split column), read cheaply and
without torch, so that loading a study can refuse a val_fraction or test_fraction the data makes unused (it
was ignored without a word). Anything this cannot read (no such folder, no column) is left to the run start,
whose data checks name it; here it is None.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "val", "test")   # here, not in data/common.py, which imports torch


@dataclass(frozen=True)
class GivenSplits:
    """The splits the data itself holds rows or folders of, and where that is said (for messages)."""

    splits: frozenset[str]
    where: Path                      # the data folder, or the CSV file
    rows: dict[str, int]             # a CSV's rows marked per split; empty for a folder


def resolve_path(path: Path, base_dir: Path | None) -> Path:
    """Expand ~ and make a relative path relative to the study file's folder (not the shell's cwd)."""
    path = Path(path).expanduser()
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir).expanduser() / path
    return path


def csv_delimiter(header: str) -> str:
    """Commas, unless the header has none but semicolons or tabs (Excel's CSV in locales with a decimal
    comma, and TSV files): a one-column reading would otherwise report every column missing."""
    for delimiter in (",", ";", "\t"):
        if delimiter in header:
            return delimiter
    return ","


def folder_splits(root: Path) -> GivenSplits | None:
    """A folder's own split folders (train/ and val/ or test/, lower case as the loader reads them), or None
    when it has no train/ folder: searchlab then splits it by the fractions (or the loader refuses it)."""
    try:
        present = frozenset(name for name in SPLITS if (root / name).is_dir())
    except OSError:
        return None
    return GivenSplits(present, root, {}) if "train" in present else None


def csv_splits(csv_path: Path, column: str) -> GivenSplits | None:
    """The splits a CSV's split column marks rows of (in any case, trimmed, as the loader reads them), or None
    when the file or the column cannot be read."""
    rows: dict[str, int] = {}
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=csv_delimiter(fh.readline()))
            fh.seek(0)
            header = [name.strip() for name in next(reader, [])]
            if header.count(column) != 1:
                return None
            at = header.index(column)
            for row in reader:
                value = row[at].strip().lower() if at < len(row) else ""
                if value in SPLITS:
                    rows[value] = rows.get(value, 0) + 1
    except (OSError, UnicodeDecodeError, csv.Error):
        return None
    return GivenSplits(frozenset(rows), csv_path, rows)
