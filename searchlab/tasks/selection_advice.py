"""Ways a search can select trials on noise or on a degenerate model, said once when a run starts.

- A validation split without a class, or too small to select on: with m images of its rarest class, one image
  moves a trial's validation scores about that class by up to 1/m (AUC included). Not said when every trial
  cross-validates.
- An objective scored at a threshold chosen on the very images that rank the trials (youden, f1, ...
  without cross-validation): such trials are ranked optimistically, against fixed-threshold ones most of all.
- Sensitivity or specificity (or a recall that the same trick fills) as the only objective: "every image
  positive" scores sensitivity 1.
- A class, or label, with no image in the training split (train+val when every trial cross-validates):
  no trial can learn it; or with one image only: trials learn that image (with the balanced sampler it is
  about 1/K of every batch, K classes: half with two).
- A multi-label validation split where a label is never (or always) on: its threshold cannot be chosen.
- Cross-validation with train.checkpoint: best: each fold is scored at the epoch its own held-out images
  chose, so the folds' mean is a maximum over epochs.
"""
from __future__ import annotations

import numpy as np

from searchlab.data.types import ImageDataset
from searchlab.tasks.data_checks import classes_without_positives

FEWEST = 10   # images of the rarest class (positives or negatives of the rarest label, multi-label)


def small_validation_warning(data: ImageDataset, cross_validated: bool) -> str | None:
    if cross_validated or "val" not in data.splits:
        return None
    val = data.splits["val"]
    labels = val.labels.numpy()
    if absent := _absent_from_val(labels, data):
        return absent
    short = _short(labels, data, val.groups)
    if not short:
        return None
    fewest = short[0][1]
    return (f"the validation split has {len(labels)} images, and only {_counted(short)}: one image of "
            f"{'those' if len(short) == 1 else 'the rarest'} moves a trial's validation scores about its class "
            f"(sensitivity, F1, AUC, ...) by up to {1 / fewest:.2f}{_alike(val.groups)}, so trials are selected on "
            "noise. Fix: select by k-fold cross-validation over train+val (space.train.cv_folds: 5), or give the "
            "validation split more images")


def _counted(short: list[tuple[str, int, int | None]]) -> str:
    """"4 of them are of class 'malignant' (2 patients), 7 of class 'b' (3 patients)": the rarest first."""
    said = []
    for index, (which, images, patients) in enumerate(short):
        lead = f"{images} of them {'is' if images == 1 else 'are'} " if index == 0 else f"{images} "
        said.append(lead + which + (f" ({patients} patient{'s' * (patients != 1)})" if patients else ""))
    return ", ".join(said)


def _alike(groups: tuple[str, ...] | None) -> str:
    return "" if not groups else " (and one patient's images move them together)"


THRESHOLD_FREE = frozenset({"auc", "average_precision"})   # scored from probabilities alone


def threshold_selection_warning(objectives: list[str], chosen_on_val: bool) -> str | None:
    """`chosen_on_val`: some trial chooses its threshold (youden, f1, ...) on the split that scores it."""
    bound = [m for m in objectives if m not in THRESHOLD_FREE and not m.startswith("auc_class_")]
    if not chosen_on_val or not bound:
        return None
    return (f"{', '.join(bound)} {'is' if len(bound) == 1 else 'are'} scored at a decision threshold chosen on the "
            "same validation images that "
            "rank the trials (space.imbalance.threshold), so trials that choose one are ranked optimistically, "
            "above fixed-threshold trials most of all. Fix: space.train.cv_folds (each fold is scored at a "
            "threshold chosen on the other folds), or an objective free of thresholds (auc, average_precision)")


# Only these are about one class: binary precision, recall and f1 are macro means over both classes
# (searchlab/metrics.py), so data.positive_class leaves them as they are.
POSITIVE_CLASS_METRICS = ("sensitivity", "specificity", "average_precision")


def positive_class_note(objectives: list[str], data: ImageDataset, chosen: bool, rules: set[str]) -> str | None:
    """Which class a two-class objective such as sensitivity is of, and at what threshold, when the study did not
    say (data.positive_class): BreastMNIST's class 1 is 'normal, benign', so a "sensitivity" study searched for
    sensitivity to benign images, and nothing said so before its export."""
    named = [m for m in objectives if m in POSITIVE_CLASS_METRICS]
    if not named or chosen or data.kind != "binary":
        return None
    at = (" at threshold 0.5" if rules == {"fixed"} else
          f" at the threshold each trial's rule chooses ({', '.join(sorted(rules))})")
    bound = [m for m in named if m not in THRESHOLD_FREE]
    scored = f"; {', '.join(bound)} {'is' if len(bound) == 1 else 'are'} scored{at}" if bound else ""
    return (f"{', '.join(named)} {'is' if len(named) == 1 else 'are'} of class {data.class_names[1]!r} (class 1, "
            f"the positive class){scored}. Fix: if the class that matters is {data.class_names[0]!r}, set "
            f"data.positive_class: {data.class_names[0]!r}")


