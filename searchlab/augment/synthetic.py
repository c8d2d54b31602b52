"""Synthetic training images from an exported class-conditional generator (`augment.synthetic`).

Added to the training split of every fit (each cross-validation fold's and repeat's too), never to validation data, and
sampled from the trial's seed: a study can compare the same classifier with and without them. The
normalisation statistics stay those of the real training images.
"""
from __future__ import annotations

import json
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
    train = batches.train
    problem = generator_mismatch(folder, tuple(train.images.shape[1:]), batches.n_classes)
    if problem:
        raise TrialFailure(f"augment.synthetic: {problem[0]}. Fix: {problem[1]}")
    generator, _ = load_generator(folder)
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


def generator_mismatch(folder: Path, shape: tuple[int, ...], n_classes: int) -> tuple[str, str] | None:
    """Why the export in `folder` cannot add images of `shape` (C, H, W) for `n_classes` classes, as (rule, fix),
    or None. Read from its config.json alone, so a run checks it before any trial (classify.prepare)."""
    if not (folder / "config.json").is_file():
        return (f"{folder} is not a generator export (no config.json)",
                "`searchlab export` a generate study's run and name that folder")
    generator = json.loads((folder / "config.json").read_text()).get("generator")
    if generator is None:
        return (f"{folder} is a classifier export, not a generator's",
                "name the export of a generate study (task: generate, e.g. studies/breastmnist_gan.yaml)")
    made = (int(generator["channels"]), int(generator["image_size"]), int(generator["image_size"]))
    if tuple(shape) != made:
        return (f"the generator in {folder} makes {'x'.join(map(str, made))} images; the data's are "
                f"{'x'.join(map(str, shape))}", "a generator trained on this data")
    conditional_on = generator["args"].get("n_classes", 0)
    if conditional_on != n_classes:
        what = f"conditional on {conditional_on} classes" if conditional_on else "unconditional"
        return (f"the generator in {folder} is not conditional on this data's {n_classes} classes ({what}; "
                f"trained on {generator.get('class_names')})", "export a class-conditional GAN trial of this data "
                "set (e.g. run the GAN study with --set space.gan.conditional=true)")
    return None
