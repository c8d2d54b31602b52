"""Image policies on uint8 batches, and `build_augmentation`: the one callable the training loop uses.

Every random draw comes from torch's global RNG, which the trial seeds, so a seeded run repeats exactly.

torchvision's RandAugment, TrivialAugmentWide, AugMix, RandomResizedCrop and RandomRotation draw one random
choice per call and apply it to everything they are given. We call them once per image: the papers draw per
image, and one draw per batch (or per sub-batch) would make all 64 images of a step share the same distortion,
which gives correlated gradients and fewer distinct views per epoch on data sets of a few hundred images.
The loop costs Python dispatch, not arithmetic, and runs on one torch thread (see `single_thread`); it is still
well under the cost of a training step of the default CNN (bench/augment_throughput.py). The op-table policy
("searched"), the flips and mixing are vectorised over the batch instead.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import torch
from torchvision.transforms import v2

from searchlab.augment.mixing import TASK_KINDS, Mixer
from searchlab.augment.ops import BILINEAR, apply_sub_policy
from searchlab.augment.spec import AugmentSpec

ImagePolicy = Callable[[torch.Tensor], torch.Tensor]   # uint8 (N, C, H, W) -> uint8 (N, C, H, W)


class BatchAugment(Protocol):
    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch ops on one thread. One image's op (~0.1 ms at 28 px) is too small to split: a second intra-op
    thread only adds fork/join cost, and when the cores are shared with other processes that cost grows to
    milliseconds per op (a 28 px rotation: 0.09 ms on 1 thread, up to 9 ms on 2). Process-wide, so call
    augmentation from the training thread, as the loop does, not concurrently with model compute."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def per_image(transform: Callable[[torch.Tensor], torch.Tensor]) -> ImagePolicy:
    """Apply `transform` to each (C, H, W) image separately, so each gets its own random draw."""
    def apply(x: torch.Tensor) -> torch.Tensor:
        if not x.shape[0]:
            return x
        with single_thread():
            return torch.stack([transform(image) for image in x])
    return apply


def random_flip(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Flip each image along `dim` with probability 1/2 (vectorised)."""
    flip = torch.rand(x.shape[0]) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(dim), x)


def reflected(index: torch.Tensor, size: int) -> torch.Tensor:
    """Indices outside 0..size-1 mirrored back inside (numpy's "reflect" padding, edge pixel not repeated)."""
    period = 2 * (size - 1) or 1   # a 1-pixel side: every index is 0
    index = index.remainder(period)
    return torch.where(index < size, index, period - index)


def random_shift(x: torch.Tensor, max_pixels: int = 2) -> torch.Tensor:
    """Shift each image by its own (dy, dx) within +-max_pixels, borders reflected: a random crop of the
    reflect-padded image, the classic small-image augmentation. Indexing, not padding, so uint8 works and
    nothing wraps around (a roll would move the bottom rows of an ultrasound frame to its top)."""
    n, _, height, width = x.shape
    offsets = torch.randint(-max_pixels, max_pixels + 1, (n, 2))
    rows = reflected(offsets[:, :1] + torch.arange(height), height)   # (N, H)
    columns = reflected(offsets[:, 1:] + torch.arange(width), width)  # (N, W)
    batch = torch.arange(n).view(-1, 1, 1)
    # Advanced indices around a slice put their dims first: (N, H, W, C) back to (N, C, H, W).
    return x[batch, :, rows[:, :, None], columns[:, None, :]].permute(0, 3, 1, 2).contiguous()


def flip_shift(x: torch.Tensor) -> torch.Tensor:
    """A left-right flip per image, then a shift of up to 2 pixels per image with reflected borders."""
    return random_shift(random_flip(x, dim=3))


def _none(_spec: AugmentSpec) -> ImagePolicy:
    return lambda x: x


def _flip_shift(_spec: AugmentSpec) -> ImagePolicy:
    return flip_shift


def _resized_crop(spec: AugmentSpec) -> ImagePolicy:
    def crop(x: torch.Tensor) -> torch.Tensor:   # the output size is the batch's own size, known per call
        transform = v2.RandomResizedCrop(tuple(x.shape[-2:]), scale=(spec.crop_scale, 1.0), antialias=True)
        return per_image(transform)(x)
    return crop


def _flip_rotate(spec: AugmentSpec) -> ImagePolicy:
    # Medical images have no canonical left-right or up-down (slides, dermoscopy, most ultrasound crops).
    rotate = per_image(v2.RandomRotation(spec.rotate_degrees, interpolation=BILINEAR)) if spec.rotate_degrees \
        else _none(spec)   # 0 degrees: flips only, without a per-image loop that would do nothing

    def apply(x: torch.Tensor) -> torch.Tensor:
        return rotate(random_flip(random_flip(x, dim=3), dim=2))
    return apply


