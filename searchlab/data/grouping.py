"""Whole groups of images (one per patient) dealt to splits or folds when a group may hold several classes or
labels, as a CSV's `group_column` allows: a patient with a benign and a malignant lesion is one group.

A folder's patients come here only when a sub-folder name sits under several class folders (one patient with
findings of several classes); otherwise each sits inside one class folder, and the per-class dealing in
`common._grouped_split` and `crossval._grouped_folds` keeps their splits as they always were.

Each group is a row of counts: images per class (single-label), or images and positives per label
(multi-label). Groups go biggest first (seeded order among equals) to the bin whose counts they bring closest
to its target, squared shortfall per column scaled by the column's total, so a rare class weighs as much as a
common one (the greedy of scikit-learn's StratifiedGroupKFold, with targets instead of equal folds). Multi-label
groups are dealt so to equal folds; to train/val/test, whose targets differ, that greedy sent the positive-rich
groups to train and left val and test ~20% short of common labels' positives, so splits deal them by iterative
stratification instead (data/label_stratify.py).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from searchlab.data.class_typos import typo_hint
from searchlab.data.label_stratify import deal_by_labels
from searchlab.errors import DataError, a_few


def spans_classes(labels: np.ndarray, groups: Sequence[str]) -> bool:
    """Some group holds images of two classes, or the labels are multi-label (each image may have several)."""
    if labels.ndim == 2:
        return True
    first: dict[str, int] = {}
    return any(first.setdefault(g, int(c)) != int(c) for g, c in zip(groups, labels.tolist()))


def group_counts(labels: np.ndarray, groups: Sequence[str],
                 class_names: Sequence[str] | None = None) -> tuple[list[list[int]], np.ndarray]:
    """Members of each group (first-seen order) and its count row (see the module docstring)."""
    n_classes = len(class_names) if class_names and labels.ndim == 1 else None
    index: dict[str, int] = {}
    members: list[list[int]] = []
    for i, g in enumerate(groups):
        if g not in index:
            index[g] = len(members)
            members.append([])
        members[index[g]].append(i)
    if labels.ndim == 2:
        rows = [np.concatenate([[len(m)], labels[m].sum(0)]) for m in members]
    else:
        width = n_classes if n_classes is not None else int(labels.max()) + 1
        rows = [np.bincount(labels[m], minlength=width) for m in members]
    return members, np.asarray(rows, dtype=np.float64)


def deal(counts: np.ndarray, targets: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The bin of each group (rows of `counts`), given each bin's target counts (rows of `targets`)."""
    order = rng.permutation(len(counts))
    order = order[np.argsort(-counts[order].sum(1), kind="stable")]   # biggest first; ties keep the seeded order
    scale = 1.0 / np.maximum(counts.sum(0), 1.0) ** 2
    filled = np.zeros_like(targets, dtype=np.float64)
    bins = np.empty(len(counts), dtype=np.int64)
    for g in order:
        gain = (((filled + counts[g] - targets) ** 2 - (filled - targets) ** 2) * scale).sum(1)
        bins[g] = int(np.argmin(gain))
        filled[bins[g]] += counts[g]
    return bins


def split_targets(counts: np.ndarray, fractions: Mapping[str, float], multilabel: bool) -> np.ndarray:
    """Target rows for train and each held-out split: its share of every column; a single-label held-out split
    wants at least one image of each class, as the image-by-image split gives it."""
    total = counts.sum(0)
    held = []
    for f in fractions.values():
        row = total * f
        if not multilabel and f > 0:
            row = np.maximum(row, 1.0)
        held.append(row)
    return np.vstack([total - np.sum(held, axis=0), *held]) if held else total[None]


def settle(counts: np.ndarray, targets: np.ndarray, rng: np.random.Generator,
           multilabel: bool) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Each group's bin, dealt by targets (then repaired, single-label), and the (bin, class) gaps left."""
    bins = deal(counts, targets, rng)
    if multilabel:   # labels overlap: a bin without some label's positives is not refused here
        return bins, []
    bins = repair(bins, counts, len(targets))
    return bins, missing_classes(bins, counts, len(targets))


