"""Imbalance handling, checked against hand computations, torch's own losses and scikit-learn, never itself."""
from __future__ import annotations

import math

import numpy as np
import pydantic
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_curve
from torch import nn

from searchlab.imbalance import (ImbalanceSpec, apply_threshold, choose_threshold, class_weights, epoch_order,
                                 make_loss)
from searchlab.metrics import predictions

LOGITS = torch.tensor([[2.0, -1.0, 0.5], [0.1, 0.3, -0.2], [-1.5, 2.5, 1.0], [0.0, 0.0, 3.0]], dtype=torch.float64)
HARD = torch.tensor([0, 2, 1, 2])
SOFT = torch.tensor([[0.7, 0.3, 0.0], [0.0, 0.4, 0.6], [0.2, 0.8, 0.0], [0.5, 0.0, 0.5]], dtype=torch.float64)
FOCAL_PLAIN = ImbalanceSpec(loss="focal", focal_gamma=0.0, focal_alpha="none")


# ---------------------------------------------------------------------------------------------- spec
def test_spec_defaults_and_validation() -> None:
    spec = ImbalanceSpec()
    assert (spec.loss, spec.focal_gamma, spec.focal_alpha, spec.class_weight_power, spec.sampler, spec.threshold) == \
        ("ce", 2.0, "balanced", 1.0, "shuffle", "fixed")
    for bad in ({"focal_gamma": 5.5}, {"class_weight_power": -0.1}, {"sampler": "oversample"}, {"gama": 1.0}):
        with pytest.raises(pydantic.ValidationError):
            ImbalanceSpec(**bad)


# ---------------------------------------------------------------------------------------------- weights
def test_class_weights_one_to_three_by_hand() -> None:
    y = torch.tensor([0, 1, 1, 1])
    # N / (K * count) = 4/2 = 2 and 4/6 = 2/3; mean 4/3, so normalised [1.5, 0.5].
    assert class_weights(y, "binary", 2).tolist() == pytest.approx([1.5, 0.5])
    # power 1/2: proportional to [sqrt(3), 1] with mean 1 -> [2 sqrt(3), 2] / (1 + sqrt(3)).
    r3 = math.sqrt(3)
    assert class_weights(y, "binary", 2, power=0.5).tolist() == pytest.approx([2 * r3 / (1 + r3), 2 / (1 + r3)])
    assert class_weights(y, "binary", 2, power=0.0).tolist() == [1.0, 1.0]


def test_class_weights_zero_count_class_is_finite() -> None:
    # counts [1, 3, 0]: raw 4/3, 4/9 and the largest present (4/3) for the empty class; mean 28/27.
    w = class_weights(torch.tensor([0, 1, 1, 1]), "multiclass", 3)
    assert torch.isfinite(w).all()
    assert w.tolist() == pytest.approx([9 / 7, 3 / 7, 9 / 7])
    assert class_weights(torch.tensor([0, 1, 1, 1]), "multiclass", 3, power=0.0).tolist() == [1.0, 1.0, 1.0]


def test_multilabel_positive_weights_by_hand() -> None:
    # label 0: 1 positive, 3 negatives -> 3; label 1: 2/2 -> 1; label 2 never positive -> largest (3);
    # label 3 always positive -> 1.
    y = torch.tensor([[1, 0, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1], [0, 0, 0, 1]], dtype=torch.float32)
    assert class_weights(y, "multilabel", 4).tolist() == pytest.approx([3.0, 1.0, 3.0, 1.0])
    assert class_weights(y, "multilabel", 4, power=0.5).tolist() == pytest.approx([math.sqrt(3), 1, math.sqrt(3), 1])


# ---------------------------------------------------------------------------------------------- single-label losses
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_focal_gamma0_alpha_none_equals_cross_entropy(smoothing: float) -> None:
    focal = make_loss(FOCAL_PLAIN, "multiclass", 3, HARD, label_smoothing=smoothing)
    torch_ce = nn.CrossEntropyLoss(label_smoothing=smoothing)
    for targets in (HARD, SOFT):
        assert focal(LOGITS, targets).item() == pytest.approx(torch_ce(LOGITS, targets).item(), abs=1e-6)
    ce = make_loss(ImbalanceSpec(loss="ce"), "multiclass", 3, HARD, label_smoothing=smoothing)
    assert ce(LOGITS, SOFT).item() == pytest.approx(torch_ce(LOGITS, SOFT).item(), abs=1e-12)


