"""GAN networks and losses (searchlab/models/gan.py): shapes, gradients, penalties, StyleGAN2 parts, DiffAugment,
EMA, and the torch-only body that the exporter copies into model.py. Tiny nets: the whole file runs in seconds."""
from __future__ import annotations

import ast
import math
import typing
from pathlib import Path

import pytest
import torch
from torch import nn

from searchlab.models import GAN_BODIES, gan
from searchlab.gan.losses import (diff_augment, discriminator_loss, ema_update, generator_loss, gradient_penalty,
                                  r1_penalty)
from searchlab.models.gan import (GAN_FAMILIES, ModulatedConv2d, build_discriminator, build_generator,
                                  minibatch_stddev)

MARKER = "# ---- model.py body ----"
LATENT, WIDTH, BATCH = 8, 8, 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def nets(family: str, size: int, n_classes: int, channels: int = 1) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    return (build_generator(family, size, channels, latent=LATENT, width=WIDTH, n_classes=n_classes),
            build_discriminator(family, size, channels, width=WIDTH, n_classes=n_classes))


def labels_for(n_classes: int) -> torch.Tensor | None:
    return torch.tensor([0, 1, 2, 0][:BATCH]) if n_classes else None


def real_images(size: int, channels: int = 1) -> torch.Tensor:
    return torch.rand(BATCH, channels, size, size, generator=torch.Generator().manual_seed(3)) * 2 - 1


def body_text() -> str:
    """The GAN files' bodies in the order a generator export's model.py holds them."""
    bodies = []
    for _, module in GAN_BODIES:
        text = Path(module.__file__).read_text()
        assert text.count(MARKER + "\n") == 1, "the exporter splits each file at exactly one marker line"
        bodies.append(text.split(MARKER + "\n", 1)[1])
    return "\n\n".join(bodies)


# ------------------------------------------------------------------ shapes, ranges, sampling
@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("n_classes", [0, 3])
@pytest.mark.parametrize("family", GAN_FAMILIES)
def test_shapes_and_ranges(family: str, n_classes: int, size: int) -> None:
    channels = 3 if size == 32 else 1                      # RGB and grayscale both covered
    G, D = nets(family, size, n_classes, channels)
    labels = labels_for(n_classes)
    assert G.latent == LATENT and G.n_classes == n_classes
    fake = G(torch.randn(BATCH, LATENT), labels)
    assert fake.shape == (BATCH, channels, size, size)
    assert fake.min() >= -1 and fake.max() <= 1 and fake.std() > 0
    assert D(fake, labels).shape == (BATCH,)
    assert D(real_images(size, channels), labels).shape == (BATCH,)

    G.eval()
    first = G.sample(3, generator=torch.Generator().manual_seed(5))
    again = G.sample(3, generator=torch.Generator().manual_seed(5))
    assert first.shape == (3, channels, size, size) and not first.requires_grad
    assert torch.equal(first, again), "a seeded torch.Generator must give the same samples"
    if n_classes:
        assert G.sample(2, labels=torch.tensor([2, 2])).shape == (2, channels, size, size)


@pytest.mark.parametrize("family", GAN_FAMILIES)
def test_conditioning_changes_output_and_labels_are_checked(family: str) -> None:
    G, D = nets(family, 28, 3)
    G.eval()
    z = torch.randn(1, LATENT).repeat(2, 1)
    kw = {"noise_mode": "const"} if family == "stylegan2" else {}
    out = G(z, torch.tensor([0, 2]), **kw)
    assert not torch.allclose(out[0], out[1]), "same z, different class: different image"
    with pytest.raises(ValueError, match="labels"):
        G(z)
    with pytest.raises(ValueError, match="labels"):
        D(out)
    G0, _ = nets(family, 28, 0)
    with pytest.raises(ValueError, match="unconditional"):
        G0(z, torch.tensor([0, 1]))


def test_size_plan_and_bad_sizes() -> None:
    assert gan._gan_plan(28) == (7, 2) and gan._gan_plan(32) == (4, 3) and gan._gan_plan(64) == (4, 4)
    G, D = nets("dcgan", 64, 0)
    assert G(torch.randn(2, LATENT)).shape == (2, 1, 64, 64) and D(torch.zeros(2, 1, 64, 64)).shape == (2,)
    for bad in (30, 7, 36 * 3):
        with pytest.raises(ValueError, match="image_size"):
            build_generator("dcgan", bad, 1)


