"""Which files a split gained, lost, had relabelled or replaced since a run recorded it, by name.

The fingerprint (fingerprint.py) hashes each split's members: enough to tell that a split changed, not which
files did, so a refusal after two images were renamed named none of them. The listing kept beside it in the
study's record ("data_listing", engine/data_record.py) holds each file's name, label, patient group and a short
digest of its contents, compressed. A data set whose listing would not fit LISTING_MAX keeps none (the record
is an Optuna user attribute, served by the dashboard): its changes are then said by counts alone.
"""
from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any

LISTING_MAX = 200_000   # characters of an encoded listing kept in the record (about 10,000 files or more)
SHOWN = 3               # files named per kind of change and split
DIGEST_HEX = 12         # hex digits of each file's content digest kept: to count and name files replaced in place

Row = list[str]   # [name relative to the data's folder, label as text, group ("" when alone), content digest]


def encode_listing(classes: list[str], rows: dict[str, list[Row]]) -> str | None:
    """The listing as the record keeps it, or None when it would not fit LISTING_MAX."""
    text = json.dumps({"classes": classes, "splits": rows})   # ASCII: a non-UTF-8 name's surrogates escaped
    encoded = base64.b64encode(zlib.compress(text.encode("ascii"), 9)).decode("ascii")
    return encoded if len(encoded) <= LISTING_MAX else None


def decode_listing(listing: Any) -> dict[str, Any] | None:
    """A recorded listing, or None (not recorded: a run before listings, MedMNIST, or a set too large)."""
    if not isinstance(listing, str):
        return None
    try:
        data = json.loads(zlib.decompress(base64.b64decode(listing)))
    except (ValueError, zlib.error, binascii.Error):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("splits"), dict) else None


def with_test_of(kept: Any, now: Any) -> str | None:
    """`now`'s listing with the test split of `kept` (the one the trials were searched with); None unless both
    were recorded, as a listing half of one run and half of another would name changes that never were."""
    old, new = decode_listing(kept), decode_listing(now)
    if old is None or new is None:
        return None
    splits = {split: rows for split, rows in new["splits"].items() if split != "test"}
    if "test" in old["splits"]:
        splits["test"] = old["splits"]["test"]
    return encode_listing(new.get("classes") or [], splits)


def _by_name(listing: dict[str, Any], split: str) -> dict[str, Row]:
    return {row[0]: row for row in listing["splits"].get(split, [])}


def _label_said(listing: dict[str, Any], label: str) -> str:
    """A class's name for a single-label index; a multi-label row's 0/1 flags as recorded."""
    classes = listing.get("classes") or []
    return classes[int(label)] if label.isdigit() and int(label) < len(classes) else label


def listed(names: list[str]) -> str:
    """The first SHOWN names, and how many more."""
    more = len(names) - SHOWN
    return ", ".join(names[:SHOWN]) + (f" and {more} more" if more > 0 else "")


def files_changed(before: dict[str, Any], now: dict[str, Any], split: str) -> str | None:
    """'removed benign/img1.png, added benign/aaa.png, relabelled x.png (benign -> malignant)': the split's
    files by name; None if its names and labels are alike."""
    return _changes_said(before, now, _by_name(before, split), _by_name(now, split))


def _changes_said(before: dict[str, Any], now: dict[str, Any], old: dict[str, Row], new: dict[str, Row]) -> str | None:
    """Files removed, added and relabelled between two sets of rows by name, first few of each; None if none."""
    removed = sorted(set(old) - set(new))
    added = sorted(set(new) - set(old))
    relabelled = [f"{name} ({_label_said(before, old[name][1])} -> {_label_said(now, new[name][1])})"
                  for name in sorted(set(old) & set(new)) if old[name][1] != new[name][1]]
    parts = [f"{kind} {listed(names)}" for kind, names in
             (("removed", removed), ("added", added), ("relabelled", relabelled)) if names]
    return ", ".join(parts) or None


def _pool_of(listing: dict[str, Any], pool: list[str]) -> tuple[dict[str, Row], dict[str, str]]:
    """The rows of the drawn splits together by name, and the split each file is in."""
    rows = {row[0]: row for split in pool for row in listing["splits"].get(split, [])}
    where = {row[0]: split for split in pool for row in listing["splits"].get(split, [])}
    return rows, where


