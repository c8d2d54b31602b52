"""Class-imbalance handling: reweighted and focal losses, a class-balanced sampler, tuned decision thresholds.

Task kinds as everywhere else: "binary" (2 logits; probabilities passed around as P(class 1), shape (N,)),
"multiclass" (K logits, softmax (N, K)), "multilabel" (L logits, sigmoid (N, L), labels float 0/1 (N, L)).

Every loss is written as a sum over the *target distribution* and averaged over the batch (divided by N), so
hard targets and soft ones (mixup/cutmix) give the same value for the same distribution, and a batch's loss
does not depend on which rare samples it happens to contain. (torch's weighted CrossEntropyLoss divides hard
targets by the sum of their weights instead; we do not, for exactly those two reasons.)

Reweighting the loss and the balanced sampler both correct for imbalance; using both corrects twice.
"""
from __future__ import annotations

from typing import Annotated, Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from searchlab.config.schema import Frozen

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Threshold = float | list[float] | None   # None: multi-class data, whose prediction is the argmax
KINDS = ("binary", "multiclass", "multilabel")
_FLOOR = 1e-12    # keeps (1 - p) ** gamma differentiable at p == 1 (0 ** gamma has an infinite slope for gamma < 1)
_TIE = 1e-12      # criterion values closer than this are ties (equal rationals may differ in the last bit)


class ImbalanceSpec(Frozen):
    loss: Literal["ce", "weighted_ce", "focal"] = "ce"         # plain CE keeps probabilities calibrated; opt in
    focal_gamma: Annotated[float, Field(ge=0, le=5)] = 2.0     # Lin et al. 2017's best value; 0 = (weighted) CE
    focal_alpha: Literal["none", "balanced"] = "balanced"      # balanced: class_weights(), as for weighted_ce
    class_weight_power: Annotated[float, Field(ge=0, le=1)] = 1.0   # 1: inverse frequency (sklearn "balanced");
    #                                                                 0.5: sqrt smoothing; 0: no reweighting
    sampler: Literal["shuffle", "balanced"] = "shuffle"        # shuffle shows each image once per epoch;
    #                                               oversampling repeats the few rare images and can overfit them
    threshold: Literal["fixed", "youden", "f1", "balanced_accuracy", "accuracy"] = "fixed"   # 0.5 unless asked:
    #           a threshold tuned on a small validation set overfits it (the same set also picks the epoch)


# ------------------------------------------------------------------------------------------------- weights
def class_weights(labels: torch.Tensor, kind: str, n_classes: int, power: float = 1.0) -> torch.Tensor:
    """Loss weights from the training labels (float32).

    Single-label: per class (n_classes,), (N / (K * count_c)) ** power, normalised to mean 1 over classes so the
    loss keeps its usual scale. A class absent from the labels gets the largest weight of the present ones (not
    inf; it only matters for soft targets). Multilabel: per-label positive weights (L,) = (neg / pos) ** power
    for BCEWithLogits(pos_weight=...); a label never positive gets the largest finite weight, a label never
    negative gets 1 (nothing to balance against).
    """
    _check_kind(kind)
    if kind == "multilabel":
        return _positive_weights(labels, power)
    y = labels.reshape(-1).long()
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}); got {int(y.min())}..{int(y.max())}")
    counts = torch.bincount(y, minlength=n_classes).double()
    present = counts > 0
    if not present.any():
        return torch.ones(n_classes)
    w = torch.empty(n_classes, dtype=torch.float64)
    w[present] = (y.numel() / (n_classes * counts[present])) ** power
    w[~present] = w[present].max()
    return (w / w.mean()).float()


def _positive_weights(labels: torch.Tensor, power: float) -> torch.Tensor:
    y = labels.double()
    pos = y.sum(dim=0)
    neg = y.shape[0] - pos
    both = (pos > 0) & (neg > 0)
    w = torch.ones_like(pos)
    w[both] = (neg[both] / pos[both]) ** power
    w[pos == 0] = w[both].max() if both.any() else 1.0
    return w.float()


# ---------------------------------------------------------------------------------------------------- losses
def make_loss(spec: ImbalanceSpec, kind: str, n_classes: int, train_labels: torch.Tensor,
              label_smoothing: float = 0.0) -> Loss:
    """loss(logits, targets) -> scalar mean over the batch; targets hard (int64 (N,) / float (N, L)) or soft.

    label_smoothing s mixes the targets with the uniform distribution: over the classes (as torch's
    cross_entropy), or per label over on/off, multi-label (y (1 - s) + s / 2, as Keras' binary cross-entropy).
    """
    _check_kind(kind)
    weights = None
    if spec.loss == "weighted_ce" or (spec.loss == "focal" and spec.focal_alpha == "balanced"):
        weights = class_weights(train_labels, kind, n_classes, spec.class_weight_power)
    gamma = spec.focal_gamma if spec.loss == "focal" else 0.0
    if kind == "multilabel":
        return _sigmoid_loss(gamma, weights, label_smoothing)
    if spec.loss == "ce":
        return lambda logits, targets: F.cross_entropy(logits, _soft_dtype(targets, logits),
                                                       label_smoothing=label_smoothing)
    return _softmax_loss(gamma, weights, n_classes, label_smoothing)


