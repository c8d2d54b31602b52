"""Which image files a model was trained and selected on, so that a study transferring from it can tell when
its own test images were among them, or its validation images among those the weights trained on.

A study that starts from the weights of an earlier study of the same folder or CSV, split with another seed or
other fractions, would score its export on images the weights already learned: its test metrics would be
optimistic, and no check of its own splits could see it. An export keeps the content digests of its run's
train and val files, each split apart, in `trained_on.json` (data/fingerprint.py's sampled digest: size and
the first and last 8 KB, so a moved or renamed copy is the same file); a run folder used as weights is read
from its record. Apart, because a study split as the weights' study was shares its validation images, which
is no leak. MedMNIST sets have official splits that never move, so they are not listed.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from searchlab.data.fingerprint import sampled_digest
from searchlab.data.loading import DataConfig, files_by_split

FILE = "trained_on.json"
SPLITS = ("train", "val")   # what the model learned, and what it was selected on
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


def test_seen_by_weights(config: dict[str, Any], test_files: Iterable[str | Path]) -> list[dict[str, Any]]:
    """For an export's config.json: each export or run its trials started from (`weights_from`) whose run
    trained or selected on some of these test files, with how many. Its test metrics are optimistic by them."""
    trials = config.get("trials") or [config.get("trial") or {}]
    sources = dict.fromkeys(str(origin.get("export") or origin.get("run")) for origin in
                            (t.get("weights_from") or {} for t in trials) if origin.get("export") or origin.get("run"))
    test = digests(Path(f) for f in test_files) if sources else set()
    found = []
    for source in sources:
        learned = read(Path(source))
        seen = len(test & (learned["train"] | learned["val"])) if learned else 0
        if seen:
            found.append({"weights": source, "test_images": seen})
    return found
