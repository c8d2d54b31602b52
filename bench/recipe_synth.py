"""GAN-synthetic training images for bench/recipe_cv.py (RECIPE_SYNTH): a class-conditional DCGAN (searchlab's own
networks: searchlab/models/gan.py, projection discriminator) trained on one outer fold's training images only,
with DiffAugment on every discriminator input (Zhao et al. 2020: what keeps D from memorising ~500 images) and an
EMA of the generator's weights; then labelled samples from that EMA generator.

    python bench/recipe_synth.py OUT.png [ITERATIONS]   (one GAN on the first outer fold's training images of the
                                                          5-fold split, a grid of real vs synthetic per class)
"""
from __future__ import annotations

import copy
import os
import sys
import time

import numpy as np
import torch

from searchlab.gan.losses import diff_augment, discriminator_loss, ema_update, generator_loss
from searchlab.models.gan import build_discriminator, build_generator

ITERATIONS = int(os.environ.get("RECIPE_SYNTH_ITERATIONS", "1200"))   # D + G steps of batch 32
LATENT, WIDTH, BATCH = 64, 32, 32
POLICY = os.environ.get("RECIPE_SYNTH_POLICY", "color,translation,cutout")
LR = float(os.environ.get("RECIPE_SYNTH_LR", "2e-4"))


def train_generator(images: torch.Tensor, labels: np.ndarray, seed: int,
                    iterations: int = ITERATIONS) -> torch.nn.Module:
    """The EMA generator of a conditional DCGAN trained on `images` (N x 1 x 28 x 28 in [0, 1]) and `labels`."""
    torch.manual_seed(seed)
    real, y = images * 2 - 1, torch.from_numpy(labels).long()
    G = build_generator("dcgan", 28, 1, latent=LATENT, width=WIDTH, n_classes=2)
    D = build_discriminator("dcgan", 28, 1, width=WIDTH, n_classes=2)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), LR, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), LR, betas=(0.5, 0.999))
    for it in range(1, iterations + 1):
        pick = torch.randint(0, len(real), (BATCH,))
        with torch.no_grad():
            fake = G(torch.randn(BATCH, LATENT), y[pick])
        loss_d = discriminator_loss("dcgan", D(diff_augment(real[pick], POLICY), y[pick]),
                                    D(diff_augment(fake, POLICY), y[pick]))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        wanted = y[torch.randint(0, len(real), (BATCH,))]   # the real class mix
        loss_g = generator_loss("dcgan", D(diff_augment(G(torch.randn(BATCH, LATENT), wanted), POLICY), wanted))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        ema_update(G_ema, G, min(0.999, it / (it + 10)))
    return G_ema


def synthesize(G: torch.nn.Module, labels: np.ndarray, seed: int) -> torch.Tensor:
    """One image in [0, 1] per label, from the (eval-mode) generator."""
    gen = torch.Generator().manual_seed(seed)
    return (G.sample(len(labels), torch.from_numpy(labels).long(), generator=gen) + 1) / 2


def synthetic_set(images: torch.Tensor, labels: np.ndarray, count: int, balanced: bool,
                  seed: int) -> tuple[torch.Tensor, np.ndarray, float]:
    """`count` labelled synthetic images from a GAN trained on (images, labels): in the real class proportions, or
    half of each class if `balanced`; and the GAN's training time in seconds."""
    started = time.time()
    G = train_generator(images, labels, seed)
    seconds = time.time() - started
    rng = np.random.default_rng(seed)
    fake_labels = (rng.permutation(np.arange(count) % 2) if balanced
                   else rng.choice(labels, count, replace=True))
    return synthesize(G, fake_labels, seed + 1).clamp(0, 1), fake_labels, seconds


def grid(real: torch.Tensor, real_labels: np.ndarray, fake: torch.Tensor, fake_labels: np.ndarray,
         path: str, per_row: int = 16) -> None:
    """A PNG: per class, a row of real images above two rows of synthetic ones."""
    from PIL import Image
    per_row = min(per_row, *(int((real_labels == c).sum()) for c in (0, 1)),
                  *(int((fake_labels == c).sum()) // 2 for c in (0, 1)))
    rows = []
    for c in (0, 1):
        rows.append(real[real_labels == c][:per_row])
        rows.append(fake[fake_labels == c][:2 * per_row])
    tiles = torch.cat([r.reshape(-1, per_row, 28, 28).permute(0, 2, 1, 3).reshape(-1, per_row * 28) for r in rows])
    Image.fromarray((tiles.numpy() * 255).round().astype(np.uint8)).resize(
        (per_row * 28 * 2, tiles.shape[0] * 2), Image.NEAREST).save(path)


if __name__ == "__main__":
    sys.path[:0] = [os.path.dirname(os.path.abspath(__file__))]
    from _common import data_root

    torch.set_num_threads(1)
    npz = np.load(os.path.join(data_root(), "breastmnist.npz"))   # train + val only, as recipe_cv
    x = torch.from_numpy(np.concatenate([npz["train_images"], npz["val_images"]])).float().unsqueeze(1) / 255
    y = np.concatenate([npz["train_labels"], npz["val_labels"]]).ravel()
    outer = np.array_split(np.random.default_rng(0).permutation(len(y)), 5)
    train = np.concatenate(outer[1:])
    if len(sys.argv) > 2:
        ITERATIONS = int(sys.argv[2])
    started = time.time()
    G = train_generator(x[train], y[train], 0, ITERATIONS)
    print(f"{ITERATIONS} iterations: {time.time() - started:.0f} s")
    labels = np.repeat([0, 1], 32)
    grid(x[train], y[train], synthesize(G, labels, 1).clamp(0, 1), labels, sys.argv[1])
