"""`searchlab trials --format json` carries list-valued cells (per-label thresholds, class names) as arrays."""
import json
from types import SimpleNamespace

import optuna
import pandas as pd


def _multilabel_study() -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    names = ["mass", "calc", "rare"]
    study.add_trial(optuna.trial.create_trial(value=0.8, user_attrs={
        "metrics": {"auc": 0.8}, "threshold": [0.5059079527854919, 0.43, 0.535], "class_names": names}))
    study.add_trial(optuna.trial.create_trial(value=0.7, user_attrs={"metrics": {"auc": 0.7}, "threshold": 0.5}))
    return study


def test_json_output_holds_thresholds_and_class_names_as_arrays_and_csv_as_json_text(tmp_path):
    from searchlab.trials_table import trial_table, write_table

    table = trial_table(SimpleNamespace(study=_multilabel_study()))
    write_table(table, "json", tmp_path / "t.json")
    rows = json.loads((tmp_path / "t.json").read_text())
    assert rows[0]["threshold"] == [0.5059079527854919, 0.43, 0.535]   # exactly, not a string to parse again
    assert rows[0]["class_names"] == ["mass", "calc", "rare"]
    assert rows[1]["threshold"] == 0.5 and rows[1]["class_names"] is None
    write_table(table, "csv", tmp_path / "t.csv")   # a CSV cell holds one value: the list as JSON text, as before
    cells = pd.read_csv(tmp_path / "t.csv")
    assert json.loads(cells["class_names"][0]) == ["mass", "calc", "rare"]
    assert json.loads(cells["threshold"][0]) == [0.5059079527854919, 0.43, 0.535]
