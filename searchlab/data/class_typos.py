"""Classes that are most likely misspellings of another: `nromal` in 6 rows of a sheet whose `normal` has 300.

Trained as a class of its own, such a typo adds an output that a handful of mislabelled images teach, and
takes those images from the class they belong to; nothing else says so (a 5-class model trains without a
word). Only said, never refused: `grade1` and `grade2`, or `T1` and `T2`, are real classes one character
apart, so names that differ only in digits, and short names, are never called typos; names that differ only in
case (`Malignant/` beside `malignant/`) always are.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

MAX_EDITS = 1        # a letter changed, added, dropped, or two neighbours swapped (`nromal` for `normal`)
MIN_LENGTH = 4       # `T1`/`T2`, `A`/`B`: short names are one letter apart by design
TIMES_LARGER = 10    # a typo is a few rows against a class of many


def likely_typos(counts: Mapping[str, int]) -> dict[str, str]:
    """{suspect class: the class it is probably a misspelling of}, from images per class."""
    found = {}
    for name, count in counts.items():
        larger = [other for other, n in counts.items() if n >= TIMES_LARGER * max(count, 1) and _near(name, other)]
        if larger:
            found[name] = max(larger, key=lambda other: counts[other])
    return found


def misspelt_class_warning(class_names: Sequence[str], labels: np.ndarray, where: str, fix: str) -> str | None:
    """Said at a run's start for a single-label set (`labels`: every image's class index, all splits)."""
    counts = _counts(class_names, labels)
    typos = likely_typos(counts)
    if not typos:
        return None
    said = "; ".join(f"'{name}' ({counts[name]} image{'s' if counts[name] != 1 else ''}) looks like a misspelling "
                     f"of '{right}' ({counts[right]} images)" for name, right in typos.items())
    return (f"data: {where}: {said}, and is trained as a class of its own. Fix: {fix}; if they are different "
            "classes, nothing to do")


def typo_hint(name: str, class_names: Sequence[str], labels: np.ndarray) -> str:
    """For a message refusing class `name` (too few images or patients): that it may be a typo, if so."""
    right = likely_typos(_counts(class_names, labels)).get(name)
    return f" ('{name}' looks like a misspelling of '{right}': if so, correct its labels)" if right else ""


def _counts(class_names: Sequence[str], labels: np.ndarray) -> dict[str, int]:
    return dict(zip(class_names, np.bincount(labels, minlength=len(class_names)).tolist()))


def _near(a: str, b: str) -> bool:
    if a != b and a.lower() == b.lower():   # `Malignant/` beside `malignant/`: one class written two ways
        return True
    a, b = a.lower(), b.lower()
    if a == b or min(len(a), len(b)) < MIN_LENGTH or abs(len(a) - len(b)) > 1:
        return False
    if _without_digits(a) == _without_digits(b):   # grade1 / grade2: numbered classes, not typos
        return False
    return _edits(a, b) <= MAX_EDITS


def _without_digits(text: str) -> str:
    return "".join(c for c in text if not c.isdigit())


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours."""
    rows = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            rows[i][j] = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                rows[i][j] = min(rows[i][j], rows[i - 2][j - 2] + 1)
    return rows[len(a)][len(b)]
