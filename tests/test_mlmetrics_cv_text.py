"""Cross-validated multi-label trials: the report and the run-start warning say which thresholds and AUC their
metrics are at (the folds', at thresholds chosen on the other folds), not the validation split's."""
from __future__ import annotations

import optuna
import torch

from searchlab.data.types import ImageDataset, ImageSplit

NAMES = ["malignant", "bright", "rare", "dark"]


def _study(cross_validated: list[bool]) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    for cv in cross_validated:
        folds = {"cv_folds": [{"repeat": 0, "fold": f, "threshold": [0.54, 0.51, 0.52, 0.52]} for f in (0, 1)]}
        study.add_trial(optuna.trial.create_trial(value=0.8, user_attrs={
            "metrics": {"accuracy": 0.55, "auc": 0.8}, "task_kind": "multilabel", "class_names": NAMES,
            "threshold": [0.47, 0.46, 0.47, 0.5], **(folds if cv else {})}))
    return study


def test_the_report_says_cross_validated_trials_are_scored_at_the_other_folds_thresholds():
    from searchlab.report.build import scored_on_said

    crossed = scored_on_said(_study([True, True]))
    assert "the threshold-bound metrics are at each trial's per-label thresholds" not in crossed
    assert ("the trials are cross-validated: their threshold-bound metrics are means over folds, each fold scored at "
            "per-label thresholds chosen on the other folds' held-out images (in the trial's cv_folds user "
            "attribute, fold by fold)") in crossed
    assert "a label never on in the validation split can still have one" in crossed
    assert "their threshold column is the exported model's, chosen on the validation split" in crossed
    mixed = scored_on_said(_study([False, True]))
    assert ("the threshold-bound metrics are at each trial's per-label thresholds (the threshold column, by label), "
            "except in the cross-validated trials (those with metrics.cv_folds_done): their") in mixed
    plain = scored_on_said(_study([False]))   # as before
    assert "at each trial's per-label thresholds (the threshold column, by label).</p>" in plain
    assert "fold" not in plain


def _never_on_in_val() -> ImageDataset:
    labels = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0]])   # dark never on
    split = ImageSplit(torch.zeros((3, 1, 4, 4), dtype=torch.uint8), labels)
    return ImageDataset(splits={"val": split}, class_names=tuple(NAMES), kind="multilabel")


def test_the_start_warning_does_not_call_a_cross_validated_label_auc_undefined():
    from searchlab.tasks.selection_advice import unchoosable_threshold_warning

    data = _never_on_in_val()
    crossed = unchoosable_threshold_warning(data, chosen=False, cross_validated=True)
    assert crossed.startswith("label(s) 'dark' (never on) in all 3 validation images: no threshold can be chosen "
                              "for them there (space.imbalance.threshold): in the cross-validated trials "
                              "(space.train.cv_folds) their metrics are the folds' over train+val, each fold at "
                              "thresholds chosen on the other folds, so these labels are scored there, AUC included; "
                              "but the model each exports (train.cv_model: refit) takes its thresholds from the "
                              "validation split, so it keeps 0.5 for them"), crossed
    assert "undefined" not in crossed
    on_val = unchoosable_threshold_warning(data, chosen=True)   # trials scored on the validation split: as before
    assert "so trials scored on that split keep 0.5 for them, and their AUC there is undefined. Fix:" in on_val
    both = unchoosable_threshold_warning(data, chosen=True, cross_validated=True)
    assert "their AUC there is undefined; in the cross-validated ones (space.train.cv_folds) their metrics" in both
    assert unchoosable_threshold_warning(data, chosen=False) is None   # fixed thresholds choose nothing


def test_the_run_start_tells_cross_validated_trials_from_those_choosing_on_val():
    """Every trial cross-validated: none keeps 0.5 for a label never on in val, and the warning said some did."""
    from searchlab.tasks.classify import _choosing_thresholds
    from searchlab.tasks.classify_config import ClassifyTrialConfig

    def spec(threshold: str, folds: int | None) -> ClassifyTrialConfig:
        return ClassifyTrialConfig.model_validate({"imbalance": {"threshold": threshold},
                                                   "train": {"cv_folds": folds}})

    assert _choosing_thresholds([spec("youden", 3), spec("f1", 2)]) == (False, True)
    assert _choosing_thresholds([spec("youden", None), spec("fixed", 3)]) == (True, False)
    assert _choosing_thresholds([spec("youden", None), spec("f1", 3)]) == (True, True)
