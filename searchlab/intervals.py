"""Confidence intervals of an export's test metrics.

Percentile bootstrap over test images for every metric, except proportions at the export's threshold, which
get the Clopper-Pearson exact interval: binomial ones (accuracy, sensitivity, specificity) at their count, and
multi-label hamming_loss and the macro means of per-class proportions (recall, precision, balanced_accuracy) at
a Korn-Graubard effective sample size (see design_exact); F1 and AUC are not proportions and keep the
bootstrap. A percentile bootstrap of a proportion collapses at 0 or 1: 6 of 6 positives found gives [1.0, 1.0],
claiming a certainty six images cannot give (the exact interval is [0.54, 1.0]), and 40 test images with no
label wrong gave hamming_loss [0, 0]; the exact interval never has zero width and covers at least the stated
level, which is what diagnostic-accuracy reports (STARD) expect.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import beta

from searchlab.metrics import PER_CLASS, TaskKind, bootstrap_ci, predictions

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
        cells = mean_of_proportions(name, truth, pred, kind, n_classes)
        if cells is not None:
            hits, weights, image, stratum = cells
            units = np.asarray(groups)[image] if clustered else image
            intervals[name], effective = design_exact(hits, weights, units, stratum, level)
            over = f"{len(set(units.tolist()))} {'patients' if clustered else 'images'}"
            methods[name] = (f"{EXACT} at the Korn-Graubard effective sample size ({effective:.1f}) of "
                             + (f"{len(hits)} label cells in {over}: an image's labels are not independent"
                                if name == "hamming_loss" else
                                f"a macro mean of per-{'label' if kind == 'multilabel' else 'class'} proportions "
                                f"over {over}"))
            continue
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
    if (per_class := PER_CLASS.fullmatch(name)) and per_class[1] == "recall":   # a class's (label's) positives
        k = int(per_class[2])
        return (y[:, k] == 1, pred[:, k] == 1) if kind == "multilabel" else (y == k, pred == k)
    return None


def mean_of_proportions(name: str, y: np.ndarray, pred: np.ndarray, kind: TaskKind,
                        n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """A metric that is a weighted sum of 0/1 outcomes, several per image or weighted unequally, as (whether
    each outcome is a success, its weight, its image, its stratum: the class or label whose proportion it counts
    toward), else None. The weights sum to 1, or less where a class counts 0 without outcomes.
    hamming_loss: every label cell, a success when wrong, weighted alike. recall (and balanced_accuracy outside
    multi-label, the same number): each positive of a class present, weighted 1 / (classes present x its class's
    positives). precision: each prediction of a class, a success when right, weighted 1 / (classes present or
    predicted x its class's predictions); a class present but never predicted counts 0 (its 1 / classes of
    weight is missing). Multi-label balanced_accuracy: each label's positives and negatives, weighted so that each
    label's (TPR + TNR) / 2 (or the one of them defined) counts 1 / labels."""
    y, pred = np.asarray(y).astype(np.int64), np.asarray(pred).astype(np.int64)   # multi-label labels are floats
    truth, said = (y, pred) if kind == "multilabel" else (np.eye(n_classes, dtype=np.int64)[y],
                                                          np.eye(n_classes, dtype=np.int64)[pred])
    image = np.broadcast_to(np.arange(len(truth))[:, None], truth.shape)
    label = np.broadcast_to(np.arange(truth.shape[1])[None, :], truth.shape)
    on, positives, predicted = truth == 1, truth.sum(axis=0), said.sum(axis=0)
    if name == "hamming_loss" and kind == "multilabel":
        # Label cells, with the image as the unit: a blurred or odd image gets several labels wrong at once, so
        # its cells are not independent. Counting the N x L cells as trials would be too narrow; counting images
        # alone (an image's share of wrong labels as one outcome) wastes what independent errors show. So the
        # cells are clustered in images (design_exact): the count lies between N and N x L as the spread of
        # errors between images says, and is N at 0 or 1, where the spread says nothing.
        cells = truth.size
        return (truth != said).ravel(), np.full(cells, 1.0 / cells), image.ravel(), np.zeros(cells, dtype=np.int64)
    if name == "recall" or (name == "balanced_accuracy" and kind != "multilabel"):
        if not positives.any():
            return None
        weight = 1.0 / (np.count_nonzero(positives) * positives[label[on]])
        return said[on] == 1, weight, image[on], label[on]
    if name == "precision":
        claimed = said == 1
        if not predicted.any():
            return None
        weight = 1.0 / (np.count_nonzero((positives > 0) | (predicted > 0)) * predicted[label[claimed]])
        return on[claimed], weight, image[claimed], label[claimed]
    if name == "balanced_accuracy" and kind == "multilabel":
        count = np.stack([len(truth) - positives, positives])             # (2, L): each label's negatives, positives
        sides = (count > 0).sum(axis=0)                                   # 2, or 1 for a label never (always) on
        weight = 1.0 / (truth.shape[1] * sides[label] * count[truth, label])
        return (said == truth).ravel(), weight.ravel(), image.ravel(), (2 * label + truth).ravel()
    return None


def design_exact(hits: np.ndarray, weights: np.ndarray, units: np.ndarray, strata: np.ndarray,
                 level: float = 0.95) -> tuple[tuple[float, float], float]:
    """(Exact interval, effective sample size) of a weighted mean of 0/1 outcomes, clustered in units (the
    images, or patients) and averaging per-stratum proportions: Clopper-Pearson at the effective sample size
    p (1 - p) / variance (Korn & Graubard 1998), the variance being the delta-method one of that mean with whole
    units resampled, and the effective size at most the outcomes' Kish size (1 / sum of squared weights, i.e. a
    design effect of at least 1). The outcomes of one unit are not independent (an image's label cells: a bad
    image gets several wrong at once), so counting them as independent would be too narrow. At 0 or 1 the
    spread shows nothing, so the chosen count is that of the units, each counted once (their Kish size under
    the weights, which for label cells weighted alike is the number of images): the most conservative reading,
    as if every outcome of an image were the same; 0 of 40 images' label cells wrong gives [0, 0.088], not the
    [0, 0.023] of 160 independent cells. Weights summing to s < 1 (classes counted 0 without outcomes): the
    interval of the weighted mean of the outcomes, times s."""
    if hits.size == 0:
        return (float("nan"), float("nan")), float("nan")
    total = float(weights.sum())
    h, w = hits.astype(np.float64), weights / total
    scale = 1.0 if abs(total - 1) < 1e-9 else total                 # 1 up to rounding: keep a bound of 1 exact
    ids, unit = np.unique(units, return_inverse=True)
    per_unit = np.bincount(unit, weights=w)
    p = 1.0 if h.all() else 0.0 if not h.any() else float(np.sum(w * h))
    effective = 1.0 / float(np.sum(per_unit ** 2))                   # the units, each counted once
    if 0 < p < 1 and len(ids) > 1:
        _, stratum = np.unique(strata, return_inverse=True)
        share = np.bincount(stratum, weights=w * h) / np.bincount(stratum, weights=w)
        deviation = np.bincount(unit, weights=w * (h - share[stratum]))
        variance = len(ids) / (len(ids) - 1) * float(np.sum(deviation ** 2))
        if variance > 0:
            effective = min(1.0 / float(np.sum(w ** 2)), p * (1 - p) / variance)
    low, high = clopper_pearson(p * effective, effective, level)
    return (low * scale, high * scale), effective


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
