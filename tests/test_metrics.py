"""Metrics are checked against hand-computed values and scikit-learn, never against themselves."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from searchlab.errors import RegistryError
from searchlab.metrics import (METRICS, MetricInfo, _resampled, bootstrap_ci, compute_metrics, confusion,
                               metric_info, predictions)

# 10-sample binary case. At threshold 0.5 the predictions are [1,1,1,0,1,1,0,0,0,0]:
#   TP = 3 (samples 0,1,2), FN = 1 (sample 3), FP = 2 (samples 4,5), TN = 4 (samples 6..9).
Y_BIN = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
P_BIN = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.55, 0.2, 0.1, 0.35, 0.05])


def test_binary_metrics_match_hand_computation() -> None:
    tp, fn, fp, tn = 3, 1, 2, 4
    sens, spec = tp / (tp + fn), tn / (tn + fp)                    # 3/4, 2/3
    prec1, prec0 = tp / (tp + fp), tn / (tn + fn)                  # 3/5, 4/5
    f1_1, f1_0 = 2 * tp / (2 * tp + fp + fn), 2 * tn / (2 * tn + fn + fp)   # 2/3, 8/11
    # AUC by counting (pos, neg) pairs the positive ranks higher: 0.9 -> 6, 0.8 -> 6, 0.6 -> 5, 0.3 -> 3 of 24.
    auc = (6 + 6 + 5 + 3) / 24
    # AP: ranking 0.9 P, 0.8 P, 0.7 N, 0.6 P, 0.55 N, 0.35 N, 0.3 P -> precision at each positive 1, 1, 3/4, 4/7.
    ap = (1 + 1 + 3 / 4 + 4 / 7) / 4
    expected = {
        "accuracy": (tp + tn) / 10, "sensitivity": sens, "specificity": spec,
        "balanced_accuracy": (sens + spec) / 2, "precision": (prec1 + prec0) / 2,
        "recall": (sens + spec) / 2, "f1": (f1_1 + f1_0) / 2, "f1_class_0": f1_0, "f1_class_1": f1_1,
        "auc": auc, "average_precision": ap,
    }
    got = compute_metrics(Y_BIN, P_BIN, "binary", 2)
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-12), name
        assert type(got[name]) is float
    assert confusion(Y_BIN, P_BIN, "binary", 2) == [[tn, fp], [fn, tp]]


def test_binary_threshold_moves_predictions() -> None:
    assert predictions(P_BIN, "binary", 0.65).tolist() == [1, 1, 0, 0, 1, 0, 0, 0, 0, 0]
    got = compute_metrics(Y_BIN, P_BIN, "binary", 2, threshold=0.65)
    assert got["sensitivity"] == pytest.approx(2 / 4) and got["specificity"] == pytest.approx(5 / 6)
    assert got["auc"] == pytest.approx(20 / 24)                    # threshold-free


def test_multiclass_auc_matches_sklearn_ovr_macro() -> None:
    rng = np.random.default_rng(1)
    y = np.r_[np.arange(4), rng.integers(0, 4, 56)]
    probs = rng.dirichlet(np.ones(4), size=60)
    got = compute_metrics(y, probs, "multiclass", 4)
    assert got["auc"] == pytest.approx(roc_auc_score(y, probs, multi_class="ovr", average="macro"), abs=1e-12)
    assert got["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == y))
    assert {f"f1_class_{k}" for k in range(4)} <= set(got) and "sensitivity" not in got
    from sklearn.metrics import recall_score   # each class's sensitivity, beside the macro recall

    assert [got[f"recall_class_{k}"] for k in range(4)] == pytest.approx(
        recall_score(y, probs.argmax(1), average=None, labels=range(4)), abs=1e-12)
    matrix = np.array(confusion(y, probs, "multiclass", 4))
    assert matrix.shape == (4, 4) and matrix.sum() == 60 and np.trace(matrix) == np.sum(probs.argmax(1) == y)


def test_multilabel_hand_made() -> None:
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    probs = np.array([[0.9, 0.2, 0.4], [0.1, 0.8, 0.3], [0.7, 0.45, 0.2], [0.2, 0.6, 0.9]])
    # predictions [[1,0,0],[0,1,0],[1,0,0],[0,1,1]]: wrong cells (0,2), (2,1), (3,1) -> 3 of 12.
    got = compute_metrics(y, probs, "multilabel", 3)
    assert got["hamming_loss"] == pytest.approx(3 / 12)
    # each label's own AUC beside the macro one: labels 0 and 2 rank perfectly, label 1 at 3 of 4 pairs
    assert [got[f"auc_class_{j}"] for j in range(3)] == pytest.approx([1.0, 0.75, 1.0])
    assert got["auc"] == pytest.approx(np.mean([1.0, 0.75, 1.0]))
    # mAP: label 1 ranks its positives 1st and 3rd (precision 1, then 2/3); labels 0 and 2 rank them first
    assert got["average_precision"] == pytest.approx(np.mean([1.0, (1 + 2 / 3) / 2, 1.0]))
    assert got["accuracy"] == pytest.approx(1 / 4)                 # only row 1 matches exactly
    # per label (TPR + TNR) / 2: label 0 (1 + 1)/2, label 1 (1/2 + 1/2)/2, label 2 (1/2 + 1)/2
    assert got["balanced_accuracy"] == pytest.approx((1 + 0.5 + 0.75) / 3)
    assert confusion(y, probs, "multilabel", 3) == [[2, 0, 0, 2], [1, 1, 1, 1], [2, 0, 1, 1]]
    assert METRICS["hamming_loss"].direction == "minimize"


@pytest.mark.parametrize("kind, y, probs, n", [
    ("binary", np.zeros(5, int), np.linspace(0, 1, 5), 2),
    ("multiclass", np.array([0, 1, 0, 1]), np.full((4, 3), 1 / 3), 3),              # class 2 never occurs
    ("multilabel", np.array([[0, 1], [1, 1], [0, 1]]), np.full((3, 2), 0.5), 2),    # label 1 always on
])
def test_auc_is_nan_when_undefined(kind: str, y: np.ndarray, probs: np.ndarray, n: int) -> None:
    got = compute_metrics(y, probs, kind, n)
    assert math.isnan(got["auc"])
    # class 2 has no image to recall, and (never predicted either) no F1
    absent = ("recall_class_2", "f1_class_2") if kind == "multiclass" else ()
    assert all(math.isnan(got[k]) for k in absent)
    assert all(not math.isnan(v) for k, v in got.items()
               if k not in ("auc", "sensitivity", "average_precision", *absent) and not k.startswith("auc_class_"))


@pytest.mark.parametrize("kind, y, pred", [
    ("multiclass", np.array([0, 0, 1, 1]), np.array([0, 0, 1, 2])),                    # class 2 never occurs
    ("multilabel", np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]]),               # label 2 never on
     np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 0, 1]])),
])
def test_macro_recall_averages_the_classes_present_only(kind: str, y: np.ndarray, pred: np.ndarray) -> None:
    """A class with nothing to recall has no recall: counted as 0, it capped the macro mean at 2/3 here."""
    probs = np.eye(3)[pred] if kind == "multiclass" else pred.astype(float)
    got = compute_metrics(y, probs, kind, 3)
    assert got["recall"] == pytest.approx((1.0 + 0.5) / 2) and math.isnan(got["recall_class_2"])
    low, high = bootstrap_ci(y, probs, kind, 3, ["recall"], n_resamples=200, seed=0)["recall"]
    assert low <= got["recall"] <= high and high == pytest.approx(1.0)


def test_f1_and_precision_leave_out_a_label_neither_present_nor_predicted() -> None:
    """A split without positives of label 3: a perfect model scored macro F1 and precision 3/4 (label 3's 0/0
    counted as 0) while recall said 1. A label neither on nor predicted has no F1 or precision (nan, JSON null);
    one predicted but never on has precision 0 and F1 0, one on but never predicted precision 0."""
    from sklearn.metrics import f1_score, precision_score

    from searchlab.export.exporter import per_class_table
    from searchlab.export.publish import json_text

    y = np.array([[1, 0, 1, 0], [0, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 1, 0]])
    got = compute_metrics(y, y.astype(float), "multilabel", 4)
    assert got["f1"] == got["precision"] == got["recall"] == 1.0
    assert [got[f"f1_class_{j}"] for j in range(3)] == [1.0, 1.0, 1.0] and math.isnan(got["f1_class_3"])
    table = per_class_table(got, ["a", "b", "c", "rare"])
    assert '"f1": null' in json_text(table["rare"]) and '"recall": null' in json_text(table["rare"])
    assert bootstrap_ci(y, y.astype(float), "multilabel", 4, ["f1", "precision"], n_resamples=200) == {
        "f1": (1.0, 1.0), "precision": (1.0, 1.0)}
    # label 3 predicted once without being on: defined, 0 (as scikit-learn says)
    claimed = y.copy()
    claimed[0, 3] = 1
    got = compute_metrics(y, claimed.astype(float), "multilabel", 4)
    assert got["f1_class_3"] == 0.0 and got["f1"] == pytest.approx(f1_score(y, claimed, average="macro")) == 0.75
    assert got["precision"] == pytest.approx(precision_score(y, claimed, average="macro", zero_division=0))
    # label 1 on but never predicted: precision 0 for it (leaving it out would reward never predicting it)
    missed = y.copy()
    missed[:, 1] = 0
    got = compute_metrics(y, missed.astype(float), "multilabel", 4)
    assert got["precision"] == pytest.approx((1 + 0 + 1) / 3) and got["f1"] == pytest.approx((1 + 0 + 1) / 3)
    # multi-class: class 2 neither in the split nor predicted; the macro means are over classes 0 and 1
    yc, pc = np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 1])
    got = compute_metrics(yc, np.eye(3)[pc], "multiclass", 3)
    assert math.isnan(got["f1_class_2"])
    assert got["f1"] == pytest.approx(f1_score(yc, pc, average="macro", labels=[0, 1]))
    assert got["precision"] == pytest.approx(precision_score(yc, pc, average="macro", labels=[0, 1]))
    # binary: a split of negatives only, all called negative -> F1 and precision of class 0 only
    got = compute_metrics(np.zeros(4, int), np.full(4, 0.2), "binary", 2)
    assert got["f1"] == got["precision"] == 1.0 and math.isnan(got["f1_class_1"])


def test_resampled_f1_and_precision_leave_out_unseen_labels_as_compute_metrics_does() -> None:
    rng = np.random.default_rng(5)
    y = (rng.random((30, 4)) < [0.5, 0.3, 0.2, 0.0]).astype(int)
    probs = np.clip(0.6 * y + 0.5 * rng.random((30, 4)), 0, 1).round(2)
    probs[:, 3] = np.where(np.arange(30) == 7, 0.7, 0.1)     # label 3 never on, predicted for image 7 only
    pred = predictions(probs, "multilabel")
    idx = [np.arange(30), *rng.integers(0, 30, size=(6, 30)), np.flatnonzero(np.arange(30) != 7)]
    w = np.stack([np.bincount(i, minlength=30) for i in idx]).astype(float)
    thunks = _resampled(w, y, probs, pred, "multilabel", 4)
    for r, i in enumerate(idx):
        expected = compute_metrics(y[i], probs[i], "multilabel", 4)
        for name in ("f1", "precision", "recall", "f1_class_3"):
            np.testing.assert_allclose(thunks[name]()[r], expected[name], atol=1e-12, err_msg=f"{name} resample {r}")
    assert np.isnan(thunks["f1_class_3"]()[-1]) and thunks["f1_class_3"]()[0] == 0.0


def test_registry_errors() -> None:
    with pytest.raises(RegistryError) as err:
        metric_info("aucc")
    message = str(err.value)
    assert "unknown metric 'aucc'" in message
    listed = message.split("valid: ")[1].split(", ")
    assert listed == sorted(listed) and set(METRICS) <= set(listed)
    with pytest.raises(RegistryError, match="binary"):
        metric_info("sensitivity", "multiclass")
    with pytest.raises(RegistryError, match="multilabel"):
        metric_info("hamming_loss", "binary")
    assert metric_info("auc", "multilabel") == METRICS["auc"]
    assert metric_info("f1_class_3", "multiclass").direction == "maximize"
    assert metric_info("auc_class_2", "multilabel", n_classes=3).direction == "maximize"
    with pytest.raises(RegistryError, match="multiclass, multilabel"):
        metric_info("auc_class_0", "binary")        # binary tasks have their one AUC
    with pytest.raises(RegistryError, match=r"'f1_class_3' names class \(label\) 3, but the task has 3, numbered "
                                            r"0 to 2"):
        metric_info("f1_class_3", "multiclass", n_classes=3)
    assert all(isinstance(m, MetricInfo) and m.direction == "maximize"
               for name, m in METRICS.items() if name != "hamming_loss")


def test_bad_shapes_are_rejected() -> None:
    with pytest.raises(ValueError, match="shape"):
        compute_metrics(Y_BIN, np.c_[1 - P_BIN, P_BIN], "binary", 2)
    with pytest.raises(ValueError, match="integers"):
        compute_metrics(np.array([0, 3]), np.full((2, 3), 1 / 3), "multiclass", 3)


# ------------------------------------------------------------------------------------------------ bootstrap
def _random_case(kind: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    if kind == "binary":
        y = (rng.random(n) < 0.3).astype(int)
        return y, np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1).round(2), 2       # rounding creates ties
    if kind == "multiclass":
        y = rng.integers(0, 3, n)
        return y, rng.dirichlet(np.ones(3), size=n), 3
    y = (rng.random((n, 3)) < 0.4).astype(int)
    return y, (0.4 * y + 0.6 * rng.random((n, 3))).round(2), 3


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_vectorised_resample_metrics_equal_sklearn_on_repeated_samples(kind: str) -> None:
    # A resample as per-sample counts must give exactly what sklearn gives on the rows repeated that often.
    rng = np.random.default_rng(7)
    y, probs, n_classes = _random_case(kind, 40, rng)
    first = y if y.ndim == 1 else y[:, 0]
    idx = [np.arange(40), *rng.integers(0, 40, size=(4, 40)), np.r_[np.zeros(20, int), np.arange(20)],
           np.flatnonzero(first != 0)]             # a class (label) absent: nan and zero_division cases
    w = np.stack([np.bincount(i, minlength=40) for i in idx]).astype(float)
    pred = predictions(probs, kind)
    thunks = _resampled(w, y, probs, pred, kind, n_classes)
    for r, i in enumerate(idx):
        expected = compute_metrics(y[i], probs[i], kind, n_classes)
        assert set(expected) <= set(thunks)
        for name, value in expected.items():
            np.testing.assert_allclose(thunks[name]()[r], value, atol=1e-12, err_msg=f"{name} resample {r}")


def test_bootstrap_matches_naive_loop_over_sklearn() -> None:
    rng = np.random.default_rng(3)
    y, probs, _ = _random_case("binary", 30, rng)
    y[:2] = 1                                         # ensure positives exist but are rare-ish
    names = ["auc", "sensitivity", "f1"]
    got = bootstrap_ci(y, probs, "binary", 2, names, n_resamples=100, seed=5, level=0.9)
    draws = np.random.default_rng(5).integers(0, 30, size=(100, 30))
    values = [compute_metrics(y[i], probs[i], "binary", 2) for i in draws]
    for name in names:
        v = np.array([m[name] for m in values])
        expected = np.quantile(v[~np.isnan(v)], [0.05, 0.95])
        np.testing.assert_allclose(got[name], expected, atol=1e-12)


def test_bootstrap_contains_estimate_and_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    y, probs, _ = _random_case("binary", 156, rng)
    names = ["auc", "balanced_accuracy", "f1"]
    point = compute_metrics(y, probs, "binary", 2)
    ci = bootstrap_ci(y, probs, "binary", 2, names, seed=11)
    for name in names:
        low, high = ci[name]
        assert low < point[name] < high
    assert bootstrap_ci(y, probs, "binary", 2, names, seed=11) == ci
    assert bootstrap_ci(y, probs, "binary", 2, names, seed=12) != ci


def test_bootstrap_narrows_with_more_samples() -> None:
    rng = np.random.default_rng(4)
    widths = {}
    for n in (50, 2000):
        y, probs, _ = _random_case("binary", n, rng)
        ci = bootstrap_ci(y, probs, "binary", 2, ["auc", "accuracy"], n_resamples=500)
        widths[n] = {name: high - low for name, (low, high) in ci.items()}
    for name in ("auc", "accuracy"):
        assert widths[2000][name] < widths[50][name] / 3          # ~ 1/sqrt(40) ~ 0.16 in theory


def test_bootstrap_skips_nan_resamples() -> None:
    # One positive in 20 samples: ~36% of resamples miss it, so AUC and sensitivity are nan there.
    y = np.r_[1, np.zeros(19, int)]
    probs = np.linspace(1, 0, 20)
    ci = bootstrap_ci(y, probs, "binary", 2, ["auc", "sensitivity", "specificity"], n_resamples=300)
    assert ci["auc"] == (1.0, 1.0) and ci["sensitivity"] == (1.0, 1.0)
    assert not any(math.isnan(x) for x in ci["specificity"])
    with pytest.raises(RegistryError):
        bootstrap_ci(y, probs, "binary", 2, ["hamming_loss"])
    with pytest.raises(RegistryError, match="names class"):
        bootstrap_ci(y, probs, "binary", 2, ["f1_class_2"])


def test_bootstrap_is_fast_for_all_binary_metrics() -> None:
    rng = np.random.default_rng(2)
    y, probs, _ = _random_case("binary", 156, rng)
    names = sorted(name for name, m in METRICS.items() if "binary" in m.kinds) + ["f1_class_0", "f1_class_1"]
    start = time.perf_counter()
    ci = bootstrap_ci(y, probs, "binary", 2, names, n_resamples=2000)
    assert time.perf_counter() - start < 5
    assert set(ci) == set(names) and all(low <= high for low, high in ci.values())


def test_export_intervals_of_proportions_are_exact_and_never_zero_width() -> None:
    """Six of six positives found: a percentile bootstrap says [1, 1]; Clopper-Pearson says [0.54, 1]
    (0.025 ** (1 / 6)), as tables of exact binomial intervals give it."""
    from searchlab.intervals import EXACT, clopper_pearson, export_intervals

    y = np.r_[np.ones(6, int), np.zeros(30, int)]
    probs = np.r_[np.full(6, 0.9), np.linspace(0.0, 0.6, 30)]   # 5 of 30 negatives above 0.5
    ci, methods = export_intervals(y, probs, "binary", 2, ["auc", "sensitivity", "specificity", "accuracy"],
                                   n_resamples=200, seed=0, threshold=0.5)
    assert bootstrap_ci(y, probs, "binary", 2, ["sensitivity"], n_resamples=200)["sensitivity"] == (1.0, 1.0)
    assert ci["sensitivity"] == pytest.approx((0.025 ** (1 / 6), 1.0), abs=1e-9)
    assert ci["specificity"] == pytest.approx(clopper_pearson(25, 30)) and ci["accuracy"] == pytest.approx(
        clopper_pearson(31, 36))
    assert methods["sensitivity"] == methods["accuracy"] == EXACT
    assert methods["auc"] == "percentile bootstrap, 200 resamples"
    assert clopper_pearson(0, 6) == pytest.approx((0.0, 1 - 0.025 ** (1 / 6)))
    low, high = clopper_pearson(81, 100)   # a textbook case: 0.7193 to 0.8816
    assert (round(low, 4), round(high, 4)) == (0.7193, 0.8816)


def test_test_intervals_resample_whole_patients_when_patients_have_several_images() -> None:
    """Forty patients of 5 alike images each: an image bootstrap counts 200 independent images and is too
    narrow; resampling patients is wider, and a proportion's interval is never narrower than the exact one."""
    from searchlab.intervals import clopper_pearson, export_intervals

    rng = np.random.default_rng(0)
    patient_y = rng.integers(0, 2, 40)
    patient_score = np.clip(patient_y * 0.3 + rng.random(40) * 0.7, 0, 1)   # one score per patient
    y, probs = np.repeat(patient_y, 5), np.repeat(patient_score, 5) + rng.normal(0, 0.01, 200)
    groups = [f"P{i // 5}" for i in range(200)]
    names = ["auc", "accuracy", "sensitivity"]
    plain, _ = export_intervals(y, probs, "binary", 2, names, n_resamples=400, seed=0, threshold=0.5)
    by_patient, methods = export_intervals(y, probs, "binary", 2, names, n_resamples=400, seed=0, threshold=0.5,
                                           groups=groups)
    width = {k: (ci[1] - ci[0], by_patient[k][1] - by_patient[k][0]) for k, ci in plain.items()}
    assert all(wide > 1.5 * narrow for narrow, wide in width.values()), width
    assert methods["auc"] == "percentile bootstrap over 40 patients (whole patients resampled), 400 resamples"
    assert methods["accuracy"] == ("Clopper-Pearson (exact binomial) at the Korn-Graubard effective sample size "
                                   "(39.8) of 200 images in 40 patients")   # the size used, not the patients'
    right = int(((probs >= 0.5) == y).sum())
    exact = clopper_pearson(right, 200)   # the images as independent: narrower
    assert by_patient["accuracy"][0] <= exact[0] and by_patient["accuracy"][1] >= exact[1]
    alone, _ = export_intervals(y, probs, "binary", 2, names, n_resamples=400, seed=0, threshold=0.5,
                                groups=[str(i) for i in range(200)])   # every image its own patient
    assert alone == plain
    from searchlab.intervals import korn_graubard   # 5 alike images each of 40 patients count as 39 images
    # (deff: between-patient variance 187.5 / 200**2 x 40/39 over binomial 0.75 x 0.25 / 200 = 5.128)
    assert korn_graubard(np.repeat(np.arange(40) % 4 > 0, 5), np.repeat(np.arange(40), 5)) == pytest.approx(
        clopper_pearson(0.75 * 39, 39))


