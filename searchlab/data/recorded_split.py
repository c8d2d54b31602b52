"""Whether the splits a trial read are those its run recorded (engine/data_record.py).

Every process that runs trials (a local worker, a Ray worker on another machine) lists data.path itself, after
the run recorded it: files added, removed or relabelled meanwhile gave trials other splits than the record, and
export then scored the model on a test split that could hold images the trials trained on. A loaded set keeps
each split's members digest (read_as), which a trial compares with the record's (split_as_recorded).

Names alone miss a file whose contents are replaced under its name while the run runs (images re-exported or
re-cropped into the folder, a sync tool updating them): later trials trained and validated on other images than
earlier ones, and only a resume or an export (which digest whole files) said so, after the run. So the run also
records a signature of each member file's stat (size, modification and status-change times: no file read;
"data_stat", member_stats), and each trial compares it with the files' stat at its start (files_unchanged: a
stat per file, about 13 ms for 2,000 files here). A file whose stat changed is then digested whole and compared
with the run's listing (or its split's contents hash): one only touched, chmod-ed, or a copy of the same bytes
(another node's copy of the data) is not a change. ctime is in the signature because a copy that keeps the size
and modification time (cp -p, rsync -t) still changes it; reading a file (atime) changes neither.

A MedMNIST file holds every split's arrays: re-saved with only its test arrays changed, its stat and sampled digest
move although the arrays trials read do not. Its record also keeps each array's CRC-32 and size from the zip's
directory (read without reading the arrays), and a trial fails only when its own splits' arrays differ.

Either change raises DataChanged: the trial that finds it fails, and the run stops (engine/worker.py,
engine/ray_executor.py), since every later trial would read the same files; restored, the study goes on.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from searchlab.data.listing_stat import (Relist, images_changed_in, listing_signatures, moved_sources,
                                         recorded_members)
from searchlab.data.types import ImageDataset, SplitPlan
from searchlab.errors import DataChanged, DataError


def members_digest(plan: SplitPlan, split: str) -> str:
    """A split's members as the data's fingerprint hashes them (data/fingerprint.py "members": each file's name
    relative to the data's folder, and its label), from the plan alone: a trial compares the splits it read with
    the run's record by it (split_as_recorded), without reading a file again."""
    from searchlab.data.fingerprint import member_line, relative_name   # it imports folder_source, which imports this

    digest = hashlib.sha256()
    for path, label in zip(plan.files.get(split, []), plan.labels.get(split, [])):
        digest.update(member_line(relative_name(path, plan.root), label))
    return digest.hexdigest()[:32]


def read_as(plan: SplitPlan, splits: Sequence[str]) -> dict[str, object]:
    """What a loaded set keeps of its plan (ImageDataset.extra): its files, and the members digest of each split
    with the folder they are named relative to, for split_as_recorded."""
    return {"files": {s: tuple(str(p) for p in plan.files[s]) for s in splits}, "root": str(plan.root),
            "members": {s: members_digest(plan, s) for s in splits}}


def split_as_recorded(data: ImageDataset, record: Mapping[str, object] | None) -> None:
    """Refuse splits other than the run recorded when it started, or files of them changed since (the module
    docstring says why). A trial calls listing_unchanged first: this process listed the data at its first trial."""
    _same_members(data, record)
    files_unchanged(data, record)


def _same_members(data: ImageDataset, record: Mapping[str, object] | None) -> None:
    """Refuse splits of other files or labels than the run recorded when it started."""
    from searchlab.data.fingerprint import MEMBERS_SINCE   # fingerprint imports folder_source, which imports this

    recorded, members = (record or {}).get("data_files"), data.extra.get("members")
    if not isinstance(recorded, dict) or recorded.get("version", 0) < MEMBERS_SINCE or not members:
        return   # MedMNIST, no data section, or a record from before fingerprints: nothing to compare with
    then = recorded.get("splits") or {}
    changed = [s for s, digest in members.items() if (then.get(s) or {}).get("members") != digest]
    if changed:
        _refuse_other_members(data, record, changed, data.extra.get("files", {}))


def _refuse_other_members(data: ImageDataset, record: Mapping[str, object], changed: list[str],
                          files: Mapping[str, Sequence[object]], plan: SplitPlan | None = None) -> None:
    """Raise DataChanged for splits whose members (`files`, per split) differ from the run's record; `plan`: the
    data listed again, whose splits drawn from one pool are said over the pool (_pool_said)."""
    root = Path(str(data.extra.get("root")))
    pool, pool_said = _pool_said(record, plan)
    parts = [pool_said] if pool_said else []
    parts += [_split_change(record, s, root, files.get(s, ())) for s in changed if s not in pool]
    said = "; ".join(parts)
    splits = f"{' and '.join(changed)} split" + ("s differ from those" if len(changed) > 1 else " differs from the one")
    raise DataChanged(f"{data.extra.get('path')}: this trial's {splits} the run recorded when it started ({said}): "
                      "files under data.path were added, removed or relabelled while the run ran, and this trial "
                      "would train on other images than the run records and exports (its test split could hold "
                      f"images trained on). {RUN_STOPS}")


# the listing sources (data/listing_stat.py) whose stat moved but which listed alike (or not at all), in this process
_LOOKED_AT: set[tuple[str, tuple[tuple[str, str | None], ...]]] = set()
_UNLISTED_SAID: set[str] = set()   # the data paths whose failed listing this process warned of


def listing_unchanged(data: ImageDataset, record: Mapping[str, object] | None, relist: Relist | None) -> None:
    """Refuse a trial when the data, listed again (`relist`: relist_of) because what its list is read from moved (a
    CSV edited, a folder given an image), has other members in this trial's splits than the run recorded: this
    process's set was listed at its first trial and is kept (data/listing_stat.py)."""
    from searchlab.data.fingerprint import MEMBERS_SINCE   # fingerprint imports folder_source, which imports this

    stats, path = (record or {}).get("data_stat"), str(data.extra.get("path"))
    recorded = (record or {}).get("data_files")
    if not isinstance(stats, dict) or stats.get("version") != STAT_VERSION or not isinstance(recorded, dict) \
            or recorded.get("version", 0) < MEMBERS_SINCE or not data.extra.get("members") or relist is None:
        return
    moved = tuple(moved_sources(path, stats.get("listing"), _signature_hex))
    if not moved or (path, moved) in _LOOKED_AT:
        return
    try:
        plan = relist()
    except (DataError, OSError) as exc:
        _refuse_images_changed(data, record, moved, exc)
        _LOOKED_AT.add((path, moved))
        _unlisted_said(path, exc)
        return
    then = recorded_members(record)
    changed = [s for s in data.extra["members"] if plan is None or members_digest(plan, s) != then.get(s)]
    if not changed:
        _LOOKED_AT.add((path, moved))
        return
    _forget_loaded_data()
    _refuse_other_members(data, record, changed, plan.files if plan is not None else {}, plan)


def _refuse_images_changed(data: ImageDataset, record: Mapping[str, object], moved: tuple[tuple[str, str | None], ...],
                           exc: BaseException) -> None:
    """Raise DataChanged when a folder set that no longer lists also had images added to or removed from the
    folders of the trial's splits (listing_stat.images_changed_in): that the whole set fails to list hid them."""
    from searchlab.data.member_changes import decode_listing, listed

    path = str(data.extra.get("path"))
    changes = images_changed_in(path, moved, decode_listing(record.get("data_listing")), list(data.extra["members"]))
    if changes:
        _forget_loaded_data()
        raise DataChanged(f"{path}: images were added to or removed from the folders of this trial's splits while "
                          f"the run ran ({listed(changes)}), and the data no longer lists as a data set ({exc}). "
                          f"{RUN_STOPS}")


def _unlisted_said(path: str, exc: BaseException) -> None:
    """A listing that fails now proves no change of the trial's files: an empty folder, a class only the test split
    has, a run folder inside data.path (an audit's: "runs: class folder holds no images") stopped runs whose
    training and validation files had not changed. The run goes on: each trial still checks its own files' stat
    (files_unchanged), and an export lists the data again. Said once per process."""
    if path in _UNLISTED_SAID:
        return
    _UNLISTED_SAID.add(path)
    print(f"warning: {path} changed while the run runs and no longer lists as a data set ({exc}); the run goes on "
          "with the files it listed at its start (each trial still checks them, and an export lists the data "
          "again). Fix: leave data.path unchanged while a run reads it, and keep run folders out of it",
          file=sys.stderr)


def relist_of(study: object) -> Relist | None:
    """How a trial of `study` lists its data anew, as the run did (loading.plan_files); None without a data section."""
    from searchlab.data.loading import plan_files   # loading imports fingerprint, which imports this module

    config = getattr(study, "config", None)
    data = getattr(config, "data", None)
    if data is None:
        return None
    return lambda: plan_files(data, config.seed, study.base_dir)


def _signature_hex(path: Path) -> str:
    return _signature(stat_of(path)).hex()


# How a DataChanged message ends: what happens to the run, and the two ways on
RUN_STOPS = ("The run stops here, as every later trial would read the same files (trials still running are "
             "interrupted; their configs and this trial's run again when the study does). Fix: restore the files "
             "as they were, then `searchlab run` the same study again to continue it; or start a new study "
             "(another name or run_dir) on the changed files")


def _split_change(record: Mapping[str, object], split: str, root: Path, files: Sequence[object]) -> str:
    """'train: 108 files then, 132 now, added benign/x.png, ...' (names when the record keeps its listing)."""
    from searchlab.data.fingerprint import relative_name
    from searchlab.data.member_changes import decode_listing, listed

    was = ((record.get("data_files") or {}).get("splits") or {}).get(split) or {}
    text = f"{split}: {was.get('files', 0)} files then, {len(files)} now"
    listing = decode_listing(record.get("data_listing"))
    if listing is None:
        return text
    old = {row[0] for row in listing["splits"].get(split, [])}
    new = {relative_name(Path(f), root) for f in files}
    moves = [f"{how} {listed(sorted(names))}" for how, names in (("added", new - old), ("without", old - new)) if names]
    return text + (", " + ", ".join(moves) if moves else ", the same files with other labels or order")


def _pool_said(record: Mapping[str, object], plan: SplitPlan | None) -> tuple[list[str], str | None]:
    """The splits searchlab drew by fractions from one pool, and their change said over the pool as a resume says it
    (member_changes.pool_changed: 'train and val together (drawn from one pool): removed a/x.png, added a/y.png; 11
    files moved between these splits as a result'). Split by split, one file renamed or added read as a dozen others
    added and removed (those that only moved between the splits), and the file changed was never named. ([], None)
    when the data fixes its splits, or no listing was recorded (a set too large) or names no change."""
    from searchlab.data.fingerprint import drawn_pool
    from searchlab.data.member_changes import decode_listing, pool_changed

    recorded = record.get("data_files")
    pool = drawn_pool(recorded) if isinstance(recorded, dict) else []
    before = decode_listing(record.get("data_listing"))
    if plan is None or len(pool) < 2 or before is None:
        return [], None
    said = pool_changed(before, _names_and_labels(plan, pool), pool)
    return (pool, said) if said else ([], None)


def _names_and_labels(plan: SplitPlan, splits: Sequence[str]) -> dict[str, object]:
    """The plan's listing as member_changes compares them (the rows of fingerprint_with_listing): names and labels
    only, as no file is read for it (groups and digests left empty: pool_changed compares neither)."""
    from searchlab.data.fingerprint import label_text, relative_name   # the listing's own label text

    rows = {split: [[relative_name(path, plan.root), label_text(label), "", ""] for path, label
                    in zip(plan.files.get(split, []), list(plan.labels.get(split, [])))] for split in splits}
    return {"classes": list(plan.classes), "splits": rows}


STAT_VERSION = 1         # raise when what a signature hashes changes: records of other versions are not compared
SIGNATURE_BYTES = 4      # per file: a changed file is missed once in 4 billion; 2,000 files take 11 KB of record
STAT_MAX_FILES = 60_000  # files whose signatures a record keeps (about 320 KB); a larger set is not checked by stat
# files whose stat changed since the record but whose contents were found alike, in this process: (path, stat)
_FOUND_ALIKE: set[tuple[str, tuple[int, int, int]]] = set()

Stat = tuple[int, int, int]   # size, mtime_ns, ctime_ns


def stat_of(path: Path | str) -> Stat:
    found = os.stat(path)
    return found.st_size, found.st_mtime_ns, found.st_ctime_ns


def _signature(stat: Stat) -> bytes:
    return hashlib.blake2b(struct.pack("<qqq", *stat), digest_size=SIGNATURE_BYTES).digest()


def member_stats(plan: SplitPlan) -> dict[str, object] | None:
    """What the run records of its splits' files for files_unchanged: per split, each file's signature in the
    plan's order, concatenated; None for a set over STAT_MAX_FILES or a file that cannot be stat-ed (the
    fingerprint names it). Taken before the files are digested (engine/data_record.py), which follows."""
    if sum(len(files) for files in plan.files.values()) > STAT_MAX_FILES:
        return None
    try:
        splits = {split: b"".join(_signature(stat_of(path)) for path in files) for split, files in plan.files.items()}
    except OSError:
        return None
    return {"version": STAT_VERSION, "splits": {split: base64.b64encode(sigs).decode("ascii")
                                                 for split, sigs in splits.items()},
            # what the list is read from: the CSV, or the folders of the files (data/listing_stat.py)
            "listing": listing_signatures(plan, _signature_hex)}


def medmnist_stat(path: Path | None) -> dict[str, object] | None:
    """The same for a MedMNIST file (one file; None when it is not there), with its arrays' CRC-32 and size
    (npz_arrays; None for a file that is no zip: then the whole file is compared)."""
    try:
        return None if path is None else {"version": STAT_VERSION, "file": str(path),
                                          "signature": _signature(stat_of(path)).hex(), "arrays": npz_arrays(path)}
    except OSError:
        return None


def npz_arrays(path: Path) -> dict[str, str] | None:
    """Each array of an .npz as "crc32:bytes", by its name ("train_images"): from the zip's central directory at
    the file's end, so no array is read (MedMNIST+ files run to GBs); the CRC covers the array's bytes as stored,
    header (dtype, shape) included. None for a file that is not a zip."""
    try:
        with zipfile.ZipFile(path) as npz:
            return {info.filename.removesuffix(".npy"): f"{info.CRC:08x}:{info.file_size}" for info in npz.infolist()}
    except (zipfile.BadZipFile, ValueError):
        return None


def files_unchanged(data: ImageDataset, record: Mapping[str, object] | None) -> None:
    """Refuse a trial whose split files' contents changed since the run recorded them (the module docstring)."""
    stats = (record or {}).get("data_stat")
    if not isinstance(stats, dict) or stats.get("version") != STAT_VERSION:
        return   # no data section, a record from before signatures, or a set too large to keep them
    gone: set[tuple[str, str]] = set()
    if "file" in stats:
        changed = _medmnist_changed(data, record, stats)
    else:
        found = {split: _split_changed(data, record, stats, split) for split in data.extra.get("files", {})}
        changed = [(split, name) for split, names in found.items() for name, _ in names]
        gone = {(split, name) for split, names in found.items() for name, is_gone in names if is_gone}
    if changed:
        _forget_loaded_data()
        raise DataChanged(_changed_said(data, changed, gone))


def _recorded_signatures(stats: Mapping[str, object], split: str, count: int) -> list[bytes] | None:
    try:
        packed = base64.b64decode(str((stats.get("splits") or {}).get(split)), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(packed) != count * SIGNATURE_BYTES:   # another listing: _same_members has said so, or had nothing to compare
        return None
    return [packed[i:i + SIGNATURE_BYTES] for i in range(0, len(packed), SIGNATURE_BYTES)]


def _split_changed(data: ImageDataset, record: Mapping[str, object], stats: Mapping[str, object],
                   split: str) -> list[tuple[str, bool]]:
    """The split's files (named relative to the data's folder) whose contents differ from the run's record, each
    with whether it is gone (deleted, moved or renamed)."""
    from searchlab.data.fingerprint import relative_name

    files = [Path(f) for f in data.extra.get("files", {}).get(split, ())]
    recorded = _recorded_signatures(stats, split, len(files))
    if recorded is None:
        return []
    moved = []
    for path, signature in zip(files, recorded):
        try:
            stat = stat_of(path)
        except OSError:
            moved.append((path, None))   # gone: not alike, whatever it held
            continue
        if _signature(stat) != signature and (str(path), stat) not in _FOUND_ALIKE:
            moved.append((path, stat))
    if not moved:
        return []
    root = Path(str(data.extra.get("root")))
    alike = _contents_alike(record, split, files, [(relative_name(p, root), p, s) for p, s in moved])
    return [(relative_name(path, root), stat is None) for path, stat in moved if relative_name(path, root) not in alike]


def _contents_alike(record: Mapping[str, object], split: str, files: list[Path],
                    moved: list[tuple[str, Path, Stat | None]]) -> set[str]:
    """Of the files whose stat changed, those whose contents are still the run's (touched, or copied alike):
    by each file's digest in the run's listing; without a listing, by the split's contents hash (all files
    digested again). Remembered with their stat, so a process digests a file once per change."""
    from searchlab.data.fingerprint import VERSION
    from searchlab.data.member_changes import DIGEST_HEX, decode_listing

    readable = [(name, path, stat) for name, path, stat in moved if stat is not None]
    listing = decode_listing(record.get("data_listing"))
    if listing is not None:
        digests = {row[0]: row[3] for row in listing["splits"].get(split, [])}
        alike = {name for name, path, _ in readable if _digest_or_none(path, DIGEST_HEX)
                 == digests.get(name, "")}
    else:
        entry = (((record.get("data_files") or {}).get("splits") or {}).get(split) or {})
        same = (record.get("data_files") or {}).get("version") == VERSION and \
            entry.get("contents") == _contents_or_none(files)
        alike = {name for name, _, _ in readable} if same else set()
    _FOUND_ALIKE.update((str(path), stat) for name, path, stat in readable if name in alike)
    return alike


def _contents_or_none(files: list[Path]) -> str | None:
    from searchlab.data.fingerprint import contents_hash   # fingerprint imports folder_source, which imports this

    try:
        return contents_hash(files)
    except OSError:   # a file gone or unreadable: not alike
        return None


def _digest_or_none(path: Path, digits: int) -> str | None:
    from searchlab.data.fingerprint import content_digest   # as _contents_or_none

    try:
        return content_digest(path).hex()[:digits]
    except OSError:
        return None


def _medmnist_changed(data: ImageDataset, record: Mapping[str, object],
                      stats: Mapping[str, object]) -> list[tuple[str, str]]:
    """The MedMNIST file, if its stat changed and the arrays of this trial's splits differ from the run's; for a
    record without the arrays' CRCs (older runs), if its size or sampled digest (data_file) differs."""
    from searchlab.data.fingerprint import sampled_digest

    path = Path(str(data.extra.get("file") or stats["file"]))
    try:
        stat = stat_of(path)
        if _signature(stat).hex() == stats.get("signature") or (str(path), stat) in _FOUND_ALIKE:
            return []
        was = record.get("data_file") or {}
        if was.get("bytes") == stat[0] and was.get("digest") == sampled_digest(path).hex():
            _FOUND_ALIKE.add((str(path), stat))
            return []
        moved = _arrays_moved(path, stats.get("arrays"), tuple(data.splits) or ("train", "val"))
        if moved is not None and not moved:   # only other splits' arrays changed (the test split's): not read here
            _FOUND_ALIKE.add((str(path), stat))
            return []
        if moved:
            return [("all", f"{path.name}: its {arrays_said(moved)}")]
    except OSError:
        pass
    return [("all", path.name)]


def arrays_said(names: Sequence[str]) -> str:
    """'val_labels array', 'val_images and val_labels arrays': an .npz's arrays named in words."""
    if len(names) == 1:
        return f"{names[0]} array"
    return f"{', '.join(names[:-1])} and {names[-1]} arrays"


def split_arrays(splits: Sequence[str]) -> list[str]:
    """The arrays of `splits` in a MedMNIST .npz: each split's images and labels ("train_images", ...)."""
    return [f"{split}_{part}" for split in splits for part in ("images", "labels")]


def _arrays_moved(path: Path, recorded: object, splits: Sequence[str]) -> list[str] | None:
    """The arrays of `splits` (images and labels) whose CRC or size differs from the record's, or that are gone;
    None when there is nothing to compare (a record without them, or a file that is no zip now)."""
    now = npz_arrays(path)
    if not isinstance(recorded, dict) or now is None:
        return None
    return [name for name in split_arrays(splits) if name not in recorded or now.get(name) != recorded[name]]


def _forget_loaded_data() -> None:
    """This process's decoded sets may hold the changed images: the next trial reads the files again (restored
    ones then pass, and are what it trains on)."""
    from searchlab.data.loading import clear_cache   # loading imports fingerprint, which imports this module

    clear_cache()


def _changed_said(data: ImageDataset, changed: list[tuple[str, str]], gone: set[tuple[str, str]]) -> str:
    """Files replaced in place, and files gone (`gone`, of `changed`): a file deleted from under a CSV that still
    lists it is no file of 'other contents', and its fix is to put it back."""
    where = data.extra.get("path") or data.extra.get("file")
    replaced = [entry for entry in changed if entry not in gone]
    said = [_files_said(replaced, "changed since the run started", "the same names, other contents (seen by "
                        "each file's size and modification or change time, then its digest: a file only touched, "
                        "or copied with the same bytes, does not count)")] if replaced else []
    said += [_files_said([entry for entry in changed if entry in gone],
                         f"{'is' if len(gone) == 1 else 'are'} gone since the run started",
                         "deleted, moved or renamed while the run ran, though the data still lists "
                         f"{'it' if len(gone) == 1 else 'them'} under that name")] if gone else []
    resumed = " (resuming this one would refuse them, as training or validation images replaced in place)"
    return (f"{where}: {'; and '.join(said)}. Files must not change while a run runs: this trial would train and "
            "validate on other images or labels than the trials before it, and they would be compared on "
            f"different data. {RUN_STOPS}{resumed if replaced else ''}")


def _files_said(entries: list[tuple[str, str]], what: str, how: str) -> str:
    """'2 files this trial reads changed since the run started (train a/x.png, val b/y.png): <how>'."""
    from searchlab.data.member_changes import listed

    files = listed([f"{split} {name}" if split != "all" else name for split, name in entries])
    count = f"{len(entries)} file{'s' if len(entries) != 1 else ''}"
    return f"{count} this trial reads {what} ({files}): {how}"
