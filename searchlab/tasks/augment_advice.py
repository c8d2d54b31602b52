"""Training settings that quietly do nothing, or leave the classifier nothing real to learn from, said when a
run starts.

Class weights at `class_weight_power: 0` are all 1: weighted_ce is then plain CE and balanced focal loss
unweighted focal, while the study reads as if the classes were weighted.

With `neural_share: 1` every training image is the augmentor's output, and with `neural_weight: 0` nothing
holds that output near its source: the augmentor is trained only to make the classifier's loss small, so it
can learn to write whatever this classifier separates most easily (class-coloured images), and the classifier
never sees an original image. Validation on real images then collapses, which looks like a bad config rather
than a degenerate setting. Perez & Wang fed augmented and original images together, with a content loss.

A patch curriculum (`train.patch_epochs`) runs round(patch_epochs * epochs) patch epochs: a fraction that rounds
to 0 (0.3 of 1 epoch) trains no patch at all, and the study reads as if it searched the curriculum.

Class weights together with the balanced sampler correct the imbalance twice (imbalance.py): the sampler already
shows every class about equally often, and the weights then push the rare class up again.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from searchlab.tasks.classify_config import ClassifyTrialConfig


def neural_augment_warning(specs: Iterable[ClassifyTrialConfig]) -> str | None:
    for spec in specs:
        augment = spec.augment
        if spec.model.transfer != "features" and augment.neural and augment.neural_share == 1.0 \
                and augment.neural_weight == 0.0:
            return ("space.augment.neural_share 1 with neural_weight 0 can be drawn: every training image is then "
                    "the augmentor's output and nothing holds it near its source, so the augmentor may learn "
                    "images only this classifier separates, and validation on real images collapses. Fix: "
                    "neural_share below 1 (the paper mixed augmented and original images) or neural_weight > 0")
    return None


def patch_epoch_count(fraction: float, epochs: int) -> int:
    """The patch epochs a trial runs (train.fit): this warning and training must round alike."""
    return round(fraction * epochs)


def patch_curriculum_warning(specs: Iterable[ClassifyTrialConfig], budget_epochs: int) -> str | None:
    """A drawable train.patch_epochs > 0 that gives no patch epoch at the trial's epochs (train.epochs, else
    the study's budget.epochs)."""
    for spec in specs:
        fraction, epochs = spec.train.patch_epochs, spec.train.epochs or budget_epochs
        if spec.model.transfer != "features" and fraction > 0 and patch_epoch_count(fraction, epochs) == 0:
            return (f"space.train.patch_epochs {fraction:g} of {epochs} epoch{'s' * (epochs != 1)} rounds to 0 "
                    "patch epochs: the patch curriculum does nothing in such trials. Fix: a patch_epochs of at "
                    f"least {0.5 / epochs:.2g} (more epochs: budget.epochs or train.epochs), or patch_epochs: 0 "
                    "to say what runs")
    return None


def double_correction_warning(specs: Iterable[ClassifyTrialConfig]) -> str | None:
    """Class weights (power > 0) with sampler: balanced in every probed config: set so, not searched (a space
    that searches the loss, the sampler or the power, as imbalance.yaml does, lets the search decide)."""
    specs = list(specs)
    if not specs or not all(_corrects_twice(spec.imbalance) for spec in specs):
        return None
    loss = "weighted_ce" if specs[0].imbalance.loss == "weighted_ce" else "focal (focal_alpha: balanced)"
    return (f"space.imbalance.loss {loss} with sampler: balanced: the sampler already shows each class about "
            "equally often, so the class weights correct the imbalance a second time and push the rare class's "
            "probabilities too high. Fix: one correction (sampler: shuffle with a class-weighted loss, or loss: "
            "ce / focal_alpha: none with sampler: balanced), class_weight_power 0.5 to soften the weights, or "
            "search them to let the trials decide")


def _corrects_twice(imbalance: Any) -> bool:
    weighted = imbalance.loss == "weighted_ce" or (imbalance.loss == "focal" and imbalance.focal_alpha == "balanced")
    return weighted and imbalance.class_weight_power > 0 and imbalance.sampler == "balanced"


def unweighted_warning(specs: Iterable[ClassifyTrialConfig]) -> str | None:
    """Said when every config that asks for class weights has them at power 0 (a searched power that can be
    0 is a real search over how much to weight, and is not warned about)."""
    weighted = [spec.imbalance for spec in specs if spec.imbalance.loss == "weighted_ce"
                or (spec.imbalance.loss == "focal" and spec.imbalance.focal_alpha == "balanced")]
    if not weighted or any(imbalance.class_weight_power > 0 for imbalance in weighted):
        return None
    return ("space.imbalance.class_weight_power 0 makes every class weight 1: weighted_ce is then plain CE (and "
            "balanced focal loss unweighted). Fix: class_weight_power 1 (inverse frequency) or 0.5, or loss: ce "
            "to say what runs")
