"""The operation table of searched policies: each op on a uint8 batch, and what magnitude 0..10 means for it.

Magnitude is linear: strength = max_strength * magnitude / 10 (AutoAugment's scale and, mostly, its ranges);
posterize and gaussian_blur rise linearly from a least strength that changes an image at magnitude 1 (from 0,
magnitude 1 was the identity for both, and blur at 2 moved pixels by under one grey level: steps without effect
that a search would spend trials on).

| op             | magnitude 10 means                               | signed | magnitude 0    |
|----------------|--------------------------------------------------|--------|----------------|
| identity       | nothing                                          |        | nothing        |
| rotate         | 30 degrees                                       | yes    | unchanged      |
| shear_x/y      | shear factor 0.3 (16.7 degrees), about the centre| yes    | unchanged      |
| translate_x/y  | 30% of the width / height (8 px at 28)           | yes    | unchanged      |
| brightness     | factor 1 +- 0.9                                  | yes    | unchanged      |
| contrast       | factor 1 +- 0.9                                  | yes    | unchanged      |
| sharpness      | factor 1 +- 0.9 (blur or sharpen)                | yes    | unchanged      |
| posterize      | keep 4 bits (drops 1 + 3 * (m - 1) / 9, rounded)  |        | 8 bits: unchanged |
| solarize       | invert pixels >= 256 * (1 - m / 10): all at 10   |        | none inverted  |
| autocontrast   | no magnitude (stretch each channel to 0..255)    |        |                |
| equalize       | no magnitude (histogram equalisation)            |        |                |
| hflip, vflip   | no magnitude                                     |        |                |
| gaussian_blur  | sigma = size / 14 (2 px at 28); size / 56 at m 1  |        | unchanged      |
| gaussian_noise | std 0.1 of the intensity range (25 grey levels)  |        | unchanged      |

Signed ops go either way with probability 1/2 per image (as in AutoAugment), so a searched "rotate 10" means
"rotate by 30 degrees, left or right". Geometric ops interpolate bilinearly (28 px images look jagged with
nearest) and fill with 0, the background of most X-ray / ultrasound / microscopy images. Sizes are relative
(translate, blur) so a policy found at 28 px means the same at 224 px.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import get_args

import torch
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

from searchlab.augment.spec import MAGNITUDE_FREE_OPS, OpName, SubPolicy

MAX_MAGNITUDE = 10
BILINEAR = InterpolationMode.BILINEAR


@dataclass(frozen=True)
class Op:
    fn: Callable[[torch.Tensor, float], torch.Tensor]   # (uint8 (n, C, H, W), strength) -> uint8, same shape
    max_strength: float = 0.0                            # strength at magnitude 10; 0 for magnitude-free ops
    signed: bool = False                                 # random sign per image
    least_strength: float = 0.0                          # strength at magnitude 1, when m / 10 of the most is none

    def strength(self, magnitude: int) -> float:
        if not self.least_strength or magnitude == 0:
            return self.max_strength * magnitude / MAX_MAGNITUDE
        rise = (self.max_strength - self.least_strength) * (magnitude - 1) / (MAX_MAGNITUDE - 1)
        return self.least_strength + rise


def _rotate(x: torch.Tensor, degrees: float) -> torch.Tensor:
    return F.rotate(x, degrees, interpolation=BILINEAR)


def _affine(x: torch.Tensor, translate: list[int], shear: list[float]) -> torch.Tensor:
    return F.affine(x, angle=0.0, translate=translate, scale=1.0, shear=shear, interpolation=BILINEAR)


def _shear(x: torch.Tensor, factor: float, axis: int) -> torch.Tensor:
    # torchvision takes shear as an angle; AutoAugment's level is the shear factor, tan(angle).
    angle = math.degrees(math.atan(factor))
    return _affine(x, [0, 0], [angle, 0.0] if axis == 0 else [0.0, angle])


def _translate(x: torch.Tensor, fraction: float, axis: int) -> torch.Tensor:
    pixels = round(fraction * x.shape[-1 if axis == 0 else -2])   # whole pixels: an exact shift, no blur
    return _affine(x, [pixels, 0] if axis == 0 else [0, pixels], [0.0, 0.0])


def _posterize(x: torch.Tensor, bits_dropped: float) -> torch.Tensor:
    return F.posterize(x, 8 - round(bits_dropped))


def _solarize(x: torch.Tensor, level: float) -> torch.Tensor:
    threshold = 256.0 * (1.0 - level)
    return x if threshold > 255 else F.solarize(x, threshold)   # above 255 no uint8 pixel would be inverted


def _blur(x: torch.Tensor, relative_sigma: float) -> torch.Tensor:
    size = min(x.shape[-2:])
    sigma = relative_sigma * size
    if sigma <= 0:
        return x
    # 3 sigma each side, capped below the image size (reflect padding needs padding < size).
    kernel = min(2 * math.ceil(3 * sigma) + 1, 2 * ((size - 1) // 2) + 1)
    return F.gaussian_blur(x, [kernel, kernel], [sigma, sigma])


def _noise(x: torch.Tensor, std: float) -> torch.Tensor:
    return F.gaussian_noise(x, sigma=std, clip=True)   # uint8 in, uint8 out; std in 0..1 intensity units


def _factor(adjust: Callable[[torch.Tensor, float], torch.Tensor]) -> Callable[[torch.Tensor, float], torch.Tensor]:
    """Colour ops take a factor around 1 (1 = unchanged); the strength is the signed distance from 1."""
    return lambda x, v: adjust(x, 1.0 + v)


def _no_magnitude(fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[torch.Tensor, float], torch.Tensor]:
    return lambda x, _v: fn(x)


OPS: dict[str, Op] = {
    "identity": Op(_no_magnitude(lambda x: x)),
    "rotate": Op(_rotate, 30.0, signed=True),
    "shear_x": Op(partial(_shear, axis=0), 0.3, signed=True),
    "shear_y": Op(partial(_shear, axis=1), 0.3, signed=True),
    "translate_x": Op(partial(_translate, axis=0), 0.3, signed=True),
    "translate_y": Op(partial(_translate, axis=1), 0.3, signed=True),
    "brightness": Op(_factor(F.adjust_brightness), 0.9, signed=True),
    "contrast": Op(_factor(F.adjust_contrast), 0.9, signed=True),
    "sharpness": Op(_factor(F.adjust_sharpness), 0.9, signed=True),
    "posterize": Op(_posterize, 4.0, least_strength=1.0),
    "solarize": Op(_solarize, 1.0),
    "autocontrast": Op(_no_magnitude(F.autocontrast)),
    "equalize": Op(_no_magnitude(F.equalize)),
    "hflip": Op(_no_magnitude(F.horizontal_flip)),
    "vflip": Op(_no_magnitude(F.vertical_flip)),
    "gaussian_blur": Op(_blur, 1.0 / 14.0, least_strength=1.0 / 56.0),   # 0.5 px at 28
    "gaussian_noise": Op(_noise, 0.1),
}
# The config's Literal and this table must name the same ops: a new op needs both, and a mismatch is a bug
# that must surface at import, not when a trial first samples the op.
if set(OPS) != set(get_args(OpName)):
    raise ImportError(f"ops.OPS and spec.OpName differ in {sorted(set(OPS) ^ set(get_args(OpName)))}")
if {name for name, op in OPS.items() if not op.max_strength} != MAGNITUDE_FREE_OPS:
    raise ImportError("spec.MAGNITUDE_FREE_OPS must list exactly the ops of OPS without a max_strength")


def apply_sub_policy(x: torch.Tensor, step: SubPolicy) -> torch.Tensor:
    """Apply `step` to each image of a uint8 batch with probability `step.prob`; returns a new tensor.

    Vectorised: the chosen images go through the op in one call per sign (at most two calls per step).
    """
    op = OPS[step.op]
    if op.max_strength and step.magnitude == 0:
        return x   # magnitude 0 of a magnitude op is the identity exactly (no resampling round-off)
    n = x.shape[0]
    chosen = torch.rand(n) < step.prob
    negative = torch.rand(n) < 0.5 if op.signed else torch.zeros(n, dtype=torch.bool)
    value = op.strength(step.magnitude)
    out = x.clone()
    for mask, strength in ((chosen & ~negative, value), (chosen & negative, -value)):
        if mask.any():
            out[mask] = op.fn(x[mask], strength)
    return out