def gather(members: list[list[int]], bins: np.ndarray, n_bins: int) -> list[np.ndarray]:
    """Each bin's image indices, sorted."""
    out: list[list[int]] = [[] for _ in range(n_bins)]
    for g, b in enumerate(bins):
        out[b] += members[g]
    return [np.sort(np.asarray(v, dtype=np.int64)) for v in out]


def repair(bins: np.ndarray, counts: np.ndarray, n_bins: int) -> np.ndarray:
    """Dealing by targets can leave a bin without a class that a few groups hold (3 patients of a rare class go
    where its larger share is wanted): move such a group, smallest first, from the bin holding most groups of
    that class, whenever that leaves fewer (bin, class) gaps. Returns the bins (a copy)."""
    bins = bins.copy()
    while short := missing_classes(bins, counts, n_bins):
        _, c = short[0]
        holders = np.flatnonzero(counts[:, c] > 0)
        donor = np.bincount(bins[holders], minlength=n_bins).argmax()
        moved = False
        for g in sorted(holders[bins[holders] == donor], key=lambda g: counts[g].sum()):
            for target in (b for b, cls in short if cls == c):
                trial = bins.copy()
                trial[g] = target
                if len(missing_classes(trial, counts, n_bins)) < len(short):
                    bins, moved = trial, True
                    break
            if moved:
                break
        if not moved:
            return bins
    return bins


def missing_classes(bins: np.ndarray, counts: np.ndarray, n_bins: int) -> list[tuple[int, int]]:
    """(bin, class) pairs where a bin got no image of a class that some group has."""
    per_bin = np.zeros((n_bins, counts.shape[1]))
    np.add.at(per_bin, bins, counts)
    present = counts.sum(0) > 0
    return [(b, c) for b in range(n_bins) for c in range(counts.shape[1]) if present[c] and per_bin[b, c] == 0]


def spanning_split(labels: np.ndarray, fractions: Mapping[str, float], seed: int, where: str,
                   class_names: Sequence[str] | None, groups: Sequence[str],
                   folder: bool = False) -> dict[str, np.ndarray]:
    """{'train': idx, **{k: idx for k in fractions}}, each sorted, with every group's images in one split.
    `folder`: the groups are an image folder's (`where`) patient sub-folders, not a CSV's group_column, which
    the message that refuses a split then names."""
    asked = {name: f for name, f in fractions.items() if f > 0}   # test_fraction 0 asks for no test split
    parts = _spanning_split(labels, asked, seed, where, class_names, groups, folder)
    return {"train": parts["train"], **{name: parts.get(name, np.zeros(0, np.int64)) for name in fractions}}


def _spanning_split(labels: np.ndarray, fractions: Mapping[str, float], seed: int, where: str,
                    class_names: Sequence[str] | None, groups: Sequence[str], folder: bool) -> dict[str, np.ndarray]:
    """spanning_split among the splits asked for (fraction > 0): dealt a split of fraction 0 too, the repair
    that gives each split a patient of every class held one of a rare class's 3 patients back in it, unsaid."""
    multilabel = labels.ndim == 2
    members, counts = group_counts(labels, groups, class_names)
    names = ["train", *fractions]
    rng = np.random.default_rng(seed)
    if multilabel:   # labels overlap: dealt rarest label first (the greedy below left held-out splits short of
        # common labels' positives, ~20% below their share, and filled them up with label-free patients)
        images = counts[:, 0].sum()
        wanted = [images * (1 - sum(fractions.values())), *(images * f for f in fractions.values())]
        bins, short = deal_by_labels(counts[:, 1:], counts[:, 0], wanted, list(fractions.values()), rng), []
    else:
        bins, short = settle(counts, split_targets(counts, fractions, multilabel), rng, multilabel)
    empty = [names[b] for b in range(len(names)) if not (bins == b).any()]
    if (empty or short) and folder:
        raise DataError(_folder_shortfall(where, fractions, class_names, list(dict.fromkeys(groups)), counts,
                                          _shortfall(empty, short, names, counts, class_names, "patient(s)")))
    if empty or short:
        hint = typo_hint(class_names[short[0][1]], class_names, labels.astype(np.int64)) if short and class_names and \
            not multilabel else ""
        raise DataError(f"{where}: whole patients (data.group_column: each group of images kept in one split) "
                        f"cannot give {_shortfall(empty, short, names, counts, class_names)}. Fix: add images of "
                        f"more patients of it, or give the splits yourself in data.split_column{hint}")
    return dict(zip(names, gather(members, bins, len(names))))


