"""Augmentation policies, imbalance handling and thresholds inside real classify trials, end to end."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError
from searchlab.export.exporter import export_run
from searchlab.models import standalone

OPTIONS = """
name: options
task: classify
space:
  model: {kind: cnn, depth: 1, width: 8, convs_per_stage: 1}
  train: {batch_size: 64}
  augment:
    policy: {choice: [randaugment, searched]}
    sub_policies:
      a: {op: {choice: [rotate, contrast]}, prob: {float: [0.2, 0.8]}, magnitude: {int: [1, 9]}}
    mix: cutmix
  imbalance: {loss: focal, sampler: balanced, threshold: youden}
strategy: random
pruner: none
budget: {n_trials: 2, epochs: 2}
"""


def test_augmentation_and_imbalance_options_run_and_carry_the_threshold(write_study, tmp_path):
    study = run_study(load_study(write_study(OPTIONS)), progress=False).study
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert {"augment.policy", "augment.sub_policies.a.op", "augment.sub_policies.a.magnitude"} <= set(trials[0].params)
    threshold = study.best_trial.user_attrs["threshold"]
    assert isinstance(threshold, float) and 0.0 <= threshold <= 1.0
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=100)
    assert config["threshold"] == threshold
    net, loaded = standalone.load(tmp_path / "best")
    probs = np.array(json.loads((tmp_path / "best" / "test_predictions.json").read_text())["probabilities"])
    images = torch.from_numpy(np.load(Path(load_study(tmp_path / "study.yaml").config.data.root) / "breastmnist.npz")
                              ["test_images"][:, None].copy())
    labels = standalone.predict(net, loaded, images).numpy()
    assert np.array_equal(labels, (probs >= threshold).astype(int))
    tn, fp, fn, tp = np.array(config["test_confusion"]).ravel()
    assert tp + fn > 0 and config["test_metrics"]["sensitivity"] == pytest.approx(tp / (tp + fn))


def test_bad_augmentation_magnitude_is_named(write_study):
    text = OPTIONS.replace("magnitude: {int: [1, 9]}", "magnitude: {int: [1, 12]}")
    with pytest.raises(ConfigError) as info:
        load_study(write_study(text))
    assert "sub_policies.a.magnitude" in str(info.value) and "less than or equal to 10" in str(info.value)
    assert "[1, 12]" in str(info.value) and info.value.line == 10


def make_multilabel_csv(root: Path, n: int = 90) -> Path:
    """Images whose two labels are visible: a bright left half (label a), a bright top half (label b)."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        a, b = int(rng.random() < 0.5), int(rng.random() < 0.3)
        img = rng.integers(0, 60, (16, 16)).astype(np.uint8)
        if a:
            img[:, :8] += 150
        if b:
            img[:8, :] += 90
        Image.fromarray(img).save(root / f"img{i}.png")
        rows.append({"path": f"img{i}.png", "a": a, "b": b, "split": "train" if i < 60 else ("val" if i < 75 else "test")})
    path = root / "labels.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "a", "b", "split"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_multilabel_csv_end_to_end_with_per_label_thresholds(write_study, tmp_path):
    csv_path = make_multilabel_csv(tmp_path)
    text = f"""
name: multilabel
data: {{source: csv, path: '{csv_path}', label_columns: [a, b], split_column: split, image_size: 16}}
task: classify
space:
  model: {{kind: cnn, depth: 2, width: 8}}
  optim: {{lr: 0.01}}
  train: {{batch_size: 16}}
  imbalance: {{loss: weighted_ce, threshold: f1}}
objective: auc
strategy: random
pruner: none
budget: {{n_trials: 1, epochs: 4}}
"""
    study = run_study(load_study(write_study(text)), progress=False).study
    trial = study.best_trial
    assert trial.user_attrs["task_kind"] == "multilabel" and trial.user_attrs["class_names"] == ["a", "b"]
    assert len(trial.user_attrs["threshold"]) == 2
    assert 0.0 <= trial.user_attrs["metrics"]["hamming_loss"] <= 1.0
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=100)
    assert config["test_size"] == 15 and "hamming_loss" in config["test_metrics"]
    net, loaded = standalone.load(tmp_path / "best")
    assert standalone.predict(net, loaded, torch.zeros(3, 1, 16, 16, dtype=torch.uint8)).shape == (3, 2)
