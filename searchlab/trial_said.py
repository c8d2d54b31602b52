"""One trial as `run`'s summary and `status` print it: its values, params, validation metrics, threshold, per-class
scores, costs, and what queued or fed it (a NAS proxy's score, a generator's images)."""
from __future__ import annotations

import math
from typing import Any

import optuna
from optuna.trial import FrozenTrial

SHOWN_METRICS = ("auc", "accuracy", "balanced_accuracy", "f1", "sensitivity", "specificity", "hamming_loss",
                 "params", "flops", "medfid", "kid", "precision", "recall", "density", "coverage", "copying",
                 "duplicates", "label_agreement", "medfid_floor", "train_seconds")
COSTS = ("params", "flops", "train_seconds")   # of the model and its training, not scores
SHOWN_OWN = 8   # metrics of a task with none of the above, shown in the order it returned them


def queued_by(trial: FrozenTrial) -> str:
    """Who queued a WAITING trial: a strategy's stage (its score recorded), a retry, or points_to_evaluate."""
    attrs = trial.user_attrs
    if proxy := _proxy_pick(attrs):
        return proxy
    if "retry_of" in attrs or trial.system_attrs.get("failed_trial") is not None:
        return f"a retry of interrupted trial {attrs.get('retry_of', trial.system_attrs.get('failed_trial'))}"
    return "strategy.points_to_evaluate"


def _proxy_pick(attrs: dict[str, Any]) -> str:
    """A training-free strategy's pick and its score, which ranked it before any training."""
    if isinstance(attrs.get("zen_score"), (int, float)):
        return f"zen_nas's candidate, Zen-score {attrs['zen_score']:.4g}"
    if isinstance(attrs.get("entropy"), (int, float)):
        return f"deepmad's design, entropy {attrs['entropy']:.4g}"
    return ""


def _picked_by(trial: FrozenTrial) -> str:
    """The proxy score beside the trained one, so `status` shows whether the proxy's ranking held (they were
    in `searchlab trials` and the export only)."""
    proxy = _proxy_pick(trial.user_attrs)
    if not proxy:
        return ""
    stage = trial.user_attrs.get("proxy_trial")
    return f"\n    picked as {proxy}" + (f" (trial {stage} of its stage's study)" if isinstance(stage, int) else "")


def describe_trial(study: optuna.Study, trial: FrozenTrial) -> str:
    values = ", ".join(f"{v:.4f}" for v in trial.values or [])
    metrics = trial.user_attrs.get("metrics", {})
    keys = [k for k in SHOWN_METRICS if k in metrics and k not in COSTS] or list(metrics)[:SHOWN_OWN]
    # multi-label accuracy is exact match, headed so as in the report: 0.55 read as a per-label accuracy
    exact = " (exact match)" if trial.user_attrs.get("task_kind") == "multilabel" else ""
    shown = ", ".join(f"{k}{exact if k == 'accuracy' else ''}={fmt(metrics[k])}" for k in keys)
    costs = ", ".join(f"{k}={fmt(metrics[k])}" for k in COSTS if k in metrics)
    costs = f"\n    costs: {costs}" if costs else ""
    architecture = trial.user_attrs.get("architecture")
    # A searched architecture is tens of model.* parameters (one per block setting): its string reads better
    params = ", ".join(f"{k}={fmt(v)}" for k, v in trial.params.items()
                       if not (architecture and k.startswith("model.")))
    model = f"\n    architecture: {architecture}" if architecture else ""
    cut = f"\n    cut short: {trial.user_attrs['cut_short']}" if "cut_short" in trial.user_attrs else ""
    searched = f"\n    params:  {params}" if params else ""   # a fixed space repeated over seeds has none
    scored = f"\n    {_scored_on(trial)}: {shown}" if shown else ""   # a function returning its objective only
    return (f"  trial {trial.number}: value {values}{model}{searched}{scored}"
            + _threshold(trial) + _per_class(trial) + costs + cut + _picked_by(trial) + _learned_from(trial))


def _learned_from(trial: FrozenTrial) -> str:
    """Its GAN study's doubts about a generator trial, and the generator a classify trial took images from: the
    run-start warning points here, and a ranking of trials with and without generated images reads by it."""
    attrs, said = trial.user_attrs, ""
    if isinstance(attrs.get("suspect"), str):
        said += f"\n    suspect: {attrs['suspect']}"
    origin = attrs.get("synthetic_from")
    if isinstance(origin, dict) and origin.get("export"):
        images = origin.get("images") or {}
        counts = ", ".join(f"{n} {name}" for name, n in images.items()) if isinstance(images, dict) else ""
        said += (f"\n    synthetic images: {counts or 'some'} from {origin['export']} (weights sha256 "
                 f"{str(origin.get('sha256', ''))[:16]}...)")
    return said


