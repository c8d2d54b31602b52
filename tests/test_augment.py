"""Batch augmentation: every policy keeps shape, dtype and range; ops do what the table says; mixing keeps
images and targets consistent; seeded runs repeat; config mistakes name the field."""
from __future__ import annotations

from typing import get_args

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from searchlab.augment import OPS, AugmentSpec, SubPolicy, build_augmentation
from searchlab.augment.spec import OpName, PolicyName

POLICIES = get_args(PolicyName)
# "searched" exercises every op of the table, each on about half the images.
ALL_OPS = {op: SubPolicy(op=op, prob=0.5, magnitude=7) for op in get_args(OpName)}


def spec_for(policy: str, **kw) -> AugmentSpec:
    return AugmentSpec(policy=policy, sub_policies=ALL_OPS if policy == "searched" else {}, **kw)


def textured(n: int, channels: int = 1, size: int = 28, seed: int = 0) -> torch.Tensor:
    """Non-constant, asymmetric, mid-range images: every op has something to change, nothing saturates."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(60, 180, (n, channels, size, size), generator=gen, dtype=torch.uint8)


def searched_op(op: str, prob: float, magnitude: int) -> AugmentSpec:
    return AugmentSpec(policy="searched", sub_policies={"s": SubPolicy(op=op, prob=prob, magnitude=magnitude)})


def changed_per_image(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return (out != x / 255).flatten(1).any(dim=1)


# ---------------------------------------------------------------- every policy: shape, dtype, range
@pytest.mark.parametrize("size", [28, 64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("policy", POLICIES)
def test_policy_keeps_shape_dtype_range_and_input(policy, channels, size):
    torch.manual_seed(0)
    x = torch.randint(0, 256, (12, channels, size, size), dtype=torch.uint8)
    x_before, y = x.clone(), torch.randint(0, 3, (12,))
    out, targets = build_augmentation(spec_for(policy), "multiclass", 3)(x, y)
    assert out.dtype == torch.float32 and out.shape == x.shape
    assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
    assert targets is y                                   # no mixing asked for: labels untouched
    assert torch.equal(x, x_before)                       # the caller's batch is never modified
    if policy == "none":
        assert torch.equal(out, x / 255)
    else:
        assert changed_per_image(out, x).any()


@pytest.mark.parametrize("policy", ["randaugment", "trivialaugment", "augmix", "resized_crop", "flip_rotate", "affine"])
def test_torchvision_policies_draw_per_image(policy):
    torch.manual_seed(1)
    x = textured(1).expand(16, -1, -1, -1).contiguous()   # 16 copies of one image
    out, _ = build_augmentation(spec_for(policy), "binary", 2)(x, torch.zeros(16, dtype=torch.long))
    assert len({out[i].numpy().tobytes() for i in range(16)}) > 8   # not one draw shared by the batch


def test_affine_without_rotation_zoom_or_shift_is_the_image_or_its_mirror():
    torch.manual_seed(0)
    x = textured(16)
    spec = AugmentSpec(policy="affine", rotate_degrees=0, affine_scale=0, affine_translate=0)
    out, _ = build_augmentation(spec, "binary", 2)(x, torch.zeros(16, dtype=torch.long))
    pixels = (out * 255).round().to(torch.uint8)
    same = [torch.equal(pixels[i], x[i]) for i in range(16)]
    mirrored = [torch.equal(pixels[i], x[i].flip(-1)) for i in range(16)]
    assert all(s or m for s, m in zip(same, mirrored)) and 0 < sum(same) < 16   # left-right flips only, per image


def reflect_shifted(image: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """The reference: numpy's reflect padding, then the crop a (dy, dx) shift sees."""
    height, width = image.shape[-2:]
    padded = np.pad(image, ((0, 0), (2, 2), (2, 2)), mode="reflect")
    return padded[:, 2 + dy:2 + dy + height, 2 + dx:2 + dx + width]


@pytest.mark.parametrize("size", [(28, 28), (20, 31)])
def test_flip_shift_shifts_each_image_with_reflected_borders(size):
    torch.manual_seed(0)
    x = torch.randint(0, 256, (64, 3, *size), dtype=torch.uint8)
    out, _ = build_augmentation(spec_for("flip_shift"), "binary", 2)(x, torch.zeros(64, dtype=torch.long))
    out = (out * 255).round().to(torch.uint8).numpy()
    views_seen = set()
    for image, result in zip(x.numpy(), out):
        views = {(flip, dy, dx) for flip in (False, True) for dy in range(-2, 3) for dx in range(-2, 3)
                 if np.array_equal(reflect_shifted(image[..., ::-1] if flip else image, dy, dx), result)}
        assert len(views) == 1   # exactly one flip-and-shift of this image, nothing wrapped around
        views_seen |= views
    assert len(views_seen) > 20   # drawn per image: 64 images show most of the 50 views


