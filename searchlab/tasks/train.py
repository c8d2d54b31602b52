"""The training loop of one classify trial: epochs, validation, early stopping, NaN guard.

Each batch is drawn (shuffled or class-balanced), augmented on raw uint8 images, normalised and scored by
the configured loss (searchlab/augment, searchlab/imbalance). On a GPU only the network runs there: batches
are drawn and augmented on the CPU, and the logits come back to the CPU for the loss and the metrics (a few
numbers per image), so every other part of the recipe is the same code on either device. Model selection reads the validation split
only; the best epoch's weights and decision threshold are kept and returned with that epoch's metrics.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from searchlab.augment import AugmentSpec, build_augmentation
from searchlab.augment.neural import NeuralAugment, build_neural_augment
from searchlab.augment.patches import random_patches
from searchlab.augment.policies import Augmenter
from searchlab.data.types import ImageSplit
from searchlab.errors import TrialFailure
from searchlab.imbalance import ImbalanceSpec, Threshold, choose_threshold, epoch_order, make_loss
from searchlab.metrics import compute_metrics, confusion
from searchlab.models.standalone import normalize, preprocess, probabilities
from searchlab.tasks.augment_advice import patch_epoch_count
from searchlab.tasks.classify_config import OptimSpec, TrainSpec
from searchlab.tasks.speed import as_input, to_memory_format, training_precision


@dataclass
class TrainResult:
    metrics: dict[str, float]               # validation metrics of the best epoch (at its threshold)
    best_epoch: int
    state: dict[str, torch.Tensor]          # weights of the best epoch
    threshold: Threshold                    # decision threshold(s) chosen on validation at the best epoch
    train_seconds: float
    images_seen: int
    epochs_trained: int
    confusion: list[list[int]]              # on validation at the best epoch and its threshold (multilabel: per label)
    val_probs: np.ndarray | None = None     # validation probabilities of the best epoch (out-of-fold under CV)
    cut_short: bool = False                 # the study's timeout stopped it before its planned epochs


@dataclass(frozen=True)
class Batches:
    """What the loop needs to know about the data, independent of where it came from."""

    train: ImageSplit
    val: ImageSplit
    kind: str
    n_classes: int
    preprocessing: dict[str, list[float]]
    class_names: tuple[str, ...] = ()   # the data's, in label order (synthetic images are asked for by name)


CHUNK_PIXELS = 1 << 20   # pixels counted at a time (8 MB as int64)


def normalisation(train: ImageSplit) -> dict[str, list[float]]:
    """Per-channel mean/std (unbiased) of the training images scaled to [0, 1]: the preprocessing a model carries.
    From a histogram of the 256 uint8 values, counted a few images at a time: the whole split as floats took 8x
    its uint8 size at once (a trial of 3,000 RGB images at 256 px peaked at 4.6 GB, most of it here)."""
    images = train.images
    n, channels, height, width = images.shape
    counts = torch.zeros(channels, 256, dtype=torch.float64)
    step = max(1, CHUNK_PIXELS // (height * width))
    for start in range(0, n, step):
        for c in range(channels):
            counts[c] += torch.bincount(images[start:start + step, c].reshape(-1).long(), minlength=256)
    values = torch.arange(256, dtype=torch.float64) / 255.0
    total = counts.sum(dim=1)
    mean = (counts * values).sum(dim=1) / total
    variance = (counts * (values - mean[:, None]).square()).sum(dim=1) / (total - 1).clamp_min(1)
    return {"mean": mean.tolist(), "std": variance.sqrt().clamp_min(1e-6).tolist()}


@dataclass(frozen=True)
class Recipe:
    """How each epoch draws, augments and scores batches, and how the decision threshold is chosen."""

    order: Callable[[torch.Generator], torch.Tensor]          # indices of one epoch
    augment: Augmenter                                         # uint8 batch -> float [0, 1] batch, targets
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    threshold: Callable[[np.ndarray, np.ndarray], Threshold]   # (val labels, val probs) -> threshold(s)
    neural: NeuralAugment | None = None                        # learned augmentation, trained with the model
    patch_size: float = 0.5                                    # patch side / image side (patch curriculum)

    def batch(self, x: torch.Tensor, y: torch.Tensor, patches: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(images, targets, extra loss) of one training step: policy, patches, learned augmentation, mixing."""
        images = self.augment.policy(x, y)
        if patches:
            images = random_patches(images, self.patch_size)
        extra = images.new_zeros(())
        if self.neural is not None:
            images, extra = self.neural(images, y)
        images, targets = self.augment.mix(images, y)
        return images, targets, extra


