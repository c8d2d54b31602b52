"""Top-k ensembles and validation-chosen thresholds for `searchlab export --top-k K --tta MODE`.

An ensemble (or a single trial under test-time augmentation) predicts differently from the trials the study
scored, so its decision threshold is chosen again, on the validation split, by the rule the best trial used.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState
from pydantic import TypeAdapter

from searchlab.config.schema import DATA_ROOT_ENV, DataConfig, MedMNISTData
from searchlab.data import ImageDataset, load_dataset, medmnist_file
from searchlab.data.common import SPLITS
from searchlab.data.fingerprint import (REORDERED, changed_test_split, data_fingerprint_and_listing,
                                       medmnist_change_said, moved_members, multilabel_split_before_the_key,
                                       replaced_contents, why_moved_files_count)
from searchlab.data.loading import medmnist_path
from searchlab.data.recorded_split import medmnist_stat
from searchlab.data.orientation import turned_since
from searchlab.data.medmnist_source import npz_path
from searchlab.engine.objective import config_of
from searchlab.engine.rundir import OpenRun
from searchlab.errors import DataError, ExportError
from searchlab.export.provenance import rechosen
from searchlab.imbalance import ImbalanceSpec, choose_threshold
from searchlab.metrics import compute_metrics
from searchlab.models import standalone


def pick_top_k(study: optuna.Study, k: int) -> list[FrozenTrial]:
    """The k best COMPLETE trials of a single-objective study, best first (ties: lower trial number first)."""
    if len(study.directions) > 1:
        raise ExportError(f"this study has {len(study.directions)} objectives, so its trials have no single "
                          "ranking to take the top K of. Fix: export one trial of the Pareto front with --trial N")
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < k:
        raise ExportError(f"--top-k {k} needs {k} completed trials; study '{study.study_name}' has "
                          f"{len(complete)}. Fix: a smaller --top-k, or run more trials")
    sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
    return sorted(complete, key=lambda t: (sign * t.value, t.number))[:k]


# each member's own scores: its selection score and, when that is a mean over runs, its model's and what each is
MEMBER_METRICS = ("validation_metrics", "model_validation_metrics", "validation_metrics_are")


def ensemble_config(members: list[dict[str, Any]], trials: list[FrozenTrial]) -> dict[str, Any]:
    """One config from the members' single-trial configs: member specs and per-member preprocessing. A bagged
    trial (itself an ensemble of its fold models) adds each of its fold models as a member of its own."""
    first = members[0]
    for config, trial in zip(members[1:], trials[1:]):
        if (config["task"], config["class_names"]) != (first["task"], first["class_names"]):
            raise ExportError(f"trial {trial.number} predicts {config['task']} {config['class_names']} but trial "
                              f"{trials[0].number} {first['task']} {first['class_names']}; they cannot be averaged")
    specs, preprocessing = [], []
    for config in members:
        bagged = config["model"]["architecture"] == "ensemble"
        specs += config["model"]["members"] if bagged else [config["model"]]
        preprocessing += config["preprocessing"] if bagged else [config["preprocessing"]]
    return {
        "format": first["format"],
        "model": {"architecture": "ensemble", "members": specs},
        "preprocessing": preprocessing,                            # one per member, in member order
        "task": first["task"],
        "class_names": first["class_names"],
        "threshold": first["threshold"],          # replaced by choose_on_validation or choose_out_of_fold
        "trials": [{**c["trial"], "value": t.value, "threshold": c["threshold"],
                    **{k: c[k] for k in MEMBER_METRICS if k in c}} for c, t in zip(members, trials)],
    }


def ensemble_state(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The trials' weights under one ensemble's member numbering (a bagged trial's members renumbered)."""
    merged: dict[str, torch.Tensor] = {}
    offset = 0
    for state in states:
        if not all(k.startswith("members.") for k in state):   # one network: one member
            state = {f"members.0.{k}": v for k, v in state.items()}
        split = {k: k.split(".", 2) for k in state}               # "members", index, parameter name
        merged.update({f"members.{offset + int(split[k][1])}.{split[k][2]}": v for k, v in state.items()})
        offset += 1 + max(int(parts[1]) for parts in split.values())
    return merged