def _affine(spec: AugmentSpec) -> ImagePolicy:
    def apply(x: torch.Tensor) -> torch.Tensor:
        if not x.shape[0]:
            return x
        return random_affine(random_flip(x, dim=3), spec.rotate_degrees, spec.affine_scale, spec.affine_translate)
    return apply


def random_affine(x: torch.Tensor, degrees: float, scale: float, translate: float) -> torch.Tensor:
    """Each uint8 image rotated, zoomed and shifted by its own draw, in one batched resampling (reflected
    borders): per-image torchvision calls would cost ~50x more in Python dispatch at 28 px."""
    n = x.shape[0]
    angle = torch.deg2rad((torch.rand(n) * 2 - 1) * degrees)
    zoom = 1 + (torch.rand(n) * 2 - 1) * scale
    shift = (torch.rand(n, 2) * 2 - 1) * translate * 2   # grid coordinates span 2 per side
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(x.to(torch.float32), grid, mode="bilinear", padding_mode="reflection",
                                          align_corners=False)
    return out.round().clamp(0, 255).to(x.dtype)


def _randaugment(spec: AugmentSpec) -> ImagePolicy:
    return per_image(v2.RandAugment(spec.randaugment_n, spec.randaugment_m, num_magnitude_bins=31,
                                    interpolation=BILINEAR))


class _TrivialAugmentWithinTheImage(v2.TrivialAugmentWide):
    """TrivialAugment Wide, its shifts capped at 150/331 of the side (RandAugment's range in torchvision and
    timm). Its 0-32 px range, made for ImageNet-sized images, moved a 28 px image out of frame: 2% of BreastMNIST's
    training images came out black, keeping their labels. Images of 71 px and more shift as published."""
    _AUGMENTATION_SPACE = {
        **v2.TrivialAugmentWide._AUGMENTATION_SPACE,
        "TranslateX": (lambda num_bins, height, width: torch.linspace(0.0, min(32.0, 150 / 331 * width), num_bins),
                       True),
        "TranslateY": (lambda num_bins, height, width: torch.linspace(0.0, min(32.0, 150 / 331 * height), num_bins),
                       True),
    }


def _trivialaugment(_spec: AugmentSpec) -> ImagePolicy:
    return per_image(_TrivialAugmentWithinTheImage(interpolation=BILINEAR))


def _augmix(spec: AugmentSpec) -> ImagePolicy:
    return per_image(v2.AugMix(severity=spec.augmix_severity, interpolation=BILINEAR))


def _searched(spec: AugmentSpec) -> ImagePolicy:
    steps = tuple(spec.sub_policies.values())

    def apply(x: torch.Tensor) -> torch.Tensor:
        for step in steps:
            x = apply_sub_policy(x, step)
        return x
    return apply


POLICIES: dict[str, Callable[[AugmentSpec], ImagePolicy]] = {
    "none": _none, "flip_shift": _flip_shift, "resized_crop": _resized_crop, "flip_rotate": _flip_rotate,
    "affine": _affine, "randaugment": _randaugment, "trivialaugment": _trivialaugment, "augmix": _augmix, "searched": _searched,
}


@dataclass(frozen=True)
class Augmenter:
    """uint8 images + labels -> float32 images in [0, 1] + training targets (see build_augmentation)."""

    images: ImagePolicy
    mix: Mixer

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mix(self.policy(x, y), y)

    def policy(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The image policy alone (float [0, 1] out): the training loop may transform further before mixing."""
        _check_batch(x, y)
        return self.images(x).to(torch.float32) / 255


def build_augmentation(spec: AugmentSpec, kind: str, n_classes: int) -> Augmenter:
    """The per-batch augmentation of a training loop.

    Returns f(x, y): x uint8 (N, C, H, W), C 1 or 3; y int64 (N,) class indices or float 0/1 (N, L) for
    "multilabel". Gives float32 (N, C, H, W) in [0, 1] and the targets: `y` itself for a batch that was not
    mixed; for a mixed batch float32 (N, n_classes) (one-hot mixed by lambda for single-label tasks, which
    nn.CrossEntropyLoss accepts as class probabilities; the mixed 0/1 matrix for multilabel).
    """
    if kind not in TASK_KINDS:
        raise ValueError(f"kind must be one of {', '.join(TASK_KINDS)}, got {kind!r}")
    if n_classes < (1 if kind == "multilabel" else 2):
        raise ValueError(f"n_classes must count the classes (binary: 2) or labels, got {n_classes}")
    return Augmenter(POLICIES[spec.policy](spec), Mixer(spec.mix, spec.mix_alpha, spec.mix_prob, kind, n_classes))


def _check_batch(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be uint8 (N, C, H, W) with C 1 or 3, got {x.dtype} {tuple(x.shape)}")
    if y.shape[:1] != x.shape[:1]:
        raise ValueError(f"{x.shape[0]} images but labels of shape {tuple(y.shape)}")