def one_sided_objective_warning(objectives: list[str], kind: str = "binary") -> str | None:
    """An objective alone that a model scores 1 on by calling every image positive (or negative): sensitivity,
    specificity; a multi-label `recall` (every label on); a class's `recall_class_<i>` (that class, or label,
    for every image)."""
    if len(objectives) != 1:
        return None
    metric = objectives[0]
    if metric in ("sensitivity", "specificity"):
        other = "specificity" if metric == "sensitivity" else "sensitivity"
        return (f"{metric} alone is the objective: a model that calls every image "
                f"{'positive' if metric == 'sensitivity' else 'negative'} scores 1. Fix: add {other} as a "
                f"second objective (a Pareto front), or use balanced_accuracy or auc")
    if (metric == "recall" and kind == "multilabel") or metric.startswith("recall_class_"):
        every = "every label on for every image" if metric == "recall" else \
            f"{'label' if kind == 'multilabel' else 'class'} {metric.rsplit('_', 1)[1]} for every image"
        return (f"{metric} alone is the objective: a model that calls {every} scores 1. Fix: add precision as a "
                "second objective (a Pareto front), or use f1 or auc")
    return None


def unchoosable_threshold_warning(data: ImageDataset, chosen: bool, cross_validated: bool = False) -> str | None:
    """`chosen`: some trial scored on the validation split chooses its thresholds there; `cross_validated`: some
    trial that chooses them selects by train.cv_folds. A label never (or always) on there gets none: it keeps 0.5,
    which flagged every image when the label's probabilities sat just above it. A cross-validated trial's metrics
    are the folds' (thresholds chosen on the other folds, AUC over train+val), where the label has images: only
    its exported model's thresholds come from the validation split."""
    if not (chosen or cross_validated) or data.kind != "multilabel" or "val" not in data.splits:
        return None
    labels = data.splits["val"].labels.numpy()
    constant = [f"'{name}' ({'never' if labels[:, j].max() == 0 else 'always'} on)"
                for j, name in enumerate(data.class_names) if labels[:, j].min() == labels[:, j].max()]
    if not constant:
        return None
    said = f"label(s) {', '.join(constant)} in all {len(labels)} validation images: no threshold can be chosen " \
           "for them there (space.imbalance.threshold)"
    if chosen:
        said += (", so trials scored on that split keep 0.5 for them, and their AUC there is undefined" +
                 (_CROSSED_TOO if cross_validated else ""))
    else:
        said += _CROSSED
    return (f"{said}. Fix: give the validation split images with and without them (data.val_fraction, or the "
            "CSV's split column), or drop them from data.label_columns")


# what a label never (always) on in the validation split does to trials that select by cv_folds
_CROSSED_ONLY = ("their metrics are the folds' over train+val, each fold at thresholds chosen on the other folds, so "
                 "these labels are scored there, AUC included; but the model each exports (train.cv_model: refit) "
                 "takes its thresholds from the validation split, so it keeps 0.5 for them (cv_model: bag chooses "
                 "its thresholds out of fold)")
_CROSSED = f": in the cross-validated trials (space.train.cv_folds) {_CROSSED_ONLY}"
_CROSSED_TOO = f"; in the cross-validated ones (space.train.cv_folds) {_CROSSED_ONLY}"


def best_epoch_cv_warning(checkpoints_of_cv_trials: list[str]) -> str | None:
    """`checkpoints_of_cv_trials`: train.checkpoint of each probed config that cross-validates."""
    if "best" not in checkpoints_of_cv_trials:
        return None
    return ("space.train.cv_folds with train.checkpoint: best (the default): each fold keeps, and is scored at, "
            "the epoch that scored best on its own held-out images, so a trial's mean over folds is a maximum over "
            "epochs, optimistic most of all for small folds and long runs (and cv_model: refit trains for those "
            "folds' median best epoch). Fix: space.train.checkpoint: last (each fold runs its whole schedule and is "
            "scored at its final weights, as studies/breastmnist_search.yaml does)")


