"""Synthetic training images from an exported class-conditional generator (`augment.synthetic`).

Added to the training split of every fit (each cross-validation fold's and repeat's too), never to validation data, and
sampled from the trial's seed: a study can compare the same classifier with and without them. The
normalisation statistics stay those of the real training images.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from searchlab.augment.spec import AugmentSpec
from searchlab.data.synthetic_files import RECORD, drawn_from
from searchlab.data.types import ImageSplit
from searchlab.errors import TrialFailure
from searchlab.export.weights_origin import file_sha256

if TYPE_CHECKING:   # tasks.train imports the augment package
    from searchlab.tasks.train import Batches


def with_synthetic(batches: Batches, spec: AugmentSpec, base_dir: Path, seed: int,
                   on_source: Callable[[dict[str, Any]], None] | None = None) -> Batches:
    """`batches` with synthetic images appended to its training split (unchanged when off). Which generator
    made them, with its weights' SHA-256 (a folder's export may be replaced later), how many of each class,
    and its GAN study's doubts about it (`suspect`), are told to `on_source`."""
    named = generator_used(spec)
    if named is None:
        return batches
    from searchlab.models.gan_sampling import load_generator, sample_images
    from searchlab.tasks.transfer import tell_source

    folder = (base_dir / named).resolve()
    train = batches.train
    names = batches.class_names or tuple(str(i) for i in range(batches.n_classes))
    problem = generator_mismatch(folder, tuple(train.images.shape[1:]), names if batches.class_names else len(names))
    if problem:
        raise TrialFailure(f"augment.synthetic: {problem[0]}. Fix: {problem[1]}")
    labels = _labels(train.labels, spec)
    if not len(labels):   # synthetic_classes: minority of a balanced split: no image added, none to record
        return batches
    generator, config = load_generator(folder)
    added = {names[int(c)]: int(n) for c, n in zip(*torch.unique(labels, return_counts=True))}
    tell_source(on_source, "export", folder / "weights.safetensors", images=added, suspect=config.get("suspect"))
    images = sample_images(generator, len(labels), labels=_generator_labels(labels, names, config), seed=seed)
    grown = ImageSplit(torch.cat([train.images, images]), torch.cat([train.labels, labels.to(train.labels.dtype)]))
    return replace(batches, train=grown)


def generator_used(spec: AugmentSpec) -> str | None:
    """The generator export whose images these settings add to training (as written: relative to the study
    file's folder), or None when they add none. One rule for training, the run-start leak check and export's
    (tasks/transfer_checks.py, export/trained_on.py)."""
    return spec.synthetic if spec.synthetic and spec.synthetic_per_class > 0 else None


def synthetic_count(real: torch.Tensor, spec: AugmentSpec) -> int:
    """How many synthetic images these settings add to a training split of labels `real`."""
    return len(_labels(real, spec)) if generator_used(spec) is not None else 0


def _generator_labels(labels: torch.Tensor, names: tuple[str, ...], config: dict) -> torch.Tensor:
    """The data's class indices as the generator's: by class name, since the two may order the same classes
    differently (positive_class reorders the data; a folder's classes sort by name)."""
    made_for = config["generator"].get("class_names")
    if not made_for or not set(names) <= set(made_for):   # an export without names: its indices are the data's
        return labels
    return torch.tensor([list(made_for).index(name) for name in names], dtype=torch.long)[labels]


def _labels(real: torch.Tensor, spec: AugmentSpec) -> torch.Tensor:
    counts = torch.bincount(real.long())
    classes = torch.arange(len(counts))
    if spec.synthetic_classes == "minority":
        classes = classes[counts < counts.max()]
    return classes.repeat_interleave(spec.synthetic_per_class)


