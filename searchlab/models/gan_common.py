"""What every GAN network of searchlab/models shares: the families, the resolution plan, label checks, the
generators' sampling helper and build_generator (torch only). Its body comes first of the GAN networks' in a
generator export's model.py, before its family's generator (searchlab/models/__init__.py: generator_source).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

# ---- model.py body ----
GAN_FAMILIES = ("dcgan", "wgan_gp", "stylegan2")


# ------------------------------------------------------------------ shared helpers
def _gan_check_family(family: str) -> None:
    if family not in GAN_FAMILIES:
        raise ValueError(f"unknown GAN family {family!r}; valid families: {', '.join(GAN_FAMILIES)}")


def _gan_plan(image_size: int) -> tuple[int, int]:
    """(base, doublings) with image_size == base * 2**doublings, base in 4..7: 28 -> (7, 2), 32 -> (4, 3)."""
    base, doublings = int(image_size), 0
    while base > 7 and base % 2 == 0:
        base, doublings = base // 2, doublings + 1
    if not 4 <= base <= 7 or doublings < 1:
        raise ValueError(f"image_size {image_size} is not base * 2**k with base in 4..7 and k >= 1 "
                         f"(e.g. 28, 32, 48, 56, 64, 128)")
    return base, doublings


def _gan_stage_channels(doublings: int, width: int) -> list[int]:
    """Feature channels per resolution, coarsest first: width at the last two stages, doubling towards the start,
    capped at 8 * width (Radford et al.'s 64x64 net with width=128: 1024, 512, 256, 128)."""
    return [min(width * 2 ** max(doublings - 1 - j, 0), 8 * width) for j in range(doublings + 1)]


def _gan_check_labels(n_classes: int, labels: torch.Tensor | None) -> None:
    if n_classes > 0 and labels is None:
        raise ValueError(f"this network is class-conditional ({n_classes} classes): pass labels")
    if n_classes == 0 and labels is not None:
        raise ValueError("this network is unconditional (n_classes=0) but labels were passed")


class _gan_Generator(nn.Module):
    """Shared part of every generator: the sampling helper. Subclasses set latent, n_classes and forward."""

    latent: int
    n_classes: int
    _gan_sample_defaults: dict[str, Any] = {}

    def sample(self, n: int, labels: torch.Tensor | None = None, generator: torch.Generator | None = None,
               **forward_kw: Any) -> torch.Tensor:
        """n images, no autograd; z (and labels, uniformly, when conditional and not given) come from `generator`,
        as does any noise the forward draws (StyleGAN2's noise_mode "random"): a seed, the same images on any device.

        The module's mode is left alone: call .eval() first for inference (BN running stats, no style mixing).
        """
        device = next(self.parameters()).device
        rng_device = generator.device if generator is not None else device
        z = torch.randn(n, self.latent, generator=generator, device=rng_device).to(device)
        if self.n_classes > 0 and labels is None:
            labels = torch.randint(0, self.n_classes, (n,), generator=generator, device=rng_device)
        if labels is not None:
            labels = torch.as_tensor(labels, dtype=torch.long).to(device)
        with torch.no_grad():
            return self(z, labels, generator=generator, **(self._gan_sample_defaults | forward_kw))


# family -> generator class, filled by the body of the file defining it (gan_dcgan.py, stylegan2.py): a generator
# export's model.py holds its own family's generator only, so its table names that family alone
GAN_GENERATORS: dict[str, type[nn.Module]] = {}


def build_generator(family: str, image_size: int, channels: int, latent: int = 64, width: int = 64,
                    n_classes: int = 0, **kw: Any) -> nn.Module:
    """A generator: forward(z, labels=None) -> (N, channels, image_size, image_size) in [-1, 1].

    kw: dcgan/wgan_gp embed_dim; stylegan2 style_dim, mapping_layers, lr_mul, mixing_prob, w_avg_beta.
    """
    _gan_check_family(family)
    if family not in GAN_GENERATORS:   # a model.py of another family's export, used for this one
        raise ValueError(f"this code holds the generators of {sorted(GAN_GENERATORS)} only, not {family!r}. Fix: "
                         "load each export with the model.py exported with it")
    return GAN_GENERATORS[family](image_size, channels, latent=latent, width=width, n_classes=n_classes, **kw)