def test_multilabel_hamming_loss_and_macro_recall_intervals_are_never_zero_width() -> None:
    """40 test images, 4 labels, no label wrong: the percentile bootstrap said hamming_loss [0, 0] and recall
    [1, 1]. Exact intervals instead, counting each image once at 0 or 1 (an image's label cells are not
    independent): 0 of 40 -> [0, 1 - 0.025 ** (1 / 40)] = [0, 0.088], not the [0, 0.023] of 160 cells."""
    from searchlab.intervals import EXACT, clopper_pearson, export_intervals

    rng = np.random.default_rng(0)
    y = (rng.random((40, 4)) < [0.5, 0.3, 0.2, 0.1]).astype(np.float32)   # float, as a data set's labels are
    names = ["hamming_loss", "recall", "balanced_accuracy", "precision", "accuracy", "auc"]
    assert bootstrap_ci(y, y, "multilabel", 4, names, n_resamples=200)["hamming_loss"] == (0.0, 0.0)
    ci, methods = export_intervals(y, y, "multilabel", 4, names, n_resamples=200, seed=0, threshold=0.5)
    assert ci["hamming_loss"] == pytest.approx(clopper_pearson(0, 40)) and ci["hamming_loss"][1] > 0.08
    assert ci["accuracy"] == pytest.approx(clopper_pearson(40, 40))
    for name in ("recall", "balanced_accuracy", "precision"):
        assert bootstrap_ci(y, y, "multilabel", 4, [name], n_resamples=200)[name] == (1.0, 1.0)
        assert 0.5 < ci[name][0] < 0.99 and ci[name][1] == 1.0, (name, ci[name])
    assert methods["hamming_loss"] == (f"{EXACT} at the Korn-Graubard effective sample size (40.0) of 160 label "
                                       "cells in 40 images: an image's labels are not independent")
    assert methods["recall"].startswith(f"{EXACT} at the Korn-Graubard effective sample size (")
    assert y.any(axis=1).sum() == 30   # recall counts the images with a label on
    assert methods["recall"].endswith(") of a macro mean of per-label proportions over 30 images")
    assert methods["auc"] == "percentile bootstrap, 200 resamples"
    # by patient (two images each): at 0 the 20 patients count once each
    by_patient, methods = export_intervals(y, y, "multilabel", 4, names, n_resamples=200, seed=0, threshold=0.5,
                                           groups=[f"P{i // 2}" for i in range(40)])
    assert by_patient["hamming_loss"] == pytest.approx(clopper_pearson(0, 20))
    assert "160 label cells in 20 patients" in methods["hamming_loss"]


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
def test_exact_intervals_of_means_of_proportions_hold_the_metric(kind: str) -> None:
    """Away from 0 and 1: the weighted outcomes give the metric, the interval holds it, its effective sample size
    is at most the outcomes' (hamming_loss: at least the images'), and its width is near the bootstrap's (both
    see the same spread)."""
    from searchlab.intervals import design_exact, export_intervals, mean_of_proportions

    rng = np.random.default_rng(3)
    y, probs, n_classes = _random_case(kind, 120, rng)
    point = compute_metrics(y, probs, kind, n_classes)
    names = ["recall", "balanced_accuracy", "precision"] + (["hamming_loss"] if kind == "multilabel" else [])
    ci, methods = export_intervals(y, probs, kind, n_classes, names, n_resamples=500, seed=0, threshold=0.5)
    boot = bootstrap_ci(y, probs, kind, n_classes, names, n_resamples=500, seed=0)
    for name in names:
        hits, weights, image, stratum = mean_of_proportions(name, y, predictions(probs, kind), kind, n_classes)
        assert np.sum(weights * hits) == pytest.approx(point[name], abs=1e-12), name
        (low, high), effective = design_exact(hits, weights, image, stratum)
        assert (low, high) == ci[name] and low < point[name] < high, name
        assert 0.8 < (high - low) / (boot[name][1] - boot[name][0]) < 1.6, (name, ci[name], boot[name])
        assert f"effective sample size ({effective:.1f})" in methods[name]
        kish = 1 / np.sum((weights / weights.sum()) ** 2)   # the outcomes' own count, under their weights
        assert effective <= kish + 1e-9 and (name != "hamming_loss" or effective >= 120), (name, effective)


