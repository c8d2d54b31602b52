"""Which image files a model was trained and selected on, so that a study learning from it can tell when its
own test images were among them, or its validation images among those the model trained on.

A study that starts from the weights of an earlier study of the same folder or CSV, split with another seed or
other fractions, would score its export on images the weights already learned: its test metrics would be
optimistic, and no check of its own splits could see it. So would a study adding the images of a generator
(`augment.synthetic`) trained on its test images: a GAN can reproduce its training images. An export (a
classifier's or a generator's) keeps the content digests of its run's train and val files, each split apart,
in `trained_on.json` (the SHA-256 of each whole file, so a moved or renamed copy is the same file and no two
files of other pixels are: the first and last 8 KB that records before 2026-12-06 digested took uncompressed
BMPs and TIFFs differing inside for the same file; such records are still read and compared by that digest);
a run folder used as weights is read from its record. Apart, because a study split as the model's study was
shares its validation images, which is no leak. For a classifier, train is what it learned and val what it was
selected on; for a generator, train is what it learned (and its MedFID reference) and val what its scores were
measured against (medfid_floor; the default feature network's best epoch). MedMNIST sets have official splits
that never move, so they are not listed.

An export whose trials started from weights also lists what those weights learned (their own record, merged
into its train and val; `inherited_from` names them, and `learned_by` keeps each ancestor's own files apart, so
that a leak is told by the run that trained on the images), so a chain of transfers keeps every ancestor's
images; so does an export whose trials trained on a generator's images, with what its GAN study learned; and
`not_recorded` names each ancestor fine-tuned on images nobody listed (model.save's `fine_tuned_on`), so a count
of test images the weights saw is then a lower bound. A run folder's ancestors are those of the trials
whose weights were used: the trial each trial starting from it recorded (`weights_from.trial`), or at run start
its best, which the trials take. Files without these keys read as before.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from searchlab.augment.spec import AugmentSpec
from searchlab.augment.synthetic import generator_used
from searchlab.data.fingerprint import content_digest, sampled_digest
from searchlab.data.loading import DataConfig, files_by_split
from searchlab.engine.rundir import OpenRun
from searchlab.export.weights_match import RESAVE, not_described
from searchlab.export.weights_origin import ORIGIN_KEYS, changed_since, origins_of, recorded_digests

FILE = "trained_on.json"
SPLITS = ("train", "val")   # what the model learned, and what it was selected on
# How a study's trials learned from another model: the keys its space names them by
WEIGHTS, SYNTHETIC = "space.model.weights", "space.augment.synthetic"
DIGEST = "sha256 of the whole file, first 16 hex digits"
SAMPLED = "sha1 of size + first and last 8 KB, first 16 hex digits"   # records written before 2026-12-06
_DIGEST_OF = {DIGEST: content_digest, SAMPLED: sampled_digest}
INHERITED, NOT_RECORDED, LEARNED_BY = "inherited_from", "not_recorded", "learned_by"
FINE_TUNED_ON = "fine_tuned_on"   # model.save's config.json key saying what the fine-tuning images were


def file_digest(path: Path, scheme: str = DIGEST) -> str | None:
    """A file's digest as records of `scheme` list it; None when it cannot be read (gone since: it cannot be
    among a study's files either)."""
    try:
        return _DIGEST_OF[scheme](path).hex()[:16]
    except OSError:
        return None


def digests(paths: Iterable[Path], scheme: str = DIGEST) -> set[str]:
    return {found for path in paths if (found := file_digest(path, scheme)) is not None}


@dataclass(frozen=True)
class Part:
    """Files one run of a model's lineage trained (`train`) and selected (`val`) on, by the digest its record
    used; `by`: the ancestor export or run it is (None: the weights' own run, or all a record without
    `learned_by` lists)."""
    by: str | None
    scheme: str
    train: frozenset[str]
    val: frozenset[str]


class StudyFiles:
    """A study's files of each split, each digested once per digest a record compares by (read when asked)."""

    def __init__(self, files: dict[str, list[Path]]) -> None:
        self.files, self._digests = files, {}

    def digested(self, split: str, scheme: str) -> list[tuple[Path, str | None]]:
        if (split, scheme) not in self._digests:
            self._digests[split, scheme] = [(path, file_digest(path, scheme)) for path in self.files.get(split, [])]
        return self._digests[split, scheme]


