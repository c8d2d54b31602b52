"""What `run` prints at its end (summary.py), on in-memory studies whose best trials are known."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import optuna

from searchlab.summary import print_run_summary


def _summary(directions: list[str], values: list[list[float]], capsys) -> str:
    ostudy = optuna.create_study(directions=directions)
    for v in values:
        ostudy.add_trial(optuna.trial.create_trial(values=v, params={}, distributions={}))
    study = SimpleNamespace(config=SimpleNamespace(name="s", budget=SimpleNamespace(n_trials=len(values))),
                            run_dir=Path("runs/s"), storage_url="sqlite:///runs/s/study.db")
    result = SimpleNamespace(study=ostudy, seconds=1.0, interrupted=False, trials_before=0)
    print_run_summary(study, result, exported=None)
    return capsys.readouterr().out


def test_more_best_trials_than_shown_are_counted_and_a_front_is_exported_by_trial_number(capsys):
    out = _summary(["maximize"], [[0.1 * i] for i in range(5)], capsys)
    assert "(the best 3 of 5 completed shown; all: searchlab status runs/s --top 5)" in out
    assert "export:    searchlab export runs/s --out runs/s/best\n" in out
    front = [[0.9, 4.0], [0.8, 3.0], [0.7, 2.0], [0.6, 1.0]]   # every one a trade-off: all four on the front
    out = _summary(["maximize", "minimize"], front, capsys)
    assert "(the best 3 of 4 of the Pareto front shown; all: searchlab status runs/s --top 4)" in out
    assert "export:    searchlab export runs/s --trial N --out runs/s/best   (N: a trial of the Pareto front, " \
           "e.g. " in out


def test_a_trial_shows_its_chosen_thresholds_and_each_labels_auc_by_name():
    from searchlab.summary import describe_trial

    metrics = {"auc": 0.8, "hamming_loss": 0.12, "auc_class_0": 0.91, "auc_class_1": 0.69}
    trial = optuna.trial.create_trial(value=0.8, params={}, distributions={}, user_attrs={
        "metrics": metrics, "threshold": [0.31, 0.5], "class_names": ["effusion", "mass"]})
    text = describe_trial(None, trial)
    assert "metrics: auc=0.8, hamming_loss=0.12, threshold=0.31/0.5\n" \
           "    AUC per class: effusion 0.91, mass 0.69" in text
    plain = optuna.trial.create_trial(value=0.8, params={}, distributions={},
                                      user_attrs={"metrics": {"auc": 0.8}, "threshold": 0.5})
    assert describe_trial(None, plain).endswith("metrics: auc=0.8")
