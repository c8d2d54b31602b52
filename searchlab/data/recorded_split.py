"""Whether the splits a trial read are those its run recorded (engine/data_record.py).

Every process that runs trials (a local worker, a Ray worker on another machine) lists data.path itself, after
the run recorded it: files added, removed or relabelled meanwhile gave trials other splits than the record, and
export then scored the model on a test split that could hold images the trials trained on. A loaded set keeps
each split's members digest (read_as), which a trial compares with the record's (split_as_recorded).
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path


from searchlab.data.types import ImageDataset, SplitPlan
from searchlab.errors import DataError


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
    """Refuse splits other than the run recorded when it started (the module docstring says why)."""
    from searchlab.data.fingerprint import MEMBERS_SINCE   # fingerprint imports folder_source, which imports this

    recorded, members = (record or {}).get("data_files"), data.extra.get("members")
    if not isinstance(recorded, dict) or recorded.get("version", 0) < MEMBERS_SINCE or not members:
        return   # MedMNIST, no data section, or a record from before fingerprints: nothing to compare with
    then = recorded.get("splits") or {}
    changed = [s for s, digest in members.items() if (then.get(s) or {}).get("members") != digest]
    if not changed:
        return
    said = "; ".join(_split_change(data, record, s) for s in changed)
    splits = f"{' and '.join(changed)} split" + ("s differ from those" if len(changed) > 1 else " differs from the one")
    raise DataError(f"{data.extra.get('path')}: this trial's {splits} the run recorded when it started ({said}): "
                    "files under data.path changed while the run ran, and this trial would train on other images "
                    "than the run records and exports (its test split could hold images trained on). Fix: stop the "
                    "run and leave data.path unchanged while a run reads it; then start a new run (another run_dir), "
                    "or restore the files and resume")


def _split_change(data: ImageDataset, record: Mapping[str, object], split: str) -> str:
    """'train: 108 files then, 132 now, added benign/x.png, ...' (names when the record keeps its listing)."""
    from searchlab.data.fingerprint import relative_name
    from searchlab.data.member_changes import decode_listing, listed

    was = ((record.get("data_files") or {}).get("splits") or {}).get(split) or {}
    root, files = Path(str(data.extra.get("root"))), data.extra.get("files", {}).get(split, ())
    text = f"{split}: {was.get('files', 0)} files then, {len(files)} now"
    listing = decode_listing(record.get("data_listing"))
    if listing is None:
        return text
    old = {row[0] for row in listing["splits"].get(split, [])}
    new = {relative_name(Path(f), root) for f in files}
    moves = [f"{how} {listed(sorted(names))}" for how, names in (("added", new - old), ("without", old - new)) if names]
    return text + (", " + ", ".join(moves) if moves else ", the same files with other labels or order")