def threshold_rule(trial: FrozenTrial) -> str:
    """How the trial chose its threshold: its config's imbalance.threshold, "fixed" when it has none."""
    imbalance = config_of(trial).get("imbalance")
    return imbalance.get("threshold", "fixed") if isinstance(imbalance, dict) else "fixed"


def choose_on_validation(run: OpenRun, net: torch.nn.Module, config: dict[str, Any],
                         trials: list[FrozenTrial]) -> dict[str, Any]:
    """Threshold chosen on the validation split (config's TTA applied) by the best trial's rule, and the
    validation metrics at it."""
    rule_of = trials[0]
    val = load_split(run, "val").splits["val"]
    height, width = val.images.shape[-2:]
    if config.get("tta") == "dihedral" and height != width:
        raise ExportError(f"--tta dihedral rotates images by 90 degrees, which needs square images; this data "
                          f"set's are {height}x{width}. Fix: --tta flip (or none)")
    probs = standalone.predict_proba(net, config, val.images).numpy()
    labels = val.labels.numpy()
    kind, n_classes, rule = config["task"], len(config["class_names"]), threshold_rule(rule_of)
    threshold = choose_threshold(ImbalanceSpec(threshold=rule), kind, labels, probs)
    return {"threshold": threshold, **rechosen(rule, rule_of.number, "val", len(val), kind),
            "validation_metrics": compute_metrics(labels, probs, kind, n_classes, threshold=threshold)}


def load_split(run: OpenRun, *splits: str) -> ImageDataset:
    """Split(s) of the run's data set, as the run read them (same data config, seed and base directory)."""
    data_cfg, base_dir = run_data_config(run)
    _check_unchanged(run, *_fingerprint_now(run, data_cfg, base_dir))
    return load_dataset(data_cfg, splits=splits, seed=run.record["seed"], base_dir=base_dir)


def has_split(run: OpenRun, split: str) -> bool:
    """Whether the run's data set has this split (MedMNIST always has all three; a folder or CSV may lack a
    test split when the user tests elsewhere). Asked of the test split once per export, before it is scored:
    a test split changed since the search (the data fixes it, so no other moved) is said then."""
    data_cfg, base_dir = run_data_config(run)
    files, listing = _fingerprint_now(run, data_cfg, base_dir)
    _check_unchanged(run, files, listing)
    changed = _test_split_changed(run, files, listing) if split == "test" else None
    if changed:
        print(f"note: {run.run_dir}: the test split changed since the search ({changed}); the training and "
              "validation splits did not, so the trials are as searched, and the test metrics are of the test "
              "split as it is now", file=sys.stderr)
    return files is None or split in files["splits"]


def _test_split_changed(run: OpenRun, files: dict[str, Any] | None, listing: str | None) -> str | None:
    return changed_test_split(run.record.get("data_files"), files, (run.record.get("data_listing"), listing))


def own_test_split_changed_since(run: OpenRun) -> str | None:
    """Your own test split's files changed since the search (has_split's note), in words; None otherwise. Kept
    in the export's config.json, as files replaced in place are, so that the record says what was scored."""
    data_cfg, base_dir = run_data_config(run)
    return _test_split_changed(run, *_fingerprint_now(run, data_cfg, base_dir))


# DataError texts of files or folders not where the record says: a moved data set, which the advice fixes
MISSING_MARKERS = ("data folder not found", "CSV file not found", "image file(s) not found", "which does not exist")


