"""Training settings that quietly do nothing, or leave the classifier nothing real to learn from, said when a
run starts.

Class weights at `class_weight_power: 0` are all 1: weighted_ce is then plain CE and balanced focal loss
unweighted focal, while the study reads as if the classes were weighted.

With `neural_share: 1` every training image is the augmentor's output, and with `neural_weight: 0` nothing
holds that output near its source: the augmentor is trained only to make the classifier's loss small, so it
can learn to write whatever this classifier separates most easily (class-coloured images), and the classifier
never sees an original image. Validation on real images then collapses, which looks like a bad config rather
than a degenerate setting. Perez & Wang fed augmented and original images together, with a content loss.
"""
from __future__ import annotations

from collections.abc import Iterable

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
