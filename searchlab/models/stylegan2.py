"""StyleGAN2's generator (Karras et al., "Analyzing and improving the image quality of StyleGAN", CVPR 2020):
mapping net, modulated/demodulated convs, per-layer noise, skip generator (torch only; the family is described in
searchlab/models/gan.py, its discriminator is in stylegan2_discriminator.py). Its body follows gan_common.py's in
a stylegan2 generator export's model.py; module-level helpers are prefixed with ``_gan_``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from searchlab.models.gan_common import (GAN_GENERATORS, _gan_check_labels, _gan_Generator, _gan_plan,
                                         _gan_stage_channels)

# ---- model.py body ----
_gan_SQRT2 = math.sqrt(2.0)


# ------------------------------------------------------------------ StyleGAN2 building blocks
class _gan_EqualLinear(nn.Module):
    """Linear layer with equalized learning rate (Karras et al., ProGAN 2018, sec. 4.1): weights stored as N(0, 1)
    and scaled by 1/sqrt(fan_in) at run time; lr_mul < 1 slows the mapping net down (StyleGAN 2019, app. C)."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0, lr_mul: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.linear(x, self.weight * self.weight_gain, self.bias * self.lr_mul)


def _gan_lrelu(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU(0.2) times sqrt(2): the gain keeps activations at unit scale (StyleGAN2 bias_act)."""
    return torch.nn.functional.leaky_relu(x, 0.2) * _gan_SQRT2


def _gan_normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit mean square: the pixel norm applied to z (and the label embedding) before mapping."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def _gan_randn(shape: tuple[int, ...], like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """N(0, 1) on like's device and dtype: from `generator` on its own device (a trial's or a seed's CPU generator:
    the same numbers on any device, whatever else drew from torch), or without one from torch's global RNG."""
    if generator is None:
        return torch.randn(shape, device=like.device, dtype=like.dtype)
    return torch.randn(shape, generator=generator, device=generator.device).to(like)