def seen_by(parts: list[Part], mine: StudyFiles, split: str, learned: Iterable[str]) -> dict[str | None, list[Path]]:
    """{who (Part.by): this study's files of `split` among those it learned (`learned`: its splits)}. Files are
    counted, not digests (two copies of an image are two test images), each once: by an ancestor before the
    weights' own run, whose record merges in what the ancestors learned."""
    found: dict[str | None, list[Path]] = {}
    counted: set[Path] = set()
    for part in sorted(parts, key=lambda part: part.by is None):
        theirs = frozenset().union(*(getattr(part, name) for name in learned))
        for path, digest in mine.digested(split, part.scheme):
            if digest in theirs and path not in counted:
                counted.add(path)
                found.setdefault(part.by, []).append(path)
    return found


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
    if any(found.get(key) for key in (*SPLITS, NOT_RECORDED, LEARNED_BY)):
        (folder / FILE).write_text(json.dumps(found))


def with_ancestors(own: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """`own` (a run's record) with the records of the weights the export's trials started from merged in:
    those weights learned their ancestors' images, which the trials inherit (a study starting from this export
    would otherwise be checked against this run's files only). Each ancestor's own files are kept apart too
    (`learned_by`), by the digest its record used (an older record's cannot be merged into these)."""
    merged = {split: set(own.get(split, [])) for split in SPLITS}
    learned_by: dict[str, dict[str, Any]] = {}
    inherited: list[str] = []
    trials = _trials_used(config)
    for source, why in _weights_sources(config).items():
        if why or not (parts := lineage(Path(source), trials.get(source))):
            continue
        inherited.append(source)
        for part in parts:
            entry = learned_by.setdefault(part.by or source, {"digest": part.scheme, "train": set(), "val": set()})
            for split in SPLITS:
                if entry["digest"] == part.scheme:   # one ancestor read by two digests: the first kept
                    entry[split] |= getattr(part, split)
                if part.scheme == own.get("digest", DIGEST):
                    merged[split] |= getattr(part, split)
    out = {**own, **{split: sorted(merged[split]) for split in SPLITS}}
    if inherited:
        out[INHERITED] = inherited
        out[LEARNED_BY] = {who: {"digest": entry["digest"], **{split: sorted(entry[split]) for split in SPLITS}}
                           for who, entry in learned_by.items()}
    if unknown := ancestors_not_recorded(config):
        out[NOT_RECORDED] = unknown
    return out


def _trial_records(config: dict[str, Any]) -> list[dict[str, Any]]:
    return config.get("trials") or [config.get("trial") or {}]


def _trials_used(config: dict[str, Any]) -> dict[str, set[int]]:
    """{run folder: the numbers of its trials whose weights the trials (of an export's config.json, or a run's
    trials' user attrs) started from}, as each recorded it (`weights_from.trial`): the run's best may be
    another trial since."""
    found: dict[str, set[int]] = {}
    for trial in _trial_records(config):
        origin = trial.get("weights_from")
        if isinstance(origin, dict) and origin.get("run") and isinstance(origin.get("trial"), int):
            found.setdefault(str(origin["run"]), set()).add(origin["trial"])
    return found


def _weights_sources(config: dict[str, Any]) -> dict[str, str | None]:
    """{each export or run the trials (of an export's config.json) started from, and each generator export whose
    images they trained on: why it no longer holds the weights they used, or None}. A generator's images are
    learned as its GAN study's own: a model it taught passes them down a chain as weights do."""
    records = _trial_records(config)
    used = _used_digests(records)
    return {source: changed_since(Path(source), used.get(source, set())) for source in _sources_by_key(records)}


def _used_digests(records: list[dict[str, Any]]) -> dict[str, set[str]]:
    """recorded_digests() of trial records, an export's own weights file (export_of_file) counted as that
    export too."""
    used = recorded_digests(origins_of(records))
    for file, found in list(used.items()):
        if (export := export_of_file(Path(file))) is not None:
            used.setdefault(str(export), set()).update(found)
    return used


def _origin_folder(origin: Any) -> str | None:
    """The export or run folder a trial's origin record names; an export's own weights file as that export."""
    if not isinstance(origin, dict):
        return None
    where = origin.get("export") or origin.get("run")
    export = export_of_file(Path(origin["file"])) if not where and origin.get("file") else None
    return str(where or export) if where or export else None


def _sources_by_key(records: list[dict[str, Any]]) -> dict[str, str]:
    """{export or run folder: the trial record's key naming it (weights_from, synthetic_from)}."""
    found: dict[str, str] = {}
    for record in records:
        for key in ORIGIN_KEYS:
            where = _origin_folder(record.get(key))
            if where:
                found.setdefault(where, key)
    return found


def ancestors(config: dict[str, Any]) -> dict[str, set[int] | None]:
    """{each export or run the trials (of an export's config.json, or {"trials": a run's trials' user attrs})
    learned from that still holds what they used: the numbers of a run's trials they took, None for an export}
    (one replaced since is said by ancestors_not_recorded)."""
    trials = _trials_used(config)
    return {source: trials.get(source) for source, why in _weights_sources(config).items() if not why}


def export_of_file(path: Path) -> Path | None:
    """The export whose own weights file `path` is (weights.safetensors with the export's config.json beside
    it): those weights learned what the export's trained_on.json and config.json say, so the file counts as
    that export (named as the file, a study learning from it was checked against nothing)."""
    if path.name == "weights.safetensors" and path.is_file() and (path.parent / "config.json").is_file():
        return path.parent
    return None


def ancestors_not_recorded(config: dict[str, Any]) -> list[dict[str, str]]:
    """not_recorded() of the weights the trials started from; those replaced since cannot be checked either."""
    found: list[dict[str, str]] = []
    trials = _trials_used(config)
    keys = _sources_by_key(_trial_records(config))
    for source, why in _weights_sources(config).items():
        items = [{"weights": source, "key": keys[source], "why": f"not what the trials used: {why}"}] if why \
            else not_recorded(Path(source), trials.get(source))
        found.extend(item for item in items if item not in found)
    return found


_EXPANDING: set[Path] = set()   # run folders whose ancestors are being read: a cycle of runs ends there


@contextmanager
def _used_trials_record(run_dir: Path, trials: set[int] | None) -> Iterator[dict[str, Any]]:
    """{"trials": the user attrs of the trials of `run_dir` whose weights were used (their `weights_from` names
    what those started from)}: the numbers `trials` (as the trials starting from them recorded), else its best
    (what a study starting from `run_dir` now takes); {} when none, or when already being read."""
    key = run_dir.resolve()
    if key in _EXPANDING:
        yield {}
        return
    _EXPANDING.add(key)
    try:
        yield {"trials": _trial_attrs(run_dir, trials)}
    finally:
        _EXPANDING.discard(key)


def _trial_attrs(run_dir: Path, trials: set[int] | None) -> list[dict[str, Any]]:
    from searchlab.engine.rundir import open_run
    from searchlab.export.picking import pick_trial

    try:
        study = open_run(run_dir).study
    except Exception:   # best effort, as _of_run: a run that cannot be read is said where its weights are loaded
        return []
    found = []
    for number in sorted(trials) if trials else [None]:
        try:
            found.append(dict(pick_trial(study, number).user_attrs))
        except Exception:   # deleted since, or no best now: what it started from is unknown here
            continue
    return found


def not_recorded(weights: Path, trials: set[int] | None = None) -> list[dict[str, str]]:
    """The weights folders in the lineage of `weights` fine-tuned on images searchlab was not told of: `weights`
    itself (model.save's config.json `fine_tuned_on` "not recorded: ...") and those its trained_on.json names
    (a run folder's: those of its trials numbered `trials`, else of its best). Their fine-tuning images may be
    anywhere, so any count of test images the weights saw is a lower bound. An export whose weights file is
    not the one its config.json records is listed too: its trained_on.json is of other weights."""
    if not weights.is_dir():
        return []
    found: list[dict[str, str]] = []
    if swapped := not_described(weights):
        found.append({"weights": str(weights), "key": "config.json weights_sha256",
                      "why": f"{swapped}; to fix: {RESAVE}"})
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
    if not (weights / FILE).is_file() and (weights / "searchlab.json").is_file():   # a run folder: its trials'
        with _used_trials_record(weights, trials) as used:
            found.extend(item for item in ancestors_not_recorded(used) if item not in found)
    return found


def read(weights: Path, trials: set[int] | None = None) -> dict[str, set[str]] | None:
    """The train and val digests of the model in an export or run folder (trained on the one, selected on the
    other; a run folder's with what the weights its trials numbered `trials`, else its best, started from
    learned); None when unknown (a weights file, an export from before trained_on.json, MedMNIST data, a run
    whose files are gone)."""
    parts = lineage(weights, trials)
    if not parts:
        return None
    alike = [part for part in parts if part.scheme == parts[0].scheme]   # parts[0]: the weights' own
    return {split: set().union(*(getattr(part, split) for part in alike)) for split in SPLITS}


def lineage(weights: Path, trials: set[int] | None = None) -> list[Part] | None:
    """What the model in an export or run folder and each ancestor of it learned, apart: its own run's files
    first; None when unknown (as read())."""
    if (weights / FILE).is_file():
        try:
            return _parts(json.loads((weights / FILE).read_text()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
    if (weights / "searchlab.json").is_file():
        return _of_run(weights, trials)
    return None


def _parts(found: dict[str, Any]) -> list[Part] | None:
    """A trained_on.json's record as Parts; None for a digest this version does not know."""
    if found.get("digest") not in _DIGEST_OF:
        return None
    ancestors = [Part(who, entry["digest"], frozenset(entry["train"]), frozenset(entry["val"]))
                 for who, entry in (found.get(LEARNED_BY) or {}).items() if entry.get("digest") in _DIGEST_OF]
    alike = [part for part in ancestors if part.scheme == found["digest"]]
    # the weights' own run: what the record merged in from its ancestors taken out, so a leak names its run
    own = {split: frozenset(found[split]).difference(*(getattr(part, split) for part in alike)) for split in SPLITS}
    return [Part(None, found["digest"], own["train"], own["val"]), *ancestors]


def _of_run(run_dir: Path, trials: set[int] | None) -> list[Part] | None:
    from searchlab.engine.rundir import open_run
    from searchlab.export.ensemble import run_data_config

    try:
        run = open_run(run_dir)
        if run.record.get("data") is None:
            return None
        cfg, base_dir = run_data_config(run)
        own = record(cfg, run.record["seed"], base_dir) or {"digest": DIGEST, "train": [], "val": []}
        with _used_trials_record(run_dir, trials) as used:   # and what the weights those trials started from learned
            found = with_ancestors(own, used)
        parts = _parts(found)
        return parts if parts and any(getattr(part, split) for part in parts for split in SPLITS) else None
    except Exception:   # best effort: a run that cannot be read is said where its weights are loaded
        return None


def describe_not_recorded(unknown: list[dict[str, str]]) -> str:
    """`not_recorded` entries as a sentence's list: which folder, which key says so, and why."""
    return "; ".join(f"{item.get('weights')} ({item.get('key')}: {item.get('why', 'not recorded')})"
                     for item in unknown)


def learned_from(config: dict[str, Any], base_dir: Path | None) -> dict[str, str]:
    """For an export's config.json: each export or run whose model its trials learned from, with the space key
    that named it: the weights they started from (`weights_from`), and the generator whose images joined
    their training data (`augment.synthetic`, relative to the study file's folder `base_dir`)."""
    found: dict[str, str] = {}
    for trial in _trial_records(config):
        if where := _origin_folder(trial.get("weights_from")):
            found.setdefault(where, WEIGHTS)
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
    or selected on some of these test files, with how many and how it was used (a run folder: read as of the
    trials the trials recorded taking). Its test metrics are optimistic by them. Those an ancestor of the weights
    trained on (not their own run) are counted by ancestor under `seen_by_ancestors`. One moved away or replaced
    since the trials ran cannot be checked: listed with `test_images` None and why (what is at its path now was
    not what they learned from)."""
    sources = learned_from(config, base_dir)
    mine = StudyFiles({"test": [Path(f) for f in test_files]})
    used, trials = _used_digests(_trial_records(config)), _trials_used(config)
    found: list[dict[str, Any]] = []
    for source, key in sources.items():
        if why := changed_since(Path(source), used.get(source, set())):   # what is there now says nothing
            found.append({"weights": source, "test_images": None, "used_as": key, "unchecked": why})
            continue
        parts = lineage(Path(source), trials.get(source))
        by = seen_by(parts, mine, "test", SPLITS) if parts else {}
        count = sum(len(paths) for paths in by.values())
        unknown = not_recorded(Path(source), trials.get(source)) if key == WEIGHTS else []
        ancestors = {who: len(paths) for who, paths in by.items() if who is not None}
        if count or unknown:   # fine-tuned on unlisted images: the count, even 0, is a lower bound
            found.append({"weights": source, "test_images": count, "used_as": key,
                          **({"seen_by_ancestors": ancestors} if ancestors else {}),
                          **({NOT_RECORDED: unknown} if unknown else {})})
    return found
