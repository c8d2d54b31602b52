"""StyleGAN2's discriminator (Karras et al. 2020, fig. 7c): residual blocks with minibatch stddev (torch only).
Training needs it, sampling does not: no generator export's model.py holds it. Its body follows stylegan2.py's,
whose equalized-lr linear layer and activation it uses; module-level helpers are prefixed with ``_gan_``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from searchlab.models.gan_common import _gan_check_labels, _gan_plan, _gan_stage_channels
from searchlab.models.stylegan2 import _gan_EqualLinear, _gan_lrelu

# ---- model.py body ----
# ------------------------------------------------------------------ StyleGAN2 discriminator
class _gan_EqualConv2d(nn.Module):
    """kxk conv with equalized learning rate, 'same' padding (the StyleGAN2 discriminator's conv)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(x, self.weight * self.weight_gain, self.bias, padding=self.padding)


class _gan_ResBlock(nn.Module):
    """StyleGAN2 residual D block (fig. 7c): two 3x3 convs + 2x downsample, 1x1 skip, sum scaled by 1/sqrt(2).

    Downsampling is a 2x2 average pool (the official code blurs with [1,3,3,1] before a strided conv).
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = _gan_EqualConv2d(in_channels, in_channels, 3)
        self.conv1 = _gan_EqualConv2d(in_channels, out_channels, 3)
        self.skip = _gan_EqualConv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip(torch.nn.functional.avg_pool2d(x, 2))
        x = _gan_lrelu(self.conv0(x))
        x = _gan_lrelu(self.conv1(torch.nn.functional.avg_pool2d(x, 2)))
        return (skip + x) * math.sqrt(0.5)   # keeps the sum at unit variance


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, eps: float = 1e-8) -> torch.Tensor:
    """Append one channel holding the mean std over groups of samples (ProGAN sec. 3): lets D see diversity.

    The group is the largest divisor of N not above group_size; sample i is in group i mod (N / group).
    """
    n, c, h, w = x.shape
    g = max(d for d in range(1, min(group_size, n) + 1) if n % d == 0)
    y = x.reshape(g, n // g, c, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0).add(eps).sqrt()        # (N/g, C, H, W) std over the group
    y = y.mean(dim=(1, 2, 3)).reshape(n // g, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class StyleGAN2Discriminator(nn.Module):
    """fromRGB, residual blocks down to base x base, minibatch stddev, conv, FC, output (StyleGAN2 fig. 7c).

    Conditional: projection output (Miyato & Koyama), <embed(y), h> / sqrt(dim) as in StyleGAN2-ADA.
    """

    def __init__(self, image_size: int, channels: int, width: int = 64, n_classes: int = 0,
                 mbstd_group: int = 4) -> None:
        super().__init__()
        self.image_size, self.channels, self.n_classes, self.mbstd_group = image_size, channels, n_classes, mbstd_group
        base, doublings = _gan_plan(image_size)
        ch = _gan_stage_channels(doublings, width)
        self.from_rgb = _gan_EqualConv2d(channels, ch[doublings], 1)
        self.blocks = nn.Sequential(*(_gan_ResBlock(ch[j], ch[j - 1]) for j in range(doublings, 0, -1)))
        extra = 1 if mbstd_group > 1 else 0
        self.conv = _gan_EqualConv2d(ch[0] + extra, ch[0], 3)
        self.fc = _gan_EqualLinear(ch[0] * base ** 2, ch[0])
        self.out = _gan_EqualLinear(ch[0], ch[0] if n_classes > 0 else 1)
        self.embed = nn.Embedding(n_classes, ch[0]) if n_classes > 0 else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        _gan_check_labels(self.n_classes, labels)
        x = self.blocks(_gan_lrelu(self.from_rgb(x)))
        if self.mbstd_group > 1:
            x = minibatch_stddev(x, self.mbstd_group)
        x = _gan_lrelu(self.fc(_gan_lrelu(self.conv(x)).flatten(1)))
        out = self.out(x)
        if self.embed is None:
            return out.squeeze(1)
        return (out * self.embed(labels)).sum(dim=1) / math.sqrt(out.shape[1])
