"""Generative adversarial networks for small images: DCGAN, WGAN-GP and StyleGAN2 (torch only).

Networks only (an export's model.py carries them); the losses, regularisers, DiffAugment and EMA that only
training needs are in searchlab/gan/losses.py, the training loop in searchlab/gan/train.py.

Families
    ``dcgan``     Radford, Metz & Chintala, "Unsupervised representation learning with deep convolutional GANs"
                  (ICLR 2016): transposed-conv generator with BN + ReLU and tanh output, strided-conv
                  discriminator with LeakyReLU(0.2) and BN on every layer but the first; non-saturating loss
                  (Goodfellow et al. 2014).
    ``wgan_gp``   Gulrajani et al., "Improved training of Wasserstein GANs" (NeurIPS 2017): the DCGAN nets, but
                  the critic uses layer norm instead of batch norm (the gradient penalty is per sample, which
                  batch statistics would break); loss E[D(fake)] - E[D(real)] + lambda * gradient_penalty.
    ``stylegan2`` Karras et al., "Analyzing and improving the image quality of StyleGAN" (CVPR 2020): mapping
                  MLP, modulated/demodulated convs, per-layer noise, learned constant, skip toRGB outputs, style
                  mixing, residual discriminator with minibatch stddev; logistic loss + R1 (Mescheder et al. 2018).

Resolutions: every net works at ``image_size = base * 2**k`` with ``base`` in 4..7 and ``k >= 1``, so 28 is
built natively from a 7x7 start (7 -> 14 -> 28) instead of generating 32 and cropping; 32 and 64 start at 4x4.

Conditioning (``n_classes > 0``): generators take a label embedding concatenated to z (StyleGAN2: to the
normalised z inside the mapping net, as in StyleGAN2-ADA); discriminators are projection discriminators
(Miyato & Koyama, "cGANs with projection discriminator", ICLR 2018): score = psi(phi(x)) + <embed(y), phi(x)>.

Every generator outputs ``tanh`` images in [-1, 1] (StyleGAN2's output is linear in the paper; tanh keeps the
common contract with gradients everywhere, unlike clamping).

This file holds the DCGAN / WGAN-GP discriminator and build_discriminator; the shared helpers and build_generator
are in gan_common.py, the DCGAN generator in gan_dcgan.py, StyleGAN2's generator in stylegan2.py and its
discriminator in stylegan2_discriminator.py (all importable from here). The part below each file's marker line
is torch-only code (searchlab/models/__init__.py: GAN_BODIES): a generator export's model.py holds gan_common's
and its own family's generator's, no discriminator. Those parts use only ``torch``, ``nn``, ``math`` and
``Any``, import nothing, and prefix module-level helpers with ``_gan_``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from searchlab.models.gan_common import (GAN_FAMILIES, _gan_check_family, _gan_check_labels, _gan_plan,
                                         _gan_stage_channels, build_generator)
from searchlab.models.gan_dcgan import DCGANGenerator, _gan_dcgan_init
from searchlab.models.stylegan2 import MappingNetwork, ModulatedConv2d, StyleGAN2Generator, modulated_conv2d, truncate
from searchlab.models.stylegan2_discriminator import StyleGAN2Discriminator, minibatch_stddev

__all__ = ["GAN_FAMILIES", "DCGANGenerator", "DCGANDiscriminator", "StyleGAN2Generator", "StyleGAN2Discriminator",
           "MappingNetwork", "ModulatedConv2d", "modulated_conv2d", "minibatch_stddev", "truncate",
           "build_generator", "build_discriminator"]

# ---- model.py body ----
# ------------------------------------------------------------------ DCGAN / WGAN-GP discriminator
class _gan_Projection(nn.Module):
    """Miyato & Koyama (2018) eq. 3 output: psi(phi) + <embed(y), phi>; plain linear psi when unconditional."""

    def __init__(self, features: int, n_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, 1)
        self.embed = nn.Embedding(n_classes, features) if n_classes > 0 else None

    def forward(self, phi: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        out = self.linear(phi).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(labels) * phi).sum(dim=1)
        return out


class DCGANDiscriminator(nn.Module):
    """[Conv 4x4/2, norm, LeakyReLU(0.2)]* down to base x base, flatten, projection head -> (N,) logits.

    norm="batch" is DCGAN (no BN on the first layer, Radford et al. sec. 3); norm="layer" is the WGAN-GP critic
    (GroupNorm with one group = layer norm over C, H, W; Gulrajani et al. sec. 4 advise layer norm because the
    gradient penalty is taken per sample and batch norm couples the samples).
    """

    def __init__(self, image_size: int, channels: int, width: int = 64, n_classes: int = 0,
                 norm: str = "batch") -> None:
        super().__init__()
        if norm not in ("batch", "layer", "none"):
            raise ValueError(f"norm must be batch, layer or none, not {norm!r}")
        self.image_size, self.channels, self.n_classes = image_size, channels, n_classes
        base, doublings = _gan_plan(image_size)
        ch = _gan_stage_channels(doublings, width)
        layers: list[nn.Module] = [nn.Conv2d(channels, ch[doublings - 1], 4, 2, 1), nn.LeakyReLU(0.2)]
        for j in range(doublings - 1, 0, -1):
            layers += [nn.Conv2d(ch[j], ch[j - 1], 4, 2, 1, bias=norm == "none"), self._norm(norm, ch[j - 1]),
                       nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.head = _gan_Projection(ch[0] * base ** 2, n_classes)
        _gan_dcgan_init(self)

    @staticmethod
    def _norm(norm: str, channels: int) -> nn.Module:
        if norm == "batch":
            return nn.BatchNorm2d(channels)
        return nn.GroupNorm(1, channels) if norm == "layer" else nn.Identity()

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        _gan_check_labels(self.n_classes, labels)
        return self.head(self.body(x), labels)


# ------------------------------------------------------------------ builder
def build_discriminator(family: str, image_size: int, channels: int, width: int = 64, n_classes: int = 0,
                        **kw: Any) -> nn.Module:
    """A discriminator (critic for wgan_gp): forward(x, labels=None) -> (N,) scores. kw: stylegan2 mbstd_group."""
    _gan_check_family(family)
    if family == "stylegan2":
        return StyleGAN2Discriminator(image_size, channels, width=width, n_classes=n_classes, **kw)
    norm = "layer" if family == "wgan_gp" else "batch"
    return DCGANDiscriminator(image_size, channels, width=width, n_classes=n_classes, norm=norm, **kw)
