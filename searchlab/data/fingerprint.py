"""What a folder or CSV data set holds, split by split, small enough to keep in the study's record.

A folder's splits are drawn from its sorted file list, so adding, removing or relabelling files moves
images between splits: a resumed search would rank trials scored on other validation images together, and
the export's test split would hold images that trials trained on. The run stores this fingerprint when it
starts; resuming and exporting compare it with the files as they are then and say what changed. Two hashes
per split: its members (each file's name relative to the data's folder, and label), so a moved or renamed
copy of the same files is the same data set; and their contents (a digest of each whole file: the first and
last 8 KB alone missed pixels edited inside an uncompressed TIFF or BMP of the same size; hashing reads about
1 GB/s here, a fraction of what decoding the same files costs). Changed members are refused by resume and export; changed contents of the training or
validation images by resume (trials would be ranked on other pixels), while export scores such a data set
and says so (the splits did not move), as it does a test image replaced in place (e.g. a broken one).
MedMNIST files are official releases read as a whole: they have no fingerprint.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from searchlab.data.common import DICOM_FIX, SPLITS
from searchlab.data.types import SplitPlan

VERSION = 3   # raise when what goes into the fingerprint changes: fingerprints of other versions are not compared
SAMPLED = 8192   # bytes read from each end of a file by sampled_digest


def fingerprint(plan: SplitPlan) -> dict[str, Any]:
    """Per split: the number of files, images per class (positives per label, multi-label), a hash of its
    members (file names and labels) and one of their contents."""
    splits = {}
    for split in SPLITS:
        files, labels = plan.files.get(split, []), plan.labels.get(split)
        if not files or labels is None:
            continue
        members, contents, sampled = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()
        for path, label in zip(files, labels):
            # surrogateescape: a file name that is not UTF-8 (Latin-1 from a Windows share) hashes as its bytes
            members.update(f"{relative_name(path, plan.root)}\t{_label_text(label)}\n".encode(errors="surrogateescape"))
            contents.update(content_digest(path))
            sampled.update(sampled_digest(path))
        # "sampled": the contents as version 2 digested them (16 KB of each file), so that a run recorded by
        # then still has files replaced in place told; without it such a run resumed on them unsaid
        splits[split] = {"files": len(files), "per_class": per_class(plan, labels),
                         "members": members.hexdigest()[:32], "contents": contents.hexdigest()[:32],
                         "sampled": sampled.hexdigest()[:32]}
    out = {"version": VERSION, "splits": splits, "all_members": _all_members(plan)}
    if plan.groups:   # patient ids or sub-folders decide the splits and folds as much as the files do
        # a folder's groups are paths: named relative to it, so that a moved copy has the same groups
        pairs = sorted(f"{relative_name(path, plan.root)}\t{relative_name(Path(group), plan.root)}"
                       for split in plan.groups for path, group in zip(plan.files[split], plan.groups[split]))
        # "grouping", not the "groups" of commits before 2026-12-05 (absolute folder paths): not compared
        out["grouping"] = hashlib.sha256("\n".join(pairs).encode(errors="surrogateescape")).hexdigest()[:32]
    return out


def _all_members(plan: SplitPlan) -> str:
    """The members of all splits as one set (sorted, so blind to row order and to which split holds a file):
    splits moved over the same members were dealt otherwise (a CSV's rows reordered), not given other files."""
    names = sorted(f"{relative_name(path, plan.root)}\t{_label_text(label)}" for split in SPLITS
                   for path, label in zip(plan.files.get(split, []), _rows(plan.labels.get(split))))
    return hashlib.sha256("\n".join(names).encode(errors="surrogateescape")).hexdigest()[:32]


def _rows(labels: np.ndarray | None) -> list[Any]:
    return [] if labels is None else list(labels)


def content_digest(path: Path) -> bytes:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").digest()


def sampled_digest(path: Path) -> bytes:
    """Size and first and last 8 KB: enough to bucket candidate copies, or for a zip (its tail holds every
    member's CRC); not to tell an image edited in place, nor two uncompressed images of alike borders apart
    (content_digest: the weights lineage, export/trained_on.py, compares whole files)."""
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(0)
        head = fh.read(SAMPLED)
        fh.seek(max(size - SAMPLED, 0))
        tail = fh.read(SAMPLED)
    return hashlib.sha1(size.to_bytes(8, "little") + head + tail).digest()


MEMBERS_SINCE = 2   # the version since which members are hashed as now (version 3 changed the contents only)


def comparable(before: Any, now: Any) -> bool:
    """Both are fingerprints whose members can be compared (a study recorded before fingerprints, or MedMNIST,
    has none)."""
    return isinstance(before, dict) and isinstance(now, dict) and \
        min(before.get("version", 0), now.get("version", 0)) >= MEMBERS_SINCE


def moved_members(before: Any, now: Any) -> str | None:
    """Splits whose files or labels changed (the splits moved), in words; None if none did or the two
    fingerprints cannot be compared."""
    if not comparable(before, now):
        return None
    changes, counted = [], False
    for split in SPLITS:
        old, new = before["splits"].get(split), now["splits"].get(split)
        if old is None and new is None:
            continue
        if old is None or new is None:
            changes.append(f"{split}: {_count(old)} files then, {_count(new)} now")
            counted = True
        elif old["files"] != new["files"] or old["per_class"] != new["per_class"]:
            changes.append(f"{split}: {old['files']} files then, {new['files']} now ({_class_changes(old, new)})")
            counted = True
        elif old["members"] != new["members"]:
            changes.append(f"{split}: as many files per class, but other files or labels")
    # without both runs' all_members, splits of unchanged counts but other members may be a label swapped
    known = "all_members" in before and "all_members" in now
    if changes and (counted or known) and _dealt_otherwise(before, now):
        return reordered_rows(before, now)
    # the grouping hashes each file's patient: an added or removed file changes it as well, which is no sign
    # that patients were regrouped (files moved between patients' folders or ids keep the counts)
    if not counted and before.get("grouping") != now.get("grouping") and "grouping" in before and "grouping" in now:
        changes.append("patient groups changed (the patient sub-folders, or the ids of data.group_column), which "
                       "decide the splits and the folds")
    return "; ".join(changes) or None


def _dealt_otherwise(before: dict[str, Any], now: dict[str, Any]) -> bool:
    """The splits' counts moved, but all splits together hold as many files per class as recorded, the same
    patients and (when both runs hashed them) the same members: the same data dealt into other splits. The
    split follows a CSV's row order, so re-sorted rows do this; said as such, not as files changed."""
    if _totals(before) != _totals(now) or before.get("grouping") != now.get("grouping"):
        return False
    return before.get("all_members", now.get("all_members")) == now.get("all_members", before.get("all_members"))


def _totals(fingerprint: dict[str, Any]) -> tuple[int, dict[str, int]]:
    """Files, and images per class (positives per label), over all splits."""
    files, per_class_total = 0, {}
    for entry in fingerprint["splits"].values():
        files += int(entry["files"])
        for name, n in entry["per_class"].items():
            per_class_total[name] = per_class_total.get(name, 0) + int(n)
    return files, per_class_total


REORDERED = "the same number of files per class"   # how reordered_rows starts: resume and export say their fix


def reordered_rows(before: dict[str, Any], now: dict[str, Any]) -> str:
    """The same files per class dealt into other splits, in words, with the split sizes then and now."""
    sizes = ", ".join(f"{split} {_count(before['splits'].get(split))} -> {_count(now['splits'].get(split))}"
                      for split in SPLITS if split in before["splits"] or split in now["splits"])
    total, _ = _totals(now)
    return (f"{REORDERED}, {total} in all, are dealt into other splits: {sizes} files, most likely because the "
            "CSV's rows were reordered, as the split follows the CSV's row order")


def replaced_contents(before: Any, now: Any, splits: tuple[str, ...] = SPLITS) -> str | None:
    """Splits among `splits` with the same members but files replaced in place, in words; None if none."""
    same = comparable(before, now) and before.get("version") == now.get("version")
    if not same and not (comparable(before, now) and before.get("version") == 2):
        return None
    # a run recorded by version 2 hashed 16 KB of each file: compared with that digest of the files now
    key = "contents" if same else "sampled"
    changed = [split for split in splits if split in before["splits"] and split in now["splits"]
               and before["splits"][split]["members"] == now["splits"][split]["members"]
               and key in now["splits"][split]
               and before["splits"][split]["contents"] != now["splits"][split][key]]
    return "; ".join(f"{split}: the same files, but some replaced in place (other contents)" for split in changed) \
        or None


def other_medmnist_file(before: Any, now: Any) -> str | None:
    """How the MedMNIST file read now differs from the one recorded, or None (either unrecorded, or alike)."""
    if not (isinstance(before, dict) and isinstance(now, dict)) or before == now:
        return None
    return (f"{now['file']} is not the file the trials read ({before['bytes']} bytes then, {now['bytes']} now"
            + (", same size, other contents" if before["bytes"] == now["bytes"] else "") + ")")


def relative_name(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:   # a CSV may list files outside its folder: those are named in full
        return path.as_posix()


def _label_text(label: np.ndarray) -> str:
    return ",".join(str(int(v)) for v in np.atleast_1d(label))


def per_class(plan: SplitPlan, labels: np.ndarray) -> dict[str, int]:
    """Images per class, or positives per label for a multi-label set."""
    if plan.kind == "multilabel":
        return {name: int(labels[:, j].sum()) for j, name in enumerate(plan.classes)}
    counts = np.bincount(labels, minlength=len(plan.classes))
    return {name: int(counts[j]) for j, name in enumerate(plan.classes)}


def _count(split: dict[str, Any] | None) -> int:
    return 0 if split is None else int(split["files"])


def _class_changes(old: dict[str, Any], new: dict[str, Any]) -> str:
    names = list(old["per_class"]) + [n for n in new["per_class"] if n not in old["per_class"]]
    changed = [f"{name} {old['per_class'].get(name, 0)} -> {new['per_class'].get(name, 0)}" for name in names
               if old["per_class"].get(name, 0) != new["per_class"].get(name, 0)]
    return ", ".join(changed) if changed else "other files, as many per class"


def describe_plan(plan: SplitPlan) -> str:
    """One line on what a folder or CSV set holds: images per split and class, and files left out."""
    splits = []
    for split in SPLITS:
        if len(plan.files.get(split, [])):
            counts = ", ".join(f"{name} {n}" for name, n in per_class(plan, plan.labels[split]).items())
            splits.append(f"{split} {len(plan.files[split])} ({counts})")
    text = f"{plan.source}: " + "; ".join(splits)
    if plan.kind == "multilabel":
        text += " (counts per label: images where it is on)"
    if plan.groups:
        text += _groups_text(plan)
    if plan.skipped:
        text += (f"; left out {sum(plan.skipped.values())} file(s) that are not images ("
                 + ", ".join(f"{ext} {n}" for ext, n in plan.skipped.items()) + ")")
        if ".dcm" in plan.skipped:
            text += f"; DICOM is not read: {DICOM_FIX}"
    if plan.loose_images:
        text += (f"; left out {plan.loose_images} image(s) beside the class folders (in no class: move them into "
                 "one to use them)")
    return text


def _groups_text(plan: SplitPlan) -> str:
    """The groups kept whole: a CSV's group_column ids, or a folder's patient sub-folders. A folder's loose
    images (directly in a class folder) are each a group of one, named by the file itself: counted apart, so
    that 2 patient sub-folders beside 120 loose images are not said to be 122 patients."""
    pairs = [(str(path), group) for split, groups in plan.groups.items()
             for path, group in zip(plan.files[split], groups)]
    if not plan.layout:   # a CSV's data.group_column
        return (f"; images in {len({g for _, g in pairs})} groups (patients), each group kept in one split and "
                "one fold")
    folders = len({group for path, group in pairs if group != path})
    loose = sum(group == path for path, group in pairs)
    return (f"; {folders} patient sub-folder(s), each kept in one split and one fold"
            + (f", and {loose} loose image(s) directly in the class folders" if loose else ""))


def multilabel_split_before_the_key(data: Any) -> bool:
    """A run's recorded data section is a multi-label CSV from before `multilabel_split`, whose searchlab drew
    rows at random and dealt patients (group_column) by another rule."""
    return (isinstance(data, dict) and data.get("source") == "csv" and "multilabel_split" not in data
            and len(data.get("label_columns") or ()) > 1)
