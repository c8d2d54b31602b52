"""Multi-label balanced accuracy leaves out a label with no positives (or no negatives) in the split, as recall,
F1 and AUC do: scored by its specificity alone it counted 1.0 for a model that never flags it."""
from __future__ import annotations

import numpy as np
import pytest

from searchlab.metrics import METRICS, _resampled, bootstrap_ci, compute_metrics

# 8 images, 4 labels; label 3 ("dark") is never on. At threshold 0.5:
#   label 0: on in images 0-3, flagged in 0, 1, 4  -> TPR 2/4, TNR 3/4
#   label 1: on in images 0, 4, flagged in 0, 5    -> TPR 1/2, TNR 5/6
#   label 2: on in image 7 only, flagged in 7      -> TPR 1,   TNR 1
#   label 3: never on, never flagged               -> TNR 1, no TPR
Y = np.zeros((8, 4), dtype=np.float32)   # float, as a data set's labels are
Y[[0, 1, 2, 3], 0] = 1
Y[[0, 4], 1] = 1
Y[7, 2] = 1
FLAGGED = np.zeros((8, 4), dtype=bool)
FLAGGED[[0, 1, 4], 0] = True
FLAGGED[[0, 5], 1] = True
FLAGGED[7, 2] = True
PROBS = np.where(FLAGGED, 0.8, 0.2)
BY_HAND = ((2 / 4 + 3 / 4) / 2 + (1 / 2 + 5 / 6) / 2 + 1.0) / 3   # over the 3 labels both on and off


def test_a_label_never_on_is_left_out_of_balanced_accuracy_as_it_is_of_recall_and_auc() -> None:
    got = compute_metrics(Y, PROBS, "multilabel", 4)
    assert got["balanced_accuracy"] == pytest.approx(BY_HAND)   # was (3 x BY_HAND + 1.0) / 4
    assert np.isnan(got["recall_class_3"]) and np.isnan(got["auc_class_3"])   # left out alike


def test_a_label_always_on_is_left_out_too_and_no_label_with_both_sides_gives_nan() -> None:
    always = Y.copy()
    always[:, 3] = 1                               # label 3 on in every image: no TNR
    probs = PROBS.copy()
    probs[:, 3] = 0.9
    assert compute_metrics(always, probs, "multilabel", 4)["balanced_accuracy"] == pytest.approx(BY_HAND)
    flat = np.c_[np.zeros(8), np.ones(8)].astype(np.float32)   # one label never on, one always
    assert np.isnan(compute_metrics(flat, np.full((8, 2), 0.7), "multilabel", 2)["balanced_accuracy"])


def test_the_bootstrap_scores_balanced_accuracy_as_compute_metrics_does() -> None:
    """With every weight 1 the vectorised resample gives the point value; its interval holds it."""
    resampled = _resampled(np.ones((1, 8)), Y.astype(np.int64), PROBS, FLAGGED.astype(np.int64), "multilabel", 4)
    assert resampled["balanced_accuracy"]()[0] == pytest.approx(BY_HAND)
    low, high = bootstrap_ci(Y, PROBS, "multilabel", 4, ["balanced_accuracy"], n_resamples=300)["balanced_accuracy"]
    assert low <= BY_HAND <= high < 1.0
    # resamples in which no label has both sides are skipped, not counted as 1
    flat = np.c_[np.zeros(8), np.ones(8)].astype(np.float32)
    assert np.isnan(_resampled(np.ones((1, 8)), flat.astype(np.int64), np.full((8, 2), 0.7),
                               np.ones((8, 2), dtype=np.int64), "multilabel", 2)["balanced_accuracy"]()[0])


def test_the_metric_and_the_start_warning_say_so() -> None:
    from searchlab.data.loading import _metrics_without

    assert "labels both on and off" in METRICS["balanced_accuracy"].description
    said = _metrics_without("multilabel", [3])
    assert "specificity alone" not in said and "balanced accuracy averages over the labels with test images " \
        "both on and off, leaving it out (it has no sensitivity); accuracy and hamming_loss still count it" in said
