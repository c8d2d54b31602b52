"""Multi-class data predicts the most probable class: the threshold rule the shipped imbalance.yaml searches was
still sampled (trials differing only in it trained the same network), and an ensemble or TTA export recorded a
threshold rule it never applied. Each class's test metrics get intervals too."""
from __future__ import annotations

import json

import optuna
import pandas as pd

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.export.exporter import export_run
from test_data import _fresh_cache, class_folder  # noqa: F401  (_fresh_cache: autouse fixture)

STUDY = """
name: mc
task: classify
data: {{source: folder, path: '{folder}', image_size: 8, val_fraction: 0.25, test_fraction: 0.25}}
space:
  model: {{kind: cnn, depth: 1, width: 4, convs_per_stage: 1}}
  train: {{batch_size: 64}}
  imbalance: {{threshold: {{choice: [fixed, youden, f1]}}, loss: {{choice: [ce, focal]}}}}
strategy: random
pruner: none
budget: {{n_trials: 3, epochs: 1}}
seed: 0
"""


def test_a_multiclass_study_neither_samples_nor_exports_a_threshold_rule(write_study, tmp_path, capsys):
    folder = class_folder(tmp_path / "imgs", {"a": 12, "b": 12, "c": 12})
    result = run_study(load_study(write_study(STUDY.format(folder=folder))), progress=False)
    trials = result.study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 3
    assert all("imbalance.loss" in t.params and "imbalance.threshold" not in t.params for t in trials)
    assert not any("threshold" in t.user_attrs for t in trials)   # none chosen, none recorded
    assert "space.imbalance.threshold has no effect on multi-class data" in capsys.readouterr().err
    from searchlab.engine.rundir import open_run
    from searchlab.trials_table import trial_table

    table = trial_table(open_run(tmp_path / "run"))
    assert "threshold" not in table.columns   # the most probable class: none
    assert json.loads(table["class_names"][0]) == ["a", "b", "c"]   # what recall_class_1 is of, in the row itself
    from searchlab.report.build import write_report

    page = write_report(tmp_path / "run", tmp_path / "report.html").read_text()
    assert "metrics.recall_class_1 (b)" in page
    assert "Confusion matrix on validation (the most probable class)" in page and "trial&#x27;s threshold" not in page
    config = export_run(tmp_path / "run", tmp_path / "best", top_k=2, tta="flip", bootstrap=50)
    assert config["threshold_choice"] == {"rule": "none: the most probable class is predicted"}
    written = json.loads((tmp_path / "best" / "config.json").read_text())
    assert written["threshold_choice"]["rule"].startswith("none") and written["threshold"] is None
    assert all(member["threshold"] is None for member in written["trials"])
    one = export_run(tmp_path / "run", tmp_path / "one", top_k=1, bootstrap=20)   # a single trial's export too
    assert one["threshold"] is None and one["threshold_choice"]["rule"].startswith("none")
    from searchlab.cli import main

    assert main(["predict", str(tmp_path / "one"), str(folder / "c"), "--out", str(tmp_path / "p.csv")]) == 0
    assert set(pd.read_csv(tmp_path / "p.csv")["predicted"]) <= {"a", "b", "c"}
    # per class: a class's recall is a proportion of its test images, with its exact interval
    ci, methods, table = (config["test_metrics_ci95"], config["test_metrics_ci95_method"],
                          config["test_metrics_ci95_per_class"])
    assert set(table) == {"a", "b", "c"} and set(table["a"]) == {"f1", "auc", "recall"}
    assert table["b"]["recall"] == ci["recall_class_1"] and methods["recall_class_1"].startswith("Clopper-Pearson")
    low, high = ci["recall_class_1"]
    assert low <= config["test_metrics"]["recall_class_1"] <= high


def test_binary_data_still_samples_the_threshold_rule(write_study, tmp_path):
    folder = class_folder(tmp_path / "imgs", {"a": 12, "b": 12})
    result = run_study(load_study(write_study(STUDY.format(folder=folder))), progress=False)
    assert all("imbalance.threshold" in t.params for t in result.study.trials)
