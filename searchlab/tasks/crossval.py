"""Selection on the mean of several trainings: k-fold cross-validation over train + validation
(`train: {cv_folds: K}`), repeated with new folds (`repeats: R`), or R seeds on the official split.

On a small set the validation split is tiny (BreastMNIST: 78 images), and choosing the best of many trials on
it overfits it. With cv_folds the trial trains K models, each on K-1 folds of train+val, validates each on
its held-out fold, and reports the mean over folds as its objective. The test split is never read here.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from searchlab.data.grouping import gather, group_counts, settle, spans_classes
from searchlab.data.types import ImageDataset, ImageSplit
from searchlab.errors import TrialFailure
from searchlab.imbalance import Threshold
from searchlab.metrics import compute_metrics
from searchlab.tasks.train import Batches, TrainResult, normalisation

FitFold = Callable[[Batches, int], TrainResult]   # (the fold's batches, the fold's seed) -> trained result


Split = tuple[dict[str, int], Batches]   # ({"repeat": r, "fold": f}, the batches that run trains on)


@dataclass(frozen=True)
class FoldModel:
    """One run's trained model with what scoring it out of fold needs (kept for train.cv_model: bag)."""

    where: dict[str, int]                     # {"repeat": r, "fold": f}
    state: dict[str, torch.Tensor]            # the weights the run kept (train.checkpoint: best or last epoch)
    preprocessing: dict[str, list[float]]     # this run's normalisation (from its training part)
    val_labels: np.ndarray                    # the held-out fold's labels
    val_probs: np.ndarray                     # and the kept model's probabilities on it


@dataclass(frozen=True)
class HeldOut:
    """One fold's held-out labels and the kept model's probabilities on them."""

    where: dict[str, int]
    labels: np.ndarray
    probs: np.ndarray


@dataclass(frozen=True)
class CrossFoldThresholds:
    """Score each fold at a decision threshold chosen on the other folds of its repeat, never on itself.

    A threshold chosen on the fold it is scored on (Youden, F1...) fits that fold's noise: on 40-image folds of
    uninformative scores it still reaches a mean balanced accuracy of ~0.59 (tests/test_cv.py), and an
    objective such as balanced_accuracy or f1 would select trials on that optimism. The other folds' held-out
    predictions never saw the fold's labels. With no other fold done yet, the default threshold (0.5) is used.
    """

    choose: Callable[[np.ndarray, np.ndarray], Threshold]   # (labels, probs) -> threshold, the trial's rule
    kind: str
    n_classes: int

    def scores(self, runs: list[HeldOut]) -> list[tuple[dict[str, float], Threshold]]:
        """Per run: (its metrics at its cross-fold threshold, that threshold)."""
        return [self._score(run, [o for o in runs if o.where.get("repeat") == run.where.get("repeat")
                                  and o.where["fold"] != run.where["fold"]]) for run in runs]

    def _score(self, run: HeldOut, others: list[HeldOut]) -> tuple[dict[str, float], Threshold]:
        if others:
            threshold = self.choose(np.concatenate([o.labels for o in others]),
                                    np.concatenate([o.probs for o in others]))
        else:
            threshold = {"multilabel": [0.5] * run.labels.shape[-1], "binary": 0.5}.get(self.kind)
        return compute_metrics(run.labels, run.probs, self.kind, self.n_classes, threshold=threshold), threshold


@dataclass
class CVResult:
    metrics: dict[str, float]                 # means over the runs done, <objective>_std, cv_folds_done / repeats_done
    folds: list[dict[str, Any]] = field(default_factory=list)   # per run: repeat, fold, sizes, best epoch, metrics
    final_epochs: int = 1                     # epochs for the exported model: median of runs' best epochs + 1
    train_seconds: float = 0.0
    images_seen: int = 0
    first: TrainResult | None = None          # the first run (seed + 0), kept whole
    models: list[FoldModel] = field(default_factory=list)   # every run's model, when asked to keep them
    cut_short: bool = False                   # the study's timeout stopped a run before its planned epochs