def _absent_from_val(labels: np.ndarray, data: ImageDataset) -> str | None:
    """A class with no validation image at all (an objective that cannot be scored without it, AUC, is refused
    elsewhere): the others' scores rank the trials, and a model that never predicts it loses nothing."""
    if data.kind == "multilabel":
        return None   # a label never on there: unchoosable_threshold_warning and the AUC refusal say it
    absent = [data.class_names[j] for j in classes_without_positives(labels, len(data.class_names))]
    if not absent:
        return None
    return (f"the validation split has {len(labels)} images and none of class(es) {', '.join(map(repr, absent))}: "
            "trials are selected without them (a model that never predicts them loses nothing there, and their "
            "recall, F1 and AUC are not scored). Fix: select by k-fold cross-validation over train+val "
            "(space.train.cv_folds: 5), or give the validation split images of them (data.val_fraction, the "
            "CSV's split column, or your own val/ folder)")


def _short(labels: np.ndarray, data: ImageDataset,
           groups: tuple[str, ...] | None) -> list[tuple[str, int, int | None]]:
    """(what, images, patients or None) of every class -- positives or negatives of each label, multi-label --
    with fewer than FEWEST validation images but some: none at all is judged elsewhere (AUC is undefined)."""
    if data.kind == "multilabel":
        masks = [(f"{c} {'positives' if on else 'negatives'}", labels[:, j] == on)
                 for j, c in enumerate(data.class_names) for on in (1, 0)]
    else:
        masks = [(f"of class {c!r}", labels == j) for j, c in enumerate(data.class_names)]
    short = [(what, int(mask.sum()), len({groups[i] for i in np.flatnonzero(mask)}) if groups else None)
             for what, mask in masks if 0 < mask.sum() < FEWEST]
    return sorted(short, key=lambda item: item[1])


def untrainable_class_warning(data: ImageDataset, cross_validated: bool) -> str | None:
    """Classes (labels' positives, multi-label) that the images trials train on never show: trials still run,
    and the class's output is scored on validation data, but nothing taught it."""
    splits = ("train", "val") if cross_validated else ("train",)
    labels = np.concatenate([data.splits[s].labels.numpy() for s in splits if s in data.splits])
    absent = [data.class_names[j] for j in classes_without_positives(labels, len(data.class_names))]
    what = "label(s) {} are on in none" if data.kind == "multilabel" else "class(es) {} have none"
    where = "train+val (cross-validation pools them)" if cross_validated else "the training split"
    # under cross-validation a class with fewer images than folds is refused (check_folds_within_classes)
    single = None if cross_validated else _single_image_classes(labels, data, where)
    if not absent:
        return single
    untrainable = (f"{what.format(', '.join(map(repr, absent)))} of the {len(labels)} images in {where}: no trial "
                   "can learn them, and their scores are chance. Fix: give the training split images of them (data."
                   "val_fraction and test_fraction, or the CSV's split column), or drop them from the data")
    return untrainable if single is None else f"{untrainable}; and {single}"


def _single_image_classes(labels: np.ndarray, data: ImageDataset, where: str) -> str | None:
    """Classes (labels' positives) with exactly one image to train on: a trial learns that one image, not the
    class; with imbalance.sampler: balanced it is drawn for about 1/K of every batch (K classes with images)."""
    counts = labels.sum(axis=0) if data.kind == "multilabel" else \
        np.bincount(labels.astype(int), minlength=len(data.class_names))
    # beside classes of several images only: that one image is then drawn over and over (every class at one
    # image is a smoke test, where nothing is over-drawn)
    single = [data.class_names[j] for j, count in enumerate(counts) if count == 1 and counts.max() > 1]
    if not single:
        return None
    what = "label(s) {} are on in only one" if data.kind == "multilabel" else "class(es) {} have only one"
    return (f"{what.format(', '.join(map(repr, single)))} of the {len(labels)} images in {where}: trials learn "
            f"that one image rather than the class (with imbalance.sampler: balanced it is drawn over and over, "
            f"{_balanced_share(counts, data.kind)}), and its scores are noise. Fix: give the training split "
            "more images of it (data.val_fraction and test_fraction, or the CSV's split column), or drop it from "
            "the data")


def _balanced_share(counts: np.ndarray, kind: str) -> str:
    """How much of a batch the balanced sampler gives one class's image (imbalance.epoch_order): every class with
    images is drawn equally often, so 1/K of each batch for K such classes. Multi-label draws even out labels
    that overlap, where no one share holds: said without a number."""
    if kind == "multilabel":
        return "as often as the images of each other label"
    present = int((counts > 0).sum())
    return "about half of every batch" if present == 2 else f"about 1 in {present} images of every batch"
