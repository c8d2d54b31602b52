"""Confidence intervals of an export's test metrics.

Percentile bootstrap over test images for every metric, except binomial proportions at the export's
threshold (accuracy, sensitivity, specificity), which get the Clopper-Pearson exact interval. A percentile
bootstrap of a proportion collapses at 0 or 1: 6 of 6 positives found gives [1.0, 1.0], claiming a certainty
six images cannot give (the exact interval is [0.54, 1.0]); the exact interval never has zero width and
covers at least the stated level, which is what diagnostic-accuracy reports (STARD) expect.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import beta

from searchlab.metrics import TaskKind, bootstrap_ci, predictions

EXACT = "Clopper-Pearson (exact binomial)"


def export_intervals(y: np.ndarray, probs: np.ndarray, kind: TaskKind, n_classes: int, names: Sequence[str],
                   n_resamples: int, seed: int, threshold: float | Sequence[float],
                   level: float = 0.95) -> tuple[dict[str, tuple[float, float]], dict[str, str]]:
    """(interval per metric, how each was computed)."""
    intervals = bootstrap_ci(y, probs, kind, n_classes, names, n_resamples=n_resamples, seed=seed,
                             threshold=threshold, level=level)
    methods = {name: f"percentile bootstrap, {n_resamples} resamples" for name in names}
    pred, truth = predictions(probs, kind, threshold), np.asarray(y)
    for name in names:
        counts = proportion(name, truth, pred, kind)
        if counts is not None:
            intervals[name], methods[name] = clopper_pearson(*counts, level=level), EXACT
    return intervals, methods


def proportion(name: str, y: np.ndarray, pred: np.ndarray, kind: TaskKind) -> tuple[int, int] | None:
    """(successes, trials) of a metric that is a binomial proportion, else None."""
    if name == "accuracy":   # multi-label: exact-match accuracy, a proportion of images too
        right = (pred == y).all(axis=1) if kind == "multilabel" else pred == y
        return int(right.sum()), len(y)
    if kind == "binary" and name in ("sensitivity", "specificity"):
        label = 1 if name == "sensitivity" else 0
        return int(((pred == label) & (y == label)).sum()), int((y == label).sum())
    return None


def clopper_pearson(successes: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    if trials == 0:
        return float("nan"), float("nan")
    alpha = 1 - level
    low = beta.ppf(alpha / 2, successes, trials - successes + 1) if successes > 0 else 0.0
    high = beta.ppf(1 - alpha / 2, successes + 1, trials - successes) if successes < trials else 1.0
    return float(low), float(high)
