"""Confidence intervals of an export's test metrics.

Percentile bootstrap over test images for every metric, except proportions at the export's threshold, which
get the Clopper-Pearson exact interval: binomial ones (accuracy, sensitivity, specificity) at their count, and
multi-label hamming_loss and the macro means of per-class proportions (recall, precision, balanced_accuracy) at
a Korn-Graubard effective sample size (see design_exact); F1 and AUC are not proportions and keep the
bootstrap. A percentile bootstrap of a proportion collapses at 0 or 1: 6 of 6 positives found gives [1.0, 1.0],
claiming a certainty six images cannot give (the exact interval is [0.54, 1.0]), and 40 test images with no
label wrong gave hamming_loss [0, 0]; the exact interval never has zero width and covers at least the stated
level, which is what diagnostic-accuracy reports (STARD) expect.

A metric whose spread rests on a class (a label's positives or negatives) with fewer than MIN_UNITS independent
units in the test split (patients when they are known, else images) gets no interval at all (nan, and a method
saying which class), rather than one that is far too narrow: see MIN_UNITS. A metric undefined on the test split
(a class without test images) gets none either, and the method UNDEFINED.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.stats import beta

from searchlab.metrics import PER_CLASS, TaskKind, _check, _resampled, bootstrap_ci, predictions

EXACT = "Clopper-Pearson (exact binomial)"
NO_CI = "no CI"
# the method of a metric undefined on the test split (nan, an interval of [null, null]): there is no interval, so
# none was computed in any way (a bootstrap's name beside it read as if one had been)
UNDEFINED = "none: undefined on this test split"

# The fewest independent units (patients, else images) of a class that a metric's interval may rest on. With one,
# its spread cannot show at all: the bootstrap skips the resamples that miss it (37%) and the rest all hold that
# one patient, so the interval is conditional on it and shows the other classes' spread only; design_exact gets no
# variance from it, and its effective size went to the images (40.7 "over 39 patients"). An audit of a 6-class
# split (malignant: one test patient of 4 images) measured coverage of a nominal 95% of 27% and 32% for such
# classes' AUC and 79% for the macro AUC. Positive class of m patients x 4 alike images (ICC 0.7) beside 30
# negative patients, 300 splits each, patient-bootstrap AUC covered 30% (m=1), 68% (2), 81% (3), 85% (4), 90% (5
# and 8): below 3 the interval is grossly false; from 3 on it nears the 90% this bootstrap reaches with 5 to 8
# patients, its known shortfall with few clusters, so it is given. Exact intervals of a class's own proportion
# (recall_class_<i>, sensitivity) are valid at any count and are not affected.
MIN_UNITS = 3


def export_intervals(y: np.ndarray, probs: np.ndarray, kind: TaskKind, n_classes: int, names: Sequence[str],
                     n_resamples: int, seed: int, threshold: float | Sequence[float], level: float = 0.95,
                     groups: Sequence[str] | None = None, class_names: Sequence[str] | None = None
                     ) -> tuple[dict[str, tuple[float, float]], dict[str, str]]:
    """(interval per metric, how each was computed). With `groups` (a patient per test image, when some
    patients have several), a patient's images are alike, so counting them as independent is too narrow: the
    bootstrap resamples whole patients, and a proportion gets the exact interval at its effective sample size
    (Korn & Graubard 1998: the images divided by the design effect that the spread between patients shows).
    A metric resting on a class with fewer than MIN_UNITS patients (images) gets (nan, nan) and a method
    "no CI: class 'malignant' has 1 test patient, ..." (`class_names` name the classes; else their index)."""
    clustered = groups is not None and len(set(groups)) < len(groups)
    intervals = bootstrap_ci(y, probs, kind, n_classes, names, n_resamples=n_resamples, seed=seed,
                             threshold=threshold, level=level, groups=groups if clustered else None)
    resampled = (f"percentile bootstrap over {len(set(groups or ()))} patients (whole patients resampled), "
                 f"{n_resamples} resamples" if clustered else f"percentile bootstrap, {n_resamples} resamples")
    methods = dict.fromkeys(names, resampled)
    pred, truth = predictions(probs, kind, threshold), np.asarray(y)
    unit_ids = np.asarray(groups) if clustered else np.arange(len(truth))
    undefined = undefined_metrics(y, probs, kind, n_classes, names, threshold)
    for name in names:
        if name in undefined:
            intervals[name], methods[name] = (float("nan"), float("nan")), UNDEFINED
            continue
        if thin := thin_classes(name, truth, pred, kind, n_classes, unit_ids):
            intervals[name] = (float("nan"), float("nan"))
            methods[name] = no_interval(thin, kind, clustered, class_names)
            continue
        cells = mean_of_proportions(name, truth, pred, kind, n_classes)
        if cells is not None:
            hits, weights, image, stratum = cells
            units = np.asarray(groups)[image] if clustered else image
            # hamming_loss's cells count between the patients and the cells, as their spread between patients
            # says (as between images); the one-per-patient cap is the macro means' (see design_exact)
            intervals[name], effective = design_exact(hits, weights, units, stratum, level,
                                                      units_are_patients=clustered and name != "hamming_loss")
            over = f"{len(set(units.tolist()))} {'patients' if clustered else 'images'}"
            methods[name] = (f"{NO_CI}: the test split has {over}, fewer than the {MIN_UNITS} an interval needs"
                             if not math.isfinite(effective) else
                             f"{EXACT} at the Korn-Graubard effective sample size ({effective:.1f}) of "
                             + (f"{len(hits)} label cells in {over}: {'a patient' if clustered else 'an image'}'s "
                                "labels are not independent" if name == "hamming_loss" else
                                f"a macro mean of per-{'label' if kind == 'multilabel' else 'class'} proportions "
                                f"over {over}"))
            continue
        outcomes = proportion_outcomes(name, truth, pred, kind)
        if outcomes is None:
            continue
        over, hits = outcomes
        if clustered:
            patients = np.asarray(groups)[over]
            effective = korn_graubard_size(hits[over], patients)
            intervals[name] = korn_graubard(hits[over], patients, level)
            methods[name] = (f"{EXACT} at the Korn-Graubard effective sample size ({effective:.1f}) of "
                             f"{len(patients)} images in {len(set(patients))} patients")
        else:
            intervals[name], methods[name] = clopper_pearson(int(hits[over].sum()), int(over.sum()), level), EXACT
    return intervals, methods


def undefined_metrics(y: np.ndarray, probs: np.ndarray, kind: TaskKind, n_classes: int, names: Sequence[str],
                      threshold: float | Sequence[float]) -> set[str]:
    """The metrics undefined (nan) on the whole test split, as the bootstrap defines them: its resampling with
    every image drawn once (compute_metrics would refuse the unnormalised probabilities it takes)."""
    truth, p = _check(y, probs, kind, n_classes)
    point = _resampled(np.ones((1, len(truth))), truth, p, predictions(p, kind, threshold), kind, n_classes)
    return {name for name in names if np.isnan(point[name]()[0])}


def patients_per_class(y: np.ndarray, groups: Sequence[str], kind: TaskKind,
                       class_names: Sequence[str]) -> dict[str, int | dict[str, int]]:
    """The test patients of each class (multi-label: of each label's positives and negatives; a patient with
    images on both sides counts on both), as config.json's test_patients_per_class: the export warns of few
    test images of a class with these beside them."""
    y, patients = np.asarray(y).astype(np.int64), np.asarray(groups)
    if kind == "multilabel":
        return {name: {"positives": len(set(patients[y[:, j] == 1])), "negatives": len(set(patients[y[:, j] == 0]))}
                for j, name in enumerate(class_names)}
    return {name: len(set(patients[y == j])) for j, name in enumerate(class_names)}


def thin_classes(name: str, y: np.ndarray, pred: np.ndarray, kind: TaskKind, n_classes: int,
                 units: np.ndarray) -> list[tuple[int, str, int]]:
    """(class or label, side, its units) of each class the metric's spread rests on with fewer than MIN_UNITS
    independent units (none: an empty list). Sides: "on" its images (a label's positives), "off" the others
    (a label's negatives, a class's rest in one-vs-rest AUC), "predicted" the images said to be of it (precision
    averages over those). A side without images is skipped: the metric is then undefined or leaves the class out.
    Exact intervals of one proportion (accuracy, sensitivity, specificity, recall_class_<i>) and hamming_loss
    (every image's label cells) rest on no one class."""
    y, pred = np.asarray(y).astype(np.int64), np.asarray(pred).astype(np.int64)   # multi-label labels are floats
    truth, said = (y, pred) if kind == "multilabel" else (np.eye(n_classes, dtype=np.int64)[y],
                                                          np.eye(n_classes, dtype=np.int64)[pred])
    per_class = PER_CLASS.fullmatch(name)
    if per_class and per_class[1] in ("auc", "f1"):
        columns = [int(per_class[2])]
    elif name in ("auc", "average_precision", "f1", "recall", "precision", "balanced_accuracy"):
        columns = list(range(truth.shape[1]))
    else:
        return []
    # a ranking metric reads a column's negatives too: a label's, or a class's rest in its one-vs-rest AUC (the
    # macro AUC of classes reads them all as some class's images already)
    ranked = name.startswith("auc") or name == "average_precision"
    both = (ranked and (kind == "multilabel" or per_class)) or (name == "balanced_accuracy" and kind == "multilabel")
    sides = ["predicted"] if name == "precision" else ["on", "off"] if both else ["on"]
    images = {"on": truth == 1, "off": truth == 0, "predicted": said == 1}
    counts = [(j, side, len(np.unique(units[images[side][:, j]]))) for j in columns for side in sides]
    return [(j, side, count) for j, side, count in counts if 0 < count < MIN_UNITS]


def no_interval(thin: list[tuple[int, str, int]], kind: TaskKind, clustered: bool,
                class_names: Sequence[str] | None) -> str:
    """The method of a metric left without an interval: which classes have too few test patients (images)."""
    return f"{NO_CI}: {'; '.join(_too_few(*one, kind, clustered, class_names) for one in thin)}, fewer than the " \
           f"{MIN_UNITS} an interval needs"


def _too_few(j: int, side: str, count: int, kind: TaskKind, clustered: bool,
             class_names: Sequence[str] | None) -> str:
    label = "label" if kind == "multilabel" else "class"
    who = f"{label} {class_names[j]!r}" if class_names is not None else f"{label} {j}"
    unit = ("patient" if clustered else "image") + ("" if count == 1 else "s")
    said = {"on": f"has {count} test {unit}" if kind != "multilabel" else f"is on in {count} test {unit}",
            "off": f"is off in {count} test {unit}" if kind == "multilabel" else f"has {count} test {unit} of "
                   "other classes",
            "predicted": f"is predicted for {count} test {unit}"}[side]
    return f"{who} {said}"


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
    label's (TPR + TNR) / 2 counts 1 / labels both on and off (one never or always on is left out)."""
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
        both = (count > 0).all(axis=0)         # a label never (always) on has no balanced accuracy: left out
        if not both.any():
            return None
        kept = both[label]
        weight = 1.0 / (np.count_nonzero(both) * 2 * count[truth, label])
        return (said == truth)[kept], weight[kept], image[kept], (2 * label + truth)[kept]
    return None


def design_exact(hits: np.ndarray, weights: np.ndarray, units: np.ndarray, strata: np.ndarray,
                 level: float = 0.95, units_are_patients: bool = False) -> tuple[tuple[float, float], float]:
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
    interval of the weighted mean of the outcomes, times s.
    A stratum (a class) with fewer than MIN_UNITS units adds no variance it could show (one patient: none at
    all), so the interval would be far too narrow: (nan, nan), nan. With `units_are_patients` (a macro mean over
    patients) units count at most once each (their Kish size under the weights): the spread between a few
    patients per class understates how alike a patient's images are, and the effective size said "40.7 over 39
    patients". Simulated balanced accuracy of 3 classes (12, 12 and m patients of 4 images, ICC 0.1-0.8, 300
    splits): at m=3 coverage 85-89% uncounted, 98-100% counted so; at m=10 it was 94-98% and is 99-100%, at a
    cost in width (+12% at ICC 0.8, +33% at 0.5, +82% at 0.1): conservative where patients are many and their
    images differ. Label cells (hamming_loss, not capped so, even over patients) keep the count between the units
    and the cells, as their spread says: capped at the patients, 20 of 116 cells wrong in 29 images of 10
    patients gave [0.010, 0.581] at 7.9, where the spread between those patients says 74 and [0.095, 0.278]."""
    if hits.size == 0 or fewest_units(units, strata) < MIN_UNITS:
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
            at_most = effective if units_are_patients else 1.0 / float(np.sum(w ** 2))
            effective = min(at_most, p * (1 - p) / variance)
    low, high = clopper_pearson(p * effective, effective, level)
    return (low * scale, high * scale), effective


def fewest_units(units: np.ndarray, strata: np.ndarray) -> int:
    """The fewest distinct units holding outcomes of one stratum (0 without outcomes)."""
    if len(units) == 0:
        return 0
    pairs = np.unique(np.stack([np.unique(units, return_inverse=True)[1].ravel(),
                                np.unique(strata, return_inverse=True)[1].ravel()]), axis=1)
    return int(np.bincount(pairs[1]).min())


def korn_graubard(hits: np.ndarray, patients: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The exact interval of a proportion over clustered images, at the effective sample size n / deff
    (korn_graubard_size)."""
    if len(hits) == 0:
        return float("nan"), float("nan")
    effective = korn_graubard_size(hits, patients)
    return clopper_pearson(float(hits.mean()) * effective, effective, level)


def korn_graubard_size(hits: np.ndarray, patients: np.ndarray) -> float:
    """The effective sample size n / deff of a proportion over clustered images (0 without images): the design
    effect deff compares the between-patient variance of the proportion (a ratio estimator's) with a binomial's,
    and is at least 1. At 0 or 1 successes the spread shows nothing: each patient counts once."""
    n = len(hits)
    if n == 0:
        return 0.0
    p = float(hits.mean())
    ids, index = np.unique(patients, return_inverse=True)
    if p in (0.0, 1.0) or len(ids) < 2:
        return float(len(ids))
    successes, sizes = np.bincount(index, weights=hits.astype(float)), np.bincount(index)
    variance = len(ids) / (len(ids) - 1) * float(np.sum((successes - p * sizes) ** 2)) / n ** 2
    return n / max(variance / (p * (1 - p) / n), 1.0)


def clopper_pearson(successes: float, trials: float, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval; fractional counts (an effective sample size) read through the beta quantiles."""
    if trials == 0:
        return float("nan"), float("nan")
    alpha = 1 - level
    low = beta.ppf(alpha / 2, successes, trials - successes + 1) if successes > 0 else 0.0
    high = beta.ppf(1 - alpha / 2, successes + 1, trials - successes) if successes < trials else 1.0
    return float(low), float(high)
