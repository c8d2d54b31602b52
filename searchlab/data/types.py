"""In-memory image sets: what every loader returns and every task consumes."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

TaskKind = Literal["binary", "multiclass", "multilabel"]


@dataclass(frozen=True)
class ImageSplit:
    """One split held in memory. images: uint8 (N, C, H, W); labels: int64 (N,) or float32 0/1 (N, L).
    groups: which images must stay together in any split or fold (a patient's sub-folder), None when every
    image stands alone."""

    images: torch.Tensor
    labels: torch.Tensor
    groups: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])


@dataclass(frozen=True)
class ImageDataset:
    """The splits a caller asked for, plus what the data says about the task."""

    splits: dict[str, ImageSplit]
    class_names: tuple[str, ...]
    kind: TaskKind
    description: str = ""                     # e.g. "medmnist breastmnist (28x28) from /data/breastmnist.npz"
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def channels(self) -> int:
        return int(next(iter(self.splits.values())).images.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        shape = next(iter(self.splits.values())).images.shape
        return int(shape[2]), int(shape[3])


@dataclass(frozen=True)
class SplitPlan:
    """Which image file goes to which split with which label, decided before anything is decoded.

    source: what data.path names (the image folder or the CSV file). root: the folder files are named
    relative to in the data's fingerprint (the image folder, or the CSV's folder), so a moved copy of a data
    set is the same data set.
    """

    source: Path
    root: Path
    classes: tuple[str, ...]
    kind: TaskKind
    files: dict[str, list[Path]]
    labels: dict[str, np.ndarray]   # per split: int64 class indices (N,) or float32 0/1 (N, L)
    layout: str = ""                # a folder's: "classes" (we split it) or "splits" (train/val/test folders)
    skipped: dict[str, int] = field(default_factory=dict)   # files that are not images, by extension
    loose_images: int = 0           # images beside the class folders: in no class, so in no split
    groups: dict[str, list[str]] = field(default_factory=dict)   # per split, when some images share a group
    carved: dict[str, float] = field(default_factory=dict)   # splits searchlab drew, and the share asked of each


@dataclass(frozen=True)
class Decoding:
    """How image files become arrays: the side, channels, fit and bit depth of a folder or CSV set."""

    size: int
    channels: int
    fit: str = "stretch"
    bit_depth: int | None = None

    @classmethod
    def of(cls, cfg: object) -> "Decoding":
        """From a FolderData or CsvData config."""
        return cls(cfg.image_size, cfg.channels, cfg.fit, cfg.bit_depth)   # type: ignore[attr-defined]
