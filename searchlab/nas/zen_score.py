"""The Zen-score of Zen-NAS (Lin et al., ICCV 2021): a network's expressivity, read without training.

Choices follow the reference implementation (idstcv/ZenNAS, ZeroShotProxy/compute_zen_score.py), each on
purpose, since they change how networks of different depth rank against each other:

- The network is scored as its plain version: residual shortcuts off (`set_residual(False)`), batch norm
  kept, on the feature map before global pooling (`forward_pre_gap`); the classifier plays no part.
- Every conv/linear weight is redrawn from N(0, 1), biases 0, batch-norm gamma 1 and beta 0; batch-norm running
  statistics start fresh (a new model each call), and the model stays in train mode, so each forward pass
  normalises with its own batch statistics.
- Inputs x and the perturbation eps are N(0, 1); the perturbed pass sees x + alpha * eps with alpha = 0.01.
- Delta = mean over the batch of the L1 sum |f(x) - f(x + alpha eps)| over channels and pixels (the paper writes
  a Frobenius norm; the reference sums absolute values, and we match the reference).
- The batch-norm correction is sum over BN layers of log(sqrt(mean over channels of running_var)), read after
  both passes: the reference reads the running variance (momentum 0.1 from 1), not the batch variance.
- Score = log(Delta) + that correction, in float32 without autograd, averaged over `repeats` independent draws
  (the reference's search uses 1).
- The batch: `batch_size`, 64 by default (BATCH, the reference's GPU search). The zen_nas strategy scores with its
  own batch_size, 16 by default (nas/zen_nas.py ZenNASSettings: the reference scorer's default, 4x cheaper on a
  CPU), and seed = study seed + the proxy trial's number; each score is recorded with the batch, seed and repeats
  it was computed with (user attrs zen_batch_size, zen_seed, zen_repeats), which reproduce it here. The score
  changes with both: the default batch and seed do not reproduce a recorded one.

Two things the reference does not do, neither changing what is computed: weights are drawn from a generator
of the call's own (not torch's global one), so candidates can be scored in parallel threads and stay
reproducible; and the network runs in channels-last memory layout, which CPU convolutions run faster.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

ALPHA = 0.01         # the paper's perturbation scale
BATCH = 64           # the reference search's batch size (zen_nas passes its own, 16 by default)


def gaussian_init(model: nn.Module, generator: torch.Generator | None = None) -> None:
    """N(0, 1) weights, zero biases, identity batch/group norms (the reference's network_weight_gaussian_init)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(module.weight, generator=generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def bn_log_scale(model: nn.Module) -> float:
    """Sum over batch-norm layers of log(sqrt(channel-mean of running_var))."""
    return sum(math.log(math.sqrt(float(m.running_var.mean()))) for m in model.modules()
               if isinstance(m, nn.BatchNorm2d) and m.running_var is not None)


@torch.no_grad()
def zen_score(build: Any, in_channels: int, image_size: tuple[int, int], repeats: int = 1, batch_size: int = BATCH,
              alpha: float = ALPHA, seed: int = 0) -> float:
    """Mean Zen-score over `repeats` draws; `build()` returns a fresh network with forward_pre_gap/set_residual.

    A network whose score is not finite (e.g. an overflow in a very deep plain net) gets -inf, so a search
    ranks it last rather than stopping."""
    gen = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(repeats):
        model = build().to(memory_format=torch.channels_last)
        model.set_residual(False)
        model.train()
        gaussian_init(model, torch.Generator().manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen))))
        shape = (batch_size, in_channels, *image_size)
        x, eps = (torch.randn(shape, generator=gen).contiguous(memory_format=torch.channels_last) for _ in "xe")
        delta = (model.forward_pre_gap(x) - model.forward_pre_gap(x + alpha * eps)).abs()
        delta = float(delta.flatten(1).sum(dim=1).mean())
        score = math.log(delta) + bn_log_scale(model) if delta > 0 and math.isfinite(delta) else -math.inf
        scores.append(score if math.isfinite(score) else -math.inf)
    return float(sum(scores) / len(scores))
