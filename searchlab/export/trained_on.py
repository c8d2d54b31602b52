"""Which image files a model was trained and selected on, so that a study learning from it can tell when its
own test images were among them, or its validation images among those the model trained on.

A study that starts from the weights of an earlier study of the same folder or CSV, split with another seed or
other fractions, would score its export on images the weights already learned: its test metrics would be
optimistic, and no check of its own splits could see it. So would a study adding the images of a generator
(`augment.synthetic`) trained on its test images: a GAN can reproduce its training images. An export (a
classifier's or a generator's) keeps the content digests of its run's train and val files, each split apart,
in `trained_on.json` (data/fingerprint.py's sampled digest: size and the first and last 8 KB, so a moved or
renamed copy is the same file); a run folder used as weights is read from its record. Apart, because a study
split as the model's study was shares its validation images, which is no leak. For a classifier, train is
what it learned and val what it was selected on; for a generator, train is what it learned (and its MedFID
reference) and val what its scores were measured against (medfid_floor; the default feature network's best
epoch). MedMNIST sets have official splits that never move, so they are not listed.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from searchlab.augment.spec import AugmentSpec
from searchlab.augment.synthetic import generator_used
from searchlab.data.fingerprint import sampled_digest
from searchlab.data.loading import DataConfig, files_by_split
from searchlab.engine.rundir import OpenRun
from searchlab.export.weights_origin import changed_since, origins_of, recorded_digests

FILE = "trained_on.json"
SPLITS = ("train", "val")   # what the model learned, and what it was selected on
# How a study's trials learned from another model: the keys its space names them by
WEIGHTS, SYNTHETIC = "space.model.weights", "space.augment.synthetic"
DIGEST = "sha1 of size + first and last 8 KB, first 16 hex digits"


def digests(paths: Iterable[Path]) -> set[str]:
    out = set()
    for path in paths:
        try:
            out.add(sampled_digest(path).hex()[:16])
        except OSError:   # gone since: it cannot be among this study's files either
            continue
    return out


def record(cfg: DataConfig | None, seed: int, base_dir: Path | None) -> dict[str, Any] | None:
    """What `trained_on.json` holds for a run's data; None when it has no files to list."""
    found = {split: sorted(digests(files)) for split, files in files_by_split(cfg, seed, base_dir, SPLITS).items()}
    return {"digest": DIGEST, **found} if any(found.values()) else None


def write(folder: Path, cfg: DataConfig | None, seed: int, base_dir: Path | None) -> None:
    found = record(cfg, seed, base_dir)
    if found is not None:
        (folder / FILE).write_text(json.dumps(found))


def write_of_run(folder: Path, run: OpenRun) -> None:
    """`trained_on.json` in an export of `run` (a classifier's or a generator's): its data as the run read it,
    so that a study learning from the export checks its own splits against it."""
    from searchlab.export.ensemble import run_data_config   # ensemble imports the exporters' modules

    cfg, base_dir = run_data_config(run)
    write(folder, cfg, run.record["seed"], base_dir)


def read(weights: Path) -> dict[str, set[str]] | None:
    """The train and val digests of the model in an export or run folder (trained on the one, selected on the
    other); None when unknown (a weights file, an export from before trained_on.json, MedMNIST data, a run
    whose files are gone)."""
    if (weights / FILE).is_file():
        try:
            found = json.loads((weights / FILE).read_text())
            return {split: set(found[split]) for split in SPLITS} if found.get("digest") == DIGEST else None
        except (OSError, ValueError, KeyError, TypeError):
            return None
    if (weights / "searchlab.json").is_file():
        return _of_run(weights)
    return None


def _of_run(run_dir: Path) -> dict[str, set[str]] | None:
    from searchlab.engine.rundir import open_run
    from searchlab.export.ensemble import run_data_config

    try:
        run = open_run(run_dir)
        if run.record.get("data") is None:
            return None
        cfg, base_dir = run_data_config(run)
        found = {split: digests(files)
                 for split, files in files_by_split(cfg, run.record["seed"], base_dir, SPLITS).items()}
        return found if any(found.values()) else None
    except Exception:   # best effort: a run that cannot be read is said where its weights are loaded
        return None


def seen(learned: dict[str, set[str]], test: set[str], val: set[str] | None = None) -> dict[str, int]:
    """How many of a study's test images (digests) the model's run trained or selected on, and of its validation
    images the model trained on (selecting on the same validation images, split alike, is no leak)."""
    return {"test": len(test & (learned["train"] | learned["val"])), "val": len((val or set()) & learned["train"])}


def learned_from(config: dict[str, Any], base_dir: Path | None) -> dict[str, str]:
    """For an export's config.json: each export or run whose model its trials learned from, with the space key
    that named it: the weights they started from (`weights_from`), and the generator whose images joined
    their training data (`augment.synthetic`, relative to the study file's folder `base_dir`)."""
    found: dict[str, str] = {}
    for trial in config.get("trials") or [config.get("trial") or {}]:
        origin = trial.get("weights_from") or {}
        if origin.get("export") or origin.get("run"):
            found.setdefault(str(origin.get("export") or origin.get("run")), WEIGHTS)
        generator = _generator_of(trial)
        if generator is not None and base_dir is not None:
            found.setdefault(str((base_dir / generator).resolve()), SYNTHETIC)
    return found


def _generator_of(trial: dict[str, Any]) -> str | None:
    """The generator export a trial's training images came from, read from its config (every setting as it
    ran when recorded, else as sampled)."""
    config = trial.get("config_with_defaults") or trial.get("config") or {}
    try:
        return generator_used(AugmentSpec.model_validate(config.get("augment") or {}))
    except ValidationError:   # a config this version no longer reads: it named no generator this check knows
        return None


def test_seen_by_weights(config: dict[str, Any], test_files: Iterable[str | Path],
                         base_dir: Path | None = None) -> list[dict[str, Any]]:
    """For an export's config.json: each export or run its trials learned from (learned_from) whose run trained
    or selected on some of these test files, with how many and how it was used. Its test metrics are optimistic
    by them. One moved away or replaced since the trials ran cannot be checked: listed with `test_images` None
    and why (what is at its path now was not what they learned from)."""
    sources = learned_from(config, base_dir)
    test = digests(Path(f) for f in test_files) if sources else set()
    used = recorded_digests(origins_of(config.get("trials") or [config.get("trial") or {}]))
    found: list[dict[str, Any]] = []
    for source, key in sources.items():
        if why := changed_since(Path(source), used.get(source, set())):   # what is there now says nothing
            found.append({"weights": source, "test_images": None, "used_as": key, "unchecked": why})
            continue
        learned = read(Path(source))
        count = seen(learned, test)["test"] if learned else 0
        if count:
            found.append({"weights": source, "test_images": count, "used_as": key})
    return found
