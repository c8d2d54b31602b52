"""Patients kept whole (a CSV's data.group_column) vs rows split one by one: side by side, one run.

    python bench/patient_splits.py [--sets 200] [--patients 150] [--seed 0]

Simulated sheets of patients with 1-6 images each; a quarter of the images are positive, often beside
negatives of the same patient (a patient with a benign and a malignant lesion), and a rare third class sits in
a few patients. Each sheet is split train/val/test (0.7/0.15/0.15) and into 5 cross-validation folds
- `rows`: image by image, stratified by class (what a CSV got without a patient column);
- `patients`: searchlab.data.grouping, whole patients dealt by their class counts.
Printed per way: the share of patients whose images land in two splits (or two folds) — images a model
trains on and is scored on at once —, the worst gap between a split's (fold's) share of a class and the
share asked, and how often a split or fold misses a class it should hold.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import print_summary, print_table  # noqa: E402
from searchlab.data.common import stratified_split  # noqa: E402
from searchlab.data.grouping import spanning_split  # noqa: E402
from searchlab.tasks.crossval import fold_indices  # noqa: E402

FRACTIONS = {"val": 0.15, "test": 0.15}
FOLDS = 5
CLASSES = ("benign", "malignant", "rare")


def sheet(patients: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    groups = [f"P{p}" for p in range(patients) for _ in range(rng.integers(1, 7))]
    labels = (rng.random(len(groups)) < 0.25).astype(np.int64)
    rare = rng.choice(patients, size=6, replace=False)
    labels[[i for i, g in enumerate(groups) if int(g[1:]) in rare]] = 2
    return labels, groups


def judge(parts: list[np.ndarray], shares: list[float], labels: np.ndarray, groups: list[str]) -> tuple:
    where: dict[str, set[int]] = {}
    for b, idx in enumerate(parts):
        for i in idx:
            where.setdefault(groups[i], set()).add(b)
    leaked = sum(len(b) > 1 for b in where.values()) / len(where)
    gap = max(abs((labels[idx] == c).sum() / max((labels == c).sum(), 1) - share)
              for idx, share in zip(parts, shares) for c in (0, 1))
    missing = any(not (labels[idx] == c).any() for idx in parts for c in range(3))
    return leaked, gap, missing


def measure(sets: int, patients: int, seed: int) -> dict[str, dict[str, list]]:
    rng = np.random.default_rng(seed)
    out = {way: {"split": [], "folds": []} for way in ("rows", "patients")}
    shares = [1 - sum(FRACTIONS.values()), *FRACTIONS.values()]
    for s in range(sets):
        labels, groups = sheet(patients, rng)
        for way, split in (("rows", stratified_split(labels, FRACTIONS, s, "sheet", CLASSES)),
                           ("patients", spanning_split(labels, FRACTIONS, s, "sheet", CLASSES, groups))):
            out[way]["split"].append(judge([split["train"], split["val"], split["test"]], shares, labels, groups))
        for way, grouping in (("rows", None), ("patients", tuple(groups))):
            folds = fold_indices(labels, FOLDS, s, CLASSES, grouping)
            out[way]["folds"].append(judge(folds, [1 / FOLDS] * FOLDS, labels, groups))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=200)
    parser.add_argument("--patients", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = measure(args.sets, args.patients, args.seed)
    rows, summary = [], {}
    for way, kinds in results.items():
        for kind, judged in kinds.items():
            leaked, gap, missing = (np.array(v, dtype=float) for v in zip(*judged))
            rows.append([way, kind, f"{leaked.mean():.3f}", f"{gap.mean():.3f}", f"{gap.max():.3f}",
                         f"{missing.mean():.3f}"])
            summary[f"{way}_{kind}_patients_leaked"] = round(float(leaked.mean()), 3)
    print(f"{args.sets} sheets of {args.patients} patients (1-6 images each), train/val/test 0.7/0.15/0.15 and "
          f"{FOLDS} folds")
    print_table(["way", "into", "patients in 2+ parts", "mean worst class-share gap", "max gap",
                 "parts missing a class"], rows)
    print_summary(summary)


if __name__ == "__main__":
    main()
