"""What a folder or CSV data set holds, split by split, small enough to keep in the study's record.

A folder's splits are drawn from its sorted file list, so adding, removing or relabelling files moves
images between splits: a resumed search would rank trials scored on other validation images together, and
the export's test split would hold images that trials trained on. The run stores this fingerprint when it
starts; resuming and exporting compare it with the files as they are then and say what changed. Two hashes
per split: its members (each file's name relative to the data's folder, and label), so a copy of the same
files moved to another folder is the same data set (a file renamed in it is one removed and one added); and
their contents (a digest of each whole file: the first and last 8 KB alone missed pixels edited inside an
uncompressed TIFF or BMP of the same size; hashing reads about 1 GB/s here, a fraction of what decoding the
same files costs). Changed members are refused by resume and export; changed contents of the training or
validation images by resume (trials would be ranked on other pixels), while export scores such a data set
and says so (the splits did not move), as it does a test image replaced in place (e.g. a broken one).
A test split the data fixes (its own folder, a CSV's split_column) moves no other split: its changed files
are said, not refused (changed_test_split). A listing beside the fingerprint (member_changes.py) names the
files that changed. MedMNIST files are official releases read as a whole: they have no fingerprint.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from searchlab.data.common import DICOM_FIX, IMAGE_EXTENSIONS, SPLITS
from searchlab.data.folder_source import split_folders_of_patients
from searchlab.data.member_changes import (DIGEST_HEX, by_file, decode_listing, encode_listing, listed, regrouped,
                                          replaced_said)
from searchlab.data.recorded_split import arrays_said, split_arrays
from searchlab.data.types import SplitPlan

VERSION = 3   # raise when what goes into the fingerprint changes: fingerprints of other versions are not compared
SAMPLED = 8192   # bytes read from each end of a file by sampled_digest


def fingerprint(plan: SplitPlan) -> dict[str, Any]:
    """Per split: the number of files, images per class (positives per label, multi-label), a hash of its
    members (file names and labels) and one of their contents."""
    return fingerprint_with_listing(plan)[0]


def fingerprint_with_listing(plan: SplitPlan) -> tuple[dict[str, Any], str | None]:
    """The fingerprint, and the listing that names its files (member_changes.py; None when too large), from
    one reading of each file."""
    splits, rows = {}, {}
    for split in SPLITS:
        files, labels = plan.files.get(split, []), plan.labels.get(split)
        if not files or labels is None:
            continue
        members, contents, sampled = hashlib.sha256(), hashlib.sha256(), hashlib.sha256()   # as contents_hash
        groups = plan.groups.get(split) or [""] * len(files)
        rows[split] = []
        for path, label, group in zip(files, labels, groups):
            name = relative_name(path, plan.root)
            members.update(member_line(name, label))
            digest = content_digest(path)
            contents.update(digest)
            sampled.update(sampled_digest(path))
            rows[split].append([name, label_text(label), _group_name(plan, path, group), digest.hex()[:DIGEST_HEX]])
        # "sampled": the contents as version 2 digested them (16 KB of each file), so that a run recorded by
        # then still has files replaced in place told; without it such a run resumed on them unsaid
        splits[split] = {"files": len(files), "per_class": per_class(plan, labels),
                         "members": members.hexdigest()[:32], "contents": contents.hexdigest()[:32],
                         "sampled": sampled.hexdigest()[:32]}
        if plan.groups:   # each split's own, so that a test split's change is told from a train split's
            splits[split]["groups"] = _hashed(sorted(f"{row[0]}\t{row[2]}" for row in rows[split]))
    # "drawn": the splits searchlab drew by fractions, which move when any file of their pool does; the others
    # are fixed by the data (split folders, a CSV's split_column), so a changed test split moves no other
    # "groups_from_names": a folder's patients are its sub-folders, so a split's groups follow its file names
    out = {"version": VERSION, "splits": splits, "all_members": _all_members(plan), "drawn": sorted(plan.carved),
           "split_groups": True, "groups_from_names": bool(plan.layout)}
    if plan.groups:   # patient ids or sub-folders decide the splits and folds as much as the files do
        # a folder's groups are paths: named relative to it, so that a moved copy has the same groups
        pairs = sorted(f"{relative_name(path, plan.root)}\t{relative_name(Path(group), plan.root)}"
                       for split in plan.groups for path, group in zip(plan.files[split], plan.groups[split]))
        # "grouping", not the "groups" of commits before 2026-12-05 (absolute folder paths): not compared
        out["grouping"] = _hashed(pairs)
    return out, encode_listing(list(plan.classes), rows)


def _group_name(plan: SplitPlan, path: Path, group: str) -> str:
    """A file's group as the listing names it: a folder's patient sub-folder relative to the folder, a CSV's
    group id; "" for a file that stands alone (a loose image is its own group)."""
    if not group or group == str(path):
        return ""
    return relative_name(Path(group), plan.root) if plan.layout else group


def _hashed(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode(errors="surrogateescape")).hexdigest()[:32]


def _all_members(plan: SplitPlan) -> str:
    """The members of all splits as one set (sorted, so blind to row order and to which split holds a file):
    splits moved over the same members were dealt otherwise (a CSV's rows reordered), not given other files."""
    names = sorted(f"{relative_name(path, plan.root)}\t{label_text(label)}" for split in SPLITS
                   for path, label in zip(plan.files.get(split, []), _rows(plan.labels.get(split))))
    return hashlib.sha256("\n".join(names).encode(errors="surrogateescape")).hexdigest()[:32]


def _rows(labels: np.ndarray | None) -> list[Any]:
    return [] if labels is None else list(labels)


def content_digest(path: Path) -> bytes:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").digest()


def contents_hash(files: list[Path]) -> str:
    """A split's contents hash as fingerprint_with_listing takes it (there in the same pass as its other digests):
    what a trial compares files whose stat moved with when the run kept no listing (recorded_split.py)."""
    contents = hashlib.sha256()
    for path in files:
        contents.update(content_digest(path))
    return contents.hexdigest()[:32]


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


Listings = tuple[Any, Any]   # the recorded and the current listing (member_changes.py), either may be None
GROUPS_CHANGED = ("patient groups changed (the patient sub-folders, or the ids of data.group_column), which decide "
                  "the splits and the folds")


def moved_members(before: Any, now: Any, listings: Listings = (None, None)) -> str | None:
    """Splits whose files or labels changed (the splits moved), in words, naming the files when both listings
    are given; None if none did, the two fingerprints cannot be compared, or only a test split fixed by the
    data changed (changed_test_split: said, not refused)."""
    if not comparable(before, now) or changed_test_split(before, now, listings):
        return None
    changes, counted = [], False
    for split in SPLITS:
        said, counts = _split_change(split, before["splits"].get(split), now["splits"].get(split))
        changes += [said] if said else []
        counted = counted or counts
    # without both runs' all_members, splits of unchanged counts but other members may be a label swapped
    known = "all_members" in before and "all_members" in now
    if changes and (counted or known) and _dealt_otherwise(before, now):
        return reordered_rows(before, now)
    changes += _groups_changed(before, now, listings, counted)
    named = by_file(*listings, list(SPLITS), drawn_pool(now)) if changes else None
    return "; ".join(changes) + (f". By file: {named}" if named else "") if changes else None


def drawn_pool(now: dict[str, Any]) -> list[str]:
    """The splits searchlab drew from one pool of files: train and those carved out of it by fractions (as
    loading.py deals them); [] when the data fixes every split (split folders, a CSV's split_column)."""
    drawn = [split for split in SPLITS if split in (now.get("drawn") or [])]
    return ["train", *drawn] if drawn else []


def _split_change(split: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> tuple[str | None, bool]:
    """How one split's members changed, in words (None if they did not), and whether its counts did."""
    if old is None and new is None:
        return None, False
    if old is None or new is None:
        return f"{split}: {_count(old)} files then, {_count(new)} now", True
    if old["files"] != new["files"] or old["per_class"] != new["per_class"]:
        return f"{split}: {old['files']} files then, {new['files']} now ({_class_changes(old, new)})", True
    if old["members"] != new["members"]:
        return f"{split}: as many files per class, but other files or labels", False
    return None, False


def _groups_changed(before: dict[str, Any], now: dict[str, Any], listings: Listings, counted: bool) -> list[str]:
    """The patient groups' change, in words, if any. With both listings: files present then and now whose
    group changed (renamed loose images are none). Without: the grouping hash, which hashes each file's patient,
    so an added or removed file changes it as well, which is no sign that patients were regrouped."""
    if "grouping" not in before or "grouping" not in now or before["grouping"] == now["grouping"]:
        return []
    old, new = decode_listing(listings[0]), decode_listing(listings[1])
    if old is not None and new is not None:
        moved = regrouped(old, new)
        return [f"{GROUPS_CHANGED}: {listed(moved)}"] if moved else []
    return [] if counted else [GROUPS_CHANGED]


def changed_test_split(before: Any, now: Any, listings: Listings = (None, None)) -> str | None:
    """The test split's files changed while the training and validation splits and their patients did not, and
    the data fixes the test split (its own folder, a CSV's split_column): in words, naming the files when both
    listings are given. The search never reads the test split, so this is said, not refused. None otherwise
    (a test split drawn by test_fraction moves with the files of its pool: moved_members refuses)."""
    if not comparable(before, now) or "test" in set(before.get("drawn", [])) | set(now.get("drawn", ["test"])):
        return None
    if any(_split_change(split, before["splits"].get(split), now["splits"].get(split))[0] for split in
           ("train", "val")) or not _same_groups_outside_test(before, now):
        return None
    said, _ = _split_change("test", before["splits"].get("test"), now["splits"].get("test"))
    named = by_file(*listings, ["test"]) if said else None
    return said and said + (f". By file: {named}" if named else "")


def _same_groups_outside_test(before: dict[str, Any], now: dict[str, Any]) -> bool:
    """The training and validation splits' patients alike (their members are): a folder's follow from the
    names; a CSV's ids by each split's own groups hash when both runs recorded them, else by the grouping of
    all splits (which a changed test split changes too: not told apart, so refused as before)."""
    if now.get("groups_from_names"):
        return True
    if before.get("split_groups") and now.get("split_groups"):
        return all((before["splits"].get(split) or {}).get("groups") == (now["splits"].get(split) or {}).get("groups")
                   for split in ("train", "val"))
    return before.get("grouping") == now.get("grouping")


def kept_test_split(before: Any, now: Any) -> Any:
    """`now`, with the test split as `before` recorded it when only that split changed (its files or their
    contents): the record keeps what the trials were searched with, so that every later export says what
    changed since, as one without the resume did. `now` itself otherwise."""
    if not comparable(before, now) or before.get("version") != now.get("version"):
        return now
    old, new = before["splits"].get("test"), now["splits"].get("test")
    if old == new or (old and new and (old["members"], old["contents"]) == (new["members"], new["contents"])):
        return now
    kept = {**now, "splits": {split: entry for split, entry in now["splits"].items() if split != "test"}}
    if old is not None:
        kept["splits"]["test"] = old
    for key in ("all_members", "grouping"):   # over all splits: the recorded test split's
        kept.pop(key, None)
        if key in before:
            kept[key] = before[key]
    return kept


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


def replaced_contents(before: Any, now: Any, splits: tuple[str, ...] = SPLITS,
                      listings: Listings | None = None) -> str | None:
    """Splits among `splits` with the same members but files replaced in place, in words; None if none. Given
    the listings, the files are counted and named (member_changes.replaced_said; by the split's size when
    either listing is missing)."""
    same = comparable(before, now) and before.get("version") == now.get("version")
    if not same and not (comparable(before, now) and before.get("version") == 2):
        return None
    # a run recorded by version 2 hashed 16 KB of each file: compared with that digest of the files now
    key = "contents" if same else "sampled"
    changed = [split for split in splits if split in before["splits"] and split in now["splits"]
               and before["splits"][split]["members"] == now["splits"][split]["members"]
               and key in now["splits"][split]
               and before["splits"][split]["contents"] != now["splits"][split][key]]
    if listings is not None:
        return "; ".join(replaced_said(*listings, split, _count(now["splits"][split])) for split in changed) or None
    return "; ".join(f"{split}: the same files, but some replaced in place (other contents)" for split in changed) \
        or None


def other_medmnist_file(before: Any, now: Any) -> str | None:
    """How the MedMNIST file read now differs from the one recorded, or None (either unrecorded, or alike)."""
    if not (isinstance(before, dict) and isinstance(now, dict)) or before == now:
        return None
    return (f"{now['file']} is not the file the trials read ({before['bytes']} bytes then, {now['bytes']} now"
            + (", same size, other contents" if before["bytes"] == now["bytes"] else "") + ")")


READ_BY_SEARCH = ("train", "val")   # the MedMNIST splits trials read; the test split's arrays only an export


def medmnist_test_arrays_changed(before: Any, now: Any) -> str | None:
    """The MedMNIST file differs from the one the trials read in arrays the search never reads (the test
    split's) alone, by the arrays' CRC-32 both runs recorded (data_stat "arrays"): in words. None when any
    train or val array (images or labels) differs, or either run did not record the arrays (older runs: the
    whole file is compared, other_medmnist_file)."""
    old, new = (stat.get("arrays") if isinstance(stat, dict) else None for stat in (before, now))
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None
    read = split_arrays(READ_BY_SEARCH)
    if any(name not in old or old.get(name) != new.get(name) for name in read):
        return None
    changed = sorted(name for name in set(old) | set(new) if name not in read and old.get(name) != new.get(name))
    file = Path(str(now.get("file", ""))).name
    return f"{file}: its {arrays_said(changed)} changed" if changed else f"{file}: the same arrays, saved again"


def medmnist_change_said(before_file: Any, now_file: Any, before_stat: Any, now_stat: Any) -> str | None:
    """other_medmnist_file, for an export: when only the test arrays changed (a resume went on past them), it
    says that the test metrics are of those arrays as they are now."""
    other = other_medmnist_file(before_file, now_file)
    test_only = other and medmnist_test_arrays_changed(before_stat, now_stat)
    if not test_only:
        return other
    return f"{other}; {test_only}, its train and val arrays did not: the test metrics are of the file as it is now"


def kept_test_arrays(before: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """`now` (a MedMNIST file's data_stat), with the CRCs of arrays the search never reads as `before` recorded
    them: trials compare the train and val arrays only, and a later resume still tells the test arrays the
    trials were searched with from the file's (as kept_test_split does a folder's test split)."""
    read = split_arrays(READ_BY_SEARCH)
    arrays = {name: crc for name, crc in now["arrays"].items() if name in read}
    arrays.update((name, crc) for name, crc in before["arrays"].items() if name not in read)
    return {**now, "arrays": arrays}


def relative_name(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:   # a CSV may list files outside its folder: those are named in full
        return path.as_posix()


def member_line(name: str, label: np.ndarray) -> bytes:
    """One file's line of a split's "members" digest: its name relative to the data's folder, and its label
    (recorded_split.members_digest hashes the same lines). surrogateescape: a file name that is not UTF-8
    (Latin-1 from a Windows share) hashes as its bytes."""
    return f"{name}\t{label_text(label)}\n".encode(errors="surrogateescape")


def label_text(label: np.ndarray) -> str:
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
        text += f"; left out {sum(plan.skipped.values())} {not_listed_images(plan.skipped)}"
        if ".dcm" in plan.skipped:
            text += f"; DICOM is not read: {DICOM_FIX}"
    if plan.loose_images:
        text += (f"; left out {plan.loose_images} image(s) beside the class folders (in no class: move them into "
                 "one to use them)")
    return text


def not_listed_images(skipped: dict[str, int]) -> str:
    """Files left out for their extension, counted by it, with the extensions that are read: an image under
    another extension (a PNG saved without one) is only read once renamed, as no file's bytes are sniffed."""
    counts = ", ".join(f"{ext} {n}" for ext, n in sorted(skipped.items()))
    return (f"file(s) without a listed image extension ({counts}; read are {', '.join(sorted(IMAGE_EXTENSIONS))}; "
            "an image file without one is read once renamed, e.g. scan -> scan.png)")


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
    return (_patient_folders_text(plan, folders)
            + (f", and {loose} loose image(s) directly in the class folders" if loose else ""))


def _patient_folders_text(plan: SplitPlan, folders: int) -> str:
    """A folder's patient sub-folders, each a group kept whole. In your own split folders a group is a name
    within one split folder: a name found in several (train/a/p3, test/a/p3) is in several splits, which the
    line must not deny beside the warning that says so (patients_in_two_split_folders)."""
    folders_of = split_folders_of_patients(plan) if plan.layout == "splits" else {}
    shared = sum(len(splits) > 1 for splits in folders_of.values())
    if not shared:
        return f"; {folders} patient sub-folder(s), each kept in one split and one fold"
    return (f"; {folders} patient sub-folder(s), counted per split folder, each kept in one fold; but {shared} of "
            f"their {len(folders_of)} names are in more than one split folder (see the warning)")


def multilabel_split_before_the_key(data: Any) -> bool:
    """A run's recorded data section is a multi-label CSV from before `multilabel_split`, whose searchlab drew
    rows at random and dealt patients (group_column) by another rule."""
    return (isinstance(data, dict) and data.get("source") == "csv" and "multilabel_split" not in data
            and len(data.get("label_columns") or ()) > 1)


def data_fingerprint_and_listing(cfg: Any, seed: int = 0, base_dir: Path | None = None) -> tuple[Any, str | None]:
    """A folder or CSV set's fingerprint and listing (None, None for MedMNIST), planned as loading does."""
    from searchlab.data.loading import plan_files   # loading imports this module

    plan = plan_files(cfg, seed, base_dir)
    return (None, None) if plan is None else fingerprint_with_listing(plan)


def why_moved_files_count(now: Any, resuming: bool) -> str:
    """Why changed training or validation files stop a resume or an export: splits drawn by fractions move
    with any file of their pool; your own (split folders, a CSV's split_column) do not, but the trials ran on
    other images than they hold now."""
    if isinstance(now, dict) and now.get("drawn") == []:
        return ("These are your own splits (split folders, or data.split_column), so they did not move, but "
                + ("new trials would be ranked with old ones trained and validated on other images" if resuming
                   else "the trials trained and were validated on other images, and a file moved into the test "
                   "split may be one that trials trained on"))
    return ("The splits are drawn from the file list, so they " + ("would move: trials would be ranked on other "
            "validation images, and the test split would hold images that trials trained on" if resuming else
            "have moved: the test split would hold images that trials trained on"))