def _soft_dtype(targets: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    # float64 mixup targets with float32 logits would be rejected by cross_entropy; class indices stay as they are.
    return targets.to(logits.dtype) if targets.is_floating_point() else targets


def _target_distribution(targets: torch.Tensor, n_classes: int, smoothing: float, like: torch.Tensor) -> torch.Tensor:
    """(N, K) target probabilities, smoothed exactly as torch's cross_entropy smooths them."""
    q = F.one_hot(targets.long(), n_classes) if targets.dim() == 1 else targets
    return q.to(like) * (1 - smoothing) + smoothing / n_classes


def _softmax_loss(gamma: float, alpha: torch.Tensor | None, n_classes: int, smoothing: float) -> Loss:
    """-sum_c alpha_c (1 - p_c)^gamma q_c log p_c, mean over the batch (focal; gamma 0 = weighted CE)."""

    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits, dim=1)
        q = _target_distribution(targets, n_classes, smoothing, logp)
        per_class = -q * logp
        if gamma:
            per_class = per_class * (-torch.expm1(logp)).clamp_min(_FLOOR) ** gamma   # expm1: exact 1 - p near 1
        if alpha is not None:
            per_class = per_class * alpha.to(logp)
        return per_class.sum(dim=1).mean()

    return loss


def _sigmoid_loss(gamma: float, pos_weight: torch.Tensor | None, smoothing: float = 0.0) -> Loss:
    """Per-label sigmoid focal loss, mean over N * L like BCEWithLogitsLoss.

    -[w y (1 - p)^gamma log p + (1 - y) p^gamma log(1 - p)] with w the positive weight: gamma 0 is exactly
    BCEWithLogits(pos_weight=w). (Lin et al.'s alpha / 1 - alpha pair is the same idea written as a ratio.)
    """

    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        y = targets.to(logits.dtype) * (1 - smoothing) + smoothing / 2
        on = y * F.logsigmoid(logits)
        off = (1 - y) * F.logsigmoid(-logits)        # log(1 - p) without cancellation
        if gamma:
            on = on * torch.sigmoid(-logits).clamp_min(_FLOOR) ** gamma
            off = off * torch.sigmoid(logits).clamp_min(_FLOOR) ** gamma
        if pos_weight is not None:
            on = on * pos_weight.to(logits)
        return -(on + off).mean()

    return loss


