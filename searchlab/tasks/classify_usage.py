"""Which classify settings have an effect given the others: the rule the sampler asks before each parameter.

Each entry reads: the setting at this config path (and everything under it) is used only when the condition
holds. `get` reads a setting another one depends on (its default when the space does not set it). The
conditions mirror the code that reads each setting: e.g. feature extraction trains a head on features
computed once, so no image policy, mixing, learned augmentation or patch curriculum reaches it
(tasks/train.py feature_epochs); a policy's own magnitudes matter only to that policy (augment/policies.py).
"""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from searchlab.space.sample import ABSENT, ConfigPath, UsedRule

Get = Callable[[str], Any]


def _images_augmented(get: Get) -> bool:
    return get("model.transfer") != "features"


def _policy_is(*names: str) -> Callable[[Get], bool]:
    return lambda get: _images_augmented(get) and get("augment.policy") in names


def _mixing(get: Get) -> bool:
    return _images_augmented(get) and get("augment.mix") != "none"


def _learned_augmentation(get: Get) -> bool:
    return _images_augmented(get) and bool(get("augment.neural"))


def _class_weights(get: Get) -> bool:
    loss = get("imbalance.loss")
    return loss == "weighted_ce" or (loss == "focal" and get("imbalance.focal_alpha") == "balanced")


USED_WHEN: dict[str, Callable[[Get], bool]] = {
    "model.cutoff": lambda get: get("model.transfer") == "cutoff",
    "model.layer_decay": lambda get: get("model.transfer") == "full",
    "model.weights": lambda get: get("model.transfer") != "scratch",
    "optim.momentum": lambda get: get("optim.name") == "sgd",
    "train.patch_epochs": _images_augmented,
    "train.patch_size": lambda get: _images_augmented(get) and get("train.patch_epochs") > 0,
    "augment.policy": _images_augmented,
    "augment.crop_scale": _policy_is("resized_crop"),
    "augment.rotate_degrees": _policy_is("flip_rotate", "affine"),
    "augment.affine_scale": _policy_is("affine"),
    "augment.affine_translate": _policy_is("affine"),
    "augment.randaugment_n": _policy_is("randaugment"),
    "augment.randaugment_m": _policy_is("randaugment"),
    "augment.augmix_severity": _policy_is("augmix"),
    "augment.sub_policies": _policy_is("searched"),
    "augment.mix": _images_augmented,
    "augment.mix_alpha": _mixing,
    "augment.mix_prob": _mixing,
    "augment.neural": _images_augmented,
    "augment.neural_share": _learned_augmentation,
    "augment.neural_weight": _learned_augmentation,
    "augment.neural_width": _learned_augmentation,
    "imbalance.focal_gamma": lambda get: get("imbalance.loss") == "focal",
    "imbalance.focal_alpha": lambda get: get("imbalance.loss") == "focal",
    "imbalance.class_weight_power": _class_weights,
}


def used_rule(table: dict[str, Callable[[Get], bool]], default: Callable[[str], Any]) -> UsedRule:
    """A task's sampler rule (space/sample.py UsedRule) from its table of conditions and its defaults."""
    def used(path: ConfigPath, lookup: Callable[[ConfigPath], Any]) -> bool:
        def get(dotted: str) -> Any:
            value = lookup(tuple(dotted.split(".")))
            return default(dotted) if value is ABSENT else value

        for end in range(1, len(path) + 1):
            condition = table.get(".".join(path[:end]))
            if condition is not None and not condition(get):
                return False
        return True

    return used


def default_in(schema: Callable[[], Any]) -> Callable[[str], Any]:
    """The value a trial gets for a setting the space does not set: the schema's default (built lazily: task
    schemas import this module's users)."""
    @lru_cache(maxsize=None)
    def default(dotted: str) -> Any:
        value: Any = schema()
        for part in dotted.split("."):
            value = getattr(value, part)
        return value

    return default


def _classify_schema() -> Any:
    from searchlab.tasks.classify_config import ClassifyTrialConfig

    return ClassifyTrialConfig()


setting_default = default_in(_classify_schema)
classify_setting_used = used_rule(USED_WHEN, setting_default)