def test_unknown_family_lists_valid_ones() -> None:
    calls = [lambda: build_generator("vae", 28, 1), lambda: build_discriminator("vae", 28, 1),
             lambda: generator_loss("vae", torch.zeros(2)),
             lambda: discriminator_loss("vae", torch.zeros(2), torch.zeros(2))]
    for call in calls:
        with pytest.raises(ValueError) as info:
            call()
        assert "'vae'" in str(info.value) and all(f in str(info.value) for f in GAN_FAMILIES)


def test_wgan_critic_has_no_batch_norm_and_dcgan_d_has_it() -> None:
    kinds = {f: {type(m) for m in build_discriminator(f, 28, 1, width=WIDTH).modules()} for f in ("dcgan", "wgan_gp")}
    assert nn.BatchNorm2d in kinds["dcgan"]
    assert nn.BatchNorm2d not in kinds["wgan_gp"] and nn.GroupNorm in kinds["wgan_gp"]


# ------------------------------------------------------------------ losses and gradients
def assert_every_param_has_grad(net: nn.Module, except_: str = "") -> None:
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0 or name == except_, f"no gradient reached {name}"


@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("n_classes", [0, 3])
@pytest.mark.parametrize("family", GAN_FAMILIES)
def test_gradients_flow_from_each_loss_to_both_nets(family: str, n_classes: int, size: int) -> None:
    G, D = nets(family, size, n_classes)
    labels, real = labels_for(n_classes), real_images(size)

    g_loss = generator_loss(family, D(G(torch.randn(BATCH, LATENT), labels), labels))
    g_loss.backward()
    assert_every_param_has_grad(G)
    assert_every_param_has_grad(D)

    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    fake = G(torch.randn(BATCH, LATENT), labels)
    d_loss = discriminator_loss(family, D(real, labels), D(fake, labels))
    if family == "wgan_gp":
        d_loss = d_loss + gradient_penalty(D, real, fake, labels)
    elif family == "stylegan2":
        d_loss = d_loss + r1_penalty(D, real, labels)
    assert torch.isfinite(d_loss)
    d_loss.backward()
    # E[D(fake)] - E[D(real)] does not depend on the critic's output bias: its gradient is exactly 0
    assert_every_param_has_grad(D, except_="head.linear.bias" if family == "wgan_gp" else "")
    assert_every_param_has_grad(G)


def test_loss_formulas() -> None:
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    softplus = torch.nn.functional.softplus
    for family in ("dcgan", "stylegan2"):
        assert torch.allclose(generator_loss(family, fake), softplus(-fake).mean())
        assert torch.allclose(discriminator_loss(family, real, fake), softplus(-real).mean() + softplus(fake).mean())
    assert torch.allclose(generator_loss("wgan_gp", fake), -fake.mean())
    assert torch.allclose(discriminator_loss("wgan_gp", real, fake), fake.mean() - real.mean())


class LinearCritic(nn.Module):
    """D(x) = scale * <u, x> with ||u|| = 1: its input gradient has norm `scale` everywhere."""

    def __init__(self, numel: int, scale: float) -> None:
        super().__init__()
        u = torch.randn(numel, generator=torch.Generator().manual_seed(0))
        self.u = nn.Parameter(scale * u / u.norm())

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return x.flatten(1) @ self.u


def test_gradient_penalty_zero_for_unit_gradient_critic_positive_otherwise() -> None:
    real, fake = real_images(28), torch.rand(BATCH, 1, 28, 28) * 2 - 1
    assert gradient_penalty(LinearCritic(28 * 28, 1.0), real, fake).abs() < 1e-8
    # gradient norm 2 everywhere: lambda * (2 - 1)^2
    assert torch.allclose(gradient_penalty(LinearCritic(28 * 28, 2.0), real, fake, weight=10.0), torch.tensor(10.0))
    _, critic = nets("wgan_gp", 28, 3)
    gp = gradient_penalty(critic, real, fake, labels_for(3))
    assert gp > 0
    gp.backward()                                         # double backprop trains the critic
    assert sum(p.grad.abs().sum() for p in critic.parameters() if p.grad is not None) > 0


