"""What an export's intervals say of themselves: the effective sample size they used (hamming_loss over patients
was capped at the patients), undefined metrics without a method, and the few-test-images warning's steps."""
from __future__ import annotations

import math

import numpy as np
import pytest

from searchlab.intervals import (EXACT, UNDEFINED, clopper_pearson, export_intervals, korn_graubard_size,
                                 patients_per_class)
from test_data import _fresh_cache  # noqa: F401  (_fresh_cache: autouse fixture)

# 29 images of 10 patients (2-4 each), 4 labels: the audited export's shape
GROUPS = [f"P{p}" for p, size in enumerate([3, 3, 3, 3, 3, 3, 3, 3, 3, 2]) for _ in range(size)]


def _multilabel_case() -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities with errors scattered over images and labels (some 20 of 116 cells wrong)."""
    rng = np.random.default_rng(4)
    y = (rng.random((len(GROUPS), 4)) < [0.4, 0.4, 0.4, 0.3]).astype(np.float32)
    wrong = rng.random(y.shape) < 0.17
    return y, np.where(wrong, 1 - y, y) * 0.8 + 0.1


def _between_patients_size(wrong: np.ndarray, groups: list[str]) -> float:
    """Korn-Graubard's effective count of cells: p (1 - p) over the ratio estimator's between-patient variance."""
    ids = sorted(set(groups))
    errors = np.array([wrong[[g == i for g in groups]].sum() for i in ids], dtype=float)
    cells = np.array([wrong[[g == i for g in groups]].size for i in ids], dtype=float)
    p, m = errors.sum() / cells.sum(), len(ids)
    variance = m / (m - 1) * float(np.sum((errors - p * cells) ** 2)) / cells.sum() ** 2
    return p * (1 - p) / variance


def test_hamming_loss_over_patients_counts_cells_as_their_spread_says_not_one_per_patient() -> None:
    """20-odd of 116 label cells wrong in 29 images of 10 patients gave [0.010, 0.581] at "7.9": the patients'
    Kish size, a cap meant for the macro means. The spread between patients says some 70 cells."""
    y, probs = _multilabel_case()
    ci, methods = export_intervals(y, probs, "multilabel", 4, ["hamming_loss"], n_resamples=50, seed=0,
                                   threshold=0.5, groups=GROUPS)
    wrong = (probs >= 0.5) != (y == 1)
    expected = _between_patients_size(wrong, GROUPS)
    assert 10 < expected < wrong.size
    assert ci["hamming_loss"] == pytest.approx(clopper_pearson(wrong.mean() * expected, expected))
    assert ci["hamming_loss"][1] - ci["hamming_loss"][0] < 0.3, ci   # capped at 10 it was over 0.5 wide
    assert methods["hamming_loss"] == (f"{EXACT} at the Korn-Graubard effective sample size ({expected:.1f}) of "
                                       f"116 label cells in 10 patients: a patient's labels are not independent")


def test_hamming_loss_of_too_few_patients_says_it_has_no_interval() -> None:
    y, probs = _multilabel_case()
    two = [f"P{i % 2}" for i in range(len(y))]
    ci, methods = export_intervals(y, probs, "multilabel", 4, ["hamming_loss"], n_resamples=20, seed=0,
                                   threshold=0.5, groups=two)
    assert all(math.isnan(v) for v in ci["hamming_loss"])
    assert methods["hamming_loss"] == "no CI: the test split has 2 patients, fewer than the 3 an interval needs"


def test_a_proportion_over_patients_names_the_effective_sample_size_it_used() -> None:
    """Accuracy of 29 images of 10 patients said "the effective sample size of 10 patients' images" at 8.65."""
    y, probs = _multilabel_case()
    ci, methods = export_intervals(y, probs, "multilabel", 4, ["accuracy"], n_resamples=20, seed=0,
                                   threshold=0.5, groups=GROUPS)
    right = ((probs >= 0.5) == (y == 1)).all(axis=1)
    used = korn_graubard_size(right, np.array(GROUPS))
    assert used != 10.0
    assert ci["accuracy"] == pytest.approx(clopper_pearson(right.mean() * used, used))
    assert methods["accuracy"] == f"{EXACT} at the Korn-Graubard effective sample size ({used:.1f}) of 29 images " \
                                  "in 10 patients"


@pytest.mark.parametrize("groups", [None, [f"P{i // 2}" for i in range(30)]])
def test_an_undefined_metric_has_no_interval_method(groups: list[str] | None) -> None:
    """Class 2 has no test image: its recall and AUC (and the macro AUC) are undefined, yet said "effective sample
    size of 0 patients' images" and "percentile bootstrap"."""
    y = np.r_[np.zeros(15, int), np.ones(15, int)]
    probs = np.eye(3)[y] * 0.7 + 0.1
    names = ["auc", "auc_class_2", "recall_class_2", "f1_class_2", "accuracy", "auc_class_0"]
    ci, methods = export_intervals(y, probs, "multiclass", 3, names, n_resamples=30, seed=0, threshold=0.5,
                                   groups=groups)
    for name in ("auc", "auc_class_2", "recall_class_2", "f1_class_2"):
        assert all(math.isnan(v) for v in ci[name]) and methods[name] == UNDEFINED, (name, methods[name])
    assert methods["accuracy"].startswith(EXACT) and methods["auc_class_0"].startswith("percentile bootstrap")
    assert not any("0 patients" in m for m in methods.values())