def make_recipe(batches: Batches, augment: AugmentSpec, imbalance: ImbalanceSpec, train: TrainSpec) -> Recipe:
    labels, kind = batches.train.labels, batches.kind
    return Recipe(
        order=lambda gen: epoch_order(imbalance, labels, kind, gen),
        augment=build_augmentation(augment, kind, batches.n_classes),
        loss=make_loss(imbalance, kind, batches.n_classes, labels, train.label_smoothing),
        threshold=lambda y, p: choose_threshold(imbalance, kind, y, p),
        neural=build_neural_augment(augment, channels=batches.train.images.shape[1]),
        patch_size=train.patch_size,
    )


ParamGroups = list[dict[str, Any]]   # [{"params": [...], "lr_scale": float}], e.g. layer-wise lr decay


def make_optimizer(groups: ParamGroups, spec: OptimSpec) -> torch.optim.Optimizer:
    """Trainable parameters only (frozen blocks stay out), each group at lr * its lr_scale."""
    params = [{"params": [p for p in g["params"] if p.requires_grad], "lr": spec.lr * g.get("lr_scale", 1.0)}
              for g in groups]
    params = [g for g in params if g["params"]]
    if spec.name == "sgd":
        return torch.optim.SGD(params, lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay,
                               nesterov=spec.momentum > 0)
    cls = torch.optim.AdamW if spec.name == "adamw" else torch.optim.Adam
    return cls(params, lr=spec.lr, weight_decay=spec.weight_decay)


def make_schedule(opt: torch.optim.Optimizer, spec: OptimSpec, epochs: int) -> torch.optim.lr_scheduler.LRScheduler:
    if spec.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    if spec.schedule == "step":   # tenfold drops at 1/2 and 3/4 of training, the classic recipe
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[epochs // 2, 3 * epochs // 4], gamma=0.1)
    return torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0, total_iters=0)