def pool_train_val(data: ImageDataset) -> ImageSplit:
    """The train and validation splits as one (train first); the test split is never part of it."""
    parts = [data.splits["train"], data.splits["val"]]
    groups = None
    if any(p.groups is not None for p in parts):   # an image without a group stands alone
        groups = tuple(g for i, p in enumerate(parts)
                       for g in (p.groups or tuple(f"\0{i}:{j}" for j in range(len(p)))))
    return ImageSplit(images=torch.cat([p.images for p in parts]), labels=torch.cat([p.labels for p in parts]),
                      groups=groups)


# How folds are dealt; a bagged trial records it (bagging.bag_record) so that its export deals the same folds.
# 2: multi-label images without groups stratified per label's positives (1 dealt them at random, and a label
# with a few positives could miss a fold: every trial's AUC undefined, or that label's metrics dropped).
FOLD_SCHEME = 2


def fold_indices(labels: torch.Tensor | np.ndarray, k: int, seed: int, class_names: tuple[str, ...] | None = None,
                 groups: tuple[str, ...] | None = None, scheme: int = FOLD_SCHEME) -> list[np.ndarray]:
    """K disjoint folds covering every index, deterministic for the seed; stratified by class.

    Each class is shuffled and dealt round-robin (continuing across classes), so every fold holds each class
    within one image of its share and fold sizes differ by at most one. With `groups` (a patient's sub-folder
    of a class folder, so one class per group), whole groups are dealt instead: see _grouped_folds; groups
    holding several classes or multi-label images (a CSV's group_column) are dealt as in data/grouping.py.
    Multi-label images without groups are dealt one by one like such groups: each fold gets a k-th of the
    images and of each label's positives (scheme 1, recorded by bags of earlier versions: random folds).
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    if groups is not None and spans_classes(labels, groups):
        return _spanning_folds(labels, groups, k, rng, class_names)
    if groups is not None:
        return _grouped_folds(labels, groups, k, rng, class_names)
    if labels.ndim == 2 and scheme >= 2:
        return _spanning_folds(labels, tuple(map(str, range(len(labels)))), k, rng, class_names)
    if labels.ndim == 2:
        order = rng.permutation(len(labels))
    else:
        classes, counts = np.unique(labels, return_counts=True)
        if counts.min() < k:
            rarest = classes[counts.argmin()]
            name = repr(class_names[rarest]) if class_names else rarest
            raise TrialFailure(f"cv_folds={k}: class {name} has only {counts.min()} image(s) in train+val, fewer "
                               f"than the folds; lower space.train.cv_folds to {counts.min()} or fewer")
        order = np.concatenate([rng.permutation(np.flatnonzero(labels == c)) for c in classes])
    fold_of = np.arange(len(order)) % k
    return [np.sort(order[fold_of == f]) for f in range(k)]


def _grouped_folds(labels: np.ndarray, groups: tuple[str, ...], k: int, rng: np.random.Generator,
                   class_names: tuple[str, ...] | None) -> list[np.ndarray]:
    """Stratified group k-fold: per class, its groups in seeded order, biggest first, each to the fold holding
    the fewest images of that class so far (then the fewest overall). A patient's images are never both
    trained on and held out, and each class is spread as evenly as whole groups allow."""
    by_class: dict[int, dict[str, list[int]]] = {}
    for i, (label, group) in enumerate(zip(labels.tolist(), groups)):
        by_class.setdefault(label, {}).setdefault(group, []).append(i)
    rarest = min(by_class, key=lambda c: len(by_class[c]))
    if len(by_class[rarest]) < k:
        raise _too_few_groups(k, rarest, len(by_class[rarest]), class_names)
    fold_of = np.empty(len(labels), dtype=np.int64)
    per_fold = np.zeros(k)
    for c in sorted(by_class):
        members = by_class[c]
        order = [list(members)[i] for i in rng.permutation(len(members))]
        in_class = np.zeros(k)
        for group in sorted(order, key=lambda g: -len(members[g])):   # stable: ties keep the seeded order
            fold = min(range(k), key=lambda f: (in_class[f], per_fold[f], f))
            fold_of[members[group]] = fold
            in_class[fold] += len(members[group])
            per_fold[fold] += len(members[group])
    return [np.flatnonzero(fold_of == f) for f in range(k)]


def _spanning_folds(labels: np.ndarray, groups: tuple[str, ...], k: int, rng: np.random.Generator,
                    class_names: tuple[str, ...] | None) -> list[np.ndarray]:
    """Group k-fold where a group may hold several classes (or multi-label images): each fold's target is a
    k-th of every class (of the images and each label's positives, multi-label); see data/grouping.py."""
    multilabel = labels.ndim == 2
    members, counts = group_counts(labels, groups, class_names)
    if len(members) < k:
        what = ("image(s)" if len(members) == len(labels) else
                "group(s) of images (data.group_column), and a group stays in one fold")
        raise TrialFailure(f"cv_folds={k}: train+val holds {len(members)} {what}, fewer than the folds; lower "
                           f"space.train.cv_folds to {len(members)} or fewer")
    if not multilabel:
        having = (counts > 0).sum(0)
        rarest = int(np.argmin(np.where(having > 0, having, np.iinfo(np.int64).max)))
        if having[rarest] < k:
            raise _too_few_groups(k, rarest, int(having[rarest]), class_names)
    bins, short = settle(counts, np.repeat(counts.sum(0)[None] / k, k, axis=0), rng, multilabel)
    if short:
        fold, c = short[0]
        name = repr(class_names[c]) if class_names else c
        raise TrialFailure(f"cv_folds={k}: whole groups of images (data.group_column) leave fold {fold + 1} without "
                           f"an image of class {name}, which is in {int((counts[:, c] > 0).sum())} group(s); lower "
                           "space.train.cv_folds")
    return gather(members, bins, k)


def _too_few_groups(k: int, c: int, have: int, class_names: tuple[str, ...] | None) -> TrialFailure:
    name = repr(class_names[c]) if class_names else c
    return TrialFailure(f"cv_folds={k}: class {name} has only {have} group(s) of images (patients: sub-folders or "
                        "data.group_column, and loose images) in train+val, fewer than the folds, and a group "
                        f"stays in one fold; lower space.train.cv_folds to {have} or fewer")


def units_per_class(pool: ImageSplit, n_classes: int) -> np.ndarray:
    """What a stratified fold deals per class (per label's positives, multi-label): images, or groups of images
    when they have groups."""
    labels = pool.labels.numpy()
    members = [labels[:, c] == 1 if labels.ndim == 2 else labels == c for c in range(n_classes)]
    if pool.groups is None:
        return np.array([int(m.sum()) for m in members])
    return np.array([len({pool.groups[i] for i in np.flatnonzero(m)}) for m in members])


def fold_batches(pool: ImageSplit, folds: list[np.ndarray], fold: int, kind: str,
                 class_names: tuple[str, ...]) -> Batches:
    """Train on every fold but `fold`, validate on `fold`; normalisation from this fold's training part."""
    train_idx = torch.from_numpy(np.sort(np.concatenate([f for i, f in enumerate(folds) if i != fold])))
    val_idx = torch.from_numpy(folds[fold])
    train = ImageSplit(images=pool.images[train_idx], labels=pool.labels[train_idx])
    val = ImageSplit(images=pool.images[val_idx], labels=pool.labels[val_idx])
    return Batches(train=train, val=val, kind=kind, n_classes=len(class_names), preprocessing=normalisation(train),
                   class_names=tuple(class_names))


def mean_metrics(per_fold: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each metric every fold has (a nan in one fold makes that mean nan: no silent dropping)."""
    keys = [k for k in per_fold[0] if all(k in m for m in per_fold)]
    return {k: float(np.mean([m[k] for m in per_fold])) for k in keys}


def cv_splits(data: ImageDataset, k: int, fold_seed: int, repeats: int = 1) -> Iterator[Split]:
    """K folds over train+val, `repeats` times with fold seeds fold_seed, fold_seed + 1, ... (lazily)."""
    pool = pool_train_val(data)
    for repeat in range(repeats):
        folds = fold_indices(pool.labels, k, fold_seed + repeat, data.class_names, pool.groups)
        for fold in range(k):
            yield {"repeat": repeat, "fold": fold}, fold_batches(pool, folds, fold, data.kind, data.class_names)


def repeated_splits(batches: Batches, repeats: int) -> Iterator[Split]:
    """The official train/val split, `repeats` times (each run gets its own seed)."""
    for repeat in range(repeats):
        yield {"repeat": repeat}, batches


def progress_steps(runs: int, epochs: int) -> Callable[[int], int]:
    """Run index -> pruner step on the epoch scale: after run i of n, step ~ (i + 1) / n x epochs - 1.

    The study's pruner counts steps in epochs (its warm-up, Hyperband's max resource), whether a trial reports
    per epoch or per run; reporting run 0, 1, 2 as steps 0, 1, 2 would keep a 3-fold trial inside a 5-epoch
    warm-up for good. Distinct steps even when there are more runs than epochs."""
    scale = max(epochs, runs)
    return lambda index: round((index + 1) * scale / runs) - 1


def cross_validate(splits: Iterator[Split], seed: int, objective: str, fit: FitFold,
                   report: Callable[[int, dict[str, float], bool], None], out_of_time: Callable[[], bool],
                   step_of: Callable[[int], int] = lambda index: index, keep_models: bool = False,
                   thresholds: CrossFoldThresholds | None = None) -> CVResult:
    """Train one fresh model per split (seeds seed, seed + 1, ...); after each, report the running means.

    Folds should come from the study's seed, so every trial is scored on the same folds and trials compare
    fairly; the models' initialisation and batch order come from `seed` (the trial's).

    `report(step, running means, judge)` (step = step_of(run index)) may raise optuna.TrialPruned, so a pruner
    can stop a bad config early -- but only from the second run on (judge=False after the first): one fold or
    seed of a small set is noise (a 208-image BreastMNIST fold moves AUC by ~0.02 between equal configs), and
    pruning on it selects lucky first folds, which is what cross-validation is there to avoid.
    When the study is out of time, stops between runs: the means are over the runs done (result.cut_short
    says whether a run itself was cut).
    `keep_models`: keep every run's weights and held-out predictions (result.models), for a bag of fold models.
    `thresholds`: re-score each fold's threshold-dependent metrics at a threshold from the other folds.
    """
    result = CVResult(metrics={})
    trained_metrics: list[dict[str, float]] = []
    held_out: list[HeldOut] = []
    for index, (where, batches) in enumerate(splits):
        trained = fit(batches, seed + index)
        result.first = result.first or trained
        if keep_models or thresholds:
            assert trained.val_probs is not None
            held_out.append(HeldOut(where, batches.val.labels.numpy(), trained.val_probs))
        if keep_models:
            result.models.append(FoldModel(where, trained.state, batches.preprocessing, held_out[-1].labels,
                                           held_out[-1].probs))
        trained_metrics.append(dict(trained.metrics))
        result.folds.append({**where, "n_train": len(batches.train), "n_val": len(batches.val),
                             "best_epoch": trained.best_epoch, "epochs_trained": trained.epochs_trained})
        result.train_seconds += trained.train_seconds
        result.cut_short = result.cut_short or trained.cut_short
        result.images_seen += trained.images_seen
        report(step_of(index), mean_metrics([m for m, _ in _scored(trained_metrics, held_out, thresholds)]),
               index >= 1)
        if out_of_time():
            break
    if not trained_metrics:
        raise TrialFailure("no validation run: the split list was empty")
    scored = _scored(trained_metrics, held_out, thresholds)
    for record, (metrics, threshold) in zip(result.folds, scored):
        record.update({"threshold": threshold} if threshold is not None else {})
        record.update({k: v for k, v in metrics.items() if _finite(v)})
    per_run = [metrics for metrics, _ in scored]
    values = [m.get(objective, math.nan) for m in per_run]
    done = "cv_folds_done" if "fold" in result.folds[0] else "repeats_done"
    result.metrics = {**mean_metrics(per_run), f"{objective}_std": float(np.std(values)), done: float(len(per_run))}
    result.final_epochs = int(np.median([f["best_epoch"] for f in result.folds])) + 1
    return result


def _scored(trained: list[dict[str, float]], held_out: list[HeldOut],
            thresholds: CrossFoldThresholds | None) -> list[tuple[dict[str, float], Threshold | None]]:
    """Each run's (metrics, threshold): re-scored at its cross-fold threshold when asked, else as trained."""
    if thresholds is None:
        return [(metrics, None) for metrics in trained]
    return [({**metrics, **rescored}, threshold)
            for metrics, (rescored, threshold) in zip(trained, thresholds.scores(held_out))]


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)
