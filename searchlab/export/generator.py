"""Export a generate study's trial: the EMA generator as model.py + weights.safetensors + config.json.

Nothing is scored at export: the test split plays no part in judging generators (MedFID, KID, precision and
recall were measured against the train split during the search and are carried in config.json).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial

from searchlab.engine.rundir import OpenRun
from searchlab.errors import ExportError
from searchlab.export.provenance import file_digest, made_with
from searchlab.export.publish import json_text
from searchlab.models import generator_source
from searchlab.models.gan_sampling import load_generator
from searchlab.weights_file import save_weights

FORMAT = "searchlab-generator/1"


def objective_values(run: OpenRun, trial: FrozenTrial) -> dict[str, float]:
    """The trial's values by objective name (a multi-objective trial has several; `trial.value` raises)."""
    return {metric: value for (metric, _), value in zip(run.record["objectives"], trial.values or [])}


def export_generator(run: OpenRun, trial: FrozenTrial, state: dict[str, Any], out: Path, top_k: int,
                     tta: str) -> dict[str, Any]:
    if top_k > 1 or tta != "none":
        raise ExportError("a generator exports alone: --top-k and --tta are for classifiers. Fix: drop them")
    config = {"format": FORMAT, "study": run.study.study_name, "trial": {"number": trial.number,
              "params": trial.params}, "generator": trial.user_attrs["generator"],
              "metrics": objective_values(run, trial) | trial.user_attrs.get("metrics", {})}
    if "cut_short" in trial.user_attrs:   # a timeout stopped its training: its scores are of a shorter GAN
        config["cut_short"] = trial.user_attrs["cut_short"]
    out.mkdir(parents=True, exist_ok=True)
    save_weights(state, out / "weights.safetensors")
    config.update(weights_sha256=file_digest(out / "weights.safetensors"), made_with=made_with())
    (out / "model.py").write_text(generator_source())
    (out / "config.json").write_text(json_text(config, indent=2))
    load_generator(out)    # the written export must rebuild (shapes, spec) before anyone relies on it
    return config