def test_exact_interval_of_macro_precision_counts_a_never_predicted_class_as_0() -> None:
    """Class 2 (3 images) never predicted: macro precision (10/13 + 1 + 0) / 3; the interval is that of the two
    predicted classes' mean, times 2/3 (class 2's third of the weight has no outcome and counts 0)."""
    from searchlab.intervals import design_exact, export_intervals, mean_of_proportions

    y = np.r_[np.zeros(10, int), np.ones(10, int), np.full(3, 2)]
    pred = np.r_[np.zeros(10, int), np.ones(10, int), np.zeros(3, int)]
    point = compute_metrics(y, np.eye(3)[pred], "multiclass", 3)["precision"]
    assert point == pytest.approx((10 / 13 + 1 + 0) / 3)
    ci, _ = export_intervals(y, np.eye(3)[pred], "multiclass", 3, ["precision"], n_resamples=200, seed=0,
                             threshold=0.5)
    hits, weights, image, stratum = mean_of_proportions("precision", y, pred, "multiclass", 3)
    assert weights.sum() == pytest.approx(2 / 3) and len(hits) == 23
    (low, high), _ = design_exact(hits, weights / weights.sum(), image, stratum)
    assert ci["precision"] == pytest.approx((low * 2 / 3, high * 2 / 3))
    assert ci["precision"][0] < point < ci["precision"][1] <= 2 / 3


