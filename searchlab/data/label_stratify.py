"""Multi-label units (images, or whole patients) dealt to train and held-out splits by iterative stratification
(Sechidis, Tsoumakas and Vlahavas, 2011): each split gets its share of every label's positives as nearly as
overlapping labels allow, and of the images.

Labels go rarest first (fewest units left holding it); each unit holding it goes to the split that still wants
most of that label's positives (then most images), and takes its counts off that split's wants. Units with no
label on fill the places left, biggest first. A held-out split wants at least one positive of each label,
as a class of a single-label split gets, where train keeps one too: a label with a handful of positives then
reaches val and test, and one with fewer positives than splits stays in train, the only place it can be learned.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TIE = 1e-9   # wants are sums of float shares: equal ones may differ in the last bits


def deal_by_labels(positives: np.ndarray, sizes: np.ndarray, wanted_sizes: Sequence[float],
                   fractions: Sequence[float], rng: np.random.Generator) -> np.ndarray:
    """The split of each unit (0: train, then the held-out ones in `fractions` order), given each unit's
    positives per label (rows of `positives`), its images (`sizes`) and each split's wanted images."""
    totals = positives.sum(0).astype(np.float64)
    enough = totals > sum(f > 0 for f in fractions)
    # a label with no more positives than held-out splits wants none held out: a share of 2 x 0.25 = 0.5 each
    # outbid train's 2 - 1 = 1 once train had one, and sent the other positive to val or test
    held = [np.where(enough, np.maximum(totals * f, 1.0), 0.0) for f in fractions]
    wanted = np.vstack([totals - np.sum(held, axis=0), *held])   # per split, per label
    room = np.asarray(wanted_sizes, dtype=np.float64).copy()
    split_of = np.full(len(sizes), -1)
    left = positives > 0
    while left.any():
        label = min(np.flatnonzero(left.any(0)), key=lambda j: (left[:, j].sum(), j))
        for unit in rng.permutation(np.flatnonzero(left[:, label])):
            want = wanted[:, label]
            best = np.flatnonzero(want >= want.max() - TIE)
            best = best[room[best] >= room[best].max() - TIE]
            split_of[unit] = int(rng.choice(best))
            room[split_of[unit]] -= sizes[unit]
            wanted[split_of[unit]] -= positives[unit]
            left[unit] = False
    rest = rng.permutation(np.flatnonzero(split_of < 0))
    for unit in rest[np.argsort(-np.asarray(sizes)[rest], kind="stable")]:   # biggest first; ties: seeded order
        split_of[unit] = int(np.argmax(room))
        room[split_of[unit]] -= sizes[unit]
    return split_of
