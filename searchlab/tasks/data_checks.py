"""Checks of a classify study against its data when a run starts (train and val loaded once): an objective
the data cannot score, or cannot score on the validation split, and cross-validation folds the rarest class
cannot fill. Each would fail every trial after its training, so each is refused before any; a per-class
objective named by a class's number rather than its index is warned about."""
from __future__ import annotations

import numpy as np

from searchlab.config.load import Study
from searchlab.config.schema import CsvData, DataConfig, FolderData
from searchlab.data.common import resolve_path
from searchlab.data.types import ImageDataset
from searchlab.errors import ConfigError, DataError, RegistryError
from searchlab.metrics import METRICS, PER_CLASS, compute_metrics, metric_info
from searchlab.tasks.crossval import pool_train_val, units_per_class


def check_objectives_defined_on_val(study: Study, data: ImageDataset, cross_validated: bool) -> None:
    """An objective such as AUC is undefined where the validation split lacks a class (or a label is never, or
    always, on): every trial would train and then fail. Trials that select by cross-validation over
    train+val do not score on the validation split, so their runs are not stopped here (`cross_validated`: some
    probed config does)."""
    if cross_validated:
        return
    val = data.splits["val"].labels.numpy()
    outputs = val.shape[1] if data.kind == "multilabel" else len(data.class_names)
    probs = np.random.default_rng(0).random((len(val), outputs) if outputs > 2 or val.ndim == 2 else len(val))
    if data.kind == "multiclass":
        probs = probs / probs.sum(axis=1, keepdims=True)
    metrics = compute_metrics(val, probs, data.kind, len(data.class_names))
    undefined = [metric for metric, _ in study.objectives if metric in metrics and not np.isfinite(metrics[metric])]
    # a class's F1 where it has no positive: 0 if the model ever predicts it, else nan (0 / 0), whatever it learned
    absent = set(classes_without_positives(val, len(data.class_names)))
    undefined += [metric for metric, _ in study.objectives if metric not in undefined
                  and (per_class := PER_CLASS.fullmatch(metric)) and per_class[1] == "f1" and int(per_class[2]) in absent]
    if undefined:
        if data.kind == "multilabel":
            short = [j for j in range(len(data.class_names)) if val[:, j].min() == val[:, j].max()]
            lacking = [f"{data.class_names[j]} ({'never' if val[:, j].max() == 0 else 'always'} on)" for j in short]
        else:
            short = [j for j in range(len(data.class_names)) if not (val == j).any()]
            lacking = [f"{data.class_names[j]} (no image)" for j in short]
        said = (f"objective {', '.join(undefined)} is undefined on the validation split ({len(val)} images): it "
                f"needs every class, and every label both on and off, but here: {', '.join(lacking)}. ")
        cfg = study.config.data
        too_rare = too_rare_to_split(data, cfg)
        if too_rare and set(short) <= set(too_rare[2]):   # too few to split anyhow: no fix but more of them
            raise DataError(said + f"{too_rare[0]}. Fix: {too_rare[1]}")
        # cross-validation is a fix only when every class can fill 2 folds
        cv = (f"; and {too_rare[0]}: {too_rare[1]}" if too_rare
              else ", or select by cross-validation (train.cv_folds)")
        if isinstance(cfg, FolderData):   # single-label; no split column, no label columns to drop
            own_val = resolve_path(cfg.path, study.base_dir) / "val"
            if own_val.is_dir():   # the user's own val/ folder: no fraction or key draws it
                missing = [own_val / name for j, name in enumerate(data.class_names) if not (val == j).any()]
                raise DataError(said + f"Fix: add images of {'that class' if len(missing) == 1 else 'those classes'} "
                                f"to {', '.join(f'{p}/' for p in missing)} (the validation split is your val/ "
                                f"folder){cv}")
            raise DataError(said + "Fix: give the validation split such images (raise data.val_fraction, or give "
                            f"your own val/ folder){cv}")
        if kept := _kept_in_train(data, cfg, short):
            raise DataError(said + kept)
        raise DataError(said + "Fix: give the validation split such images (data.val_fraction, or the CSV's split "
                        "column), drop a label that is (almost) never on from data.label_columns" + cv)


def _kept_in_train(data: ImageDataset, cfg: DataConfig, short: list[int]) -> str | None:
    """Labels on in no more images than there are held-out splits, which the drawn split keeps in train
    (data/label_stratify.py): a larger val_fraction cannot move one, so it is no fix to offer."""
    if not isinstance(cfg, CsvData) or cfg.split_column is not None or data.kind != "multilabel":
        return None
    held_out = 1 + (cfg.test_fraction > 0)
    totals = sum(split.labels.numpy().sum(0) for split in data.splits.values())
    kept = [data.class_names[j] for j in short if 0 < totals[j] <= held_out]
    if not kept:
        return None
    test = "; or data.test_fraction: 0, leaving one held-out split" if held_out == 2 else ""
    one = len(kept) == 1
    return (f"{', '.join(map(repr, kept))} {'is' if one else 'are'} on in no more images than there are held-out "
            f"splits ({held_out}), so the split keeps {'it' if one else 'them'} in train. Fix: add images where "
            f"{'it is' if one else 'they are'} on, or drop {'it' if one else 'them'} from data.label_columns{test}")