def generator_mismatch(folder: Path, shape: tuple[int, ...], classes: tuple[str, ...] | int,
                       read: dict[str, Any] | None = None) -> tuple[str, str] | None:
    """Why the export in `folder` cannot add images of `shape` (C, H, W) for the data's `classes` (names, or
    their number), read with `read` (the data's fit and bit_depth, when known), as (rule, fix), or None. Read
    from its config.json (and its weights' digest), so a run checks it before any trial (classify.prepare)."""
    if folder.is_file():
        return (f"{folder} is a file; augment.synthetic names a generator export's folder",
                f"name the folder: {folder.parent}")
    if not (folder / "config.json").is_file():
        if drawn_by := drawn_from(folder):   # `searchlab sample`'s PNG files: the generator is what this key takes
            return (f"{folder} holds images drawn by `searchlab sample` (its {RECORD}), not a generator; "
                    "augment.synthetic draws its own images from the generator export",
                    f"name the export they were drawn from instead: {' or '.join(drawn_by)}")
        if (folder / "searchlab.json").is_file():   # a GAN run folder: said, with the command, as `sample` says it
            return _run_folder_said(folder)
        return (f"{folder} is not a generator export (no config.json)",
                "`searchlab export` a generate study's run and name that folder")
    try:
        config = json.loads((folder / "config.json").read_text())
        generator = config.get("generator")
        made = None if generator is None else \
            (int(generator["channels"]), int(generator["image_size"]), int(generator["image_size"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:   # a damaged or hand-edited file
        return (f"{folder / 'config.json'} cannot be read as a generator export's ({type(exc).__name__}: {exc})",
                REEXPORT)
    if medfid := medfid_features_said(folder, config):
        return medfid
    if generator is None:
        return (f"{folder} is a classifier export, not a generator's",
                "name the export of a generate study (task: generate, e.g. studies/breastmnist_gan.yaml)")
    if tuple(shape) != made:
        return (f"the generator in {folder} makes {'x'.join(map(str, made))} images; the data's are "
                f"{'x'.join(map(str, shape))}", f"a generator trained on this data, or, to train the classifier at "
                f"the generator's size, data.image_size: {made[1]} and data.channels: {made[0]}")
    return (_classes_mismatch(folder, generator, classes) or _input_mismatch(folder, config, read or {})
            or _weights_mismatch(folder, config))


def _input_mismatch(folder: Path, config: dict[str, Any], read: dict[str, Any]) -> tuple[str, str] | None:
    """Images framed or scaled otherwise than the data's (`read`: its data.fit and data.bit_depth): a GAN of
    padded images draws the bars, on the classes it adds images of only, a shortcut a classifier learns. An
    export from before it recorded its `input`, or a setting left at its default on both sides: not compared."""
    made = config.get("input") or {}
    for key, default in (("fit", "stretch"), ("bit_depth", None)):
        if key not in read or "fit" not in made:
            continue
        ours, theirs = read[key], made.get(key, default)
        if ours != theirs:
            return (f"the generator in {folder} learned images read with data.{key}: {theirs}; this data is read "
                    f"with {key}: {ours}, so its images would be framed or scaled otherwise than the real ones (e.g. "
                    "padding bars on the classes it adds images of only, a shortcut a classifier learns)",
                    f"data.{key}: {theirs} here, or a generator trained on data read with {key}: {ours}")
    return None


MEDFID_FORMAT = "searchlab-medfid-features/"   # how gan/features.py marks the feature network it caches


def medfid_features_said(folder: Path, config: dict[str, Any]) -> tuple[str, str] | None:
    """(what the folder is, the fix) for the MedFID feature network a GAN run trains and caches in its own
    medfid_features/ folder, else None. It has a classifier's config.json and weights, and was said to be a
    classifier export, which it is not (it has no export's parts; task.features is what takes it)."""
    from searchlab.export.predict import HELPER_FOLDERS   # lazily: predict loads much that this module needs not

    run = folder.parent
    cached_in_a_run = folder.name in HELPER_FOLDERS and (run / "searchlab.json").is_file()
    if not (str(config.get("format", "")).startswith(MEDFID_FORMAT) or cached_in_a_run):
        return None
    return (f"{folder} is the MedFID feature network of a GAN run; usable as task.features only",
            f"name the GAN run's generator export instead: {_generator_export_of(run)}")


def _generator_export_of(run: Path) -> str:
    """The generator export a run folder holds (best/ first), or the command that writes one."""
    from searchlab.export.predict import _exports_in   # lazily: predict imports this module

    exports = [path for path, kind in _exports_in(run).items() if kind == "generator"]
    return str(exports[0]) if exports else f"the folder `searchlab export {run} --out DIR` writes"


def _run_folder_said(run: Path) -> tuple[str, str]:
    """(what the run folder is, the fix) as `searchlab sample RUN` says it: its generator export to name (one it
    holds, best/ first), or the commands that export one, or that it is a classifier study's run."""
    from searchlab.export.predict import run_folder_fix

    rule, _, fix = run_folder_fix(run, "augment.synthetic: {}", wants="generator").partition(". Fix: ")
    return rule, fix


REEXPORT = "export the GAN study's run again (searchlab export RUN --out DIR) and name that folder"


def _classes_mismatch(folder: Path, generator: dict[str, Any],
                      classes: tuple[str, ...] | int) -> tuple[str, str] | None:
    """A generator not conditional on the data's classes, or on classes of other names."""
    n_classes = classes if isinstance(classes, int) else len(classes)
    conditional_on = (generator.get("args") or {}).get("n_classes", 0)
    made_for = generator.get("class_names")
    if conditional_on != n_classes:
        what = f"conditional on {conditional_on} classes" if conditional_on else "unconditional"
        return (f"the generator in {folder} is not conditional on this data's {n_classes} classes ({what}; "
                f"trained on {made_for})", "export a class-conditional GAN trial of this data "
                "set (e.g. run the GAN study with --set space.gan.conditional=true)")
    if not isinstance(classes, int) and made_for and set(made_for) != set(classes):
        return (f"the generator in {folder} makes the classes {list(made_for)}; this data's are {list(classes)}, "
                "so its images would be labelled by position, not by what they show",
                "a generator trained on data with these class names (rename the class folders or labels to match)")
    return None


def _weights_mismatch(folder: Path, config: dict[str, Any]) -> tuple[str, str] | None:
    """Weights missing, or not the bytes config.json recorded (truncated, or copied in from another export):
    checked when a run starts, every trial drawing this generator would fail on it."""
    weights = folder / "weights.safetensors"
    if not weights.is_file():
        return f"{folder} has no weights.safetensors beside its config.json", REEXPORT
    recorded = config.get("weights_sha256")
    found = file_sha256(weights)
    if recorded and found != recorded:
        return (f"{weights} is not the weights file its config.json was exported with (sha256 {found[:16]}..., "
                f"recorded {recorded[:16]}...): it was replaced or damaged", REEXPORT)
    return None


def generator_doubt(folder: Path) -> str | None:
    """What its GAN study doubted about the generator export in `folder` (copies, collapse, deaf to its
    labels: its trial's `suspect`), said as a warning, or None."""
    try:
        suspect = json.loads((folder / "config.json").read_text()).get("suspect")
    except (OSError, ValueError, AttributeError):
        return None
    if not suspect:
        return None
    return (f"augment.synthetic: the generator in {folder} was marked suspect by its GAN study ({suspect}), so "
            "its images may teach the classifier what is not in the data. Fix: export another trial of the GAN "
            "study (searchlab status RUN shows each one's MedFID and doubts), or compare trials with "
            "synthetic_per_class 0 beside them")
