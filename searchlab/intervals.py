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
                     n_resamples: int, seed: int, threshold: float | Sequence[float], level: float = 0.95,
                     groups: Sequence[str] | None = None) -> tuple[dict[str, tuple[float, float]], dict[str, str]]:
    """(interval per metric, how each was computed). With `groups` (a patient per test image, when some
    patients have several), a patient's images are alike, so counting them as independent is too narrow: the
    bootstrap resamples whole patients, and a proportion gets the exact interval at its effective sample size
    (Korn & Graubard 1998: the images divided by the design effect that the spread between patients shows)."""
    clustered = groups is not None and len(set(groups)) < len(groups)
    intervals = bootstrap_ci(y, probs, kind, n_classes, names, n_resamples=n_resamples, seed=seed,
                             threshold=threshold, level=level, groups=groups if clustered else None)
    resampled = (f"percentile bootstrap over {len(set(groups or ()))} patients (whole patients resampled), "
                 f"{n_resamples} resamples" if clustered else f"percentile bootstrap, {n_resamples} resamples")
    methods = dict.fromkeys(names, resampled)
    pred, truth = predictions(probs, kind, threshold), np.asarray(y)
    for name in names:
        outcomes = proportion_outcomes(name, truth, pred, kind)
        if outcomes is None:
            continue
        over, hits = outcomes
        if clustered:
            patients = np.asarray(groups)[over]
            intervals[name] = korn_graubard(hits[over], patients, level)
            methods[name] = (f"{EXACT} at the effective sample size of {len(set(patients))} patients' images "
                             "(Korn-Graubard)")
        else:
            intervals[name], methods[name] = clopper_pearson(int(hits[over].sum()), int(over.sum()), level), EXACT
    return intervals, methods


def proportion_outcomes(name: str, y: np.ndarray, pred: np.ndarray,
                        kind: TaskKind) -> tuple[np.ndarray, np.ndarray] | None:
    """(the images a binomial-proportion metric counts, whether each is a success), else None."""
    if name == "accuracy":   # multi-label: exact-match accuracy, a proportion of images too
        right = (pred == y).all(axis=1) if kind == "multilabel" else pred == y
        return np.ones(len(y), dtype=bool), right
    if kind == "binary" and name in ("sensitivity", "specificity"):
        label = 1 if name == "sensitivity" else 0
        return y == label, pred == label
    return None


def korn_graubard(hits: np.ndarray, patients: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The exact interval of a proportion over clustered images, at the effective sample size n / deff; the
    design effect deff compares the between-patient variance of the proportion (a ratio estimator's) with a
    binomial's, and is at least 1. At 0 or 1 successes the spread shows nothing: each patient counts once."""
    n = len(hits)
    if n == 0:
        return float("nan"), float("nan")
    p = float(hits.mean())
    ids, index = np.unique(patients, return_inverse=True)
    if p in (0.0, 1.0) or len(ids) < 2:
        effective = float(len(ids))
    else:
        successes, sizes = np.bincount(index, weights=hits.astype(float)), np.bincount(index)
        variance = len(ids) / (len(ids) - 1) * float(np.sum((successes - p * sizes) ** 2)) / n ** 2
        effective = n / max(variance / (p * (1 - p) / n), 1.0)
    return clopper_pearson(p * effective, effective, level)


def clopper_pearson(successes: float, trials: float, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval; fractional counts (an effective sample size) read through the beta quantiles."""
    if trials == 0:
        return float("nan"), float("nan")
    alpha = 1 - level
    low = beta.ppf(alpha / 2, successes, trials - successes + 1) if successes > 0 else 0.0
    high = beta.ppf(1 - alpha / 2, successes + 1, trials - successes) if successes < trials else 1.0
    return float(low), float(high)
