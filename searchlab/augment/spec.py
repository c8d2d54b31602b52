"""The typed augmentation config: which image policy, which batch mixing, and every default with why.

A search space samples these keys (e.g. `augment.policy`, `augment.sub_policies.a.op`); the
names in `OpName` are the operation table of ops.py (checked there at import).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Field, ValidationInfo, field_validator, model_validator

from searchlab.config.schema import Frozen
from searchlab.errors import AtKey
from searchlab.suggest import did_you_mean

OpName = Literal["identity", "rotate", "shear_x", "shear_y", "translate_x", "translate_y", "brightness",
                 "contrast", "sharpness", "posterize", "solarize", "autocontrast", "equalize", "hflip", "vflip",
                 "gaussian_blur", "gaussian_noise"]
# Ops that ignore `magnitude`: the sampler does not draw one for them (tasks/classify_usage.py), since a
# value drawn but without effect is noise to TPE. ops.py checks this set against its table at import.
MAGNITUDE_FREE_OPS = frozenset({"identity", "autocontrast", "equalize", "hflip", "vflip"})

PolicyName = Literal["none", "flip_shift", "resized_crop", "flip_rotate", "affine", "randaugment",
                     "trivialaugment", "augmix", "searched"]


class SubPolicy(Frozen):
    """One step of a searched policy: `op` at `magnitude`, applied to each image with probability `prob`."""

    op: OpName
    prob: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5       # AutoAugment's usual middle ground
    magnitude: Annotated[int, Field(ge=0, le=10)] = 5         # 0..10 like AutoAugment; ops.py maps it per op

    # A step is a mapping under a name the user chose, where the generic unknown-key message finds no schema to
    # suggest from: a typo (`probability`, `rotat`) got the whole list or "fix its spelling" but no close name.
    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, step: Any) -> Any:
        for key in step if isinstance(step, dict) else ():
            if key not in cls.model_fields:
                raise AtKey(str(key), f"a searched policy's step has no setting {key!r}. Fix: "
                                      f"{_close_setting(str(key), list(cls.model_fields)) or 'remove it'} "
                                      f"(a step takes {', '.join(cls.model_fields)})")
        return step

    @field_validator("op", mode="before")
    @classmethod
    def _known_op(cls, op: Any) -> Any:
        ops = get_args(OpName)
        if isinstance(op, str) and op not in ops and (close := did_you_mean(op, ops)):
            raise ValueError(f"no augmentation op is named {op!r}. Fix: {close} (ops: {', '.join(ops)})")
        return op   # no close name: pydantic's own error lists every op


def _close_setting(key: str, known: list[str]) -> str | None:
    """"did you mean prob?": a spelled-out name (`probability`) is too far from `prob` for difflib, so a name
    that one starts with the other counts too."""
    prefixed = [name for name in known if key.startswith(name) or name.startswith(key)]
    return did_you_mean(key, known) or (f"did you mean {', '.join(prefixed)}?" if prefixed else None)


class AugmentSpec(Frozen):
    # "none": the images exactly as stored; augmentation must be asked for (and searched) explicitly.
    policy: PolicyName = "none"
    # resized_crop: smallest crop area kept. 0.7, not ImageNet's 0.08: a 28x28 lesion image cropped to 8%
    # keeps ~60 pixels, often without the finding the label is about.
    crop_scale: Annotated[float, Field(gt=0.05, le=1.0)] = 0.7
    # flip_rotate: +-15 degrees, a typical patient/probe positioning variation; larger angles only add
    # black corners on small images.
    rotate_degrees: Annotated[float, Field(ge=0.0, le=180.0)] = 15.0
    # affine: a left-right flip, a rotation within rotate_degrees, a zoom within 1 +- affine_scale and a shift
    # within +- affine_translate of the side, drawn per image (torchvision's RandomAffine, vectorised). No
    # up-down flip: ultrasound and X-ray frames have a top. Borders are reflected, not black.
    affine_scale: Annotated[float, Field(ge=0.0, le=0.5)] = 0.15
    affine_translate: Annotated[float, Field(ge=0.0, le=0.5)] = 0.1
    # randaugment: the paper's and torchvision's defaults (N=2 ops at M=9 on the 0..30 bin scale).
    randaugment_n: Annotated[int, Field(ge=1, le=6)] = 2
    randaugment_m: Annotated[int, Field(ge=0, le=30)] = 9      # torchvision's num_magnitude_bins=31 scale
    # augmix: the paper's and torchvision's default severity.
    augmix_severity: Annotated[int, Field(ge=1, le=10)] = 3
    # policy "searched": applied in insertion order, each to each image with its own prob. Other policies
    # ignore it, so a space may sample it unconditionally next to a searched `policy` choice.
    sub_policies: dict[str, SubPolicy] = Field(default_factory=dict, validate_default=True)
    # Batch mixing is a separate choice from the image policy: off unless asked for.
    mix: Literal["none", "mixup", "cutmix"] = "none"
    # Beta(alpha, alpha) for lambda; 0.4 mixes gently (mostly one image), the mixup paper's ImageNet range;
    # above 2 nearly every pair is blended half-half, which hurts small data sets.
    mix_alpha: Annotated[float, Field(gt=0.0, le=2.0)] = 0.4
    # Half the batches mixed: the model still sees clean images (timm's default switch probability is 0.5).
    mix_prob: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5

    # Learned augmentation (searchlab/augment/neural.py, Perez & Wang 2017): a small network trained with the
    # classifier rewrites a share of each batch from pairs of same-class images. Off unless asked for.
    neural: bool = False
    neural_share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5    # the paper fed augmented and original images
    # Content loss weight: how close an output must stay to its source image. The paper's content-loss
    # variant balanced it about 0.3 : 0.7 against the classification loss.
    neural_weight: Annotated[float, Field(ge=0.0, le=10.0)] = 0.3
    neural_width: Annotated[int, Field(ge=4, le=128)] = 16         # channels of the augmentor's hidden layers

    # Synthetic images (searchlab/augment/synthetic.py): `synthetic_per_class` images per class from a
    # class-conditional generator export (`searchlab export` of a generate study; a path relative to the
    # study file) added to every training split, never to validation. "minority": only classes smaller than
    # the largest, the usual remedy for imbalance. 0 = off.
    synthetic: str | None = None
    synthetic_per_class: Annotated[int, Field(ge=0, le=100_000)] = 0
    synthetic_classes: Literal["minority", "all"] = "minority"

    @field_validator("synthetic_per_class")
    @classmethod
    def _synthetic_needs_a_generator(cls, per_class: int, info: ValidationInfo) -> int:
        if per_class > 0 and not info.data.get("synthetic"):
            raise ValueError("synthetic_per_class needs augment.synthetic: a generator export folder. Fix: add "
                             "synthetic: PATH (a `searchlab export` of a generate study), or remove "
                             "synthetic_per_class; to search with and without generated images, keep synthetic: "
                             "PATH and search synthetic_per_class from 0 ({int: [0, 200], step: 50})")
        return per_class

    @field_validator("sub_policies")
    @classmethod
    def _searched_needs_steps(cls, steps: dict[str, SubPolicy], info: ValidationInfo) -> dict[str, SubPolicy]:
        # A "searched" policy with no steps silently trains without augmentation: almost surely a mistake.
        if info.data.get("policy") == "searched" and not steps:
            raise ValueError("policy 'searched' needs at least one entry in sub_policies. Fix: include "
                             "augmentation.yaml (which has two), or add sub_policies: {s1: {op: rotate, prob: 0.5, "
                             "magnitude: 5}}")
        return steps