@pytest.mark.parametrize("n_classes", [0, 3])
def test_r1_penalty_matches_independent_autograd(n_classes: int) -> None:
    _, D = nets("stylegan2", 28, n_classes)
    real, labels = real_images(28), labels_for(n_classes)
    x = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x, labels).sum(), x)
    expected = 2.5 / 2 * (grad ** 2).sum(dim=(1, 2, 3)).mean()
    got = r1_penalty(D, real, labels, gamma=2.5)
    assert torch.allclose(got, expected, rtol=1e-5) and got > 0
    got.backward()
    assert D.from_rgb.weight.grad is not None and D.from_rgb.weight.grad.abs().sum() > 0


# ------------------------------------------------------------------ StyleGAN2 parts
def test_demodulated_conv_gives_unit_variance_per_output_channel() -> None:
    torch.manual_seed(0)
    conv = ModulatedConv2d(16, 12, 3, style_dim=8)
    x = torch.randn(4, 16, 32, 32)
    w = 5 * torch.randn(4, 8)                             # styles far from 1: modulation alone would blow up
    with torch.no_grad():
        var = conv(x, w)[:, :, 1:-1, 1:-1].var(dim=(0, 2, 3))   # interior: zero padding lowers the border
        conv.demodulate = False
        raw_var = conv(x, w)[:, :, 1:-1, 1:-1].var(dim=(0, 2, 3))
    assert var.shape == (12,)
    assert ((var - 1).abs() < 0.15).all(), var
    assert abs(var.mean().item() - 1) < 0.05
    assert raw_var.mean() > 3, "without demodulation the style scale passes through"


def test_noise_and_constant_input_are_learned_and_noise_is_per_channel() -> None:
    G, _ = nets("stylegan2", 28, 0)
    names = dict(G.named_parameters())
    assert "const" in names and names["const"].shape == (2 * WIDTH, 7, 7)   # 28 starts from a 7x7 constant
    layer = G.layers[0]
    assert layer.noise_strength.shape == (2 * WIDTH,)
    z = torch.randn(2, LATENT)
    G.eval()
    with torch.no_grad():
        for l in G.layers:
            l.noise_strength.fill_(1.0)
        assert torch.equal(G(z, noise_mode="const"), G(z, noise_mode="const"))
        assert not torch.equal(G(z, noise_mode="random"), G(z, noise_mode="random"))
        assert not torch.equal(G(z, noise_mode="none"), G(z, noise_mode="const"))
    assert len(G.torgbs) == 3 and G.num_ws == 6 and len(G.mapping.fcs) == 4


def test_style_mixing_uses_two_ws() -> None:
    G = build_generator("stylegan2", 28, 1, latent=LATENT, width=WIDTH, mixing_prob=1.0)
    z, z2 = torch.randn(2, LATENT), torch.randn(2, LATENT)
    G.train()
    torch.manual_seed(1)
    ws = G.make_ws(z, mix_z=z2)
    w1, w2 = G.mapping(z), G.mapping(z2)
    assert torch.allclose(ws[:, 0], w1) and torch.allclose(ws[:, -1], w2)
    cutoff = int((ws - w1.unsqueeze(1)).abs().sum(dim=(0, 2)).ne(0).float().argmax())
    assert 1 <= cutoff < G.num_ws and torch.allclose(ws[:, cutoff:], w2.unsqueeze(1).expand_as(ws[:, cutoff:]))

    with torch.no_grad():
        mixed = G(z, mix_z=z2, noise_mode="const")
        G.mixing_prob = 0.0
        only_1, only_2 = G(z, noise_mode="const"), G(z2, noise_mode="const")
    assert not torch.allclose(mixed, only_1) and not torch.allclose(mixed, only_2)

    G.mixing_prob = 1.0
    G.eval()                                              # mixing is a training-time regulariser only
    ws = G.make_ws(z, mix_z=z2)
    assert torch.allclose(ws, G.mapping(z).unsqueeze(1).expand_as(ws))


def test_truncation_psi_zero_collapses_to_average_w() -> None:
    G, _ = nets("stylegan2", 28, 0)
    G.train()
    G(torch.randn(16, LATENT))                            # training updates w_avg
    assert G.mapping.w_avg.abs().sum() > 0
    G.eval()
    out = G(torch.randn(3, LATENT), truncation_psi=0.0, noise_mode="const")
    assert torch.allclose(out[0], out[1], atol=1e-6) and torch.allclose(out[0], out[2], atol=1e-6)


