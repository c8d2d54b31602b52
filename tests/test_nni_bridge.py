"""NNI bridge (searchlab[nni]): an NNI model space searched by searchlab strategies and exported like any other."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import optuna
import pytest

pytest.importorskip("nni")

from searchlab.config.load import load_study  # noqa: E402
from searchlab.engine.run import run_study  # noqa: E402
from searchlab.errors import ConfigError  # noqa: E402
from searchlab.export.exporter import export_run  # noqa: E402
from searchlab.space import searchable_params  # noqa: E402
from torch_only import predict_without_searchlab  # noqa: E402

TESTS = Path(__file__).resolve().parent
STUDY = """
name: nni
task: classify
space:
  model: {nni: "nni_spaces:TinySpace", init: {base: 4}}
  train: {batch_size: 128}
strategy: STRATEGY
pruner: none
budget: {n_trials: 4, epochs: 1}
seed: 3
"""


def test_the_spaces_mutables_become_searchlab_parameters(write_study):
    study = load_study(write_study(STUDY.replace("STRATEGY", "random")))
    params = {p.name: p for p, _ in searchable_params(study.space)}
    assert params["model.choices.width"].choices == (4, 8)
    assert params["model.choices.mix"].choices == (0, 1, 2)
    rate = params["model.choices.unused_rate"]
    assert (rate.low, rate.high, rate.log) == (0.0, 0.5, False)


def test_evolution_searches_an_nni_space_and_the_winner_exports(write_study, tmp_path, breastmnist_root):
    study = load_study(write_study(STUDY.replace("STRATEGY", "{name: evolution, args: {population_size: 2, "
                                                             "sample_size: 2}}")))
    run_study(study, progress=False)
    trials = optuna.load_study(study_name="nni", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4
    for trial in trials:
        picked = trial.params
        assert trial.user_attrs["architecture"] == (f"TinySpace(mix={picked['model.choices.mix']}, unused_rate="
                                                   f"{picked['model.choices.unused_rate']:.3g}, "
                                                   f"width={picked['model.choices.width']})")
    widths = {t.params["model.choices.width"] for t in trials}
    assert widths <= {4, 8}
    config = export_run(tmp_path / "run", tmp_path / "best")
    assert config["model"]["architecture"] == "nni"
    source = (tmp_path / "best" / "model.py").read_text()
    assert "_nni_allowed_spaces = {'nni_spaces:TinySpace'}" in source
    recorded = json.loads((tmp_path / "best" / "test_predictions.json").read_text())
    again = predict_without_searchlab(tmp_path / "best", breastmnist_root / "breastmnist.npz", path=(TESTS,))
    assert np.array_equal(again, np.array(recorded["probabilities"]))


def test_model_py_imports_only_the_spaces_written_into_it(write_study, tmp_path):
    import importlib.util

    run_study(load_study(write_study(STUDY.replace("STRATEGY", "random").replace("n_trials: 4", "n_trials: 1"))),
              progress=False)
    export_run(tmp_path / "run", tmp_path / "best")
    config_path = tmp_path / "best" / "config.json"
    config = json.loads(config_path.read_text())
    config["model"]["args"]["space"] = "os:system"
    config_path.write_text(json.dumps(config))
    spec = importlib.util.spec_from_file_location("exported_model", tmp_path / "best" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(ValueError, match="only the NNI spaces \\['nni_spaces:TinySpace'\\] may be rebuilt here, "
                                         "not 'os:system'"):
        module.load(tmp_path / "best")


def test_a_config_or_a_stored_trial_naming_another_module_is_not_imported(write_study, tmp_path):
    """A config.json (a MedFID feature network) or a trial's stored model spec (export, report) naming
    "os:system" imported it and called it with the spec's init."""
    from searchlab.errors import ExportError
    from searchlab.models import standalone
    from searchlab.report.build import write_report

    run_study(load_study(write_study(STUDY.replace("STRATEGY", "random").replace("n_trials: 4", "n_trials: 1"))),
              progress=False)
    export_run(tmp_path / "run", tmp_path / "best")
    touched = tmp_path / "touched"
    evil = {"space": "os:system", "init": {"command": f"touch {touched}"}, "choices": {}}
    config_path = tmp_path / "best" / "config.json"
    config = json.loads(config_path.read_text())
    config["model"]["args"] = evil
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="not 'os:system': a module is imported only when a study file names it"):
        standalone.load(tmp_path / "best")
    with sqlite3.connect(tmp_path / "run" / "study.db") as db:   # Optuna will not edit a finished trial
        db.execute("UPDATE trial_user_attributes SET value_json = ? WHERE key = 'model_spec'",
                   (json.dumps({**config["model"], "args": evil}),))
    with pytest.raises(ExportError, match="names the NNI space 'os:system', which the study's space does not "
                                          "\\(nni_spaces:TinySpace\\)"):
        export_run(tmp_path / "run", tmp_path / "again")
    page = write_report(tmp_path / "run", tmp_path / "report.html").read_text()
    assert "names the NNI space &#x27;os:system&#x27;" in page or "names the NNI space 'os:system'" in page
    assert not touched.exists()


@pytest.mark.parametrize("target, message", [
    ("nni_spaces:NotASpace", "is not a subclass of nni.nas.nn.pytorch.ModelSpace"),
    ("nni_spaces:NormalSpace", "mutable 'scale' .* has no searchlab equivalent"),
    ("nni_spaces:DottedSpace", "label 'block.op' contains '.'"),
    ("nni_spaces:Missing", "has no attribute 'Missing'"),
])
def test_a_space_searchlab_cannot_search_is_refused_with_the_reason(write_study, target, message):
    text = STUDY.replace("STRATEGY", "random").replace('"nni_spaces:TinySpace", init: {base: 4}', f'"{target}"')
    with pytest.raises(ConfigError, match=message) as info:
        load_study(write_study(text))
    assert "space.model.nni" in str(info.value)
