"""What a model learned of a MedMNIST set. MedMNIST's splits are official and never move, so `trained_on.json`
lists no files for them (export/trained_on.py), and no split of a study can hold another split's images. But a
model trained on the same set (at any size: the same images) learned its train split, and its validation split
too when its trials cross-validated (folds deal train and val); so did a model whose lineage holds such a run
(the weights its trials started from, or a generator whose images they trained on, as their trial records name
them: a breastmnist run started from a folder-trained export has a lineage, and learned breastmnist all the
same). A study that cross-validates deals those images into held-out folds; one whose trials cross-validated
selected on images such weights trained on."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SPLITS = ("train", "val")


def medmnist_set(file_name: str) -> str:
    """The set a MedMNIST file holds, at any size: breastmnist_64.npz -> breastmnist."""
    return re.sub(r"(_\d+)?\.npz$", "", file_name)


def learned_of_same_set(source: Path, file_name: str) -> tuple[str, ...]:
    """The splits of the MedMNIST set of `file_name` that the model in `source` (an export, a folder model.save
    wrote, or a run folder) or a model in its lineage learned: train, and val when its trials cross-validated;
    () when none learned that set, or they cannot be read (where its weights load, that is said)."""
    learned = learners_of_same_set(source, file_name)
    return tuple(split for split in SPLITS if split in learned)


def learners_of_same_set(source: Path, file_name: str) -> dict[str, list[str | None]]:
    """{split of the set of `file_name` learned: who learned it}: None for the model in `source` itself, else
    the folder of the model in its lineage whose run did (each model read once: a cycle of runs ends)."""
    found: dict[str, list[str | None]] = {}
    _learned_along(source, None, None, medmnist_set(file_name), found, set())
    return found


def _learned_along(source: Path, who: str | None, trials: set[int] | None, wanted: str,
                   found: dict[str, list[str | None]], seen: set[Path]) -> None:
    """What `source` (its trials numbered `trials`, else its best) learned of the set `wanted`, into `found`
    as learned by `who`; then each model its trials learned from, as learned by that one."""
    from searchlab.export.trained_on import ancestors

    key = source.resolve()
    if key in seen:
        return
    seen.add(key)
    try:
        read = _data_file_and_trials(source, trials)
        parents = ancestors({"trials": read[1]}) if read is not None else {}
    except Exception:   # best effort, as trained_on's reading of a run
        return
    if read is None:
        return
    data_file, records = read
    if isinstance(data_file, dict) and medmnist_set(str(data_file.get("file", ""))) == wanted:
        for split in SPLITS if any(_cross_validated(trial) for trial in records) else ("train",):
            found.setdefault(split, []).append(who)
    for parent, numbers in parents.items():
        _learned_along(Path(parent), parent, numbers, wanted, found, seen)


def _data_file_and_trials(source: Path, trials: set[int] | None = None
                          ) -> tuple[Any, list[dict[str, Any]]] | None:
    """The MedMNIST file record and the trial records of the model in `source` (a run folder: of its trials
    numbered `trials`, else of its best trial, which trials starting from it take)."""
    if (source / "config.json").is_file():
        config = json.loads((source / "config.json").read_text())
        return config.get("data_file"), config.get("trials") or [config.get("trial") or {}]
    if (source / "searchlab.json").is_file():
        from searchlab.engine.rundir import open_run
        from searchlab.export.picking import pick_trial

        run = open_run(source)
        found = []
        for number in sorted(trials) if trials else [None]:
            try:
                found.append(dict(pick_trial(run.study, number).user_attrs))
            except Exception:   # deleted since, or no best now: what it learned is unknown here
                continue
        return run.record.get("data_file"), found
    return None


def _cross_validated(trial: dict[str, Any]) -> bool:
    config = trial.get("config_with_defaults") or trial.get("config") or {}
    train = config.get("train") if isinstance(config, dict) else None
    return isinstance(train, dict) and bool(train.get("cv_folds"))
