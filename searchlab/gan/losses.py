"""What training a GAN needs and an export does not: the families' losses, the gradient penalty (WGAN-GP),
R1 (StyleGAN2), DiffAugment and the generator EMA (the networks are in searchlab/models/gan.py and stylegan2.py)."""
from __future__ import annotations

import torch
from torch import nn

from searchlab.models.gan_common import _gan_check_family

DIFF_AUGMENT_OPS = ("color", "translation", "cutout")

# ------------------------------------------------------------------ losses and regularisers
def generator_loss(family: str, fake_scores: torch.Tensor) -> torch.Tensor:
    """dcgan/stylegan2: non-saturating -log sigmoid(D(G(z))) (Goodfellow et al. 2014 sec. 3); wgan_gp: -E[D]."""
    _gan_check_family(family)
    if family == "wgan_gp":
        return -fake_scores.mean()
    return torch.nn.functional.softplus(-fake_scores).mean()


def discriminator_loss(family: str, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """dcgan/stylegan2: logistic loss softplus(-D(real)) + softplus(D(fake));
    wgan_gp: E[D(fake)] - E[D(real)] (add gradient_penalty, which carries lambda, for the full critic loss)."""
    _gan_check_family(family)
    if family == "wgan_gp":
        return fake_scores.mean() - real_scores.mean()
    return torch.nn.functional.softplus(-real_scores).mean() + torch.nn.functional.softplus(fake_scores).mean()


def _input_gradient(discriminator: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """d(sum of D's scores)/dx with create_graph, so a penalty on it trains D (double backprop)."""
    x = x.detach().requires_grad_(True)
    scores = discriminator(x, labels)
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return grad


def gradient_penalty(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     labels: torch.Tensor | None = None, weight: float = 10.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP: weight * E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat = eps*real + (1-eps)*fake, eps ~ U(0, 1) per
    sample (Gulrajani et al. eq. 3, algorithm 1; lambda = 10 there). Labels, if any, are the real ones."""
    rng_device = generator.device if generator is not None else real.device
    eps = torch.rand(real.shape[0], 1, 1, 1, generator=generator, device=rng_device).to(real)
    x_hat = eps * real.detach() + (1.0 - eps) * fake.detach()
    grad = _input_gradient(discriminator, x_hat, labels)
    return weight * (grad.flatten(1).norm(dim=1) - 1.0).square().mean()


def r1_penalty(discriminator: nn.Module, real: torch.Tensor, labels: torch.Tensor | None = None,
               gamma: float = 1.0) -> torch.Tensor:
    """R1 (Mescheder et al. 2018, eq. 9; StyleGAN2's regulariser): gamma/2 * E[||grad_x D(x_real)||^2].

    gamma is a search parameter: StyleGAN2 used 10 at 1024px, StyleGAN2-ADA far less at small resolution.
    """
    grad = _input_gradient(discriminator, real, labels)
    return 0.5 * gamma * grad.flatten(1).square().sum(dim=1).mean()


# ------------------------------------------------------------------ DiffAugment (Zhao et al., NeurIPS 2020)
def _rand(x: torch.Tensor, generator: torch.Generator | None, *shape: int) -> torch.Tensor:
    """U(0, 1) of `shape` from `generator` (or torch's global RNG), on x's device and dtype."""
    rng_device = generator.device if generator is not None else x.device
    return torch.rand(*shape, generator=generator, device=rng_device).to(x)


def _randint(x: torch.Tensor, generator: torch.Generator | None, low: int, high: int, n: int) -> torch.Tensor:
    rng_device = generator.device if generator is not None else x.device
    return torch.randint(low, high, (n,), generator=generator, device=rng_device).to(x.device)


def _color(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Per-sample brightness +U(-0.5, 0.5), saturation x U(0, 2), contrast x U(0.5, 1.5) (DiffAugment sec. 3)."""
    n = x.shape[0]
    x = x + (_rand(x, generator, n, 1, 1, 1) - 0.5)
    mean = x.mean(dim=1, keepdim=True)                        # grayscale: x == mean, saturation is a no-op
    x = (x - mean) * (_rand(x, generator, n, 1, 1, 1) * 2.0) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, generator, n, 1, 1, 1) + 0.5) + mean


def _translation(x: torch.Tensor, generator: torch.Generator | None, ratio: float = 0.125) -> torch.Tensor:
    """Shift each sample by integers in [-ratio*size, ratio*size] per axis, filling with zeros (a gather: its
    gradient flows back to the source pixels)."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = _randint(x, generator, -sy, sy + 1, n)
    dx = _randint(x, generator, -sx, sx + 1, n)
    padded = torch.nn.functional.pad(x, [sx, sx, sy, sy])
    rows = (torch.arange(h, device=x.device).reshape(1, h, 1) - dy.reshape(n, 1, 1) + sy).expand(n, h, w)
    cols = (torch.arange(w, device=x.device).reshape(1, 1, w) - dx.reshape(n, 1, 1) + sx).expand(n, h, w)
    batch = torch.arange(n, device=x.device).reshape(n, 1, 1).expand(n, h, w)
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2)  # advanced indexing puts channels last


def _cutout(x: torch.Tensor, generator: torch.Generator | None, ratio: float = 0.5) -> torch.Tensor:
    """Zero one (ratio*h) x (ratio*w) square per sample at a uniformly random centre, clipped at the borders."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = _randint(x, generator, 0, h, n).reshape(n, 1, 1)
    cx = _randint(x, generator, 0, w, n).reshape(n, 1, 1)
    ys = torch.arange(h, device=x.device).reshape(1, h, 1) - (cy - ch // 2)
    xs = torch.arange(w, device=x.device).reshape(1, 1, w) - (cx - cw // 2)
    inside = (ys >= 0) & (ys < ch) & (xs >= 0) & (xs < cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def diff_augment(x: torch.Tensor, policy: str = "color,translation,cutout",
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """DiffAugment (Zhao et al., "Differentiable augmentation for data-efficient GAN training", 2020).

    Apply to BOTH real and fake images before every D call (the G step too): differentiable, so G's gradient
    passes through, and D never sees un-augmented images, so it cannot overfit the few reals. Each call draws
    fresh per-sample parameters from `generator` or torch's global RNG. policy: comma-separated subset of
    DIFF_AUGMENT_OPS, applied in that written order; "" is the identity.
    """
    ops = {"color": _color, "translation": _translation, "cutout": _cutout}
    for name in (p.strip() for p in policy.split(",") if p.strip()):
        if name not in ops:
            raise ValueError(f"unknown DiffAugment op {name!r}; valid: {', '.join(DIFF_AUGMENT_OPS)}")
        x = ops[name](x, generator)
    return x.contiguous()


# ------------------------------------------------------------------ generator EMA
def ema_update(target: nn.Module, source: nn.Module, decay: float) -> None:
    """target <- decay * target + (1 - decay) * source for parameters; buffers (BN stats, w_avg, const noise) are
    copied. An EMA of G's weights gives better samples than the last iterate (Karras et al., ProGAN sec. 5;
    Yazici et al., ICLR 2019)."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.lerp_(s, 1.0 - decay)
        for t, s in zip(target.buffers(), source.buffers()):
            t.copy_(s)
