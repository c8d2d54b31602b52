"""Batch mixing (mixup, cutmix) on float images, with the targets mixed by the same lambda.

Our own few lines rather than torchvision's v2.MixUp / v2.CutMix: those take integer class labels only, and
multi-label targets must be mixed the same way. Like them, one lambda per batch; unlike their roll-by-one
pairing, the partner of each image is a random permutation (no fixed neighbour in a sorted batch).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

TASK_KINDS = ("binary", "multiclass", "multilabel")


def float_targets(y: torch.Tensor, kind: str, n_classes: int) -> torch.Tensor:
    """float32 (N, n_classes): one-hot class labels, or the multi-label 0/1 matrix as float."""
    if kind == "multilabel":
        if y.ndim != 2 or y.shape[1] != n_classes:
            raise ValueError(f"multilabel targets must be (N, {n_classes}), got {tuple(y.shape)}")
        return y.to(torch.float32)
    if y.ndim != 1:
        raise ValueError(f"{kind} labels must be class indices (N,), got shape {tuple(y.shape)}")
    return torch.nn.functional.one_hot(y.long(), n_classes).to(torch.float32)


def mixup(x: torch.Tensor, partner: torch.Tensor, lam: float) -> tuple[torch.Tensor, float]:
    """Blend every pixel: lam * image + (1 - lam) * partner."""
    return lam * x + (1.0 - lam) * x[partner], lam


def cutmix(x: torch.Tensor, partner: torch.Tensor, lam: float) -> tuple[torch.Tensor, float]:
    """Paste a box of area ~(1 - lam) from the partner; lam is recomputed from the box clipped at the border,
    so the target weight is exactly the fraction of the image's own pixels."""
    h, w = x.shape[-2:]
    cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
    side = math.sqrt(1.0 - lam)                      # box sides scale with sqrt of the area fraction
    half_h, half_w = round(h * side / 2), round(w * side / 2)
    y0, y1, x0, x1 = max(cy - half_h, 0), min(cy + half_h, h), max(cx - half_w, 0), min(cx + half_w, w)
    out = x.clone()
    out[:, :, y0:y1, x0:x1] = x[partner, :, y0:y1, x0:x1]
    return out, 1.0 - (y1 - y0) * (x1 - x0) / (h * w)


MIXERS = {"mixup": mixup, "cutmix": cutmix}


@dataclass(frozen=True)
class Mixer:
    """Mixes a fraction `prob` of the batches; other batches pass through with their labels untouched."""

    mode: str            # "none", "mixup" or "cutmix"
    alpha: float         # lambda ~ Beta(alpha, alpha)
    prob: float
    kind: str
    n_classes: int

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mode == "none" or not bool(torch.rand(()) < self.prob):
            return x, y
        alpha = torch.tensor(self.alpha)
        lam = float(torch.distributions.Beta(alpha, alpha).sample())
        partner = torch.randperm(x.shape[0])
        x, lam = MIXERS[self.mode](x, partner, lam)
        targets = float_targets(y, self.kind, self.n_classes)
        return x, lam * targets + (1.0 - lam) * targets[partner]