def _gan_upsample(x: torch.Tensor) -> torch.Tensor:
    """2x bilinear upsampling: zero insertion + the separable [1, 3, 3, 1] filter StyleGAN2 uses (up to borders)."""
    return torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     eps: float = 1e-8) -> torch.Tensor:
    """StyleGAN2 weight (de)modulation (Karras et al. 2020, sec. 2.2, eqs. 1 and 3), 'same' padding.

    w'_{ijk} = s_i * w_{ijk} scales input channel i by the sample's style; demodulation divides output channel j
    by sqrt(sum_{i,k} w'^2 + eps), which restores unit output variance for unit-variance inputs (replacing
    AdaIN's data-dependent normalisation that caused the droplet artifacts). One grouped conv does all samples.
    """
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    wts = weight.unsqueeze(0) * styles.reshape(n, 1, c_in, 1, 1)             # (N, Cout, Cin, k, k)
    if demodulate:
        wts = wts * (wts.square().sum(dim=(2, 3, 4), keepdim=True) + eps).rsqrt()
    out = torch.nn.functional.conv2d(x.reshape(1, n * c_in, h, w), wts.reshape(n * c_out, c_in, kh, kw),
                                     padding=kh // 2, groups=n)
    return out.reshape(n, c_out, out.shape[2], out.shape[3])


class ModulatedConv2d(nn.Module):
    """A learned affine map w -> styles (bias 1: start as the identity modulation) + modulated_conv2d.

    upsample=True doubles the resolution first (bilinear, i.e. StyleGAN2's transposed conv + [1,3,3,1] blur
    reordered as blur-then-conv: same receptive field, simpler code).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int, style_dim: int, demodulate: bool = True,
                 upsample: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.affine = _gan_EqualLinear(style_dim, in_channels, bias_init=1.0)
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel * kernel)   # equalized lr
        self.demodulate, self.upsample = demodulate, upsample

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = _gan_upsample(x)
        return modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w), self.demodulate)


class _gan_StyleLayer(nn.Module):
    """Modulated 3x3 conv, + per-pixel noise scaled by a learned per-channel strength, + bias, LeakyReLU.

    Noise (StyleGAN sec. 3.2, kept in StyleGAN2) gives stochastic detail without spending w; strengths start at
    zero. noise_mode: "random" (fresh each call), "const" (a fixed buffer: reproducible images), "none".
    """

    def __init__(self, in_channels: int, out_channels: int, style_dim: int, resolution: int,
                 upsample: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, style_dim, upsample=upsample)
        self.noise_strength = nn.Parameter(torch.zeros(out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random",
                generator: torch.Generator | None = None) -> torch.Tensor:
        x = self.conv(x, w)
        if noise_mode == "random":
            noise = _gan_randn((x.shape[0], 1, x.shape[2], x.shape[3]), x, generator)
        elif noise_mode == "const":
            noise = self.noise_const
        elif noise_mode == "none":
            noise = None
        else:
            raise ValueError(f"noise_mode must be random, const or none, not {noise_mode!r}")
        if noise is not None:
            x = x + noise * self.noise_strength.reshape(1, -1, 1, 1)
        return _gan_lrelu(x + self.bias.reshape(1, -1, 1, 1))


class _gan_ToRGB(nn.Module):
    """Modulated 1x1 conv to image channels, no demodulation (StyleGAN2 fig. 7: skip-generator outputs)."""

    def __init__(self, in_channels: int, channels: int, style_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, channels, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias.reshape(1, -1, 1, 1)


class MappingNetwork(nn.Module):
    """z (+ label embedding) -> w: pixel-normed input, `layers` equalized-lr FC layers with LeakyReLU.

    lr_mul=0.01 (StyleGAN app. C) slows the mapping net relative to the synthesis net. Tracks w_avg, the running
    mean of w, for the truncation trick (StyleGAN sec. 3.3 / app. B).
    """

    def __init__(self, latent: int, style_dim: int, n_classes: int = 0, layers: int = 4, lr_mul: float = 0.01,
                 w_avg_beta: float = 0.995) -> None:
        super().__init__()
        self.n_classes, self.w_avg_beta = n_classes, w_avg_beta
        self.embed = _gan_EqualLinear(n_classes, latent) if n_classes > 0 else None
        dims = [latent * (2 if n_classes > 0 else 1)] + [style_dim] * layers
        self.fcs = nn.ModuleList(_gan_EqualLinear(a, b, lr_mul=lr_mul) for a, b in zip(dims[:-1], dims[1:]))
        self.register_buffer("w_avg", torch.zeros(style_dim))

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = _gan_normalize_2nd_moment(z)
        if self.embed is not None:
            # StyleGAN2-ADA conditioning: embed the one-hot label, normalise it like z, concatenate
            onehot = torch.nn.functional.one_hot(labels.long(), self.n_classes).to(z.dtype)
            x = torch.cat([x, _gan_normalize_2nd_moment(self.embed(onehot))], dim=1)
        for fc in self.fcs:
            x = _gan_lrelu(fc(x))
        if self.training:
            with torch.no_grad():
                self.w_avg.lerp_(x.detach().mean(dim=0), 1.0 - self.w_avg_beta)
        return x


def truncate(w: torch.Tensor, w_avg: torch.Tensor, psi: float) -> torch.Tensor:
    """Truncation trick (StyleGAN sec. 3.3): w' = w_avg + psi * (w - w_avg); psi < 1 trades diversity for quality."""
    return w_avg + psi * (w - w_avg)


class StyleGAN2Generator(_gan_Generator):
    """Mapping net + skip-architecture synthesis net (StyleGAN2 fig. 7b) from a learned constant.

    w vectors: one per style layer plus the last toRGB (num_ws = 2 * doublings + 2); toRGB j shares its w with
    the next block's first conv, as in the official code. Style mixing regularisation (StyleGAN sec. 3.1): in
    training mode, with probability mixing_prob, a second w (from mix_z or a fresh z, same labels) replaces the
    first from a random layer cutoff in [1, num_ws) onwards, so both are always used when mixing happens.
    forward's `generator` (a trial's, or a seeded sampling's) draws the noise and the mixing; without one, torch's.
    """

    _gan_sample_defaults = {"noise_mode": "const"}   # deterministic samples from a seeded torch.Generator

    def __init__(self, image_size: int, channels: int, latent: int = 64, width: int = 64, n_classes: int = 0,
                 style_dim: int | None = None, mapping_layers: int = 4, lr_mul: float = 0.01,
                 mixing_prob: float = 0.9, w_avg_beta: float = 0.995) -> None:
        super().__init__()
        self.image_size, self.channels, self.latent, self.n_classes = image_size, channels, latent, n_classes
        self.style_dim = latent if style_dim is None else style_dim
        self.mixing_prob = mixing_prob
        base, doublings = _gan_plan(image_size)
        ch = _gan_stage_channels(doublings, width)
        self.mapping = MappingNetwork(latent, self.style_dim, n_classes, mapping_layers, lr_mul, w_avg_beta)
        # learned constant input (StyleGAN sec. 2): the latent enters only through the styles
        self.const = nn.Parameter(torch.randn(ch[0], base, base))
        layers = [_gan_StyleLayer(ch[0], ch[0], self.style_dim, base)]
        for j in range(1, doublings + 1):
            res = base * 2 ** j
            layers += [_gan_StyleLayer(ch[j - 1], ch[j], self.style_dim, res, upsample=True),
                       _gan_StyleLayer(ch[j], ch[j], self.style_dim, res)]
        self.layers = nn.ModuleList(layers)
        self.torgbs = nn.ModuleList(_gan_ToRGB(c, channels, self.style_dim) for c in ch)
        self.num_ws = 2 * doublings + 2

    def make_ws(self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation_psi: float = 1.0,
                mix_z: torch.Tensor | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """(N, num_ws, style_dim) per-layer w vectors, after truncation and (training only) style mixing."""
        _gan_check_labels(self.n_classes, labels)
        w = self.mapping(z, labels)
        if truncation_psi != 1.0:
            w = truncate(w, self.mapping.w_avg, truncation_psi)
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if self.training and self.mixing_prob > 0 and torch.rand((), generator=generator).item() < self.mixing_prob:
            w2 = self.mapping(_gan_randn(z.shape, z, generator) if mix_z is None else mix_z, labels)
            if truncation_psi != 1.0:
                w2 = truncate(w2, self.mapping.w_avg, truncation_psi)
            cutoff = int(torch.randint(1, self.num_ws, (), generator=generator).item())
            ws = torch.cat([ws[:, :cutoff], w2.unsqueeze(1).expand(-1, self.num_ws - cutoff, -1)], dim=1)
        return ws

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "random",
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """Images from per-layer w's; the output is the sum of every resolution's upsampled toRGB (skip G)."""
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        x = self.layers[0](x, ws[:, 0], noise_mode, generator)
        img = self.torgbs[0](x, ws[:, 1])
        for j in range(1, len(self.torgbs)):
            x = self.layers[2 * j - 1](x, ws[:, 2 * j - 1], noise_mode, generator)
            x = self.layers[2 * j](x, ws[:, 2 * j], noise_mode, generator)
            img = _gan_upsample(img) + self.torgbs[j](x, ws[:, 2 * j + 1])
        return torch.tanh(img)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None, truncation_psi: float = 1.0,
                noise_mode: str = "random", mix_z: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        return self.synthesis(self.make_ws(z, labels, truncation_psi, mix_z, generator), noise_mode, generator)


GAN_GENERATORS["stylegan2"] = StyleGAN2Generator
