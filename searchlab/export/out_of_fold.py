"""Out-of-fold predictions of bagged trials (`train.cv_model: bag`), made again at export time.

A bagged trial's fold models trained on train+val, so the validation split cannot judge them (each trained
on most of it). Each image of train+val is instead scored by the fold model(s) that held it out -- the folds
are rebuilt from the seed the trial recorded, exactly as the trial drew them -- with the export's test-time
augmentation. For a top-k ensemble of bags, an image's prediction is the mean over the trials of each
trial's held-out prediction: an estimate of the ensemble that no model of it has seen the image through.
The decision threshold is chosen on these; the test split is never read here.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from optuna.trial import FrozenTrial

from searchlab.data.types import ImageSplit
from searchlab.engine.rundir import OpenRun
from searchlab.errors import ExportError
from searchlab.export.ensemble import load_split, threshold_rule
from searchlab.export.provenance import rechosen
from searchlab.imbalance import ImbalanceSpec, choose_threshold
from searchlab.metrics import compute_metrics
from searchlab.models import standalone
from searchlab.tasks.crossval import fold_indices, pool_train_val


def bagged(trials: list[FrozenTrial]) -> bool:
    """True when every trial is a bag, False when none is; a mix has no split to choose a threshold on."""
    kinds = {"bag" in t.user_attrs for t in trials}
    if len(kinds) > 1:
        kind = {True: "bag", False: "refit"}
        mixed = ", ".join(f"{t.number} ({kind['bag' in t.user_attrs]})" for t in trials)
        # the best trials (first) of the best one's kind: an ensemble that works, named rather than "a --top-k"
        same = next((i for i, t in enumerate(trials) if ("bag" in t.user_attrs) != ("bag" in trials[0].user_attrs)),
                    len(trials))
        works = f"--top-k {same} (the best, all {kind['bag' in trials[0].user_attrs]})" if same > 1 else \
            f"--trial {trials[0].number} (the best alone)"
        error = ExportError(f"these trials mix bagged and refit models ({mixed}): bagged fold models trained on the "
                            f"validation split, so no split judges the mix fairly. Fix: {works}, or fix "
                            "train.cv_model in the study instead of searching it")
        error.top_k_that_works = same   # for the command a finished run says to export with
        raise error
    return kinds == {True}


def out_of_fold_predictions(run: OpenRun, members: list[torch.nn.Module], config: dict[str, Any],
                            trials: list[FrozenTrial]) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) over the train+val images every trial's bag held out at least once: the mean of
    the trials' held-out predictions."""
    labels, per_trial = out_of_fold_per_trial(run, members, config, trials)
    return labels, np.mean(per_trial, axis=0)


def out_of_fold_per_trial(run: OpenRun, members: list[torch.nn.Module], config: dict[str, Any],
                          trials: list[FrozenTrial]) -> tuple[np.ndarray, list[np.ndarray]]:
    """(labels, each trial's held-out probabilities) over the train+val images every trial's bag held out.

    `members` are the export's networks in member order (each trial's fold models, trial after trial), with
    `config["preprocessing"]` one entry per member and `config["tta"]` applied."""
    pool = pool_train_val(load_split(run, "train", "val"))
    per_trial, offset = [], 0
    for trial in trials:
        bag = trial.user_attrs["bag"]
        per_trial.append(_trial_out_of_fold(pool, bag, members[offset:], config, offset))
        offset += len(bag["members"])
    covered = np.logical_and.reduce([seen for _, seen in per_trial])
    if not covered.any():
        raise ExportError("the bagged trials share no held-out image (each was stopped after other folds), so "
                          "no out-of-fold threshold can be chosen. Fix: export a trial whose folds all finished")
    return pool.labels.numpy()[covered], [mean[covered] for mean, _ in per_trial]


def _trial_out_of_fold(pool: ImageSplit, bag: dict[str, Any], members: list[torch.nn.Module],
                       config: dict[str, Any], offset: int) -> tuple[np.ndarray, np.ndarray]:
    """One bag's mean held-out probability per pool image, and which images it held out at all."""
    total: np.ndarray | None = None
    count = np.zeros(len(pool))
    for i, where in enumerate(bag["members"]):
        # bags recorded before fold_scheme were dealt by scheme 1
        idx = fold_indices(pool.labels, bag["cv_folds"], bag["fold_seed"] + where["repeat"],
                           groups=pool.groups, scheme=bag.get("fold_scheme", 1))[where["fold"]]
        member_config = {"preprocessing": config["preprocessing"][offset + i], "task": config["task"],
                         "tta": config.get("tta", "none")}
        probs = standalone.predict_proba(members[i], member_config, pool.images[idx]).numpy()
        total = np.zeros((len(pool),) + probs.shape[1:]) if total is None else total
        total[idx] += probs
        count[idx] += 1
    assert total is not None
    seen = count > 0
    count = count.reshape((-1,) + (1,) * (total.ndim - 1))
    return np.divide(total, np.maximum(count, 1)), seen


def choose_out_of_fold(run: OpenRun, net: torch.nn.Module, config: dict[str, Any],
                       trials: list[FrozenTrial]) -> dict[str, Any]:
    """The export's threshold, chosen on out-of-fold predictions by the best trial's rule, and the metrics there."""
    members = list(net.members) if isinstance(net, standalone.Ensemble) else [net]
    labels, probs = out_of_fold_predictions(run, members, config, trials)
    kind, n_classes, rule = config["task"], len(config["class_names"]), threshold_rule(trials[0])
    threshold = choose_threshold(ImbalanceSpec(threshold=rule), kind, labels, probs)
    return {"threshold": threshold, **rechosen(rule, trials[0].number, "out-of-fold train+val", len(labels), kind),
            "validation_metrics": compute_metrics(labels, probs, kind, n_classes, threshold=threshold)}
