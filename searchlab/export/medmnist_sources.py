"""What a model learned of a MedMNIST set. MedMNIST's splits are official and never move, so `trained_on.json`
lists no files for them (export/trained_on.py), and no split of a study can hold another split's images. But a
model trained on the same set (at any size: the same images) learned its train split, and its validation split
too when its trials cross-validated (folds deal train and val). A study that cross-validates deals those images
into held-out folds; one whose trials cross-validated selected on images such weights trained on."""
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
    wrote, or a run folder) learned: train, and val when its trials cross-validated; () when it learned
    another data set or cannot be read (where its weights load, that is said)."""
    try:
        found = _data_file_and_trials(source)
    except Exception:   # best effort, as trained_on's reading of a run
        return ()
    if found is None:
        return ()
    data_file, trials = found
    if not isinstance(data_file, dict) or medmnist_set(str(data_file.get("file", ""))) != medmnist_set(file_name):
        return ()
    return SPLITS if any(_cross_validated(trial) for trial in trials) else ("train",)


def _data_file_and_trials(source: Path) -> tuple[Any, list[dict[str, Any]]] | None:
    """The MedMNIST file record and the trial records of the model in `source` (a run folder: of its best trial,
    which trials starting from it take)."""
    if (source / "config.json").is_file():
        config = json.loads((source / "config.json").read_text())
        return config.get("data_file"), config.get("trials") or [config.get("trial") or {}]
    if (source / "searchlab.json").is_file():
        from searchlab.engine.rundir import open_run
        from searchlab.export.picking import pick_trial

        run = open_run(source)
        return run.record.get("data_file"), [dict(pick_trial(run.study, None).user_attrs)]
    return None


def _cross_validated(trial: dict[str, Any]) -> bool:
    config = trial.get("config_with_defaults") or trial.get("config") or {}
    train = config.get("train") if isinstance(config, dict) else None
    return isinstance(train, dict) and bool(train.get("cv_folds"))