def test_minibatch_stddev_channel() -> None:
    x = torch.randn(6, 5, 4, 4)
    y = minibatch_stddev(x, group_size=4)                 # 6 samples: groups of 3 (largest divisor <= 4)
    assert y.shape == (6, 6, 4, 4) and torch.equal(y[:, :5], x)
    assert torch.allclose(y[0, 5], y[2, 5]) and not torch.allclose(y[0, 5], y[1, 5])   # i mod 2 is the group
    same = minibatch_stddev(x[:1].repeat(4, 1, 1, 1))
    assert same[:, 5].abs().max() < 1e-3


# ------------------------------------------------------------------ DiffAugment
@pytest.mark.parametrize("shape", [(3, 1, 28, 28), (2, 3, 32, 32)])
def test_diff_augment_shape_gradient_and_seeding(shape: tuple[int, ...]) -> None:
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    x.requires_grad_(True)
    torch.manual_seed(7)
    first = diff_augment(x)
    torch.manual_seed(7)
    second = diff_augment(x)
    assert first.shape == x.shape and torch.equal(first, second)
    torch.manual_seed(8)
    assert not torch.equal(diff_augment(x), first)
    assert torch.equal(diff_augment(x, generator=torch.Generator().manual_seed(2)),
                       diff_augment(x, generator=torch.Generator().manual_seed(2)))
    (first * torch.randn_like(first)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_diff_augment_ops() -> None:
    x = torch.rand(8, 1, 28, 28)
    assert torch.equal(diff_augment(x, policy=""), x)
    ones = torch.ones(8, 1, 28, 28)
    cut = diff_augment(ones, "cutout", generator=torch.Generator().manual_seed(0))
    zero_frac = (cut == 0).float().mean(dim=(1, 2, 3))
    assert ((zero_frac > 0) & (zero_frac <= 0.25)).all()  # one half-size square, clipped at the borders
    shifted = diff_augment(x, "translation", generator=torch.Generator().manual_seed(0))
    for a, b in zip(x, shifted):                          # an integer shift of at most 28/8 = 4 pixels
        assert any(torch.equal(torch.nn.functional.pad(a, [4, 4, 4, 4])[:, 4 - dy:32 - dy, 4 - dx:32 - dx], b)
                   for dy in range(-4, 5) for dx in range(-4, 5))
    with pytest.raises(ValueError, match="color"):
        diff_augment(x, "rotate")


# ------------------------------------------------------------------ EMA
def test_ema_update_math() -> None:
    torch.manual_seed(0)
    source, target = (nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2)) for _ in range(2))
    source(torch.randn(5, 3))                             # moves source's BN running stats
    before = [p.detach().clone() for p in target.parameters()]
    ema_update(target, source, decay=0.9)
    for t, b, s in zip(target.parameters(), before, source.parameters()):
        assert torch.allclose(t, 0.9 * b + 0.1 * s)
    for t, s in zip(target.buffers(), source.buffers()):
        assert torch.equal(t, s)
    ema_update(target, source, decay=0.0)
    assert all(torch.equal(t, s) for t, s in zip(target.parameters(), source.parameters()))


# ------------------------------------------------------------------ the model.py body
def test_body_has_no_imports_and_prefixed_private_names() -> None:
    tree = ast.parse(body_text())
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert "searchlab" not in body_text()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names = [node.name]
        else:
            names = [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
        for name in names:
            assert not name.startswith("_") or name.startswith("_gan_"), name


def test_body_runs_standalone() -> None:
    namespace = {"torch": torch, "nn": torch.nn, "math": math, "Any": typing.Any}
    exec(compile(body_text(), "gan_body", "exec"), namespace)   # noqa: S102 - our own file, the export's view of it
    assert namespace["GAN_FAMILIES"] == GAN_FAMILIES
    real = real_images(28)
    for family in GAN_FAMILIES:
        torch.manual_seed(0)
        G = namespace["build_generator"](family, 28, 1, latent=LATENT, width=WIDTH, n_classes=3)
        D = namespace["build_discriminator"](family, 28, 1, width=WIDTH, n_classes=3)
        labels = labels_for(3)
        fake = G(torch.randn(BATCH, LATENT), labels)
        scores = D(fake, labels)   # the training-only parts (losses, DiffAugment, EMA) are not in the body
        assert fake.shape == (BATCH, 1, 28, 28) and scores.shape == (BATCH,)
        assert torch.isfinite(scores).all() and torch.isfinite(D(real, labels)).all()
        assert G.sample(2).shape == (2, 1, 28, 28)
