"""How often do the export's 95% intervals of sensitivity contain the true value? Side by side, one run.

    python bench/interval_coverage.py [--sets 1000] [--resamples 500]

Simulated test splits with a known true sensitivity p and n positive images (the small, imbalanced test
splits of this field: BreastMNIST's has 42 malignant, a clinic's folder often fewer): each set's positives
are found with probability p, and the interval is computed by
- `bootstrap`: the percentile bootstrap of searchlab.metrics.bootstrap_ci (what exports used for every metric);
- `exact`: the Clopper-Pearson interval searchlab.intervals.export_intervals now gives proportions.
Printed per (n, p): coverage (share of sets whose interval contains p; 95% is the promise), mean width, and
the share of zero-width intervals (all or none of the positives found, which a bootstrap turns into [1, 1]).
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
    out = {}
    for method, intervals in found.items():
        low, high = np.array(intervals).T
        out[method] = (float(np.mean((low <= p) & (p <= high))), float(np.mean(high - low)),
                       float(np.mean(high - low == 0)))
    return out


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
    print_summary({"bench": "interval_coverage", "sets": args.sets, "resamples": args.resamples, "cases": summary})
    return 0


if __name__ == "__main__":
    sys.exit(main())