def test_per_image_policies_restore_the_thread_count():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        build_augmentation(spec_for("randaugment"), "binary", 2)(textured(4), torch.zeros(4, dtype=torch.long))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------- searched ops
@pytest.mark.parametrize("op", get_args(OpName))
def test_op_at_full_magnitude_changes_every_image_identity_none(op):
    torch.manual_seed(0)
    x = textured(8, channels=3)
    out, _ = build_augmentation(searched_op(op, 1.0, 10), "binary", 2)(x, torch.zeros(8, dtype=torch.long))
    changed = changed_per_image(out, x)
    assert not changed.any() if op == "identity" else changed.all(), changed


@pytest.mark.parametrize("op", sorted(op for op, table in OPS.items() if table.max_strength))
def test_op_at_magnitude_one_changes_every_image(op):
    """Magnitude 1 of posterize and gaussian_blur was the identity (blur at 2 under a grey level): a step a
    search spends trials on must do something."""
    torch.manual_seed(0)
    x = torch.randint(0, 256, (8, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    out, _ = build_augmentation(searched_op(op, 1.0, 1), "binary", 2)(x, torch.zeros(8, dtype=torch.long))
    assert changed_per_image(out, x).all()


def test_trivialaugment_never_shifts_an_image_out_of_frame(breastmnist_root):
    """TrivialAugment Wide's shifts of up to 32 px blacked out 2% of BreastMNIST's 28 px training images."""
    torch.manual_seed(0)
    images = np.load(breastmnist_root / "breastmnist.npz")["train_images"]
    x = torch.from_numpy(images)[:, None].repeat(4, 1, 1, 1)
    assert x.flatten(1).amax(1).min() > 0
    out, _ = build_augmentation(spec_for("trivialaugment"), "binary", 2)(x, torch.zeros(len(x), dtype=torch.long))
    assert (out.flatten(1).amax(1) == 0).sum() == 0


@pytest.mark.parametrize("op", get_args(OpName))
def test_op_with_prob_zero_or_magnitude_zero_leaves_images(op):
    x = textured(8)
    augment = build_augmentation(searched_op(op, 0.0, 10), "binary", 2)
    assert torch.equal(augment(x, torch.zeros(8, dtype=torch.long))[0], x / 255)
    if OPS[op].max_strength:                              # ops with a magnitude: 0 means unchanged
        augment = build_augmentation(searched_op(op, 1.0, 0), "binary", 2)
        assert torch.equal(augment(x, torch.zeros(8, dtype=torch.long))[0], x / 255)


def test_prob_applies_per_image():
    torch.manual_seed(0)
    x = textured(400)
    out, _ = build_augmentation(searched_op("vflip", 0.3, 10), "binary", 2)(x, torch.zeros(400, dtype=torch.long))
    assert 0.2 < changed_per_image(out, x).float().mean() < 0.4


# ---------------------------------------------------------------- mixup / cutmix
N = 8


def constant_images(size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """Image i is flat grey level values[i]: a pixel's value tells which image it came from."""
    values = torch.arange(1, N + 1, dtype=torch.uint8) * 25
    return values.view(N, 1, 1, 1).expand(N, 1, size, size).contiguous(), values.float() / 255


def pixel_fractions(out: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """(N, N): fraction of out[i]'s pixels equal to image j's grey level."""
    return (out.flatten(1)[:, :, None] == values[None, None, :]).float().mean(dim=1)


def mixed(mode: str, kind: str, y: torch.Tensor, n_classes: int, seed: int, size: int = 28) -> tuple[torch.Tensor, ...]:
    torch.manual_seed(seed)
    x, values = constant_images(size)
    spec = AugmentSpec(mix=mode, mix_prob=1.0, mix_alpha=1.0)
    out, targets = build_augmentation(spec, kind, n_classes)(x, y)
    return out, targets, values


@pytest.mark.parametrize("seed", range(6))
def test_cutmix_pasted_area_equals_target_weight(seed):
    out, targets, values = mixed("cutmix", "multiclass", torch.arange(N), N, seed, size=29)
    assert targets.dtype == torch.float32 and targets.shape == (N, N)
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(N))
    torch.testing.assert_close(pixel_fractions(out, values), targets)   # label j == image j


@pytest.mark.parametrize("seed", range(6))
def test_mixup_blends_images_by_the_target_weights(seed):
    out, targets, values = mixed("mixup", "multiclass", torch.arange(N), N, seed)
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(N))
    assert ((targets > 0) & (targets < 1)).any()                         # soft, not one-hot
    torch.testing.assert_close(out[:, 0, 0, 0], targets @ values)
    assert torch.equal(out, out[:, :, :1, :1].expand_as(out))           # every pixel blended alike


@pytest.mark.parametrize("mode", ["mixup", "cutmix"])
def test_binary_targets_are_soft_pairs(mode):
    out, targets, _ = mixed(mode, "binary", torch.tensor([0, 1] * (N // 2)), 2, seed=3)
    assert targets.shape == (N, 2) and targets.dtype == torch.float32
    torch.testing.assert_close(targets.sum(dim=1), torch.ones(N))


@pytest.mark.parametrize("mode", ["mixup", "cutmix"])
def test_multilabel_targets_mix_like_images(mode):
    y = (torch.rand(N, 5, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    out, targets, values = mixed(mode, "multilabel", y, 5, seed=2)
    assert targets.shape == (N, 5) and 0.0 <= float(targets.min()) and float(targets.max()) <= 1.0
    assert ((targets > 0) & (targets < 1)).any()                         # some rows really mixed
    if mode == "cutmix":                                                 # label weights = pixel shares
        torch.testing.assert_close(targets, pixel_fractions(out, values) @ y)


def test_mix_prob_zero_never_mixes_and_half_mixes_about_half():
    x, y = constant_images()[0], torch.arange(N)
    never = build_augmentation(AugmentSpec(mix="cutmix", mix_prob=0.0), "multiclass", N)
    torch.manual_seed(0)
    for _ in range(50):
        out, targets = never(x, y)
        assert targets is y and torch.equal(out, x / 255)
    half = build_augmentation(AugmentSpec(mix="mixup", mix_prob=0.5), "multiclass", N)
    mixed_batches = sum(half(x, y)[1].dtype == torch.float32 for _ in range(400))
    assert 150 < mixed_batches < 250


# ---------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("policy", POLICIES)
def test_seeded_runs_repeat(policy):
    augment = build_augmentation(spec_for(policy, mix="cutmix", mix_prob=0.7), "multiclass", 3)
    x, y = textured(16, channels=3), torch.arange(16) % 3

    def run(seed: int) -> list[torch.Tensor]:
        torch.manual_seed(seed)
        return [t for _ in range(3) for t in augment(x, y)]

    assert all(torch.equal(a, b) for a, b in zip(run(5), run(5)))
    if policy != "none":
        assert not all(torch.equal(a, b) for a, b in zip(run(5), run(6)))


# ---------------------------------------------------------------- config and input errors
@pytest.mark.parametrize("build, field", [
    (lambda: SubPolicy(op="rotate", prob=0.5, magnitude=11), ("magnitude",)),
    (lambda: SubPolicy(op="rotation", prob=0.5, magnitude=3), ("op",)),
    (lambda: AugmentSpec(randaugment_n=0), ("randaugment_n",)),
    (lambda: AugmentSpec(policy="searched", sub_policies={"a": {"op": "rotat", "magnitude": 3}}),
     ("sub_policies", "a", "op")),
    (lambda: AugmentSpec(policy="searched"), ("sub_policies",)),
    (lambda: AugmentSpec(mix_alfa=0.2), ("mix_alfa",)),
    (lambda: AugmentSpec(mix_prob=1.5), ("mix_prob",)),
])
def test_spec_errors_name_the_field(build, field):
    with pytest.raises(ValidationError) as info:
        build()
    assert [e["loc"] for e in info.value.errors()] == [field]


def test_bad_task_or_batch_is_refused():
    with pytest.raises(ValueError, match="kind"):
        build_augmentation(AugmentSpec(), "regression", 2)
    augment = build_augmentation(AugmentSpec(), "binary", 2)
    with pytest.raises(ValueError, match="uint8"):
        augment(torch.rand(4, 1, 28, 28), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        augment(textured(4), torch.zeros(3, dtype=torch.long))