def test_focal_matches_formula_and_down_weights_easy_examples() -> None:
    logits = torch.tensor([[4.0, 0.0], [0.3, 0.0]], dtype=torch.float64)     # sample 0 easy, sample 1 hard
    target = torch.tensor([0, 0])
    p = torch.softmax(logits, dim=1)[:, 0].numpy()
    previous, ratios = None, []
    for gamma in (0.0, 1.0, 2.0, 5.0):
        loss = make_loss(ImbalanceSpec(loss="focal", focal_gamma=gamma, focal_alpha="none"), "binary", 2, target)
        easy = loss(logits[:1], target[:1]).item()
        assert easy == pytest.approx(-(1 - p[0]) ** gamma * math.log(p[0]), rel=1e-9)    # Lin et al. by hand
        assert previous is None or easy < previous
        previous = easy
        ratios.append(easy / loss(logits[1:], target[1:]).item())
    assert ratios == sorted(ratios, reverse=True) and ratios[-1] < ratios[0] / 100   # easy shrinks faster


def test_weighted_ce_by_hand_on_three_samples() -> None:
    logits = LOGITS[:3, :2]
    y = torch.tensor([0, 1, 1])
    spec = ImbalanceSpec(loss="weighted_ce")
    loss = make_loss(spec, "binary", 2, torch.tensor([0, 1, 1, 1]))     # weights [1.5, 0.5], see above
    x = logits.numpy()
    logp = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    hand = np.mean([1.5 * -logp[0, 0], 0.5 * -logp[1, 1], 0.5 * -logp[2, 1]])     # mean over N, not over weights
    assert loss(logits, y).item() == pytest.approx(hand, rel=1e-12)
    one_hot = torch.nn.functional.one_hot(y, 2).double()
    assert loss(logits, one_hot).item() == pytest.approx(hand, rel=1e-12)       # hard == its one-hot soft form
    # focal with gamma 0 and balanced alpha is the same loss
    focal = make_loss(ImbalanceSpec(loss="focal", focal_gamma=0.0), "binary", 2, torch.tensor([0, 1, 1, 1]))
    assert focal(logits, y).item() == pytest.approx(hand, rel=1e-12)


@pytest.mark.parametrize("spec", [ImbalanceSpec(loss="ce"), ImbalanceSpec(loss="weighted_ce"),
                                  ImbalanceSpec(loss="focal", focal_gamma=2.0)])
def test_soft_targets_are_linear_in_the_hard_ones(spec: ImbalanceSpec) -> None:
    a, b, lam = HARD, torch.tensor([1, 0, 2, 0]), 0.3
    mixed = lam * nn.functional.one_hot(a, 3).double() + (1 - lam) * nn.functional.one_hot(b, 3).double()
    loss = make_loss(spec, "multiclass", 3, torch.tensor([0, 0, 0, 0, 0, 1, 1, 2]), label_smoothing=0.1)
    expected = lam * loss(LOGITS, a) + (1 - lam) * loss(LOGITS, b)
    assert loss(LOGITS, mixed).item() == pytest.approx(expected.item(), abs=1e-12)
    assert loss(LOGITS, mixed.float()).dtype == LOGITS.dtype     # float32 mixup targets with float64 logits


def test_focal_gradient_finite_when_saturated() -> None:
    logits = torch.tensor([[60.0, -60.0], [0.0, 1.0]], requires_grad=True)
    loss = make_loss(ImbalanceSpec(loss="focal", focal_gamma=0.5), "binary", 2, torch.tensor([0, 1]))
    loss(logits, torch.tensor([0, 1])).backward()
    assert torch.isfinite(logits.grad).all()


# ---------------------------------------------------------------------------------------------- multilabel losses
def test_multilabel_losses_match_torch_bce() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 3, generator=g, dtype=torch.float64) * 2
    y = torch.tensor([[1, 0, 0], [0, 0, 1], [0, 1, 0], [0, 0, 1], [0, 1, 1], [0, 0, 0]], dtype=torch.float64)
    pos_weight = torch.tensor([5.0, 2.0, 1.0], dtype=torch.float64)      # neg/pos by hand: 5/1, 4/2, 3/3
    weighted = nn.BCEWithLogitsLoss(pos_weight=pos_weight)(logits, y).item()
    plain = nn.BCEWithLogitsLoss()(logits, y).item()
    assert make_loss(ImbalanceSpec(loss="weighted_ce"), "multilabel", 3, y)(logits, y).item() == \
        pytest.approx(weighted, abs=1e-12)
    assert make_loss(ImbalanceSpec(loss="ce"), "multilabel", 3, y)(logits, y).item() == pytest.approx(plain, abs=1e-12)
    assert make_loss(FOCAL_PLAIN, "multilabel", 3, y)(logits, y).item() == pytest.approx(plain, abs=1e-6)
    focal_balanced = make_loss(ImbalanceSpec(loss="focal", focal_gamma=0.0), "multilabel", 3, y)
    assert focal_balanced(logits, y).item() == pytest.approx(weighted, abs=1e-6)
    # gamma 2 by hand, p = sigmoid(x): a positive label costs -(1 - p)^2 log p, a negative one -p^2 log(1 - p)
    focal2 = make_loss(ImbalanceSpec(loss="focal", focal_gamma=2.0, focal_alpha="none"), "multilabel", 2, y[:, :2])
    p = 1 / (1 + np.exp(-logits[0, :2].numpy()))
    hand = (-(1 - p[0]) ** 2 * math.log(p[0]) - p[1] ** 2 * math.log(1 - p[1])) / 2
    assert focal2(logits[:1, :2], y[:1, :2]).item() == pytest.approx(hand, rel=1e-9)


