"""Augmentation of training batches: image policies on uint8 tensors, then optional mixup / cutmix.

    augment = build_augmentation(AugmentSpec(policy="randaugment", mix="cutmix"), kind="multiclass", n_classes=9)
    images, targets = augment(x_uint8, labels)     # float32 in [0, 1]; targets soft only for mixed batches

spec.py (config), ops.py (operation table of searched policies), policies.py (policies and building),
mixing.py (mixup / cutmix).
"""
from searchlab.augment.ops import OPS
from searchlab.augment.policies import BatchAugment, build_augmentation
from searchlab.augment.spec import AugmentSpec, SubPolicy

__all__ = ["OPS", "AugmentSpec", "BatchAugment", "SubPolicy", "build_augmentation"]
