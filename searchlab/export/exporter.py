"""`searchlab export RUN [--trial N] --out DIR`: spec + weights + model.py, never a pickle.

The test split is read here and only here: scored once per export, with 95% bootstrap confidence
intervals, and never written back into the study (so no search or selection can see it).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState
from pydantic import TypeAdapter
from safetensors.torch import load_file, save_file

from searchlab.config.schema import DataConfig
from searchlab.data import load_dataset
from searchlab.engine.rundir import OpenRun, open_run
from searchlab.errors import ExportError
from searchlab.metrics import bootstrap_ci, compute_metrics, confusion
from searchlab.models import standalone

FORMAT = "searchlab-export/1"
DEFAULT_THRESHOLD = 0.5   # trials that stored none (the argmax decides for multi-class anyway)


def export_run(target: str | Path, out: str | Path, trial_number: int | None = None,
               bootstrap: int = 2000) -> dict[str, Any]:
    run = open_run(target)
    trial = pick_trial(run.study, trial_number)
    state = _checkpoint(run, trial)
    spec = trial.user_attrs["model_spec"]
    net = standalone.build_model(spec)
    net.load_state_dict(state)
    config = _base_config(run, trial)
    test = _score_test(run, net, config, bootstrap)
    config.update(test["summary"])
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out / "weights.safetensors"))
    shutil.copyfile(standalone.__file__, out / "model.py")
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "test_predictions.json").write_text(json.dumps(test["predictions"]) + "\n")
    return config


def pick_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise ExportError(f"study '{study.study_name}' has no completed trial to export yet")
    if number is None:
        if len(study.directions) > 1:
            front = ", ".join(str(t.number) for t in study.best_trials)
            raise ExportError(f"this study has {len(study.directions)} objectives, so there is no single best "
                              f"trial. Fix: pick one of the Pareto front with --trial N (front: {front})")
        return study.best_trial
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in by_number:
        raise ExportError(f"trial {number} does not exist (the study has trials 0..{len(by_number) - 1})")
    if by_number[number].state != TrialState.COMPLETE:
        raise ExportError(f"trial {number} is {by_number[number].state.name}, only COMPLETE trials can be exported")
    return by_number[number]


def _checkpoint(run: OpenRun, trial: FrozenTrial) -> dict[str, torch.Tensor]:
    artifact_id = trial.user_attrs.get("checkpoint")
    if artifact_id is None or "model_spec" not in trial.user_attrs:
        raise ExportError(f"trial {trial.number} stored no model (its task does not train one)")
    store = optuna.artifacts.FileSystemArtifactStore(str(run.artifacts))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.safetensors"
        try:
            optuna.artifacts.download_artifact(artifact_store=store, file_path=str(path), artifact_id=artifact_id)
        except Exception as exc:
            raise ExportError(f"the checkpoint of trial {trial.number} ({artifact_id}) cannot be read from "
                              f"{run.artifacts}: {exc}") from None
        return load_file(str(path))


def _base_config(run: OpenRun, trial: FrozenTrial) -> dict[str, Any]:
    attrs = trial.user_attrs
    return {
        "format": FORMAT,
        "model": attrs["model_spec"],
        "preprocessing": attrs["preprocessing"],
        "task": attrs["task_kind"],
        "class_names": attrs["class_names"],
        "threshold": attrs.get("threshold", DEFAULT_THRESHOLD),   # chosen on validation data by the trial
        "trial": {"study": run.study.study_name, "number": trial.number, "params": trial.params,
                  "config": attrs.get("config")},
        "validation_metrics": attrs.get("metrics", {}),
    }


def _score_test(run: OpenRun, net: torch.nn.Module, config: dict[str, Any], bootstrap: int) -> dict[str, Any]:
    record = run.record
    data_cfg = TypeAdapter(DataConfig).validate_python(record["data"])
    data = load_dataset(data_cfg, splits=("test",), seed=record["seed"], base_dir=Path(record["base_dir"]))
    test = data.splits["test"]
    probs = standalone.predict_proba(net, config, test.images).numpy()
    labels = test.labels.numpy()
    n_classes, kind, threshold = len(config["class_names"]), config["task"], config["threshold"]
    metrics = compute_metrics(labels, probs, kind, n_classes, threshold=threshold)
    names = [m for m in metrics if not m.startswith("f1_class_")]
    ci = bootstrap_ci(labels, probs, kind, n_classes, names, n_resamples=bootstrap, seed=record["seed"],
                      threshold=threshold)
    summary = {"test_metrics": metrics, "test_metrics_ci95": {k: list(v) for k, v in ci.items()},
               "test_confusion": confusion(labels, probs, kind, n_classes, threshold=threshold),
               "test_size": len(test), "input": {"channels": data.channels, "height": data.image_size[0],
                                                  "width": data.image_size[1], "dtype": "uint8"}}
    return {"summary": summary, "predictions": {"probabilities": probs.tolist(), "labels": labels.tolist()}}