def _fingerprint_now(run: OpenRun, data_cfg: DataConfig, base_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """The data set's fingerprint and listing now (data/fingerprint.py)."""
    try:
        return data_fingerprint_and_listing(data_cfg, run.record["seed"], base_dir)
    except DataError as exc:
        if run.study_file_data is not None or not any(marker in str(exc) for marker in MISSING_MARKERS):
            raise   # another data error (a class not among the train classes): moving the data would not fix it
        raise ExportError(f"{exc}. If the data set moved: edit data.path in the study file and give the study "
                          "file instead of the run directory (searchlab export STUDY.yaml --out DIR)") from None


def run_data_config(run: OpenRun) -> tuple[DataConfig, Path]:
    """The data as the run recorded it; or, opened through its study file, that file's data section when it
    differs only in where the data lives (a moved folder edited there). Its files are then still compared
    with the recorded fingerprint, so only the same data set is read."""
    recorded, base_dir = as_written(run.record), Path(run.record["base_dir"])
    if run.study_file_data is not None:
        edited, edited_base = run.study_file_data
        where = ("path", "root", "download")
        if {k: v for k, v in edited.items() if k not in where} == {k: v for k, v in recorded.items() if k not in where}:
            recorded, base_dir = edited, edited_base
    if multilabel_split_before_the_key(run.record["data"]):
        recorded = {**recorded, "multilabel_split": "random"}   # a run from before the key split its rows so
    cfg = TypeAdapter(DataConfig).validate_python(recorded)
    read_from = run.record.get("data_root_read")
    if isinstance(cfg, MedMNISTData) and cfg.root is None and not os.environ.get(DATA_ROOT_ENV) and read_from \
            and npz_path(Path(read_from), cfg.name, cfg.size).is_file():
        # the run found its file through $SEARCHLAB_DATA, unset in this shell: read where the run read
        cfg = cfg.model_copy(update={"root": Path(read_from)})
    return cfg, base_dir


def as_written(record: dict[str, Any]) -> dict[str, Any]:
    """The recorded data section without the keys the study left at their defaults, so that a setting that
    counts only when written (test_fraction of a folder with train/ and val/ but no test/) means what it meant
    in the run. Records from before `data_defaults`: a test_fraction that drew no test split was a default."""
    data, defaults = record["data"], record.get("data_defaults")
    if defaults is None:
        drew_test = bool(((record.get("data_files") or {}).get("splits") or {}).get("test"))
        defaults = ["test_fraction"] if data.get("test_fraction") and not drew_test else []
    return {k: v for k, v in data.items() if k not in defaults}


def check_decoded_alike(run: OpenRun) -> None:
    """A run whose trials read EXIF-turned files as stored (before decoder 2) is not exported upright."""
    if run.record.get("data") is None:   # a callable task's: its function read its own data
        return
    data_cfg, base_dir = run_data_config(run)
    turned = turned_since(run.record, data_cfg, run.record["seed"], base_dir, SPLITS)
    if turned:
        raise ExportError(f"{run.run_dir}: {turned}. Its test metrics would be scored, and predict would feed "
                          "the export, on images its networks never saw so. Fix: run the study again under a new "
                          "name with this searchlab, or export with the searchlab version that ran it")


def _check_unchanged(run: OpenRun, files: dict[str, Any] | None, listing: str | None = None) -> None:
    moved = moved_members(run.record.get("data_files"), files, (run.record.get("data_listing"), listing))
    if moved and multilabel_split_before_the_key(run.record["data"]) and run.record["data"].get("group_column"):
        raise ExportError(f"{run.run_dir}: its multi-label patients (data.group_column) were dealt to splits by a "
                          "searchlab before data.multilabel_split, and this one deals them otherwise, so the test "
                          f"split would hold images that trials trained on ({moved}). Fix: export with the "
                          "searchlab version that ran it, or run the study again under a new name")
    if moved and moved.startswith(REORDERED):
        raise ExportError(f"{run.run_dir}: the splits of data.path are not those the trials ran on: {moved}, so the "
                          "test split would hold images that trials trained on. Fix: restore the CSV's row order")
    if moved:
        raise ExportError(f"{run.run_dir}: data.path holds other files than when the trials ran ({moved}). "
                          f"{why_moved_files_count(files, resuming=False)}. Fix: restore the files as they were, "
                          "or run a new study (a new name) on the changed data set")


def data_replaced_since_search(run: OpenRun) -> str | None:
    """Splits whose files were replaced in place since the search (the splits did not move: export goes on,
    and says so), e.g. a broken test image replaced by a good one; the files named when both runs listed them."""
    data_cfg, base_dir = run_data_config(run)
    files, listing = _fingerprint_now(run, data_cfg, base_dir)
    return (replaced_contents(run.record.get("data_files"), files, listings=(run.record.get("data_listing"), listing))
            or medmnist_change_said(run.record.get("data_file"), medmnist_file(data_cfg, base_dir),
                                    run.record.get("data_stat"), medmnist_stat(medmnist_path(data_cfg, base_dir))))
