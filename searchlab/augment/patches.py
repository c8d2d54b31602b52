"""Random patches for the patch curriculum (train.patch_epochs): local texture first, whole images after."""
from __future__ import annotations

import torch
from torchvision.ops import roi_align


def random_patches(x: torch.Tensor, size: float) -> torch.Tensor:
    """One random patch per image, each side `size` x the image's side, resized back to the image's size.

    x: float (N, C, H, W). Resizing back (rather than feeding the small patch) keeps every model's input
    shape, so ViTs with a fixed grid and the row RNN train on patches too. One batched bilinear resampling
    (roi_align) instead of a per-image crop-and-resize loop.
    """
    if not 0.0 < size <= 1.0:
        raise ValueError(f"patch size must be a fraction of the side in (0, 1], got {size}")
    n, _, h, w = x.shape
    ph, pw = size * h, size * w
    top, left = torch.rand(n) * (h - ph), torch.rand(n) * (w - pw)
    boxes = torch.stack([torch.arange(n, dtype=torch.float32), left, top, left + pw, top + ph], dim=1)
    # sampling_ratio 2: each output pixel averages a 2x2 grid of bilinear samples inside its bin
    return roi_align(x.float(), boxes, output_size=(h, w), spatial_scale=1.0, sampling_ratio=2, aligned=True)
