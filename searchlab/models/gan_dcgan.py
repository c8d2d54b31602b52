"""The DCGAN generator, used by the ``dcgan`` and ``wgan_gp`` families (torch only; the families are described
in searchlab/models/gan.py). Its body follows gan_common.py's in the model.py of those families' generator exports;
the discriminators, which sampling does not need, are in gan.py.
"""
from __future__ import annotations

import torch
from torch import nn

from searchlab.models.gan_common import (GAN_GENERATORS, _gan_check_labels, _gan_Generator, _gan_plan,
                                         _gan_stage_channels)

# ---- model.py body ----
# ------------------------------------------------------------------ DCGAN / WGAN-GP generator
def _gan_dcgan_init(module: nn.Module) -> None:
    """Radford et al. sec. 4: all weights from N(0, 0.02); BN scales from N(1, 0.02), biases zero."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(_gan_Generator):
    """z (+ label embedding) -> linear to base x base -> [ConvTranspose 4x4/2, BN, ReLU]* -> ConvTranspose -> tanh.

    Used by ``dcgan`` and ``wgan_gp`` (Gulrajani et al. keep BN in the generator; only the critic drops it).
    """

    def __init__(self, image_size: int, channels: int, latent: int = 64, width: int = 64, n_classes: int = 0,
                 embed_dim: int | None = None) -> None:
        super().__init__()
        self.image_size, self.channels, self.latent, self.n_classes = image_size, channels, latent, n_classes
        self.base, doublings = _gan_plan(image_size)
        ch = _gan_stage_channels(doublings, width)
        embed_dim = latent if embed_dim is None else embed_dim
        self.embed = nn.Embedding(n_classes, embed_dim) if n_classes > 0 else None
        z_dim = latent + (embed_dim if n_classes > 0 else 0)
        # the "project and reshape" first layer of Radford et al. (a 1x1 -> base x base transposed conv)
        self.project = nn.Sequential(nn.Linear(z_dim, ch[0] * self.base ** 2, bias=False),
                                     nn.Unflatten(1, (ch[0], self.base, self.base)), nn.BatchNorm2d(ch[0]),
                                     nn.ReLU())
        layers: list[nn.Module] = []
        for j in range(1, doublings):
            layers += [nn.ConvTranspose2d(ch[j - 1], ch[j], 4, 2, 1, bias=False), nn.BatchNorm2d(ch[j]), nn.ReLU()]
        # no BN on the output layer (Radford et al. sec. 3: BN there caused sample oscillation)
        layers += [nn.ConvTranspose2d(ch[doublings - 1], channels, 4, 2, 1), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        _gan_dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """`generator` is taken, as every family's forward takes it, and unused: all DCGAN draws is z."""
        _gan_check_labels(self.n_classes, labels)
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.body(self.project(z))


GAN_GENERATORS.update(dcgan=DCGANGenerator, wgan_gp=DCGANGenerator)
