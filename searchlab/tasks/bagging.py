"""A trial's model as the bag of its cross-validation fold models (`train: {cv_folds: K, cv_model: bag}`).

Under k-fold CV a trial already trains K models, each on K-1 folds of train+val. The default (`cv_model:
refit`) keeps none of them and trains one more on the official training split. Bagging keeps all K instead
(as AutoGluon's bagged models do): their probabilities are averaged, every image of train+val has trained
all but one of them, and the decision threshold is chosen on the out-of-fold predictions -- each image
scored by the one model that never saw it, 624 images on BreastMNIST instead of the 78 of its validation
split. No extra training, so a trial costs K trainings instead of K + 1. The test split is never read here.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from searchlab.imbalance import ImbalanceSpec, choose_threshold
from searchlab.metrics import compute_metrics, confusion
from searchlab.tasks.crossval import FOLD_SCHEME, CVResult, FoldModel
from searchlab.tasks.train import TrainResult


def bag_model_spec(member_spec: dict[str, Any], n_members: int) -> dict[str, Any]:
    """The export format's ensemble of n copies of one architecture (standalone.build_export_model)."""
    return {"architecture": "ensemble", "members": [member_spec] * n_members}


def bag_record(cv: CVResult, fold_seed: int, folds: int) -> dict[str, Any]:
    """What the trial stores so that the out-of-fold predictions can be made again at export (with TTA)."""
    return {"cv_folds": folds, "fold_seed": fold_seed, "fold_scheme": FOLD_SCHEME,
            "members": [dict(m.where) for m in cv.models]}


def bag_result(cv: CVResult, imbalance: ImbalanceSpec, kind: str, n_classes: int) -> TrainResult:
    """The bag as the trial's result: averaged weights are not meaningful, so the state holds every member
    (`members.<i>.*`); threshold, metrics and confusion matrix are those of the out-of-fold predictions."""
    labels, probs = out_of_fold(cv.models)
    threshold = choose_threshold(imbalance, kind, labels, probs)
    return TrainResult(metrics=compute_metrics(labels, probs, kind, n_classes, threshold=threshold),
                       best_epoch=cv.final_epochs - 1, state=stacked_state([m.state for m in cv.models]),
                       threshold=threshold, train_seconds=0.0, images_seen=0,
                       epochs_trained=members_epochs_trained(cv),
                       confusion=confusion(labels, probs, kind, n_classes, threshold=threshold),
                       val_probs=probs)


def members_epochs_trained(cv: CVResult) -> int:
    """The epochs the bag's members trained, as best_epoch is theirs: the median over the fold runs (0 was
    recorded next to best_epoch 1 while every member had trained 2 epochs)."""
    trained = [f["epochs_trained"] for f in cv.folds if "epochs_trained" in f]
    return int(np.median(trained)) if trained else 0


def out_of_fold(models: list[FoldModel]) -> tuple[np.ndarray, np.ndarray]:
    """Every held-out fold's labels and predictions, concatenated (under repeats an image appears once per
    repeat, each time scored by a model that did not train on it)."""
    return (np.concatenate([m.val_labels for m in models]), np.concatenate([m.val_probs for m in models]))


def stacked_state(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {f"members.{i}.{key}": value for i, state in enumerate(states) for key, value in state.items()}