def pool_changed(before: dict[str, Any], now: dict[str, Any], pool: list[str]) -> str | None:
    """The changes of splits searchlab draws from one pool, said over the pool: per split, one added file reads
    as dozens removed and added (files that only moved), and a relabelled file is never named. So: the files
    added, removed or relabelled, then how many of the others moved between splits; None if none did."""
    (old, old_split), (new, new_split) = _pool_of(before, pool), _pool_of(now, pool)
    changes = _changes_said(before, now, old, new)
    moved = sum(old_split[name] != new_split[name] for name in set(old) & set(new))
    together = f"{', '.join(pool[:-1])} and {pool[-1]} together (drawn from one pool)"
    if moved:
        files = f"{moved} file{'s' if moved != 1 else ''}"
        said = f"{changes}; {files} moved between these splits as a result" if changes else \
            f"{files} moved between these splits"
        return f"{together}: {said}"
    return f"{together}: {changes}" if changes else None


def replaced_files(before: dict[str, Any], now: dict[str, Any], split: str) -> list[str]:
    """Files of the split under the same name but of other contents, sorted."""
    old, new = _by_name(before, split), _by_name(now, split)
    return sorted(name for name in set(old) & set(new) if old[name][3] != new[name][3])


def regrouped(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Files present then and now whose patient group changed ('b/p2/x.png: b/p1 -> b/p2'), sorted. A file
    is the same by name, or, renamed or moved, by its contents (when no other file has them): a folder's file
    moved into another patient's sub-folder is regrouped, a renamed loose image (a group of its own) is not.
    Files added or removed are not counted."""
    old, new = _all_rows(before), _all_rows(now)
    pairs = [(name, name) for name in set(old) & set(new)]
    gone, came = _by_unique_digest(old, set(old) - set(new)), _by_unique_digest(new, set(new) - set(old))
    pairs += [(gone[digest], came[digest]) for digest in set(gone) & set(came)]
    return sorted(f"{was}{'' if was == name else f' -> {name}'}: {old[was][2] or '(alone)'} -> "
                  f"{new[name][2] or '(alone)'}" for was, name in pairs if old[was][2] != new[name][2])


def _all_rows(listing: dict[str, Any]) -> dict[str, Row]:
    return {row[0]: row for rows in listing["splits"].values() for row in rows}


def _by_unique_digest(rows: dict[str, Row], names: set[str]) -> dict[str, str]:
    """Digest -> name among these files, leaving out digests that several files share (copies of one image)."""
    found: dict[str, list[str]] = {}
    for name in names:
        found.setdefault(rows[name][3], []).append(name)
    return {digest: named[0] for digest, named in found.items() if len(named) == 1}


def by_file(before: Any, now: Any, splits: list[str], pool: list[str] | None = None) -> str | None:
    """The named changes of these splits ('train: removed a.png, added b.png; val: ...'), or None when either
    listing is missing or names no change. `pool`: the splits searchlab drew from one pool of files (train and
    those carved from it), said together (pool_changed); the others, fixed by the data, split by split."""
    old, new = decode_listing(before), decode_listing(now)
    if old is None or new is None:
        return None
    pooled = [split for split in splits if split in (pool or [])]
    pooled = pooled if len(pooled) > 1 else []   # one split alone has no other to move files into
    said = [changed] if pooled and (changed := pool_changed(old, new, pooled)) else []
    said += [f"{split}: {changed}" for split in splits if split not in pooled
             and (changed := files_changed(old, new, split))]
    return "; ".join(said) or None


def replaced_said(before: Any, now: Any, split: str, files_in_split: int) -> str:
    """'test: 1 of 24 images replaced in place (malignant/x.png)'; by the split's size alone when either
    listing is missing."""
    old, new = decode_listing(before), decode_listing(now)
    if old is None or new is None:
        return f"{split}: some of its {files_in_split} images replaced in place (same names, other contents)"
    names = replaced_files(old, new, split)
    return f"{split}: {len(names)} of {files_in_split} images replaced in place ({listed(names)})"
