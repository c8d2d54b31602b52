"""Multi-label rows split at random vs stratified per label (data.multilabel_split): side by side, one run.

    python bench/multilabel_splits.py [--sets 300] [--rows 400] [--seed 0]

Simulated multi-label sheets: four labels on in 30%, 10%, 3% and 1% of the rows, independently (a rare
finding beside common ones, as in chest X-ray sets). Each sheet is split train/val/test (0.7/0.15/0.15)
- `random`: searchlab.data.common.random_split (`multilabel_split: random`, every run before the key);
- `stratified`: label_stratified_split (the default).
Printed per way: how often val or test holds no positive of some label (its AUC, and a threshold chosen for
it, are then undefined: a run refuses such a validation split), the worst gap between a split's share of a
label's positives and the share asked, the largest split-size gap from the asked size, and the time per split.
Then whole patients (data.group_column, two images each): val and test's mean shortfall of each label's
positives against their share, dealt by the greedy that splits used before (grouping.settle, which folds still
use) and by iterative stratification (grouping.spanning_split). Target: the stratified split never leaves a
label out of val or test, and patients' held-out positives of the labels on in 10% of rows or more are within
5% of their share on average (a rarer label's share of a held-out split is a positive or two, and each split
is given at least one). Each label here is on in 3 rows or
more, one per split; a label on in fewer rows stays in train, since a label train never sees cannot be learned.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import print_summary, print_table  # noqa: E402
from searchlab.data.common import label_stratified_split, random_split  # noqa: E402
from searchlab.data.grouping import gather, group_counts, settle, spanning_split, split_targets  # noqa: E402

FRACTIONS = {"val": 0.15, "test": 0.15}
PREVALENCE = (0.30, 0.10, 0.03, 0.01)


def sheet(rows: int, rng: np.random.Generator) -> np.ndarray:
    labels = (rng.random((rows, len(PREVALENCE))) < PREVALENCE).astype(np.int64)
    labels[rng.choice(rows, size=3, replace=False), -1] = 1   # at least once per split: train, val, test
    return labels


def judge(parts: dict[str, np.ndarray], labels: np.ndarray) -> tuple[bool, float, float]:
    n, positives = len(labels), labels.sum(0)
    shares = {"train": 1 - sum(FRACTIONS.values()), **FRACTIONS}
    missing = any((labels[parts[s]].sum(0) == 0).any() for s in FRACTIONS)
    share_gap = max(float(np.max(np.abs(labels[idx].sum(0) / positives - shares[s]))) for s, idx in parts.items())
    size_gap = max(abs(len(idx) - shares[s] * n) for s, idx in parts.items())
    return missing, share_gap, size_gap


def measure(sets: int, rows: int, seed: int) -> dict[str, list[tuple]]:
    rng = np.random.default_rng(seed)
    ways = {"random": lambda labels, s: random_split(len(labels), FRACTIONS, s, "sheet"),
            "stratified": lambda labels, s: label_stratified_split(labels, FRACTIONS, s, "sheet")}
    out: dict[str, list[tuple]] = {way: [] for way in ways}
    for s in range(sets):
        labels = sheet(rows, rng)
        for way, split in ways.items():
            started = time.perf_counter()
            parts = split(labels, s)
            out[way].append((*judge(parts, labels), time.perf_counter() - started))
    return out


def patient_bias(sets: int, rows: int, seed: int) -> dict[str, np.ndarray]:
    """Mean relative gap of val's and test's images and positives per label from their shares, per way."""
    rng = np.random.default_rng(seed)
    gaps: dict[str, list[np.ndarray]] = {"greedy": [], "stratified": []}
    for s in range(sets):
        labels = sheet(rows, rng)
        groups = [f"P{i // 2}" for i in range(rows)]
        members, counts = group_counts(labels, groups)
        bins, _ = settle(counts, split_targets(counts, FRACTIONS, True), np.random.default_rng(s), True)
        ways = {"greedy": dict(zip(["train", *FRACTIONS], gather(members, bins, 1 + len(FRACTIONS)))),
                "stratified": spanning_split(labels, FRACTIONS, s, "sheet", None, groups)}
        for way, parts in ways.items():
            for split, f in FRACTIONS.items():
                wanted = np.r_[rows, labels.sum(0)] * f
                gaps[way].append((np.r_[len(parts[split]), labels[parts[split]].sum(0)] - wanted) / wanted)
    return {way: np.mean(v, axis=0) for way, v in gaps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=300)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    table, summary = [], {}
    for way, judged in measure(args.sets, args.rows, args.seed).items():
        missing, share_gap, size_gap, seconds = (np.array(v, dtype=float) for v in zip(*judged))
        table.append([way, f"{missing.mean():.3f}", f"{share_gap.mean():.3f}", f"{share_gap.max():.3f}",
                      f"{size_gap.max():.1f}", f"{1000 * seconds.mean():.2f}"])
        summary[f"{way}_val_or_test_missing_a_label"] = round(float(missing.mean()), 3)
    print(f"{args.sets} sheets of {args.rows} rows, labels on in {', '.join(f'{p:.0%}' for p in PREVALENCE)} of "
          "rows, train/val/test 0.7/0.15/0.15")
    print_table(["way", "val/test missing a label", "mean worst label-share gap", "max gap",
                 "max size gap (rows)", "ms per split"], table)
    bias = patient_bias(args.sets // 3, args.rows, args.seed)
    print("\nwhole patients (2 images each): val/test mean gap from their share")
    print_table(["way", "images", *(f"label {p:.0%} positives" for p in PREVALENCE)],
                [[way, *(f"{g:+.3f}" for g in gap)] for way, gap in bias.items()])
    common = 1 + np.flatnonzero(np.asarray(PREVALENCE) >= 0.10)   # columns after the images'
    for way, gap in bias.items():
        summary[f"patients_{way}_worst_common_label_gap"] = round(float(np.abs(gap[common]).max()), 3)
    verdict = summary["stratified_val_or_test_missing_a_label"] == 0 and \
        summary["patients_stratified_worst_common_label_gap"] <= 0.05
    summary["verdict"] = "PASS" if verdict else "FAIL"
    print_summary(summary)
    sys.exit(0 if verdict else 1)


if __name__ == "__main__":
    main()
