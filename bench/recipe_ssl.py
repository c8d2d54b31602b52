"""Self-supervised pretraining for bench/recipe_cv.py (RECIPE_SSL): SimCLR (Chen et al. 2020) of a recipe's own
network trunk (the network minus its final Linear) on one outer fold's training images only, never its held-out
fold and no labels: two strongly augmented views of each image (random resized crop of 50-100% of the area, a
left-right flip, rotation +-15 degrees, contrast and brightness jitter, gaussian blur, gaussian noise: what a 28-px
greyscale ultrasound can take without losing its lesion), a 2-layer projection head, and the NT-Xent loss (each
view must pick its twin out of the batch's other 2N - 2 views). The supervised models then start from the trunk.

    python bench/recipe_ssl.py [EPOCHS]   (one pretraining of the study's first recipe's trunk, width 16 at input
                                           scale 2, on the first outer fold's training images of the 5-fold split:
                                           its time, loss, and a label kNN before vs after, on those images alone)
"""
from __future__ import annotations

import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score
from torch import nn

EPOCHS = int(os.environ.get("RECIPE_SSL_EPOCHS", "100"))   # passes over the ~500 images (2 steps each at BATCH)
BATCH = 256   # 512 views a step: half the fold's images, as many negatives as the data allows
TEMPERATURE = float(os.environ.get("RECIPE_SSL_TEMPERATURE", "0.5"))   # SimCLR's choice for small batches
LR, WEIGHT_DECAY = 1e-3, 1e-4   # AdamW, cosine to 0: the supervised recipe's own
PROJECTION = 64   # output of the 2-layer projection head (thrown away after pretraining)


def views(x: torch.Tensor) -> torch.Tensor:
    """One strongly augmented view of each image (N x 1 x H x W in [0, 1]); a fresh draw per call."""
    n = x.shape[0]
    area = 0.5 + 0.5 * torch.rand(n)   # random resized crop: 50-100% of the area, aspect 3/4-4/3
    aspect = torch.exp((torch.rand(n) * 2 - 1) * np.log(4 / 3))
    w, h = (area * aspect).sqrt().clamp(max=1), (area / aspect).sqrt().clamp(max=1)
    cx, cy = (torch.rand(n) * 2 - 1) * (1 - w), (torch.rand(n) * 2 - 1) * (1 - h)
    angle = (torch.rand(n) * 2 - 1) * np.pi / 12
    flip = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)   # left-right only: depth runs top to bottom
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([w * cos * flip, -h * sin, cx], 1),
                         torch.stack([w * sin * flip, h * cos, cy], 1)], 1)
    x = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False),
                      padding_mode="reflection", align_corners=False)
    jitter = (torch.rand(n, 1, 1, 1) < 0.8).float()   # contrast x[0.6, 1.4], brightness +-0.2, with p 0.8
    mean = x.mean((1, 2, 3), keepdim=True)
    contrast = 1 + jitter * (0.8 * torch.rand(n, 1, 1, 1) - 0.4)
    brightness = jitter * (0.4 * torch.rand(n, 1, 1, 1) - 0.2)
    x = (x - mean) * contrast + mean + brightness
    sigma = torch.where(torch.rand(n) < 0.5, 0.1 + 0.9 * torch.rand(n), torch.zeros(n))   # blur with p 0.5
    taps = torch.exp(-torch.arange(-1.0, 2.0).view(1, 3) ** 2 / (2 * sigma.clamp(min=1e-3).view(n, 1) ** 2))
    taps = taps / taps.sum(1, keepdim=True)
    kernels = (taps.view(n, 3, 1) * taps.view(n, 1, 3)).unsqueeze(1)   # n x 1 x 3 x 3, one per image
    x = F.conv2d(F.pad(x.transpose(0, 1), (1, 1, 1, 1), mode="reflect"), kernels, groups=n).transpose(0, 1)
    return x + torch.randn_like(x) * 0.05 * torch.rand(n, 1, 1, 1)   # gaussian noise, std up to 0.05


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """SimCLR's loss: for each of the 2N views, cross-entropy of picking its twin among the other 2N - 1."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    similarity = (z @ z.T / temperature).fill_diagonal_(float("-inf"))
    n = z1.shape[0]
    return F.cross_entropy(similarity, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))


def pretrain(net: nn.Sequential, images: torch.Tensor, seed: int,
             epochs: int = EPOCHS) -> tuple[dict[str, torch.Tensor], list[float], float]:
    """net[:-1]'s weights after SimCLR on `images` (N x 1 x H x W in [0, 1], normalised by their own mean and std as
    recipe_cv normalises a fold's training images), the mean loss of the first and last epochs, and seconds taken.
    net ends ..., Flatten, Dropout, Linear: the encoder is all before the Dropout."""
    torch.manual_seed(seed)
    started = time.time()
    mean, std = images.mean(), images.std()
    encoder, channels = net[:-2], net[-1].in_features
    head = nn.Sequential(nn.Linear(channels, channels), nn.BatchNorm1d(channels), nn.ReLU(),
                         nn.Linear(channels, PROJECTION))
    params = [*encoder.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, LR, weight_decay=WEIGHT_DECAY)
    steps = epochs * -(-len(images) // BATCH)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    encoder.train()
    head.train()
    losses = []
    for epoch in range(epochs):
        order, total = torch.randperm(len(images)), 0.0
        for start in range(0, len(images), BATCH):
            x = images[order[start:start + BATCH]]
            z1, z2 = head(encoder((views(x) - mean) / std)), head(encoder((views(x) - mean) / std))
            loss = nt_xent(z1, z2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            total += loss.item() * len(x)
        if epoch in (0, epochs - 1):
            losses.append(total / len(images))
    return net[:-1].state_dict(), losses, time.time() - started


def knn_auc(net: nn.Sequential, images: torch.Tensor, labels: np.ndarray, k: int = 20) -> float:
    """A label-free trunk's quality, on the same images only: leave-one-out AUC of the fraction of class 1 among each
    image's k nearest (cosine) neighbours in the trunk's features. A diagnostic; no model is picked by it."""
    net.eval()
    with torch.no_grad():
        f = F.normalize(net[:-2]((images - images.mean()) / images.std()), dim=1)
    similarity = (f @ f.T).fill_diagonal_(-2)
    neighbours = similarity.topk(k, 1).indices.numpy()
    return float(roc_auc_score(labels, labels[neighbours].mean(1)))


if __name__ == "__main__":
    import sys

    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else EPOCHS
    sys.argv[1:] = ["40", "16", "shift", "1", "2", "5"]   # the recipe whose network is pretrained
    sys.path[:0] = [os.path.dirname(os.path.abspath(__file__))]
    import recipe_cv

    torch.set_num_threads(1)
    x, y = recipe_cv.train_val()
    train = np.concatenate(recipe_cv.outer_folds(len(y), 5)[1:])
    torch.manual_seed(0)
    net = recipe_cv.network()
    before = knn_auc(net, x[train], y[train])
    trunk, losses, seconds = pretrain(net, x[train], 0, epochs)
    print(f"{epochs} epochs: {seconds:.0f} s, loss {losses[0]:.3f} -> {losses[-1]:.3f}, "
          f"kNN AUC on the training images {before:.3f} -> {knn_auc(net, x[train], y[train]):.3f}")