# ---------------------------------------------------------------------------------------------------- sampler
def epoch_order(spec: ImbalanceSpec, labels: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Sample indices for one epoch, length N.

    shuffle: a permutation (the same call the training loop always made, so results do not move). balanced:
    N draws with replacement, sample weight 1 / count(its class), so every class present is drawn equally often.
    Multilabel: weights under which each label, and the samples with no positive label ("no finding", often the
    majority), is on in about the same share of the draws; see _multilabel_sample_weights.
    """
    _check_kind(kind)
    n = int(labels.shape[0])
    if spec.sampler == "shuffle" or n == 0:
        return torch.randperm(n, generator=generator)
    weights = _multilabel_sample_weights(labels) if kind == "multilabel" else _class_sample_weights(labels)
    return torch.multinomial(weights, n, replacement=True, generator=generator)


def _class_sample_weights(labels: torch.Tensor) -> torch.Tensor:
    y = labels.reshape(-1).long()
    return 1.0 / torch.bincount(y).double()[y]


_RAKING_ROUNDS = 20     # within 1% took 5-10 rounds where equal exposure is possible; a bound where it is not
_RAKING_TOLERANCE = 0.01


def _multilabel_sample_weights(labels: torch.Tensor) -> torch.Tensor:
    """Sampling weights (N,) under which every label is on in about the same share of the draws.

    Groups: each label that is on in some training images but not all (a label never on has nothing to show,
    one always on is seen in every draw whatever the weights), plus the images with none of those on. Start:
    an image's weight is the max over its groups of 1 / (images in the group). The mean of 1 / count (the old
    rule) diluted a rare label that co-occurs with common ones: its images were drawn like common ones, and it
    stayed at half their share. Then, as iterative proportional fitting (raking) does: each round measures
    every group's exposure (the summed weight of the images in it), and multiplies each image's weight by the
    geometric mean, over its groups, of (mean exposure / the group's exposure), until every group's exposure is
    within 1% of the mean, or 20 rounds. Deterministic. A label seen only beside another cannot reach more
    exposure than that one has: there the rounds stop at 20, near but not at equal.
    """
    y = (labels > 0.5).double().reshape(len(labels), -1)
    counts = y.sum(dim=0)
    informative = (counts > 0) & (counts < y.shape[0])
    on = y[:, informative]
    none = (on.sum(dim=1) == 0).double()
    groups = torch.cat([on, none[:, None]], dim=1)
    groups = groups[:, groups.sum(dim=0) > 0]                # every image is in at least one group
    per_image = groups.sum(dim=1)
    w = (groups / groups.sum(dim=0)).max(dim=1).values
    for _ in range(_RAKING_ROUNDS):
        exposure = groups.T @ w
        if (exposure - exposure.mean()).abs().max() <= _RAKING_TOLERANCE * exposure.mean():
            break
        w = w * torch.exp((groups @ torch.log(exposure.mean() / exposure)) / per_image)
        w = w / w.sum()
    return w


# ------------------------------------------------------------------------------------------------ thresholds
def choose_threshold(spec: ImbalanceSpec, kind: str, y_val: np.ndarray, probs_val: np.ndarray) -> Threshold:
    """Decision threshold picked on validation data: a float (binary) or one per label (multilabel).

    Multiclass has none (None): the prediction is the argmax, and per-class one-vs-rest thresholds could
    predict no class or several. "fixed" is 0.5. Otherwise the criterion (youden = TPR - FPR,
    balanced_accuracy = (TPR + TNR) / 2 -- the same argmax, as it equals (1 + youden) / 2 -- or F1 of the
    positive class) is maximised over candidate thresholds; see _best_threshold. A validation set (or label)
    with one class only gives 0.5.
    """
    _check_kind(kind)
    if kind == "multiclass":
        return None
    y, p = np.asarray(y_val), np.asarray(probs_val, dtype=np.float64)
    if y.ndim != (2 if kind == "multilabel" else 1) or p.shape != y.shape:
        raise ValueError(f"{kind} thresholds need y_val and probs_val of one shape, (N,) for binary and (N, L) "
                         f"for multilabel; got {y.shape} and {p.shape}")
    if spec.threshold != "fixed" and not np.isfinite(p).all():
        raise ValueError("probs_val holds nan or inf; cannot choose a threshold on it")
    if kind == "binary":
        return 0.5 if spec.threshold == "fixed" else _best_threshold(y, p, spec.threshold)
    if spec.threshold == "fixed":
        return [0.5] * y.shape[1]
    return [_best_threshold(y[:, j], p[:, j], spec.threshold) for j in range(y.shape[1])]


def _best_threshold(y: np.ndarray, p: np.ndarray, criterion: str) -> float:
    """Best candidate threshold for `p >= t` predictions; ties go to the candidate closest to 0.5.

    Predictions only change at the distinct scores, so one candidate per gap suffices: the midpoint between
    consecutive distinct scores (as far as possible from the validation samples on both sides, so small score
    shifts on new data do not flip them). Plus 0.5, so the default is kept whenever it is as good as the best,
    and 0.0 (everything positive; F1's optimum for an uninformative score). "Everything negative" is never
    strictly best under youden, balanced accuracy or F1, so only accuracy gets it (a threshold just above
    the highest score). Equidistant ties: the lower threshold.
    """
    truth = y > 0.5
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    u = np.unique(p)
    candidates = np.unique(np.r_[0.0, (u[:-1] + u[1:]) / 2, 0.5])
    if criterion == "accuracy":   # on a skewed set, calling everything negative can be the most accurate
        candidates = np.r_[candidates, np.nextafter(u[-1], np.inf)]
    tp = n_pos - np.searchsorted(np.sort(p[truth]), candidates, side="left")   # positives with p >= t
    fp = n_neg - np.searchsorted(np.sort(p[~truth]), candidates, side="left")
    tpr, fpr = tp / n_pos, fp / n_neg
    if criterion == "youden":
        score = tpr - fpr
    elif criterion == "balanced_accuracy":
        score = (tpr + 1 - fpr) / 2
    elif criterion == "f1":
        score = 2 * tp / (2 * tp + fp + (n_pos - tp))       # n_pos > 0, so never 0 / 0
    elif criterion == "accuracy":
        score = (tp + n_neg - fp) / (n_pos + n_neg)
    else:
        raise ValueError(f"unknown threshold criterion {criterion!r}; valid: youden, f1, balanced_accuracy, accuracy")
    best = candidates[score >= score.max() - _TIE]
    return float(best[np.argmin(np.abs(best - 0.5))])


def apply_threshold(probs: np.ndarray, kind: str, threshold: Threshold) -> np.ndarray:
    """Hard predictions: binary int (N,) p >= t; multilabel int (N, L) per-label t; multiclass argmax."""
    _check_kind(kind)
    p = np.asarray(probs)
    if kind == "multiclass":
        return p.argmax(axis=1)
    t = np.asarray(threshold, dtype=np.float64)
    if kind == "multilabel" and t.ndim == 1 and (p.ndim != 2 or t.shape[0] != p.shape[1]):
        raise ValueError(f"need one threshold per label ({p.shape[-1]}); got {t.shape[0]}")
    if kind == "binary" and t.ndim != 0:
        raise ValueError("binary tasks take one threshold")
    return (p >= t).astype(int)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown task kind {kind!r}; valid: {', '.join(KINDS)}")