# ---------------------------------------------------------------------------------------------- sampler
def test_balanced_sampler_draws_minority_half_the_time() -> None:
    labels = torch.tensor([1] * 10 + [0] * 90)
    gen = torch.Generator().manual_seed(0)
    draws = torch.cat([epoch_order(ImbalanceSpec(sampler="balanced"), labels, "binary", gen) for _ in range(200)])
    assert draws.shape == (200 * 100,) and int(draws.min()) >= 0 and int(draws.max()) < 100
    assert abs((labels[draws] == 1).float().mean().item() - 0.5) < 0.03


def test_shuffle_is_a_permutation() -> None:
    labels = torch.tensor([1] * 10 + [0] * 90)
    order = epoch_order(ImbalanceSpec(), labels, "binary", torch.Generator().manual_seed(1))
    assert sorted(order.tolist()) == list(range(100)) and order.tolist() != list(range(100))


@pytest.mark.parametrize("spec", [ImbalanceSpec(loss="ce"), ImbalanceSpec(loss="weighted_ce"), FOCAL_PLAIN])
def test_multilabel_label_smoothing_smooths_each_labels_targets_toward_one_half(spec: ImbalanceSpec) -> None:
    """As Keras' binary cross-entropy: targets y (1 - s) + s / 2 (the loss ignored label_smoothing, silently)."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 3, generator=g, dtype=torch.float64)
    y = torch.tensor([[1, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 1], [0, 0, 0]], dtype=torch.float64)
    smoothed = make_loss(spec, "multilabel", 3, y, label_smoothing=0.2)(logits, y).item()
    assert smoothed == pytest.approx(make_loss(spec, "multilabel", 3, y)(logits, y * 0.8 + 0.1).item(), abs=1e-12)
    assert smoothed != pytest.approx(make_loss(spec, "multilabel", 3, y)(logits, y).item(), abs=1e-3)


def test_multilabel_balanced_sampler_groups_equally() -> None:
    # 10 samples with label 0 only, 60 with label 1 only, 30 with none: each group ~1/3 of draws.
    labels = torch.zeros(100, 2)
    labels[:10, 0], labels[10:70, 1] = 1, 1
    gen = torch.Generator().manual_seed(0)
    draws = torch.cat([epoch_order(ImbalanceSpec(sampler="balanced"), labels, "multilabel", gen) for _ in range(200)])
    for group in (draws < 10, (draws >= 10) & (draws < 70), draws >= 70):
        assert abs(group.float().mean().item() - 1 / 3) < 0.03


def test_multilabel_balanced_sampler_shows_a_rare_co_occurring_label_as_often_as_common_ones() -> None:
    """Labels drawn on at 50%, 30%, 20% and 5% of 300 images, independently, so the rare label mostly sits beside
    common ones. Weighting an image by the mean of 1 / count over its labels diluted it: the rare label was on
    in 0.18 of the draws, the commonest in 0.35. Each label, and the images with none, should be on in about the
    same share of the draws (0.29 each here)."""
    rng = np.random.default_rng(0)
    labels = torch.tensor(rng.random((300, 4)) < [0.5, 0.3, 0.2, 0.05], dtype=torch.float32)
    assert labels[:, 3].sum() == 12 and (labels[labels[:, 3] == 1, :3].sum(dim=1) > 0).sum() == 7   # of 12
    gen = torch.Generator().manual_seed(0)
    draws = torch.cat([epoch_order(ImbalanceSpec(sampler="balanced"), labels, "multilabel", gen) for _ in range(100)])
    picked = labels[draws]
    exposure = torch.cat([picked.mean(dim=0), (picked.sum(dim=1) == 0).float().mean()[None]])   # + "none"
    assert exposure.min() / exposure.max() > 0.9, exposure.tolist()
    assert abs(exposure[3] - exposure[:3].mean()) < 0.03, exposure.tolist()


# ---------------------------------------------------------------------------------------------- thresholds
def _separable() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(20, int), np.zeros(80, int)]
    p = np.r_[rng.uniform(0.2, 0.3, 20), rng.uniform(0.05, 0.15, 80)]
    return y, p


@pytest.mark.parametrize("criterion", ["youden", "f1", "balanced_accuracy", "accuracy"])
def test_threshold_separates_known_separable_set(criterion: str) -> None:
    y, p = _separable()
    t = choose_threshold(ImbalanceSpec(threshold=criterion), "binary", y, p)
    assert isinstance(t, float) and p[y == 0].max() < t <= p[y == 1].min()
    assert (apply_threshold(p, "binary", t) == y).all()
    fpr, tpr, _ = roc_curve(y, p)                         # independent: sklearn agrees a perfect split exists
    assert (tpr - fpr).max() == 1.0


@pytest.mark.parametrize("criterion,metric", [("youden", balanced_accuracy_score),
                                              ("balanced_accuracy", balanced_accuracy_score), ("f1", f1_score),
                                              ("accuracy", accuracy_score)])
def test_threshold_attains_best_possible_on_noisy_scores(criterion: str, metric) -> None:
    rng = np.random.default_rng(3)
    y = (rng.uniform(size=200) < 0.2).astype(int)
    p = np.clip(0.3 * y + rng.normal(0.3, 0.15, 200), 0, 1)
    t = choose_threshold(ImbalanceSpec(threshold=criterion), "binary", y, p)
    best = max(metric(y, (p >= s).astype(int)) for s in np.r_[np.unique(p), 1.1])   # every distinct split
    assert metric(y, apply_threshold(p, "binary", t)) == pytest.approx(best, abs=1e-12)


def test_accuracy_threshold_may_call_everything_negative() -> None:
    y, p = np.array([0, 0, 0, 0, 1]), np.array([0.2, 0.9, 0.8, 0.7, 0.3])   # a score worse than useless
    t = choose_threshold(ImbalanceSpec(threshold="accuracy"), "binary", y, p)
    assert (apply_threshold(p, "binary", t) == 0).all() and accuracy_score(y, p >= t) == 0.8


def test_threshold_ties_go_to_closest_to_half() -> None:
    y_wide, p_wide = np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.6, 0.7])    # any t in (0.2, 0.6] separates
    assert choose_threshold(ImbalanceSpec(threshold="youden"), "binary", y_wide, p_wide) == 0.5
    # Youden 1/2 in (0.1, 0.3] (midpoint 0.2) and in (0.8, 0.9] (midpoint 0.85); 0.2 is nearer 0.5.
    y, p = np.array([0, 1, 0, 1]), np.array([0.1, 0.3, 0.8, 0.9])
    assert choose_threshold(ImbalanceSpec(threshold="youden"), "binary", y, p) == pytest.approx(0.2)


def test_degenerate_fixed_and_multiclass_thresholds() -> None:
    p = np.array([0.1, 0.4, 0.9])
    for criterion in ("youden", "f1", "balanced_accuracy", "accuracy"):
        for y in (np.zeros(3, int), np.ones(3, int)):
            assert choose_threshold(ImbalanceSpec(threshold=criterion), "binary", y, p) == 0.5
    assert choose_threshold(ImbalanceSpec(), "binary", np.array([0, 1, 1]), p) == 0.5
    probs = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    assert choose_threshold(ImbalanceSpec(threshold="f1"), "multiclass", np.array([1, 0]), probs) is None
    assert apply_threshold(probs, "multiclass", 0.5).tolist() == [1, 0]


def test_multilabel_thresholds_per_label() -> None:
    y_sep, p_sep = _separable()
    y = np.stack([y_sep, np.zeros(100, int), 1 - y_sep], axis=1)        # label 1 has no positives
    p = np.stack([p_sep, p_sep, 1 - p_sep], axis=1)
    t = choose_threshold(ImbalanceSpec(threshold="youden"), "multilabel", y, p)
    assert isinstance(t, list) and len(t) == 3
    for j in (0, 2):                                                     # each separates its own label
        assert p[y[:, j] == 0, j].max() < t[j] <= p[y[:, j] == 1, j].min()
    assert t[1] == 0.5
    pred = apply_threshold(p, "multilabel", t)
    assert pred.shape == (100, 3) and pred.dtype.kind == "i"
    assert (pred[:, 0] == y[:, 0]).all() and (pred[:, 2] == y[:, 2]).all()
    assert (pred[:, 1] == (p[:, 1] >= 0.5)).all()
    assert choose_threshold(ImbalanceSpec(), "multilabel", y, p) == [0.5, 0.5, 0.5]


def test_apply_threshold_agrees_with_metrics_predictions() -> None:
    y, p = _separable()
    for t in (0.5, 0.175, 0.0):
        assert (apply_threshold(p, "binary", t) == predictions(p, "binary", t)).all()
    with pytest.raises(ValueError):
        apply_threshold(np.zeros((4, 3)), "multilabel", [0.5, 0.5])
