"""Classification metrics for binary, multiclass and multilabel tasks, plus bootstrap confidence intervals.

Point estimates come straight from scikit-learn. The bootstrap needs thousands of resamples, so it uses a
vectorised re-implementation over per-sample resample counts (a resample is just a weight vector: how often
each sample was drawn); a test checks that, with all weights 1, it reproduces the scikit-learn values.

Averages are macro (unweighted over classes): our data sets are small and imbalanced, and the minority class
(often the disease) matters as much as the majority one; micro/weighted averages would hide it.
"""
from __future__ import annotations

import functools
import re
import warnings
from dataclasses import dataclass
from typing import Callable, Literal, Sequence

import numpy as np
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from searchlab.errors import RegistryError

TaskKind = Literal["binary", "multiclass", "multilabel"]
KINDS: frozenset[str] = frozenset({"binary", "multiclass", "multilabel"})


@dataclass(frozen=True)
class MetricInfo:
    name: str
    direction: Literal["maximize", "minimize"]
    kinds: frozenset[str]          # task kinds where it is defined
    description: str


def _info(name: str, description: str, kinds: frozenset[str] = KINDS,
          direction: Literal["maximize", "minimize"] = "maximize") -> MetricInfo:
    return MetricInfo(name, direction, frozenset(kinds), description)


_BINARY = frozenset({"binary"})

# The scalar metrics an objective may name. Per-class F1 and AUC ("f1_class_<i>", "auc_class_<i>") are
# open-ended and handled by pattern.
METRICS: dict[str, MetricInfo] = {m.name: m for m in (
    _info("accuracy", "fraction of samples predicted correctly; multilabel: exact-match (subset) accuracy"),
    _info("balanced_accuracy", "mean recall over the classes present; multilabel: mean of (TPR+TNR)/2 over the "
          "labels both on and off in the split (one never or always on is left out, as from recall and AUC)"),
    _info("precision", "macro-averaged precision over the classes (labels) present in y_true or predicted (0 for "
          "a class present but never predicted)"),
    _info("recall", "macro-averaged recall over the classes (labels) present in y_true"),
    _info("f1", "macro-averaged F1 over the classes (labels) present in y_true or predicted"),
    _info("auc", "ROC AUC from the probabilities; multiclass: macro one-vs-rest; multilabel: macro over labels"),
    _info("sensitivity", "recall of the positive class (true positive rate)", _BINARY),
    _info("specificity", "recall of the negative class (true negative rate)", _BINARY),
    _info("average_precision", "area under the precision-recall curve of the positive class; multilabel: macro "
          "mean over labels (mAP, the chest X-ray benchmarks' metric)", frozenset({"binary", "multilabel"})),
    _info("hamming_loss", "fraction of wrong label assignments", frozenset({"multilabel"}), "minimize"),
)}

PER_CLASS = re.compile(r"(f1|auc|recall)_class_(\d+)")
_NOT_BINARY = frozenset({"multiclass", "multilabel"})   # binary has its one AUC only


def metric_info(name: str, kind: TaskKind | None = None, n_classes: int | None = None) -> MetricInfo:
    """Look up a metric by name; with `kind`, also check it is defined for that task kind, and with
    `n_classes` that a per-class metric's index names a class (label) the task has."""
    per_class = PER_CLASS.fullmatch(name)
    if per_class and per_class[1] == "f1":
        info = _info(name, f"F1 of class (multilabel: label) {per_class[2]}; undefined (nan) when it neither "
                           "occurs nor is predicted")
    elif per_class and per_class[1] == "recall":   # binary: sensitivity and specificity
        info = _info(name, f"recall (sensitivity) of class (multilabel: label) {per_class[2]}", _NOT_BINARY)
    elif per_class:
        info = _info(name, f"one-vs-rest ROC AUC of class (multilabel: label) {per_class[2]}", _NOT_BINARY)
    elif name in METRICS:
        info = METRICS[name]
    else:
        valid = ", ".join(sorted([*METRICS, "f1_class_<i>", "auc_class_<i>", "recall_class_<i>"]))
        raise RegistryError(f"unknown metric {name!r}; valid: {valid}")
    if kind is not None and kind not in info.kinds:
        raise RegistryError(f"metric {name!r} is defined only for {', '.join(sorted(info.kinds))} tasks, "
                            f"not {kind}")
    if per_class and n_classes is not None and int(per_class[2]) >= n_classes:
        raise RegistryError(f"metric {name!r} names class (label) {per_class[2]}, but the task has {n_classes}, "
                            f"numbered 0 to {n_classes - 1}")
    return info


