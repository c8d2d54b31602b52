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

An export whose trials started from weights also lists what those weights learned (their own record, merged
into its train and val; `inherited_from` names them), so a chain of transfers keeps every ancestor's images;
and `not_recorded` names each ancestor fine-tuned on images nobody listed (model.save's `fine_tuned_on`), so
a count of test images the weights saw is then a lower bound. Files without these keys read as before.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
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
INHERITED, NOT_RECORDED = "inherited_from", "not_recorded"
FINE_TUNED_ON = "fine_tuned_on"   # model.save's config.json key saying what the fine-tuning images were


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


def write_of_run(folder: Path, run: OpenRun, config: dict[str, Any] | None = None) -> None:
    """`trained_on.json` in an export of `run` (a classifier's or a generator's): its data as the run read it,
    and what the weights its trials started from learned (`config`: the export's config.json), so that a study
    learning from the export checks its own splits against both."""
    from searchlab.export.ensemble import run_data_config   # ensemble imports the exporters' modules

    cfg, base_dir = run_data_config(run)
    own = record(cfg, run.record["seed"], base_dir) or {"digest": DIGEST, "train": [], "val": []}
    found = with_ancestors(own, config or {})
    if any(found.get(key) for key in (*SPLITS, NOT_RECORDED)):
        (folder / FILE).write_text(json.dumps(found))


def with_ancestors(own: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """`own` (a run's record) with the records of the weights the export's trials started from merged in:
    those weights learned their ancestors' images, which the trials inherit (a study starting from this export
    would otherwise be checked against this run's files only)."""
    merged = {split: set(own.get(split, [])) for split in SPLITS}
    inherited: list[str] = []
    for source, why in _weights_sources(config).items():
        if not why and (learned := read(Path(source))):
            inherited.append(source)
            for split in SPLITS:
                merged[split] |= learned[split]
    out = {**own, **{split: sorted(merged[split]) for split in SPLITS}}
    if inherited:
        out[INHERITED] = inherited
    if unknown := ancestors_not_recorded(config):
        out[NOT_RECORDED] = unknown
    return out


def _weights_sources(config: dict[str, Any]) -> dict[str, str | None]:
    """{each export or run the trials (of an export's config.json) started from: why it no longer holds the
    weights they used, or None}."""
    used = recorded_digests(origins_of(config.get("trials") or [config.get("trial") or {}]))
    return {source: changed_since(Path(source), used.get(source, set()))
            for source, key in learned_from(config, None).items() if key == WEIGHTS}


def ancestors_not_recorded(config: dict[str, Any]) -> list[dict[str, str]]:
    """not_recorded() of the weights the trials started from; those replaced since cannot be checked either."""
    found: list[dict[str, str]] = []
    for source, why in _weights_sources(config).items():
        items = [{"weights": source, "key": "weights_from", "why": f"not what the trials used: {why}"}] if why \
            else not_recorded(Path(source))
        found.extend(item for item in items if item not in found)
    return found


_EXPANDING: set[Path] = set()   # run folders whose ancestors are being read: a cycle of runs ends there


@contextmanager
def _best_trial_record(run_dir: Path) -> Iterator[dict[str, Any]]:
    """{"trial": the user attrs of the trial a study starting from `run_dir` takes the weights of (its
    `weights_from` names what that trial started from)}; {} when none, or when already being read."""
    key = run_dir.resolve()
    if key in _EXPANDING:
        yield {}
        return
    from searchlab.engine.rundir import open_run
    from searchlab.export.picking import pick_trial

    try:
        attrs = dict(pick_trial(open_run(run_dir).study, None).user_attrs)
    except Exception:   # best effort, as _of_run: a run that cannot be read is said where its weights are loaded
        attrs = {}
    _EXPANDING.add(key)
    try:
        yield {"trial": attrs}
    finally:
        _EXPANDING.discard(key)


def not_recorded(weights: Path) -> list[dict[str, str]]:
    """The weights folders in the lineage of `weights` fine-tuned on images searchlab was not told of: `weights`
    itself (model.save's config.json `fine_tuned_on` "not recorded: ...") and those its trained_on.json names.
    Their fine-tuning images may be anywhere, so any count of test images the weights saw is a lower bound."""
    if not weights.is_dir():
        return []
    found: list[dict[str, str]] = []
    try:
        config = json.loads((weights / "config.json").read_text())
        said = config.get(FINE_TUNED_ON) if isinstance(config, dict) else None
    except (OSError, ValueError):
        said = None
    if isinstance(said, str) and said.startswith("not recorded"):
        found.append({"weights": str(weights), "key": f"config.json {FINE_TUNED_ON}",
                      "why": "fine-tuned on images searchlab was not told of"})
    try:
        listed = json.loads((weights / FILE).read_text()).get(NOT_RECORDED)
    except (OSError, ValueError, AttributeError):
        listed = None
    found.extend(item for item in listed or [] if isinstance(item, dict) and item not in found)
    if not (weights / FILE).is_file() and (weights / "searchlab.json").is_file():   # a run folder: its trial's
        with _best_trial_record(weights) as trial:
            found.extend(item for item in ancestors_not_recorded(trial) if item not in found)
    return found


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
        found = {split: sorted(digests(files))
                 for split, files in files_by_split(cfg, run.record["seed"], base_dir, SPLITS).items()}
        with _best_trial_record(run_dir) as trial:   # and what the weights its best trial started from learned
            found = with_ancestors(found, trial)
        return {split: set(found[split]) for split in SPLITS} if any(found[split] for split in SPLITS) else None
    except Exception:   # best effort: a run that cannot be read is said where its weights are loaded
        return None


def describe_not_recorded(unknown: list[dict[str, str]]) -> str:
    """`not_recorded` entries as a sentence's list: which folder, which key says so, and why."""
    return "; ".join(f"{item.get('weights')} ({item.get('key')}: {item.get('why', 'not recorded')})"
                     for item in unknown)


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
        unknown = not_recorded(Path(source)) if key == WEIGHTS else []
        if count or unknown:   # fine-tuned on unlisted images: the count, even 0, is a lower bound
            found.append({"weights": source, "test_images": count, "used_as": key,
                          **({NOT_RECORDED: unknown} if unknown else {})})
    return found