def _scored_on(trial: FrozenTrial) -> str:
    """What a trial's metrics are of: a classifier's are validation scores (a fold mean under CV), never test."""
    attrs = trial.user_attrs
    if "task_kind" not in attrs:   # a GAN's or a callable task's own scores
        return "metrics"
    runs = " (mean over folds)" if "cv_folds" in attrs else " (mean over repeats)" if "repeats" in attrs else ""
    return f"validation{runs}"


def _threshold(trial: FrozenTrial) -> str:
    """The decision threshold(s) the metrics shown are at (sensitivity, accuracy...; not AUC): chosen on
    validation, or the fixed 0.5, which was left unsaid though a reader comparing trials needs it too."""
    chosen = trial.user_attrs.get("threshold")
    thresholds = chosen if isinstance(chosen, list) else [chosen]
    if chosen is None or not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in thresholds):
        return ""   # none, or not a threshold of ours (a user attribute of that name)
    if all(t == 0.5 for t in thresholds):
        # multi-class trials record 0.5 too but predict the argmax; other tasks' 0.5 is not ours to explain
        if trial.user_attrs.get("task_kind") not in ("binary", "multilabel"):
            return ""
        how = " (fixed)" if _threshold_rule(trial) == "fixed" else f" (chosen on val by {_threshold_rule(trial)})"
        return f", threshold{' 0.5 for every label' if isinstance(chosen, list) else '=0.5'}{how}"
    # under CV the metrics are the folds' mean (each fold at thresholds chosen on the other folds); these are the
    # exported model's, chosen on the validation split (multi-label ones were shown as if the metrics were at them)
    where = " (the exported model's, chosen out of fold on train+val)" if "bag" in trial.user_attrs else \
        " (the exported model's, chosen on val)" if "cv_folds" in trial.user_attrs else ""
    if not isinstance(chosen, list):
        return f", threshold={_shown_threshold(chosen)}{where}"
    names = trial.user_attrs.get("class_names") or [str(j) for j in range(len(chosen))]
    always = [name for name, t in zip(names, chosen) if t <= 0.0]
    flagged = f" (0: {', '.join(always)} flagged on every image)" if always else ""
    return (", thresholds " + " ".join(f"{name}={_shown_threshold(t)}" for name, t in zip(names, chosen)) + flagged
            + where)


def _shown_threshold(value: float) -> str:
    """3 digits, but never rounded onto the edge of the scores: 0.9999970 shown as 1 read as "flag nothing"."""
    shown = f"{value:.3g}"
    return f"{value:.7g}" if float(shown) in (0.0, 1.0) and value not in (0.0, 1.0) else shown


def _threshold_rule(trial: FrozenTrial) -> str:
    """imbalance.threshold as the trial ran it ("fixed" by default), read from its recorded config without
    importing the training code (status imports no torch)."""
    for attr in ("config_with_defaults", "config"):
        config = trial.user_attrs.get(attr)
        imbalance = config.get("imbalance") if isinstance(config, dict) else None
        if isinstance(imbalance, dict) and isinstance(imbalance.get("threshold"), str):
            return imbalance["threshold"]
    rule = trial.params.get("imbalance.threshold", "fixed")
    return rule if isinstance(rule, str) else "fixed"


def _per_class(trial: FrozenTrial) -> str:
    """Each class's (label's) own AUC and sensitivity by name: a macro mean can hide a useless label or a
    rare class the model never finds."""
    metrics, names = trial.user_attrs.get("metrics", {}), trial.user_attrs.get("class_names", [])
    lines = ""
    for metric, title in (("auc", "AUC"), ("recall", "sensitivity")):
        if not any(f"{metric}_class_{j}" in metrics for j in range(len(names))):
            continue   # a binary trial, or one recorded before per-class scores
        # an undefined score is not stored (nan): said so with why, where the label used to drop out unsaid
        per_class = [f"{name} {fmt(metrics[f'{metric}_class_{j}'])}" if f"{metric}_class_{j}" in metrics
                     else f"{name} n/a ({_undefined(trial, metric, j)})" for j, name in enumerate(names)]
        lines += f"\n    {title} per class: {', '.join(per_class)}"
    return lines


def _undefined(trial: FrozenTrial, metric: str, j: int) -> str:
    """Why class (label) j's AUC or sensitivity is missing: the images it is scored on hold none of it, or, for a
    label's AUC, nothing but it (metrics.compute_metrics); its sensitivity, missing too or not, tells which."""
    where = "some held-out fold" if "cv_folds" in trial.user_attrs else "the validation split"
    label = trial.user_attrs.get("task_kind") == "multilabel"
    if metric == "recall" or f"recall_class_{j}" not in trial.user_attrs.get("metrics", {}):
        return f"{'never on' if label else 'no images of it'} in {where}"
    return f"{'on in every image' if label else 'no images of other classes'} in {where}"


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isfinite(value) and (abs(value) >= 1e5 or (0 < abs(value) < 1e-3)):
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value)
