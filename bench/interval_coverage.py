"""How often do the export's 95% intervals of sensitivity contain the true value? Side by side, one run.

    python bench/interval_coverage.py [--sets 1000] [--resamples 500]

Simulated test splits with a known true sensitivity p and n positive images (the small, imbalanced test
splits of this field: BreastMNIST's has 42 malignant, a clinic's folder often fewer): each set's positives
are found with probability p, and the interval is computed by
- `bootstrap`: the percentile bootstrap of searchlab.metrics.bootstrap_ci (what exports used for every metric);
- `exact`: the Clopper-Pearson interval searchlab.intervals.export_intervals now gives proportions.
Printed per (n, p): coverage (share of sets whose interval contains p; 95% is the promise), mean width, and
the share of zero-width intervals (all or none of the positives found, which a bootstrap turns into [1, 1]).

Then test splits of patients with several alike images (a patient's lesion is found in all its images or in
none, as happens with views of one lesion), side by side:
- `images`: the intervals as if every image were independent (what a CSV without a patient column got);
- `patients`: export_intervals given each image's patient (the exact interval at the effective sample size,
  Korn-Graubard).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import print_summary, print_table  # noqa: E402
from searchlab.intervals import export_intervals  # noqa: E402
from searchlab.metrics import bootstrap_ci  # noqa: E402

CASES = [(6, 0.9), (10, 0.8), (20, 0.9), (42, 0.85), (100, 0.95)]
CLUSTERED = [(10, 4, 0.8), (20, 3, 0.9), (30, 5, 0.85)]   # positive patients, images each, true sensitivity
NEGATIVES = 20   # the negatives only shape specificity; sensitivity's interval reads the positives


def one_set(n: int, p: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities whose predictions at 0.5 find each of n positives with probability p."""
    found = rng.random(n) < p
    y = np.r_[np.ones(n, int), np.zeros(NEGATIVES, int)]
    probs = np.r_[np.where(found, 0.8, 0.2), np.full(NEGATIVES, 0.1)]
    return y, probs


def measure(n: int, p: float, sets: int, resamples: int, seed: int) -> dict[str, tuple[float, float, float]]:
    rng = np.random.default_rng(seed)
    found: dict[str, list[tuple[float, float]]] = {"bootstrap": [], "exact": []}
    for i in range(sets):
        y, probs = one_set(n, p, rng)
        found["bootstrap"].append(bootstrap_ci(y, probs, "binary", 2, ["sensitivity"], n_resamples=resamples,
                                               seed=i)["sensitivity"])
        found["exact"].append(export_intervals(y, probs, "binary", 2, ["sensitivity"], n_resamples=resamples,
                                               seed=i, threshold=0.5)[0]["sensitivity"])
    return _coverage(found, p)


def measure_clustered(patients: int, per: int, p: float, sets: int, resamples: int,
                      seed: int) -> dict[str, tuple[float, float, float]]:
    rng = np.random.default_rng(seed)
    found: dict[str, list[tuple[float, float]]] = {"images": [], "patients": []}
    negatives = NEGATIVES // per + 1
    for i in range(sets):
        hit = np.repeat(rng.random(patients) < p, per)   # a patient's images found together or missed together
        y = np.r_[np.ones(patients * per, int), np.zeros(negatives * per, int)]
        probs = np.r_[np.where(hit, 0.8, 0.2), np.full(negatives * per, 0.1)]
        groups = [f"P{j // per}" for j in range(len(y))]
        for way, grouping in (("images", None), ("patients", groups)):
            found[way].append(export_intervals(y, probs, "binary", 2, ["sensitivity"], n_resamples=resamples,
                                               seed=i, threshold=0.5, groups=grouping)[0]["sensitivity"])
    return _coverage(found, p)


def _coverage(found: dict[str, list[tuple[float, float]]], p: float) -> dict[str, tuple[float, float, float]]:
    """Per way: the share of intervals holding p, their mean width, the share of zero width."""
    out = {}
    for way, intervals in found.items():
        low, high = np.array(intervals).T
        out[way] = (float(np.mean((low <= p) & (p <= high))), float(np.mean(high - low)),
                    float(np.mean(high - low == 0)))
    return out


def clustered_rows(sets: int, resamples: int) -> tuple[list[list[str]], dict]:
    rows, summary = [], {}
    for case, (patients, per, p) in enumerate(CLUSTERED):
        result = measure_clustered(patients, per, p, sets, resamples, seed=100 + case)
        summary[f"patients={patients}x{per},p={p}"] = {way: dict(zip(("coverage", "width", "zero_width"), v))
                                                      for way, v in result.items()}
        (ic, iw, _), (pc, pw, _) = result["images"], result["patients"]
        rows.append([f"{patients} patients x {per} images, p={p}", f"{ic:.3f}", f"{pc:.3f}", f"{iw:.3f}",
                     f"{pw:.3f}", f"{pc / ic:.2f}x"])
    return rows, summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", type=int, default=1000, help="simulated test splits per case")
    parser.add_argument("--resamples", type=int, default=500, help="bootstrap resamples per interval")
    args = parser.parse_args()
    rows, summary = [], {}
    for case, (n, p) in enumerate(CASES):
        result = measure(n, p, args.sets, args.resamples, seed=case)
        summary[f"n={n},p={p}"] = {method: dict(zip(("coverage", "width", "zero_width"), values))
                                   for method, values in result.items()}
        (bc, bw, bz), (ec, ew, ez) = result["bootstrap"], result["exact"]
        rows.append([f"n={n}, p={p}", f"{bc:.3f}", f"{ec:.3f}", f"{bw:.3f}", f"{ew:.3f}", f"{bz:.3f}", f"{ez:.3f}",
                     f"{ec / bc:.2f}x"])
    print(f"95% intervals of sensitivity, {args.sets} simulated test splits per case, "
          f"{args.resamples} bootstrap resamples")
    print_table(["case", "coverage bootstrap", "coverage exact", "width bootstrap", "width exact",
                 "zero-width bootstrap", "zero-width exact", "coverage ratio"], rows)
    clustered, clustered_summary = clustered_rows(args.sets, args.resamples)
    print("\n95% intervals of sensitivity when a patient's images are found or missed together")
    print_table(["case", "coverage images", "coverage patients", "width images", "width patients",
                 "coverage ratio"], clustered)
    print_summary({"bench": "interval_coverage", "sets": args.sets, "resamples": args.resamples, "cases": summary,
                   "clustered": clustered_summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