@torch.no_grad()
def evaluate(model: nn.Module, data: ImageSplit, batches: Batches, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, labels) on a split, in eval mode."""
    model.eval()
    outs = [probabilities(on_device(model, preprocess(data.images[i:i + batch_size], batches.preprocessing)),
                          batches.kind) for i in range(0, len(data), batch_size)]
    return torch.cat(outs).numpy(), data.labels.numpy()


# the metric(s) the best epoch is chosen by: (metric, direction), or a tuple of such pairs
Selection = tuple[str, str] | tuple[tuple[str, str], ...]


def train(model: nn.Module, batches: Batches, recipe: Recipe, optim: OptimSpec, spec: TrainSpec, epochs: int,
          seed: int, select: Selection, on_epoch: Callable[[int, dict[str, float]], None],
          out_of_time: Callable[[], bool] = lambda: False, groups: ParamGroups | None = None,
          cached_features: bool = False, keep_last: bool = False,
          device: torch.device = torch.device("cpu")) -> TrainResult:
    """Train for up to `epochs`; `select` = (metric, direction), or several such pairs, picks the best epoch (by
    their mean, each signed by its direction); `on_epoch` may prune.

    `keep_last`: keep the last epoch instead of the best one (and never stop early): for a model whose
    number of epochs was already chosen elsewhere (cross-validation), validation only sets its threshold.

    Stops early on `early_stopping` patience, or when `out_of_time()` (the study's timeout) says so.
    `groups`: optimiser parameter groups (default: all parameters at lr). `cached_features`: the backbone is
    frozen, so its features are computed once and each epoch trains only the head on them. `device`: where
    the network trains; the weights returned are on the CPU.
    """
    to_memory_format(model.to(device), spec.channels_last)
    gen = torch.Generator().manual_seed(seed)
    opt = make_optimizer(groups or [{"params": list(model.parameters())}], optim)
    schedule = make_schedule(opt, optim, epochs)
    embedding = 0.0   # computing the cached features is part of training: left out, a `features` trial recorded
    # 0.7 s of an 8 s run, and an objective minimising train_seconds favoured that mode 10-40 times over
    if cached_features:
        started = time.perf_counter()
        run_epoch, val_probs = feature_epochs(model, opt, batches, recipe, spec, gen)
        embedding = time.perf_counter() - started
    else:
        patch_epochs = patch_epoch_count(spec.patch_epochs, epochs)   # said at run start when 0

        def run_epoch(epoch: int) -> int:
            return one_epoch(model, opt, batches, recipe, spec, gen, epoch, patches=epoch < patch_epochs)

        def val_probs() -> tuple[np.ndarray, np.ndarray]:
            return evaluate(model, batches.val, batches)
    best: tuple[float, int, dict[str, float], dict[str, torch.Tensor], Threshold, list[list[int]], np.ndarray] | None = None
    seconds, seen, stale, cut_short = embedding, 0, 0, False
    for epoch in range(epochs):
        start = time.perf_counter()
        seen += run_epoch(epoch)
        schedule.step()
        seconds += time.perf_counter() - start
        probs, labels = val_probs()
        threshold = recipe.threshold(labels, probs)
        metrics = compute_metrics(labels, probs, batches.kind, batches.n_classes, threshold=threshold)
        score = _selection_score(metrics, select)
        if best is None or score > best[0] or keep_last:
            matrix = confusion(labels, probs, batches.kind, batches.n_classes, threshold=threshold)
            best, stale = (score, epoch, metrics, cpu_copy(model.state_dict()), threshold, matrix, probs), 0
        else:
            stale += 1
        on_epoch(epoch, metrics)
        if spec.early_stopping is not None and stale >= spec.early_stopping:
            break
        if epoch + 1 < epochs and out_of_time():
            cut_short = True
            break
    assert best is not None  # epochs >= 1
    return TrainResult(best[2], best[1], best[3], best[4], seconds, seen, epoch + 1, best[5], best[6], cut_short)


def one_epoch(model: nn.Module, opt: torch.optim.Optimizer, batches: Batches, recipe: Recipe, spec: TrainSpec,
               gen: torch.Generator, epoch: int, patches: bool = False) -> int:
    model.train()
    images, labels = batches.train.images, batches.train.labels
    order = recipe.order(gen)
    device = next(model.parameters()).device
    untrained = epoch == 0   # no step taken yet: the learning rate cannot be what made a loss non-finite
    for start in range(0, order.numel(), spec.batch_size):
        idx = order[start:start + spec.batch_size]
        if idx.numel() < 2 and order.numel() > 1:
            continue   # batch norm cannot train on a single sample
        x, targets, extra = recipe.batch(images[idx], labels[idx], patches)
        with training_precision(spec.precision, device):
            logits = on_device(model, as_input(normalize(x, batches.preprocessing), spec.channels_last))
        loss = recipe.loss(logits.float(), targets) + extra
        if untrained and not torch.isfinite(loss) and not bool(torch.isfinite(logits).all()):
            raise TrialFailure(f"loss became {loss.item()} at epoch {epoch} (batch starting at {start}): the "
                               "network's output was non-finite (NaN or inf) before any training step, so "
                               f"{INITIAL_WEIGHTS_CAUSE} (or its precision), not the learning rate. Fix: "
                               f"{INITIAL_FIX}; or train.precision: fp32")
        untrained = False
        if not torch.isfinite(loss):
            raise TrialFailure(f"loss became {loss.item()} at epoch {epoch} (batch starting at {start}); "
                               "the learning rate is probably too high for this model. Fix: lower the upper end of "
                               "space.optim.lr (or train.precision: fp32)")
        opt.zero_grad(set_to_none=True)
        if recipe.neural is not None:
            recipe.neural.zero_grad()
        loss.backward()
        opt.step()
        if recipe.neural is not None:   # the augmentor learns from the same loss (Perez & Wang's joint training)
            recipe.neural.step()
    return int(order.numel())


def feature_epochs(model: nn.Module, opt: torch.optim.Optimizer, batches: Batches, recipe: Recipe,
                   spec: TrainSpec, gen: torch.Generator) -> tuple[Callable[[int], int], Callable[[], Any]]:
    """(run one epoch, validation probabilities) for a frozen backbone: features computed once, here.

    Image augmentation cannot apply to cached features (each epoch would need new ones), so this mode
    trains on the stored images as they are: no image policy, patches, learned augmentation or mixing.
    """
    z_train, z_val = embed_all(model, batches.train, batches), embed_all(model, batches.val, batches)
    check_features_finite(z_train, z_val)
    y_train = batches.train.labels

    def run_epoch(epoch: int) -> int:
        model.train()
        order = recipe.order(gen)
        for start in range(0, order.numel(), spec.batch_size):
            idx = order[start:start + spec.batch_size]
            with training_precision(spec.precision, next(model.parameters()).device):
                logits = on_device(model.classify, z_train[idx], model)
            loss = recipe.loss(logits.float(), y_train[idx])
            if not torch.isfinite(loss):
                raise TrialFailure(f"loss became {loss.item()} at epoch {epoch} (head on cached features). Fix: "
                                   "lower the upper end of space.optim.lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return int(order.numel())

    @torch.no_grad()
    def val_probs() -> tuple[np.ndarray, np.ndarray]:
        model.eval()
        return probabilities(on_device(model.classify, z_val, model), batches.kind).numpy(), batches.val.labels.numpy()

    return run_epoch, val_probs


# Said when a network's output is non-finite before any step (weights_from is the trial's record of its source)
INITIAL_WEIGHTS_CAUSE = "its initial weights are the cause (this trial's weights_from names them)"
INITIAL_FIX = ("use other weights (weights saved before their training diverged; for a timm checkpoint whose EMA copy, "
               "state_dict_ema, is damaged: checkpoint['state_dict'] re-saved alone)")


def check_features_finite(*splits: torch.Tensor) -> None:
    """Fail the trial when the frozen backbone's features are not all finite: the head's loss would be NaN at any
    learning rate, and the trial failed advising a lower one."""
    bad = sum(int((~torch.isfinite(z)).flatten(1).any(dim=1).sum()) for z in splits)
    if bad:
        total = sum(len(z) for z in splits)
        raise TrialFailure(f"the frozen backbone gives non-finite features (NaN or inf) for {bad} of {total} "
                           f"images, computed once before training: {INITIAL_WEIGHTS_CAUSE}, not the learning rate. "
                           f"Fix: {INITIAL_FIX}")


@torch.no_grad()
def embed_all(model: nn.Module, split: ImageSplit, batches: Batches, chunk: int = 256) -> torch.Tensor:
    """The frozen part's output for a whole split (eval mode: batch-norm uses its stored statistics)."""
    model.eval()
    return torch.cat([on_device(model.embed, preprocess(split.images[i:i + chunk], batches.preprocessing), model)
                      for i in range(0, len(split), chunk)])


def on_device(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, model: nn.Module | None = None) -> torch.Tensor:
    """fn(x) computed on the device of `model` (default: fn itself), returned on the CPU (differentiably).
    On the CPU both moves are no-ops."""
    device = next((model or fn).parameters()).device   # type: ignore[union-attr]
    return fn(x.to(device)).cpu()


def cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A snapshot of the weights, on the CPU and contiguous (checkpoints and exports are device-free, and
    NCHW whatever memory format trained them: safetensors stores contiguous tensors only)."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def _selection_score(metrics: dict[str, float], select: Selection) -> float:
    """The epoch's score: one objective's, or the mean of several. A multi-objective study kept the epoch best
    on its first objective alone: sensitivity and specificity at a fixed threshold kept (1, 0) over
    (0.47, 0.76), so every trial of the Pareto front was a trivial classifier."""
    pairs = [select] if isinstance(select[0], str) else list(select)
    return sum(_score(metrics.get(metric, math.nan), direction) for metric, direction in pairs) / len(pairs)


def _score(value: float, direction: str) -> float:
    """Higher is better; nan (undefined metric) ranks below everything."""
    if value is None or not math.isfinite(value):
        return -math.inf
    return value if direction == "maximize" else -value
