"""Identical image files in a folder or CSV set: the same file under two labels, in two splits, or twice in one.

A copy under another label teaches the model both answers for one image; a copy in another split leaks it
(validation scores that select trials, or test scores, flattered by images trained on); a copy within one
split weighs that image twice. Each is a warning when a run starts, not an error: the user may know.

Files are compared in two passes so that large data sets are not read twice in full: the fingerprint's
sampled digest (size, first and last 8 KB) finds candidates, and only those are hashed whole to confirm.
Copies re-encoded to other bytes are not found (that would need decoding every split, test included).
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from searchlab.data.common import SPLITS
from searchlab.data.fingerprint import relative_name, sampled_digest
from searchlab.data.types import SplitPlan

SHOWN = 3   # examples named per kind of copy


@dataclass(frozen=True)
class Member:
    path: Path
    split: str
    label: str   # class name, or the labels that are on (multi-label)


def duplicate_warning(plan: SplitPlan) -> str | None:
    """What the data's identical files are and why they matter, or None when every file is unique."""
    groups = identical_files(_members(plan))
    if not groups:
        return None
    kinds = {"under different labels": [], "in more than one split": [], "within one split": []}
    for group in groups:
        if len({m.label for m in group}) > 1:
            kinds["under different labels"].append(group)
        elif len({m.split for m in group}) > 1:
            kinds["in more than one split"].append(group)
        else:
            kinds["within one split"].append(group)
    copies = sum(len(g) - 1 for g in groups)
    parts = [_describe(kind, found, plan.root) for kind, found in kinds.items() if found]
    return (f"data: {copies} image file(s) are byte-for-byte copies of another file in {plan.source}: "
            + "; ".join(parts) + ". A copy under another label teaches both answers; one in another split "
            "flatters validation (which selects trials) or test scores. Fix: delete the copies (or correct "
            "the label); files of one patient belong in one split")


def identical_files(members: list[Member]) -> list[list[Member]]:
    """Groups of two or more members whose files have the same bytes."""
    candidates: dict[bytes, list[Member]] = defaultdict(list)
    for member in members:
        candidates[sampled_digest(member.path)].append(member)
    groups = []
    for group in (g for g in candidates.values() if len(g) > 1):
        confirmed: dict[bytes, list[Member]] = defaultdict(list)
        for member in group:
            confirmed[hashlib.sha256(member.path.read_bytes()).digest()].append(member)
        groups += [g for g in confirmed.values() if len(g) > 1]
    return groups


def _members(plan: SplitPlan) -> list[Member]:
    return [Member(path, split, _label_name(plan, label))
            for split in SPLITS for path, label in zip(plan.files.get(split, []), plan.labels.get(split, []))]


def _label_name(plan: SplitPlan, label: np.ndarray) -> str:
    if plan.kind == "multilabel":
        on = [name for name, value in zip(plan.classes, np.atleast_1d(label)) if value]
        return "+".join(on) if on else "no label"
    return plan.classes[int(label)]


def _describe(kind: str, groups: list[list[Member]], root: Path) -> str:
    shown = ", ".join(" = ".join(f"{relative_name(m.path, root)} ({m.split}, {m.label})" for m in group)
                      for group in groups[:SHOWN])
    more = f" and {len(groups) - SHOWN} more" if len(groups) > SHOWN else ""
    return f"{len(groups)} {kind} ({shown}{more})"
