"""Augmentation policies, imbalance handling and thresholds inside real classify trials, end to end."""
from __future__ import annotations

import csv
import json
import os
import stat
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


def _rewrite(csv_path: Path, rows: list[dict]) -> None:
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


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


def test_a_label_never_on_in_the_validation_split_stops_the_run_before_any_trial(write_study, tmp_path):
    """AUC is undefined for a label that the validation split never has: every trial would train, then fail."""
    from searchlab.data import clear_cache
    from searchlab.errors import DataError

    csv_path = make_multilabel_csv(tmp_path)
    rows = list(csv.DictReader(csv_path.open()))
    for row in rows:
        row["b"] = "0" if row["split"] == "val" else row["b"]
    _rewrite(csv_path, rows)
    text = f"""
name: multilabel
data: {{source: csv, path: '{csv_path}', label_columns: [a, b], split_column: split, image_size: 16}}
space: {{model: {{kind: cnn, depth: 1, width: {{choice: [4, 8]}}}}}}
objective: auc
budget: {{n_trials: 2, epochs: 1}}
"""
    with pytest.raises(DataError, match=r"objective auc is undefined on the validation split \(15 images\): .*"
                                        r"but here: b \(never on\)\. Fix: "):
        run_study(load_study(write_study(text)), progress=False)
    assert not list((tmp_path / "run").glob("artifacts/*"))
    # its F1 is 0 if the model ever flags it and 0/0 if not: each trial failed as 'nan' after training
    with pytest.raises(DataError, match=r"objective f1_class_1 is undefined on the validation split"):
        run_study(load_study(write_study(text.replace("objective: auc", "objective: f1_class_1"))), progress=False)
    assert not list((tmp_path / "run").glob("artifacts/*"))
    f1_a = text.replace("objective: auc", "objective: f1_class_0").replace("name: multilabel", "name: f1a")
    run_study(load_study(write_study(f1_a), {"run_dir": str(tmp_path / "f1a")}), progress=False)   # a is on in val
    for row in rows:
        row["b"] = "0"
    _rewrite(csv_path, rows)
    clear_cache()
    with pytest.raises(DataError, match=r"column 'b' is 0 in every row: a label that never changes"):
        run_study(load_study(write_study(text)), progress=False)


def test_a_data_set_without_a_test_split_still_exports_and_says_where_to_score_it(write_study, tmp_path, capsys):
    """Medical test sets are often external: the export is the model, its test metrics come later."""
    from searchlab.cli import main

    csv_path = make_multilabel_csv(tmp_path)
    text = csv_path.read_text()
    with_test = tmp_path / "with_test.csv"
    with_test.write_text(text)
    csv_path.write_text(text.replace(",test\n", ",train\n"))       # every test row goes to train
    study = f"""
name: external_test
data: {{source: csv, path: '{csv_path}', label_columns: [a, b], split_column: split, image_size: 16}}
space: {{model: {{kind: cnn, depth: 1, width: 4}}}}
budget: {{n_trials: 1, epochs: 1}}
"""
    assert main(["run", str(write_study(study)), "--no-progress"]) == 0
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "best"), "--bootstrap", "100"]) == 0
    out = capsys.readouterr().out
    assert "exported trial 0 to " in out and "the data set has no test split; score the export on your own" in out
    config = json.loads((tmp_path / "best" / "config.json").read_text())
    assert config["test_metrics"] is None and config["test_size"] == 0 and config["input"]["height"] == 16
    assert config["input"]["files_were"] in ("greyscale", "colour", "mixed")   # unrecorded, predict took grey files for colour's
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == ["config.json", "model.py", "trained_on.json",
                                                                  "weights.safetensors"]
    assert main(["predict", str(tmp_path / "best"), str(tmp_path / "img0.png")]) == 0   # usable as it is
    from test_paths_and_writes import _read_in_a_thread

    os.mkfifo(tmp_path / "pipe")   # --out /dev/null or a pipe: written to, not replaced by a file moved over it
    reader, got = _read_in_a_thread(tmp_path / "pipe")
    assert main(["predict", str(tmp_path / "best"), str(tmp_path / "img0.png"), "--out", str(tmp_path / "pipe")]) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.stat(tmp_path / "pipe").st_mode) and got[0].startswith(b"path,")

    study = write_study(study.replace("external_test", "with_test").replace(str(csv_path), str(with_test)),
                        name="with_test.yaml")
    assert main(["run", str(study), "--no-progress", "--set", f"run_dir={tmp_path / 'run2'}"]) == 0
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    assert main(["export", str(tmp_path / "run2"), "--out", str(tmp_path / "best2"), "--bootstrap", "100"]) == 0
    assert torch.equal(torch.rand(2), expected)   # main() from Python gives back torch's random state it found
    saved = json.loads((tmp_path / "best2" / "test_predictions.json").read_text())
    assert saved["class_names"] == ["a", "b"] and saved["labels_are"].startswith("the true labels")
    assert saved["files"] == [f"img{i}.png" for i in range(75, 90)]   # relative to the CSV's folder
    assert len(saved["probabilities"]) == len(saved["labels"]) == 15


