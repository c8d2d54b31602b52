"""An NNI space is imported only when the user names it: a study database edited to name "subprocess:Popen" as
both its space and a trial's (the auditor's attack) made `searchlab export` and `searchlab report` run a command.
Now export refuses, naming the space and the command with --trust-space, and report leaves the model out."""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

pytest.importorskip("nni")

from searchlab.cli import main  # noqa: E402
from searchlab.config.load import load_study  # noqa: E402
from searchlab.engine.run import run_study  # noqa: E402
from searchlab.models import nni_model  # noqa: E402
from test_nni_bridge import STUDY  # noqa: E402

SPACE = "nni_spaces:TinySpace"


@pytest.fixture(scope="module")
def nni_run(tmp_path_factory, shared_data_dir):
    """One finished 1-trial NNI run, copied by each test that edits it."""
    folder = tmp_path_factory.mktemp("nni_run")
    text = STUDY.replace("STRATEGY", "random").replace("n_trials: 4", "n_trials: 1") + "export: {bootstrap: 100}\n"
    study_file = folder / "study.yaml"
    study_file.write_text(text + f"\ndata: {{source: medmnist, name: breastmnist, root: '{shared_data_dir}', "
                                 f"download: false}}\nrun_dir: '{folder / 'run'}'\n")
    with pytest.MonkeyPatch.context() as patch:   # the space allowed while running is no test's but this one's
        patch.setattr(nni_model, "_nni_allowed_spaces", set())
        study = load_study(study_file)
        result = run_study(study, progress=False)
    return study, result


@pytest.fixture()
def fresh_process(monkeypatch):
    """As in a new `searchlab export` process: no study file loaded, so no NNI space allowed yet."""
    monkeypatch.setattr(nni_model, "_nni_allowed_spaces", set())


def _copy(nni_run, tmp_path: Path) -> Path:
    run = tmp_path / "copy"
    shutil.copytree(nni_run[0].run_dir, run)
    return run


def _poison(run: Path, marker: Path) -> None:
    """The auditor's edit: the study's recorded space and trial 0's model both name subprocess:Popen."""
    evil = "subprocess:Popen"
    with sqlite3.connect(run / "study.db") as db:   # Optuna will not edit a finished trial
        (record,) = db.execute("SELECT value_json FROM study_user_attributes WHERE key = 'searchlab'").fetchone()
        record = json.loads(record)
        record["search"]["space_fixed"]["model.space"] = evil
        db.execute("UPDATE study_user_attributes SET value_json = ? WHERE key = 'searchlab'", (json.dumps(record),))
        (spec,) = db.execute("SELECT value_json FROM trial_user_attributes WHERE key = 'model_spec'").fetchone()
        spec = json.loads(spec)
        spec["args"] = {"space": evil, "init": {"args": ["touch", str(marker)]}, "choices": {}}
        db.execute("UPDATE trial_user_attributes SET value_json = ? WHERE key = 'model_spec'", (json.dumps(spec),))


def test_a_database_naming_popen_runs_nothing_on_export_or_report(nni_run, tmp_path, capsys, fresh_process):
    run, marker = _copy(nni_run, tmp_path), tmp_path / "PWNED"
    _poison(run, marker)
    assert main(["export", str(run), "--trial", "0", "--out", str(tmp_path / "x")]) == 2
    said = capsys.readouterr().err
    assert not marker.exists() and not (tmp_path / "x").exists()
    assert f"the run's database (the study in {run}) asks to build subprocess:Popen (trial 0)" in said
    assert "searchlab runs no code that a database names unless you name it too" in said
    assert (f"Fix: if you trust that code, run: searchlab export {run} --trial 0 --out {tmp_path / 'x'} "
            "--trust-space subprocess:Popen") in said

    assert main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 0
    said = capsys.readouterr().err
    assert not marker.exists()
    page = (tmp_path / "r.html").read_text()
    assert "not drawn: the run&#x27;s database" in page and "asks to build subprocess:Popen (trial 0)" in page
    assert "--trust-space subprocess:Popen" in page and "ROC on validation" not in page
    assert "warning: the report leaves out the ROC curve and confusion matrix of its best trial" in said
    assert f"searchlab report {run} --out {tmp_path / 'r.html'} --trust-space subprocess:Popen" in said


def test_a_space_the_user_names_is_built_and_only_then(nni_run, tmp_path, capsys, fresh_process):
    run, out = nni_run[0].run_dir, tmp_path / "best"
    assert main(["export", str(run), "--out", str(out), "--bootstrap", "100"]) == 2
    assert f"asks to build {SPACE} (trial 0)" in capsys.readouterr().err and not out.exists()
    assert SPACE not in nni_model._nni_allowed_spaces   # refused before anything was allowed

    assert main(["export", str(run), "--out", str(out), "--bootstrap", "100", "--trust-space", SPACE]) == 0
    assert json.loads((out / "config.json").read_text())["model"]["args"]["space"] == SPACE
    assert f"_nni_allowed_spaces = {{{SPACE!r}}}" in (out / "model.py").read_text()

    assert main(["report", str(run), "--out", str(tmp_path / "r.html"), "--trust-space", SPACE]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "ROC on validation" in page and "--trust-space" not in page


def test_a_trust_space_that_is_no_module_class_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["export", "runs/x", "--out", "x", "--trust-space", "subprocess"])
    assert "'subprocess' is not of the form module:Class" in capsys.readouterr().err


def test_the_after_run_export_trusts_the_spaces_its_study_file_names(nni_run, tmp_path, fresh_process):
    from searchlab.after_run_export import export_best, spaces_of_the_study_file

    study, result = nni_run
    assert spaces_of_the_study_file(study) == {SPACE}
    out, headline, failed, _ = export_best(study, result)
    assert not failed and (out / "model.py").is_file() and headline
