"""Synthetic training images from an exported class-conditional generator (`augment.synthetic`).

Added to the training split of every fit (each cross-validation fold's and repeat's too), never to validation data, and
sampled from the trial's seed: a study can compare the same classifier with and without them. The
normalisation statistics stay those of the real training images.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from searchlab.augment.spec import AugmentSpec
from searchlab.data.types import ImageSplit
from searchlab.errors import TrialFailure

if TYPE_CHECKING:   # tasks.train imports the augment package
    from searchlab.tasks.train import Batches


def with_synthetic(batches: Batches, spec: AugmentSpec, base_dir: Path, seed: int) -> Batches:
    """`batches` with synthetic images appended to its training split (unchanged when off)."""
    if not spec.synthetic or spec.synthetic_per_class == 0:
        return batches
    from searchlab.models.gan_sampling import load_generator, sample_images

    folder = (base_dir / spec.synthetic).resolve()
    if not (folder / "config.json").is_file():
        raise TrialFailure(f"augment.synthetic: {folder} is not a generator export (no config.json). Fix: "
                           "`searchlab export` a generate study's run and name that folder")
    generator, config = load_generator(folder)
    train = batches.train
    _check_fits(config["generator"], train, batches.n_classes, folder)
    labels = _labels(train.labels, spec)
    images = sample_images(generator, len(labels), labels=labels, seed=seed)
    grown = ImageSplit(torch.cat([train.images, images]), torch.cat([train.labels, labels.to(train.labels.dtype)]))
    return replace(batches, train=grown)


def _labels(real: torch.Tensor, spec: AugmentSpec) -> torch.Tensor:
    counts = torch.bincount(real.long())
    classes = torch.arange(len(counts))
    if spec.synthetic_classes == "minority":
        classes = classes[counts < counts.max()]
    return classes.repeat_interleave(spec.synthetic_per_class)


def _check_fits(generator: dict, train: ImageSplit, n_classes: int, folder: Path) -> None:
    shape = (int(generator["channels"]), int(generator["image_size"]), int(generator["image_size"]))
    if tuple(train.images.shape[1:]) != shape:
        raise TrialFailure(f"augment.synthetic: the generator in {folder} makes {shape[0]}x{shape[1]}x{shape[2]} "
                           f"images; the data's are {'x'.join(map(str, train.images.shape[1:]))}. Fix: a generator "
                           "trained on this data")
    conditional_on = generator["args"].get("n_classes", 0)
    if conditional_on != n_classes:
        what = f"conditional on {conditional_on} classes" if conditional_on else "unconditional"
        raise TrialFailure(f"augment.synthetic: the generator in {folder} is not conditional on this data's "
                           f"{n_classes} classes ({what}; trained on {generator.get('class_names')}). Fix: export "
                           "a class-conditional GAN trial of this data set")