def test_the_headline_leaves_an_undefined_metric_out_of_its_interval_methods() -> None:
    from searchlab.export.export_notes import test_headline

    config = {"test_metrics": {"auc": float("nan"), "accuracy": 0.8}, "test_size": 29,
              "test_metrics_ci95": {"auc": [float("nan")] * 2, "accuracy": [0.6, 0.9]},
              "test_metrics_ci95_method": {"auc": "percentile bootstrap, 200 resamples", "accuracy": "exact"}}
    assert test_headline(config) == "test auc undefined, accuracy 0.800 [0.600, 0.900] (n=29; 95% intervals, " \
                                    "accuracy: exact)"


LABELS = ["Atelectasis", "Cardiomegaly", "Effusion", "Nodule"]
CONFUSION = [[11, 10, 0, 8], [5, 5, 0, 19], [13, 8, 0, 8], [27, 0, 0, 2]]   # per label: [tn, fp, fn, tp]


def _warning(capsys, config: dict) -> str:
    from searchlab.export.export_notes import warn_about_export

    warn_about_export({"threshold": [0.5] * len(config["class_names"]), "test_size": 29, **config})
    return next(line for line in capsys.readouterr().err.splitlines() if "the test split has only" in line)


def test_the_few_test_images_warning_gives_each_count_its_own_step(capsys) -> None:
    """"only 8 of Atelectasis positives, 8 of Effusion positives, 2 of Nodule positives: each of those images
    moves the metrics about it by 1/2 or more": for 8 positives one image moves them by 1/8."""
    said = _warning(capsys, {"task": "multilabel", "class_names": LABELS, "test_confusion": CONFUSION})
    assert said.startswith("warning: the test split has only 8 of Atelectasis positives, 8 of Effusion positives, "
                           "2 of Nodule positives: one of those images moves the metrics about it by 1/n or more, "
                           "n being its count: 1/8 for Atelectasis positives, Effusion positives; 1/2 for Nodule "
                           "positives; read the intervals")


def test_the_few_test_images_warning_says_a_one_image_class_plainly(capsys) -> None:
    """A class of one test image was said to move "by 1/1 or more"."""
    config = {"task": "multiclass", "class_names": ["a", "b", "rare"], "test_confusion": [[20, 2, 0], [0, 6, 0],
                                                                                        [1, 0, 0]]}
    said = _warning(capsys, {**config, "test_confusion": [[20, 2, 0], [0, 26, 0], [1, 0, 0]]})
    assert "1/1" not in said and "only 1 of class 'rare': the metrics about it rest on that one image;" in said
    said = _warning(capsys, config)
    assert "1/1" not in said and said.endswith("1/6 for class 'b'; those about class 'rare' rest on one image; "
                                               "read the intervals in config.json, not the point values")


def test_the_few_test_images_warning_counts_patients_when_the_test_split_has_them(capsys) -> None:
    y = np.array([[1, 0, 1, 1]] * 2 + [[1, 0, 0, 0]] * 6 + [[0, 1, 1, 0]] * 21, dtype=np.float32)
    patients = patients_per_class(y, GROUPS, "multilabel", LABELS)
    assert patients["Nodule"] == {"positives": 1, "negatives": 10} and patients["Atelectasis"]["positives"] == 3
    assert patients_per_class(np.array([0, 0, 1, 2]), ["a", "b", "b", "c"], "multiclass", "xyz") == \
        {"x": 2, "y": 1, "z": 1}
    patients["Effusion"]["positives"] = 4   # as CONFUSION has it (Nodule: 2 positive images of 1 patient)
    config = {"task": "multilabel", "class_names": LABELS, "test_confusion": CONFUSION,
              "test_patients_per_class": patients}
    said = _warning(capsys, config)
    assert said.startswith("warning: the test split has only 8 of Atelectasis positives (3 patients), 8 of Effusion "
                           "positives (4 patients), 2 of Nodule positives (1 patient): ")
    assert "(and one patient's images move them together)" in said