def too_rare_to_split(data: ImageDataset, cfg: DataConfig | None = None) -> tuple[str, str, list[int]] | None:
    """The classes (labels) of train+val in fewer than 2 images (patients when grouped), in words, a fix that
    works, and their indices; None if there is none. Such a class cannot be both trained on and validated on,
    nor fill 2 folds, so neither a validation split nor cross-validation (cv_folds 2 at least) is a fix."""
    pool = pool_train_val(data)
    counts = units_per_class(pool, len(data.class_names))
    rare = [j for j in range(len(counts)) if counts[j] < 2]
    if not rare:
        return None
    units = "images" if pool.groups is None else "patients"
    what, has = ("label", "is on in") if data.kind == "multilabel" else ("class", "has")
    named = ", ".join(f"{what} {data.class_names[j]!r} {has} {counts[j]} {units[:-1] if counts[j] == 1 else units}"
                      for j in rare)
    account = (f"{named} of train+val{' (sub-folders or data.group_column)' if units == 'patients' else ''}, "
               "fewer than the 2 that training and validating on it (or cross-validation, cv_folds 2 at least) need")
    if data.kind == "multilabel":
        drop = "drop it from data.label_columns"
    elif isinstance(cfg, FolderData):
        drop = "remove its class folder(s)"
    elif isinstance(cfg, CsvData):
        drop = f"drop its rows from the CSV (column {cfg.label_columns[0]!r})"
    else:
        drop = "drop that class (its CSV rows, or its class folder)"
    return account, f"add {units} with that {what} to the data, or {drop}", rare


def classes_without_positives(labels: np.ndarray, n_classes: int) -> list[int]:
    """Indices of the classes no image has (single-label), or of the labels on in none (multi-label)."""
    if labels.ndim == 2:
        return [j for j in range(n_classes) if labels[:, j].max(initial=0) == 0]
    return [j for j in range(n_classes) if not (labels == j).any()]


def metrics_for(data: ImageDataset) -> str:
    """The metric names a task of this data defines (per-class ones by their pattern)."""
    names = [name for name, info in METRICS.items() if data.kind in info.kinds]
    per_class = ["f1_class_<i>"] + (["auc_class_<i>", "recall_class_<i>"] if data.kind != "binary" else [])
    return ", ".join(sorted(names) + per_class) + f" (<i>: 0 to {len(data.class_names) - 1})"


def check_metric_fits_data(metric: str, data: ImageDataset) -> None:
    """E.g. sensitivity on a multi-class set, or f1_class_5 with 3 classes: refused before any trial."""
    try:
        metric_info(metric, data.kind, len(data.class_names))
    except RegistryError as exc:
        classes = ", ".join(f"{i} = {name}" for i, name in enumerate(data.class_names))
        metric_part, _, named = metric.partition("_class_") if "_class_" in metric else metric.partition("_")
        fix = (f"{metric_part}_class_{data.class_names.index(named)} (per-class metrics are named by the class's "
               "index)" if named in data.class_names else f"one of {metrics_for(data)}")
        raise ConfigError(f"{exc} ({data.kind} task; classes: {classes})", key="objective", got=metric,
                          fix=fix) from None


def number_named_class_warning(metric: str, class_names: list[str]) -> str | None:
    """Classes named by numbers other than their index (a CSV's labels 1 and 2): f1_class_1 reads as the class
    named "1" but is index 1, the class named "2". Said, as the run may be exactly what was meant."""
    per_class = PER_CLASS.fullmatch(metric)
    if not per_class:
        return None
    index, name = int(per_class[2]), class_names[int(per_class[2])]
    if name == str(index) or per_class[2] not in class_names:
        return None
    classes = ", ".join(f"{i} = {c}" for i, c in enumerate(class_names))
    return (f"objective {metric} scores the class at index {index}, which is named {name!r} (per-class metrics "
            f"are named by index; classes: {classes}). Fix: for the class named {per_class[2]!r} write "
            f"{per_class[1]}_class_{class_names.index(per_class[2])}")


def check_folds_within_classes(data: ImageDataset, drawn: list[int]) -> None:
    """K-fold needs K images of every class (positives of every label) in train+val, or every fold's validation
    part misses one and its metrics are undefined; when even the fewest folds the space draws need more than the
    rarest class has, every CV trial would fail: say so now, naming the class or label (`drawn`: the folds of
    the probed configs that cross-validate)."""
    if not drawn:
        return
    pool = pool_train_val(data)
    counts = units_per_class(pool, len(data.class_names))
    rarest = int(counts.argmin())
    units = "images" if pool.groups is None else "groups of images (patients: sub-folders or data.group_column)"
    what = "label" if data.kind == "multilabel" else "class"
    too_rare = too_rare_to_split(data)
    if too_rare:   # "use cv_folds 1 or fewer (2 at least)" would be no fix
        raise ConfigError(f"{min(drawn)}-fold cross-validation needs at least {min(drawn)} {units} of every {what} "
                          f"in train+val{' (positives)' if what == 'label' else ''}, and {too_rare[0]}",
                          key="space.train.cv_folds", got=min(drawn), fix=too_rare[1])
    if counts[rarest] < min(drawn):
        raise ConfigError(f"{min(drawn)}-fold cross-validation needs at least {min(drawn)} {units} of every {what} "
                          f"in train+val{' (positives)' if what == 'label' else ''}, and {what} "
                          f"{data.class_names[rarest]!r} has {counts[rarest]}",
                          key="space.train.cv_folds", got=min(drawn),
                          fix=f"use cv_folds {counts[rarest]} or fewer (2 at least), or add images of that class")