def predictions(probs: np.ndarray, kind: TaskKind, threshold: float | Sequence[float] = 0.5) -> np.ndarray:
    """Hard labels from probabilities: argmax for multiclass, `probs >= threshold` otherwise."""
    p = np.asarray(probs)
    if kind == "multiclass":
        return p.argmax(axis=1)
    if kind in ("binary", "multilabel"):
        return (p >= threshold).astype(int)
    raise ValueError(f"unknown task kind {kind!r}; valid: {', '.join(sorted(KINDS))}")


def _check(y_true: np.ndarray, probs: np.ndarray, kind: TaskKind, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Validate shapes and label values; return (int labels, float64 probabilities)."""
    y, p = np.asarray(y_true), np.asarray(probs, dtype=np.float64)
    n = len(y)
    expected = {"binary": ((n,), (n,)), "multiclass": ((n,), (n, n_classes)),
                "multilabel": ((n, n_classes), (n, n_classes))}.get(kind)
    if expected is None:
        raise ValueError(f"unknown task kind {kind!r}; valid: {', '.join(sorted(KINDS))}")
    if n == 0 or (y.shape, p.shape) != expected or (kind == "binary" and n_classes != 2):
        raise ValueError(f"{kind} metrics with n_classes={n_classes} need y_true of shape {expected[0]} and probs "
                         f"of shape {expected[1]} (N > 0); got {y.shape} and {p.shape}")
    top = 2 if kind == "multilabel" else n_classes
    if not np.array_equal(y, np.round(y)) or y.min() < 0 or y.max() >= top:
        raise ValueError(f"y_true must hold integers in [0, {top}) for a {kind} task")
    return y.astype(np.int64), p


def _columns(y: np.ndarray, pred: np.ndarray, kind: TaskKind, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """0/1 truth and prediction matrices (N, C): one-hot per class, or the labels themselves for multilabel."""
    if kind == "multilabel":
        return y, pred
    eye = np.eye(n_classes, dtype=np.int64)
    return eye[y], eye[pred]


# ----------------------------------------------------------------------------------------- point estimates
def _auc(y: np.ndarray, p: np.ndarray, kind: TaskKind, n_classes: int) -> float:
    # AUC needs positives and negatives in every one-vs-rest column; say nan rather than guess or raise.
    truth = y[:, None] if kind == "binary" else _columns(y, y, kind, n_classes)[0]
    if not np.all((truth.min(axis=0) == 0) & (truth.max(axis=0) == 1)):
        return float("nan")
    if kind == "multiclass":
        return float(skm.roc_auc_score(y, p, multi_class="ovr", average="macro", labels=list(range(n_classes))))
    return float(skm.roc_auc_score(y, p, average="macro"))


def compute_metrics(y_true: np.ndarray, probs: np.ndarray, kind: TaskKind, n_classes: int,
                    threshold: float | Sequence[float] = 0.5) -> dict[str, float]:
    """All scalar metrics defined for `kind` (see METRICS), plus per-class F1 as f1_class_<i> and, for
    multi-class and multi-label tasks, each class's (label's) one-vs-rest AUC as auc_class_<i> and its recall
    (sensitivity) as recall_class_<i>.

    A class (label) with neither an image nor a prediction has no precision and no F1 (0 / 0: nothing to find
    and nothing claimed), as one without images has no recall: nan per class, and left out of the macro means.
    Counted as 0 (scikit-learn's zero_division=0), it capped a perfect model's macro F1 at 3/4 on a split
    without positives of one of 4 labels. A class predicted but absent keeps precision 0 and F1 0, and one
    present but never predicted precision 0 (a class left unpredicted must not raise the macro precision)."""
    y, p = _check(y_true, probs, kind, n_classes)
    pred = predictions(p, kind, threshold)
    labels = list(range(n_classes))
    with warnings.catch_warnings():
        # Undefined cases are decided explicitly below (0, or nan), so the warnings are noise.
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        warnings.filterwarnings("ignore", message="A single label was found")
        prec, rec, f1, support = skm.precision_recall_fscore_support(
            y, pred, labels=labels, average=None, zero_division=0)
        unseen = (support == 0) & (_columns(y, pred, kind, n_classes)[1].sum(axis=0) == 0)   # never on, never predicted
        prec, f1 = np.where(unseen, np.nan, prec), np.where(unseen, np.nan, f1)
        out = {"accuracy": skm.accuracy_score(y, pred),      # multilabel indicator input: subset accuracy
               # a class absent from y_true has no recall (not 0: one absent of three capped the mean at 2/3)
               "precision": _macro(prec), "recall": rec[support > 0].mean() if support.any() else float("nan"),
               "f1": _macro(f1),
               "auc": _auc(y, p, kind, n_classes)}
        if kind == "multilabel":
            out["balanced_accuracy"] = _labels_balanced_accuracy(y, pred)
            out["hamming_loss"] = skm.hamming_loss(y, pred)
            out["average_precision"] = _macro_ap(y, p)
        else:
            out["balanced_accuracy"] = skm.balanced_accuracy_score(y, pred)
        if kind == "binary":
            nan = float("nan")
            out["sensitivity"] = rec[1] if support[1] else nan
            out["specificity"] = rec[0] if support[0] else nan
            out["average_precision"] = skm.average_precision_score(y, p) if support[1] else nan
    out.update({f"f1_class_{i}": v for i, v in enumerate(f1)})
    if kind != "binary":   # a macro AUC of 0.70 can hide a useless label next to a good one
        out.update({f"auc_class_{j}": v for j, v in enumerate(_auc_per_column(y, p, kind, n_classes))})
        # each class's sensitivity (a rare carcinoma class missed shows here, not in the macro recall)
        out.update({f"recall_class_{i}": rec[i] if support[i] else float("nan") for i in labels})
    return {k: float(v) for k, v in out.items()}


def _macro(values: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the defined (non-nan) values; nan where none is."""
    defined = ~np.isnan(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(defined, values, 0.0).sum(axis=-1) / defined.sum(axis=-1)


def _labels_balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean over the labels both on and off in the split of (TPR + TNR) / 2; nan when no label is. A label never
    (or always) on has no TPR (TNR): scored by its TNR alone it counted 1.0 for a model that never flags it,
    raising a mean of 0.66 over the other three labels to 0.74, while recall, F1 and AUC left it out."""
    on, off = (y == 1).sum(axis=0), (y == 0).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = ((pred == 1) & (y == 1)).sum(axis=0) / on
        tnr = ((pred == 0) & (y == 0)).sum(axis=0) / off
    return float(_macro((tpr + tnr) / 2))     # nan + anything is nan: a label lacking a side is left out


def _macro_ap(y: np.ndarray, p: np.ndarray) -> float:
    """Mean over labels of each label's average precision; nan when a label has no positives (as AUC is)."""
    if not np.all(y.max(axis=0) == 1):
        return float("nan")
    return float(np.mean([skm.average_precision_score(y[:, j], p[:, j]) for j in range(y.shape[1])]))


def _auc_per_column(y: np.ndarray, p: np.ndarray, kind: TaskKind, n_classes: int) -> list[float]:
    """One-vs-rest ROC AUC of each class (each label, multi-label); nan where a column has one value only."""
    truth = _columns(y, y, kind, n_classes)[0]
    return [float(skm.roc_auc_score(truth[:, j], p[:, j])) if 0 < truth[:, j].sum() < len(truth) else float("nan")
            for j in range(n_classes)]


def confusion(y_true: np.ndarray, probs: np.ndarray, kind: TaskKind, n_classes: int,
              threshold: float | Sequence[float] = 0.5) -> list[list[int]]:
    """Confusion matrix (rows: true, columns: predicted); multilabel: [[tn, fp, fn, tp], ...] per label."""
    y, p = _check(y_true, probs, kind, n_classes)
    pred = predictions(p, kind, threshold)
    if kind == "multilabel":
        m = skm.multilabel_confusion_matrix(y, pred, labels=list(range(n_classes))).reshape(n_classes, 4)
    else:
        m = skm.confusion_matrix(y, pred, labels=list(range(n_classes)))
    return m.astype(int).tolist()


# --------------------------------------------------------------------------------------------- bootstrap
def _grouped(w: np.ndarray, truth: np.ndarray, score: np.ndarray, descending: bool) -> tuple[np.ndarray, np.ndarray]:
    """Weighted positive and negative counts (B, U) per distinct score, in score order (ties share a group)."""
    order = np.argsort(-score if descending else score, kind="stable")
    s = score[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ws, t = w[:, order], truth[order]
    return np.add.reduceat(ws * t, starts, axis=1), np.add.reduceat(ws * (1 - t), starts, axis=1)


def _weighted_auc(w: np.ndarray, truth: np.ndarray, score: np.ndarray) -> np.ndarray:
    # Mann-Whitney form: P(score_pos > score_neg) + P(tie) / 2; 0/0 -> nan when a class is missing.
    pos, neg = _grouped(w, truth, score, descending=False)
    neg_below = np.cumsum(neg, axis=1) - neg
    with np.errstate(divide="ignore", invalid="ignore"):
        return (pos * (neg_below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))


def _weighted_ap(w: np.ndarray, truth: np.ndarray, score: np.ndarray) -> np.ndarray:
    # sklearn's step-wise AP: sum over thresholds of (recall increase) * precision; nan without positives.
    pos, neg = _grouped(w, truth, score, descending=True)
    tp, fp = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=tp + fp > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (pos * precision).sum(axis=1) / pos.sum(axis=1)


def _resampled(w: np.ndarray, y: np.ndarray, p: np.ndarray, pred: np.ndarray, kind: TaskKind,
               n_classes: int) -> dict[str, Callable[[], np.ndarray]]:
    """Each metric for each row of the sample-weight matrix w (B, N), same definitions as compute_metrics.

    Values are returned as thunks so that only the metrics asked for are computed (the ranking ones cost most).
    """
    truth, hit = (m.astype(np.float64) for m in _columns(y, pred, kind, n_classes))
    n = w.sum(axis=1)
    tp, support, predicted = w @ (truth * hit), w @ truth, w @ hit
    fp, fn = predicted - tp, support - tp
    tn = n[:, None] - tp - fp - fn
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = tp / support                       # nan where a class is absent from the resample
        tnr = tn / (n[:, None] - support)
    # as compute_metrics: nan for a class neither in the resample nor predicted in it; precision 0 for one in it
    # but never predicted
    precision = np.divide(tp, predicted, out=np.where(support > 0, 0.0, np.nan), where=predicted > 0)
    f1 = np.divide(2 * tp, support + predicted, out=np.full_like(tp, np.nan), where=support + predicted > 0)
    out: dict[str, Callable[[], np.ndarray]] = {
        "precision": lambda: _macro(precision),
        "recall": lambda: _macro(tpr),      # classes present in the resample only
        "f1": lambda: _macro(f1),
        **{f"f1_class_{i}": (lambda i=i: f1[:, i]) for i in range(n_classes)},
    }
    if kind == "multilabel":
        exact = (y == pred).all(axis=1).astype(np.float64)
        out["accuracy"] = lambda: (w @ exact) / n
        # as compute_metrics: a label without positives (or negatives) in the resample is left out, nan if all are
        out["balanced_accuracy"] = lambda: _macro((tpr + tnr) / 2)
        out["hamming_loss"] = lambda: (fp + fn).sum(axis=1) / (n * n_classes)
        out["average_precision"] = lambda: np.mean([_weighted_ap(w, truth[:, k], p[:, k]) for k in range(n_classes)],
                                                   axis=0)
    else:
        out["accuracy"] = lambda: tp.sum(axis=1) / n
        out["balanced_accuracy"] = lambda: np.nanmean(tpr, axis=1)     # classes present in the resample only
    if kind != "binary":   # one-vs-rest per class (label), and their macro mean
        # once each: the macro AUC reads them all, and the export asks for each class's too
        per_class_auc = {f"auc_class_{k}": functools.cache(lambda k=k: _weighted_auc(w, truth[:, k], p[:, k]))
                         for k in range(n_classes)}
        out.update(per_class_auc)
        out.update({f"recall_class_{k}": (lambda k=k: tpr[:, k]) for k in range(n_classes)})
        out["auc"] = lambda: np.mean([auc() for auc in per_class_auc.values()], axis=0)
    else:
        y1 = y.astype(np.float64)
        out["auc"] = lambda: _weighted_auc(w, y1, p)
        out["average_precision"] = lambda: _weighted_ap(w, y1, p)
        out["sensitivity"] = lambda: tpr[:, 1]
        out["specificity"] = lambda: tpr[:, 0]
    return out


_CELLS_PER_CHUNK = 2_000_000     # bounds the (resamples x samples) weight matrix to ~16 MB per chunk


def bootstrap_ci(y_true: np.ndarray, probs: np.ndarray, kind: TaskKind, n_classes: int, names: Sequence[str],
                 n_resamples: int = 2000, seed: int = 0, threshold: float | Sequence[float] = 0.5,
                 level: float = 0.95, groups: Sequence[str] | None = None) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap CIs over samples, or over whole groups of them (`groups`: a patient per sample, so
    alike images of one patient count as the one observation they are); resamples where a metric is nan are
    skipped for that metric. So a metric resting on a class of one or two units gets an interval conditional on
    them, showing the other classes' spread only (one patient's class: 27% coverage of its AUC); the export
    withholds those (searchlab.intervals.MIN_UNITS)."""
    y, p = _check(y_true, probs, kind, n_classes)
    for name in names:
        metric_info(name, kind, n_classes)
    if not 0 < level < 1 or n_resamples < 1:
        raise ValueError(f"need 0 < level < 1 and n_resamples >= 1; got level={level}, n_resamples={n_resamples}")
    pred = predictions(p, kind, threshold)
    rng = np.random.default_rng(seed)
    n = len(y)
    # Units drawn with replacement: samples, or groups (each sample then weighs as often as its group is drawn)
    unit_of = np.arange(n) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    units = int(unit_of.max()) + 1 if n else 0
    chunk = max(1, _CELLS_PER_CHUNK // max(n, units))
    values: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for start in range(0, n_resamples, chunk):
        b = min(chunk, n_resamples - start)
        idx = rng.integers(0, units, size=(b, units))
        # Turn drawn indices into per-unit counts: row r says how often each unit is in resample r.
        drawn = np.bincount((idx + units * np.arange(b)[:, None]).ravel(), minlength=b * units).reshape(b, units)
        w = drawn[:, unit_of].astype(np.float64)
        metrics = _resampled(w, y, p, pred, kind, n_classes)
        for name in names:
            values[name].append(metrics[name]())
    alpha = (1 - level) / 2
    out: dict[str, tuple[float, float]] = {}
    for name in names:
        v = np.concatenate(values[name])
        v = v[~np.isnan(v)]
        lo, hi = np.quantile(v, [alpha, 1 - alpha]) if v.size else (np.nan, np.nan)
        out[name] = (float(lo), float(hi))
    return out
