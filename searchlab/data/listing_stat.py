"""Whether the list of a folder or CSV set's files changed while its run runs (data/recorded_split.py).

A process that runs trials lists data.path once and keeps the decoded set (data/loading.py's cache), so a trial
compares the run's record with what its process listed at its first trial. A CSV relabelled or given other rows
while the run runs, or an image added to a class folder, then went unseen until export refused the changed data,
after every trial had run (and a worker started later, a joined run, a Ray worker trained on the new list).

So the run also records the stat signature of what the list is made from ("listing" in data_stat): the CSV file
itself, or each folder that holds a member file (with the folders above it up to data.path; a folder's
modification time moves when an entry is added, removed or renamed in it). A trial stats them (a few stats); when
one moved it lists the data again (nothing decoded) and compares its splits' members with the record: another
file, label or split is a change. A folder touched by an unrelated file (a README) lists alike and is remembered.

A set of more than LISTING_MAX_SOURCES folders (patient sub-folders, mostly) keeps the record small by recording
only the folders at most 2 levels below data.path (its split and class folders: fewer levels if those are still too
many; data.path itself always). An image added to, removed from or renamed in a folder deeper than that (a
patient's sub-folder) is then not seen while the run runs; a new patient folder is, and each trial still checks its
own files (a file removed or replaced in place stops the run), and a resume or an export lists the whole set.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from searchlab.data.types import SplitPlan

LISTING_MAX_SOURCES = 5_000   # folders a record keeps signatures of (about 30 bytes each); more: the top ones only
SHALLOW_LEVELS = (2, 1, 0)    # how deep below data.path the folders of a set over LISTING_MAX_SOURCES are recorded

Relist = Callable[[], "SplitPlan | None"]


def listing_sources(plan: SplitPlan) -> list[str]:
    """What the plan's list is read from, relative to data.path: the CSV itself (""), or each folder of a member
    file and the folders above it, data.path's own ("") included. Sorted, so the record's order is stable."""
    source = Path(plan.source)
    if source.is_file():
        return [""]
    folders = {""}
    for files in plan.files.values():
        for path in files:
            try:
                parts = Path(path).parent.relative_to(source).parts
            except ValueError:   # not under data.path as named (no such plan today): its folder is not checked
                continue
            folders.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return sorted(folders)


def listing_signatures(plan: SplitPlan, signature_of: Callable[[Path], str]) -> list[list[str]] | None:
    """[[source, signature], ...] for the record (over LISTING_MAX_SOURCES folders, the top ones: within_limit);
    None for a folder that cannot be stat-ed."""
    sources = within_limit(listing_sources(plan))
    try:
        return [[name, signature_of(_source_path(Path(plan.source), name))] for name in sources]
    except OSError:
        return None


def within_limit(sources: list[str]) -> list[str]:
    """The sources a record keeps: all, or for more than LISTING_MAX_SOURCES those at most 2 levels below data.path
    (fewer levels while still too many; data.path alone at worst). A folder's time moves when an entry in it is
    added, removed or renamed, so the split and class folders still tell images added to or removed from them,
    and new or removed patient folders; changes inside deeper folders are not seen mid-run (module docstring)."""
    for levels in SHALLOW_LEVELS:
        if len(sources) <= LISTING_MAX_SOURCES:
            return sources
        sources = [name for name in sources if _levels(name) <= levels]
    return sources


def _levels(name: str) -> int:
    """How many folders below data.path a source is ("" is data.path itself: 0)."""
    return len(name.split("/")) if name else 0


def moved_sources(path: str, recorded: object, signature_of: Callable[[Path], str]) -> list[tuple[str, str | None]]:
    """The recorded sources whose signature differs now (or that are gone: None), each with its signature now (a
    source that lists alike is remembered by it: a later change to it is looked at again); [] without a record."""
    if not isinstance(recorded, list):
        return []
    moved = []
    for entry in recorded:
        if not (isinstance(entry, list) and len(entry) == 2):
            continue
        try:
            now = signature_of(_source_path(Path(path), str(entry[0])))
        except OSError:
            now = None
        if now != entry[1]:
            moved.append((str(entry[0]), now))
    return moved


def images_changed_in(path: str, moved: Sequence[tuple[str, str | None]], listing: Mapping[str, object] | None,
                      watched: Sequence[str]) -> list[str]:
    """For a folder set that no longer lists (a folder without images added beside its classes), the image files
    added to or removed from the moved folders that held files of the `watched` splits at the start, by the
    recorded `listing` (member_changes.decode_listing): 'added a/x.png', 'removed b/y.png'. Failing to list, the
    data hid a real change made at the same time (an image added to a class folder went unseen)."""
    from searchlab.data.common import IMAGE_EXTENSIONS

    root = Path(path)
    splits = (listing or {}).get("splits")
    if not root.is_dir() or not isinstance(splits, dict):
        return []
    by_folder: dict[str, set[str]] = {}   # the recorded files of every split, by folder
    for rows in splits.values():
        for row in rows or ():
            by_folder.setdefault(Path(str(row[0])).parent.as_posix(), set()).add(str(row[0]))
    held = {Path(str(row[0])).parent.as_posix() for split in watched for row in splits.get(split) or () if row}
    changes = []
    for name, _ in moved:
        folder = name or "."
        if folder not in held:
            continue
        try:
            now = {(Path(folder) / entry.name).as_posix().removeprefix("./") for entry in os.scandir(root / name)
                   if entry.is_file() and not entry.name.startswith(".")
                   and Path(entry.name).suffix.lower() in IMAGE_EXTENSIONS}
        except OSError:
            now = set()
        then = by_folder.get(folder, set())
        changes += [f"added {n}" for n in sorted(now - then)] + [f"removed {n}" for n in sorted(then - now)]
    return changes


def recorded_members(record: Mapping[str, object] | None) -> dict[str, object]:
    """Each split's members digest as the run recorded it (data/fingerprint.py), {} without one."""
    splits = ((record or {}).get("data_files") or {})
    return {split: (entry or {}).get("members") for split, entry in (splits.get("splits") or {}).items()} \
        if isinstance(splits, dict) else {}


def _source_path(source: Path, name: str) -> Path:
    return source / name if name else source