def _folder_shortfall(where: str, fractions: Mapping[str, float], class_names: Sequence[str] | None,
                      names: list[str], counts: np.ndarray, shortfall: str) -> str:
    """An image folder whose sub-folders of one name under several class folders (`benign/images`,
    `malignant/images`: a common export layout, not a patient) were taken as one patient each."""
    classes = list(class_names) if class_names else [str(c) for c in range(counts.shape[1])]
    shared = [(sub_folder(where, name), [classes[c] for c in np.flatnonzero(row)], int(row.sum()))
              for name, row in zip(names, counts) if (row > 0).sum() > 1]
    if not shared:   # not expected of a folder: only such sub-folders hold images of several classes
        return (f"{where}: whole patients (each sub-folder of a class folder kept in one split) cannot give "
                f"{shortfall}. Fix: add images of more patients, or {own_splits_said(where, fractions)}")
    quoted = a_few([repr(name) for name, _, _ in shared])
    paths = [f"{c}/{name}" for name, in_classes, _ in shared for c in in_classes]
    where_said = ("of each class folder" if len(shared) == 1 and len(shared[0][1]) == len(classes) else
                  "under several class folders")
    one = len(shared) == 1
    images = sum(n for _, _, n in shared)
    return (f"{where}: the sub-folder{'' if one else 's'} {quoted} {where_said} ({a_few(paths, 4)}) "
            f"{'was' if one else 'were each'} taken as ONE patient holding all {'its' if one else 'their'} "
            f"{images} images (sub-folders of one name under several class folders are one patient, kept in one "
            f"split), so whole patients cannot give {shortfall}. Fix: if {'it is' if one else 'they are'} not a "
            f"patient, move the images up into the class folders ({classes[0]}/*.png, ...); or "
            f"{own_splits_said(where, fractions)}")


def sub_folder(where: str, group: str) -> str:
    """A folder's patient group (an absolute path) as its path under the folder `where`."""
    try:
        return Path(group).relative_to(where).as_posix()
    except ValueError:
        return group


def own_splits_said(where: str, fractions: Mapping[str, float]) -> str:
    """The fix of giving an image folder's splits in split folders: all of them, or those carved out of train/."""
    held = [name for name, f in fractions.items() if f > 0] or list(fractions)
    if Path(where).name == "train":   # carved out of a split layout's train/
        return f"give the {'/'.join(held)} images yourself in {', '.join(f'{s}/' for s in held)} beside train/"
    return f"give the splits yourself in {', '.join(f'{s}/' for s in ['train', *held])} folders"


def _shortfall(empty: list[str], short: list[tuple[int, int]], names: list[str], counts: np.ndarray,
               class_names: Sequence[str] | None, unit: str = "groups") -> str:
    if empty:
        return f"the {', '.join(empty)} split(s) any of the {len(counts)} {unit}"
    bin_, c = short[0]
    name = class_names[c] if class_names else str(c)
    groups_with = int((counts[:, c] > 0).sum())
    return (f"the {names[bin_]} split an image of class {name!r}: it is in {groups_with} of the {len(counts)} "
            f"{unit}, and train and each held-out split need one")
