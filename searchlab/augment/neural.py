"""Learned "neural augmentation" (Perez & Wang, 2017): a small network, trained jointly with the classifier,
that turns two training images of the same class into a new one.

The augmentor reads an image and a same-class partner (channels stacked) and writes an image of the same size.
Its loss is the classifier's loss on what it wrote (it learns images that help the classifier) plus a content
term, `weight` x the mean squared distance to the first image (it must stay a plausible variant of it). The
last layer starts at zero and the output is added to the first image, so training starts from the identity
and cannot begin by feeding the classifier noise. It exists at training time only: nothing of it is exported.
"""
from __future__ import annotations

import torch
from torch import nn

from searchlab.augment.spec import AugmentSpec

AUGMENTOR_LR = 1e-3   # Adam at its usual default; the augmentor is tiny and starts at the identity


class AugmentorNet(nn.Module):
    """Three 3x3 convolutions on (image, partner) -> a residual added to the image, clamped to [0, 1]."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        last = nn.Conv2d(width, channels, 3, padding=1)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.body = nn.Sequential(nn.Conv2d(2 * channels, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), last)

    def forward(self, x: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
        return (x + self.body(torch.cat([x, partner], dim=1))).clamp(0.0, 1.0)


def same_class_partners(y: torch.Tensor) -> torch.Tensor:
    """For each sample, the index of a random sample in the batch with the same label (itself if alone).

    y: class indices (N,), or a 0/1 label matrix (N, L) where "same class" means the same label set."""
    keys = torch.unique(y, dim=0, return_inverse=True)[1] if y.ndim == 2 else y
    partner = torch.arange(len(y))
    for key in torch.unique(keys):
        members = torch.nonzero(keys == key).flatten()
        partner[members] = members[torch.randperm(len(members))]
    return partner


class NeuralAugment:
    """The augmentor and its optimiser for one training run; the loop calls it, then `step()` after backward."""

    def __init__(self, spec: AugmentSpec, channels: int) -> None:
        self.net = AugmentorNet(channels, spec.neural_width)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=AUGMENTOR_LR)
        self.share, self.weight = spec.neural_share, spec.neural_weight

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch with its first `share` replaced by augmentor outputs, weighted content loss to add).

        x: float (N, C, H, W) in [0, 1], already through the image policy; y: the batch's labels. The batch
        order is already random, so "the first k" is a random subset."""
        k = round(self.share * x.shape[0])
        if k == 0:
            return x, x.new_zeros(())
        self.net.train()
        made = self.net(x[:k], x[same_class_partners(y)[:k]])
        content = nn.functional.mse_loss(made, x[:k])
        return torch.cat([made, x[k:]]), self.weight * content

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        self.optimizer.step()


def build_neural_augment(spec: AugmentSpec, channels: int) -> NeuralAugment | None:
    return NeuralAugment(spec, channels) if spec.neural else None