def test_the_per_class_table_has_a_row_for_a_class_whose_metrics_a_trial_left_out() -> None:
    """A trial's stored validation metrics leave out the undefined (a class without validation images): the
    export's validation_metrics_per_class had no row for that class, while the test side had one of nulls."""
    from searchlab.export.exporter import per_class_table

    stored = {"accuracy": 0.9, "f1_class_0": 0.8, "recall_class_0": 0.7, "f1_class_1": 0.6, "recall_class_1": 0.5}
    table = per_class_table(stored, ["normal", "benign", "rare_lesion"])
    assert list(table) == ["normal", "benign", "rare_lesion"]
    assert table["rare_lesion"] == {"f1": None, "recall": None} and table["benign"] == {"f1": 0.6, "recall": 0.5}
    assert per_class_table({"accuracy": 0.9}, ["a", "b"]) == {}


def test_a_class_recall_gets_the_exact_interval_of_its_own_images() -> None:
    """Per-class test metrics had no interval: a 4-image class's recall of 1.0 read as certain."""
    from searchlab.intervals import export_intervals

    y = np.array([0] * 40 + [1] * 20 + [2] * 4)
    probs = np.eye(3)[y] * 0.8 + 0.1   # every image right
    ci, methods = export_intervals(y, probs, "multiclass", 3, ["recall_class_2", "f1_class_2", "auc_class_2"],
                                   n_resamples=200, seed=0, threshold=0.5)
    assert ci["recall_class_2"] == pytest.approx((0.025 ** 0.25, 1.0))
    assert methods["recall_class_2"].startswith("Clopper-Pearson")
    assert ci["f1_class_2"] == (1.0, 1.0) and methods["f1_class_2"].startswith("percentile bootstrap")
    labels = np.array([[1, 0]] * 10 + [[0, 1]] * 3 + [[0, 0]] * 7)
    ci, _ = export_intervals(labels, labels * 0.9, "multilabel", 2, ["recall_class_1"], n_resamples=50, seed=0,
                             threshold=0.5)
    assert ci["recall_class_1"] == pytest.approx((0.025 ** (1 / 3), 1.0))