def test_a_per_class_objective_beyond_the_tasks_classes_is_refused_before_any_trial(write_study, tmp_path):
    study = write_study(OPTIONS.replace("name: options", "name: options\nobjective: [auc, f1_class_2]"))
    with pytest.raises(ConfigError) as info:
        run_study(load_study(study), progress=False)
    assert info.value.key == "objective" and "'f1_class_2' names class (label) 2, but the task has 2" in str(info.value)
    assert "classes: 0 = malignant, 1 = normal, benign" in str(info.value)
    assert not list((tmp_path / "run").glob("artifacts/*"))
    by_name = write_study(OPTIONS.replace("name: options", "name: options\nobjective: [auc, f1_class_malignant]"))
    with pytest.raises(ConfigError) as info:
        run_study(load_study(by_name), progress=False)
    assert "Fix: f1_class_0 (per-class metrics are named by the class's index)" in str(info.value)
    shorter = write_study(OPTIONS.replace("name: options", "name: options\nobjective: [auc, f1_malignant]"))
    with pytest.raises(ConfigError) as info:
        run_study(load_study(shorter), progress=False)
    assert "Fix: f1_class_0 (per-class metrics are named by the class's index)" in str(info.value)
    with pytest.raises(ConfigError) as info:   # another tool's name for a metric searchlab has
        load_study(write_study(OPTIONS.replace("name: options", "name: options\nobjective: exact_match")))
    assert "Fix: accuracy (multi-label accuracy is exact match), as searchlab names it" in str(info.value)


def test_a_threshold_on_multi_class_data_is_warned_about(write_study, tmp_path, capsys):
    from test_data import class_folder

    folder = class_folder(tmp_path / "images", {"a": 10, "b": 10, "c": 10})
    text = ("name: three\ntask: classify\nspace:\n  model: {kind: cnn, depth: 1, width: 4}\n"
            "  imbalance: {threshold: {choice: [youden, fixed]}}\n  optim: {lr: {float: [0.001, 0.01]}}\n"
            f"data: {{source: folder, path: '{folder}', image_size: 8}}\nstrategy: random\npruner: none\n"
            "budget: {n_trials: 1, epochs: 1}\n")
    run_study(load_study(write_study(text)), progress=False)
    assert "space.imbalance.threshold has no effect on multi-class data" in capsys.readouterr().err


def test_an_objective_listed_twice_is_refused(write_study):
    with pytest.raises(ConfigError, match=r"objective: lists 'auc' more than once .*Fix: list each metric once"):
        load_study(write_study(OPTIONS.replace("name: options", "name: options\nobjective: [auc, auc]")))


def test_a_per_class_objective_on_classes_named_by_other_numbers_is_warned_of():
    from searchlab.tasks.data_checks import number_named_class_warning

    said = number_named_class_warning("f1_class_1", ["1", "2"])     # a CSV's labels 1 and 2
    assert said.startswith("objective f1_class_1 scores the class at index 1, which is named '2'")
    assert said.endswith("classes: 0 = 1, 1 = 2). Fix: for the class named '1' write f1_class_0")
    as_sorted = sorted(str(i) for i in range(11))                       # "0", "1", "10", "2", ...: as text
    assert "named '9'" in number_named_class_warning("recall_class_10", as_sorted)
    assert "write recall_class_2" in number_named_class_warning("recall_class_10", as_sorted)
    assert number_named_class_warning("f1_class_1", ["0", "1"]) is None          # the index is the name
    assert number_named_class_warning("f1_class_1", ["benign", "malignant"]) is None
    assert number_named_class_warning("auc", ["1", "2"]) is None


def test_a_label_the_split_keeps_in_train_is_refused_with_a_fix_that_can_work(write_study, tmp_path):
    """A label on in 2 images stays in train with val and test drawn (data/label_stratify.py), and the refusal
    said to raise data.val_fraction, which cannot move one."""
    from searchlab.errors import DataError

    csv_path = make_multilabel_csv(tmp_path)
    rows = list(csv.DictReader(csv_path.open()))
    for i, row in enumerate(rows):
        row["b"] = "1" if i in (3, 50) else "0"
        del row["split"]
    _rewrite(csv_path, rows)
    text = f"""
name: kept
data: {{source: csv, path: '{csv_path}', label_columns: [a, b], image_size: 16}}
space: {{model: {{kind: cnn, depth: 1, width: {{choice: [4, 8]}}}}}}
objective: auc
budget: {{n_trials: 2, epochs: 1}}
"""
    with pytest.raises(DataError) as exc:
        run_study(load_study(write_study(text)), progress=False)
    said = str(exc.value)
    assert "'b' is on in no more images than there are held-out splits (2), so the split keeps it in train" in said
    assert "data.test_fraction: 0" in said and "(data.val_fraction" not in said
