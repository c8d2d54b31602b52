"""What an export records about where it came from, for whoever deploys or audits it: when and with which
software it was made, the digest of its weights (model.load refuses other bytes), the trial (its config with
every default, its seed) and the search that chose it, how many images of each class each split held, how its
decision threshold was chosen, and digests of a MedMNIST file that can be compared with the published ones.
Classifier and generator exports (exporter.py, generator.py) share these."""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from searchlab.data.types import ImageDataset
from searchlab.engine.objective import config_of, trial_seed
from searchlab.engine.rundir import OpenRun
from searchlab.engine.storage import DESIGN_ATTRS
from searchlab.imbalance import ImbalanceSpec
from searchlab.versions import software_versions

CHUNK = 1 << 20


def made_with() -> dict[str, str]:
    """When, and with which versions of the packages that decide its numbers, an export was made (the search's
    own are in config.json's search.software)."""
    return {"exported_at_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), **software_versions()}


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def trial_provenance(run: OpenRun, trial: FrozenTrial) -> dict[str, Any]:
    """The exported trial: its study and number, its config as sampled and with every default as it ran (trials
    from before it, or of a task that does not record it: absent), its seed, and whether a timeout cut it short
    or which model its initial weights came from."""
    attrs, config = trial.user_attrs, config_of(trial)
    return {"study": run.study.study_name, "number": trial.number, "params": trial.params, "config": config,
            # what its initialisation, batches and sampling drew from, and torch's threads then (as recorded;
            # a trial run before they were: the seed from the latest run's and its config, as objective.py does)
            "seed": attrs.get("ran_with", {}).get("seed", trial_seed(run.record["seed"], config)),
            **{key: value for key, value in attrs.get("ran_with", {}).items()
               if key in ("study_seed", "torch_threads")},
            **({"config_with_defaults": attrs["config_with_defaults"]} if "config_with_defaults" in attrs else {}),
            # a timeout stopped its training: its metrics are of a shorter run than asked
            **({"cut_short": attrs["cut_short"]} if "cut_short" in attrs else {}),
            # where its initial weights came from: a run's trial, or a file or export and its hash
            **({"weights_from": attrs["weights_from"]} if "weights_from" in attrs else {}),
            # the generator export whose images joined its training data, and its weights' hash
            **({"synthetic_from": attrs["synthetic_from"]} if "synthetic_from" in attrs else {}),
            # a searched architecture as a person reads it (genotype, block list), and the training-free score
            # it was chosen by (zen_nas, deepmad) and that proxy trial: what a deployer asks of the model
            **{key: attrs[key] for key in ("architecture", *DESIGN_ATTRS) if key in attrs}}


def search_provenance(run: OpenRun) -> dict[str, Any]:
    """How the search that chose the exported model was set up (its latest run), and what it ranked trials by;
    and, exported while trials ran, how far the search was (read as final, such an export is the best so far)."""
    running = len(run.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    finished = len(run.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
    budget = ((run.record.get("search") or {}).get("budget") or {}).get("n_trials")
    return {**({"search": run.record["search"]} if run.record.get("search") else {}),
            "objectives": [metric for metric, _ in run.record["objectives"]],
            **({"search_at_export": {"trials_finished": finished, "trials_running": running, "n_trials": budget,
                                     "note": "exported while trials ran (a search going on, or one killed): the "
                                             "best so far"}} if running else {})}


def split_counts(data: ImageDataset) -> dict[str, dict[str, Any]]:
    """Per split: its images, and each class's (multi-label: each label's positives)."""
    counts = {}
    for name, split in data.splits.items():
        labels = split.labels.numpy()
        per_class = labels.sum(axis=0) if labels.ndim == 2 else np.bincount(labels, minlength=len(data.class_names))
        counts[name] = {"images": len(split), "per_class": dict(zip(data.class_names, map(int, per_class)))}
    return counts


def threshold_choice(trial: FrozenTrial, task: str) -> dict[str, Any]:
    """How one trial's model got its decision threshold (an ensemble's or TTA export's is chosen anew and
    recorded by export/ensemble.py)."""
    if task == "multiclass":
        return NO_THRESHOLD
    rule = (config_of(trial).get("imbalance") or {}).get("threshold", ImbalanceSpec().threshold)
    if rule == "fixed":
        return FIXED
    split = "out-of-fold train+val (the bag's members)" if "bag" in trial.user_attrs else "val"
    return {"rule": rule, "split": split, "chosen_by": f"trial {trial.number}, on its {split} predictions"}


FIXED = {"rule": "fixed", "note": "0.5 (imbalance.threshold: fixed), not tuned on any data"}
NO_THRESHOLD = {"rule": "none: the most probable class is predicted"}   # multi-class
RESCORED_ARE = ("the exported model's own (members, TTA and threshold as exported) on {where}; the search ranked "
                "its trials on these images too, so they are optimistic: test_metrics are the unbiased ones")


def rechosen(rule: str, as_trial: int, split: str, images: int, task: str) -> dict[str, Any]:
    """An ensemble's or TTA export's threshold_choice and what its validation_metrics are: the threshold is
    chosen again by the best trial's rule on `split` (none for multi-class data, whatever the rule said), and
    the metrics are scored there."""
    where = (f"out-of-fold predictions over train+val ({images} images, each scored only by fold models that did "
             "not train on it)" if split != "val" else f"the val split ({images} images)")
    choice = NO_THRESHOLD if task == "multiclass" else FIXED if rule == "fixed" else \
        {"rule": rule, "as_trial": as_trial, "split": split, "val_size": images}
    return {"threshold_choice": choice, "validation_metrics_are": RESCORED_ARE.format(where=where)}


def medmnist_digests(recorded: dict[str, Any], path: Path | None) -> dict[str, Any]:
    """The recorded MedMNIST file, with what its `digest` is and, when the file is at hand, the md5 (what
    MedMNIST publishes) and sha256 of the whole file."""
    out = {**recorded, "digest_is": "sha1 of the file's size and its first and last 8 KB (checked on resume "
                                    "and export)"}
    if path is not None and path.is_file():
        out.update(md5=file_digest(path, "md5"), sha256=file_digest(path))
    return out
