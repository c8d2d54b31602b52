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

from searchlab.augment.spec import MAGNITUDE_FREE_OPS
from searchlab.space.params import Group
from searchlab.space.sample import ABSENT, ConfigPath, UsedRule
from searchlab.space.unused import UnusedSetting, describe, unused_settings

Get = Callable[[str], Any]


def _images_augmented(get: Get) -> bool:
    return get("model.transfer") != "features"


def _policy_is(*names: str) -> Callable[[Get], bool]:
    return lambda get: _images_augmented(get) and get("augment.policy") in names


def _mixing(get: Get) -> bool:
    return _images_augmented(get) and get("augment.mix") != "none"


def _learned_augmentation(get: Get) -> bool:
    return _images_augmented(get) and bool(get("augment.neural"))


def _op_takes_a_magnitude(get: Get) -> bool:
    # `*` is the step's own name (used_rule resolves it); a step without an op fails validation anyway
    return get("augment.sub_policies.*.op") not in MAGNITUDE_FREE_OPS


def _class_weights(get: Get) -> bool:
    loss = get("imbalance.loss")
    return loss == "weighted_ce" or (loss == "focal" and get("imbalance.focal_alpha") == "balanced")


USED_WHEN: dict[str, Callable[[Get], bool]] = {
    "model.cutoff": lambda get: get("model.transfer") == "cutoff",
    "model.layer_decay": lambda get: get("model.transfer") == "full",
    "model.weights": lambda get: get("model.transfer") != "scratch",
    "optim.momentum": lambda get: get("optim.name") == "sgd",
    # checkpoint: last keeps the final weights, so every epoch counts as the one kept and the patience never
    # runs out (tasks/train.py keep_last): each run trains its whole schedule
    "train.early_stopping": lambda get: get("train.checkpoint") != "last",
    # the trial's model under cross-validation (tasks/classify.py); one training on train has no folds to refit
    "train.cv_model": lambda get: get("train.cv_folds") is not None,
    # NHWC memory is a layout for convolutions (tasks/speed.py); the row RNN has no 4-d weights to lay out
    "train.channels_last": lambda get: get("model.kind") != "rnn",
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
    "augment.sub_policies.*.magnitude": _op_takes_a_magnitude,
    "augment.mix": _images_augmented,
    "augment.mix_alpha": _mixing,
    "augment.mix_prob": _mixing,
    "augment.neural": _images_augmented,
    "augment.neural_share": _learned_augmentation,
    "augment.neural_weight": _learned_augmentation,
    "augment.neural_width": _learned_augmentation,
    "augment.synthetic": lambda get: get("augment.synthetic_per_class") > 0,
    "augment.synthetic_classes": lambda get: get("augment.synthetic_per_class") > 0,
    "imbalance.focal_gamma": lambda get: get("imbalance.loss") == "focal",
    "imbalance.focal_alpha": lambda get: get("imbalance.loss") == "focal",
    "imbalance.class_weight_power": _class_weights,
}


def used_rule(table: dict[str, Callable[[Get], bool]], default: Callable[[str], Any]) -> UsedRule:
    """A task's sampler rule (space/sample.py UsedRule) from its table of conditions and its defaults.

    A `*` in a table key stands for any one name (a searched policy's step); the condition's own `*` reads
    then resolve to the name matched, so a step's magnitude depends on that step's op.
    """
    exact = {tuple(key.split(".")): condition for key, condition in table.items() if "*" not in key}
    starred = [(tuple(key.split(".")), condition) for key, condition in table.items() if "*" in key]

    def used(path: ConfigPath, lookup: Callable[[ConfigPath], Any]) -> bool:
        for end in range(1, len(path) + 1):
            prefix = path[:end]
            condition = exact.get(prefix)
            if condition is not None and not condition(_getter(lookup, default, [])):
                return False
            for parts, condition in starred:
                names = _matched(parts, prefix)
                if names is not None and not condition(_getter(lookup, default, names)):
                    return False
        return True

    return used


def _matched(parts: ConfigPath, prefix: ConfigPath) -> list[str] | None:
    """The names the `*`s of `parts` stand for in `prefix`, or None when the pattern is not that prefix."""
    if len(parts) != len(prefix) or any(p not in ("*", name) for p, name in zip(parts, prefix)):
        return None
    return [name for p, name in zip(parts, prefix) if p == "*"]


def _getter(lookup: Callable[[ConfigPath], Any], default: Callable[[str], Any], names: list[str]) -> Get:
    def get(dotted: str) -> Any:
        parts, stars = dotted.split("."), iter(names)
        path = tuple(next(stars) if part == "*" else part for part in parts)
        value = lookup(path)
        return default(".".join(path)) if value is ABSENT else value

    return get


def default_in(schema: Callable[[], Any]) -> Callable[[str], Any]:
    """The value a trial gets for a setting the space does not set: the schema's default (built lazily: task
    schemas import this module's users)."""
    @lru_cache(maxsize=None)
    def default(dotted: str) -> Any:
        value: Any = schema()
        for part in dotted.split("."):
            # a named entry of a mapping (a searched policy's step) has no default: None
            value = value.get(part) if isinstance(value, dict) else getattr(value, part)
        return value

    return default


def _classify_schema() -> Any:
    from searchlab.tasks.classify_config import ClassifyTrialConfig

    return ClassifyTrialConfig()


setting_default = default_in(_classify_schema)
classify_setting_used = used_rule(USED_WHEN, setting_default)

# Multi-class data predicts the most probable class: no decision threshold is chosen, whatever the rule says
# (trials differing only in it trained the same network twice; the shipped imbalance.yaml searches it)
multiclass_setting_used = used_rule({**USED_WHEN, "imbalance.threshold": lambda get: False}, setting_default)


# Values that mean "nothing is done": where the setting has no effect, writing them changes nothing either, so
# `augment: {policy: none}` beside transfer: features is not the mistake the unused-setting warning is for
NEUTRAL: dict[str, tuple[Any, ...]] = {"augment.policy": ("none",), "augment.mix": ("none",),
                                       "augment.neural": (False,), "train.patch_epochs": (0, 0.0)}


def written_neutral(setting: UnusedSetting) -> bool:
    """Whether the space fixes the setting at its do-nothing value (a searched one is never neutral)."""
    return setting.written in {repr(value) for value in NEUTRAL.get(setting.path, ())}


def unused_setting_warnings(space: Group, used: UsedRule, seed: int) -> list[str]:
    """The run-start warnings for settings without effect in any trial, less those written at their neutral value."""
    return [describe(unused, setting_default) for unused in unused_settings(space, used, seed)
            if not written_neutral(unused)]
