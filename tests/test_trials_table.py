"""`searchlab trials RUN --format csv|parquet|json`: the trial table, checked against the Optuna study."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from test_run import callable_study


REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str) -> subprocess.CompletedProcess:
    """The CLI from the checkout (where searchlab imports whether or not it is installed)."""
    return subprocess.run([sys.executable, "-m", "searchlab.cli", *args], capture_output=True, text=True, cwd=REPO)


@pytest.fixture()
def finished_run(write_study, tmp_path):
    """Four trials, those with x > 0 failing with their reason."""
    run_study(load_study(callable_study(write_study, fn="fails_when_positive", n=4)), progress=False)
    return tmp_path / "run"


def test_csv_json_and_parquet_hold_every_trial_as_optuna_has_it(finished_run, tmp_path):
    study = optuna.load_study(study_name="fake", storage=f"sqlite:///{finished_run / 'study.db'}")
    expected = study.get_trials()
    csv = _cli("trials", str(finished_run))
    assert csv.returncode == 0, csv.stderr
    table = pd.read_csv(io.StringIO(csv.stdout))
    assert list(table["number"]) == [t.number for t in expected]
    assert list(table["state"]) == [t.state.name for t in expected]
    assert table["params.x"].tolist() == pytest.approx([t.params["x"] for t in expected])
    failed = table[table["state"] == "FAIL"]
    assert len(failed) and failed["error"].str.contains("is positive").all()
    done = table[table["state"] == "COMPLETE"]
    assert done["value"].tolist() == pytest.approx([t.value for t in expected if t.state.name == "COMPLETE"])
    assert (done["duration_s"] >= 0).all()

    as_json = _cli("trials", str(finished_run), "--format", "json")
    records = json.loads(as_json.stdout)
    assert [r["number"] for r in records] == [t.number for t in expected]
    assert [r["params.x"] for r in records] == [t.params["x"] for t in expected]   # exactly: no rounding
    assert [r["value"] for r in records] == [t.value for t in expected]

    parquet = tmp_path / "trials.parquet"
    assert _cli("trials", str(finished_run), "--format", "parquet", "--out", str(parquet)).returncode == 0
    assert pd.read_parquet(parquet)["params.x"].tolist() == pytest.approx(table["params.x"].tolist())


def test_the_out_file_extension_chooses_the_format_and_a_mismatch_is_refused(finished_run, tmp_path):
    assert _cli("trials", str(finished_run), "--out", str(tmp_path / "t.parquet")).returncode == 0
    assert len(pd.read_parquet(tmp_path / "t.parquet")) == 4
    assert _cli("trials", str(finished_run), "--out", str(tmp_path / "t.JSON")).returncode == 0
    assert len(json.loads((tmp_path / "t.JSON").read_text())) == 4
    assert _cli("trials", str(finished_run), "--out", str(tmp_path / "t.txt")).returncode == 0
    assert len(pd.read_csv(tmp_path / "t.txt")) == 4                     # another extension: csv, the default
    out = _cli("trials", str(finished_run), "--format", "csv", "--out", str(tmp_path / "u.parquet"))
    assert out.returncode == 2 and "is named for parquet but --format is csv" in out.stderr
    assert not (tmp_path / "u.parquet").exists()
    out = _cli("trials", str(finished_run), "--out", str(tmp_path / "t.xlsx"))   # CSV there: Excel refuses it
    assert out.returncode == 2 and "searchlab writes csv, parquet, json, not .xlsx. Fix: --out with .csv" in out.stderr
    assert not (tmp_path / "t.xlsx").exists()


def test_parquet_needs_a_file_and_a_folder_without_a_run_is_named(finished_run, tmp_path):
    out = _cli("trials", str(finished_run), "--format", "parquet")
    assert out.returncode == 2 and "parquet is binary: give --out FILE.parquet" in out.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    out = _cli("trials", str(empty))
    assert out.returncode == 2 and "holds no searchlab run" in out.stderr


def test_a_study_without_trials_gives_the_tables_header_not_an_empty_line(write_study, tmp_path):
    from searchlab.engine.run import create_or_load
    from searchlab.engine.rundir import write_manifest

    study = load_study(callable_study(write_study, n=2))
    study.run_dir.mkdir(parents=True)
    create_or_load(study)
    write_manifest(study)
    out = _cli("trials", str(study.run_dir))
    assert out.returncode == 0 and out.stdout == "number,state,value,duration_s,datetime_start,datetime_complete\n"


def test_out_creates_its_folder_and_an_unwritable_path_is_one_line(finished_run, tmp_path):
    nested = tmp_path / "tables" / "of" / "trials.json"
    assert _cli("trials", str(finished_run), "--format", "json", "--out", str(nested)).returncode == 0
    assert len(json.loads(nested.read_text())) == 4
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    out = _cli("trials", str(finished_run), "--out", str(blocker / "trials.csv"))
    assert out.returncode == 2 and "Traceback" not in out.stderr   # refused as bad input, as every --out refusal
    assert out.stderr.startswith(f"error: {blocker}") and "Fix:" in out.stderr


def test_a_reader_that_stops_early_gets_no_traceback(finished_run):
    """`searchlab trials RUN | head -1`: the pipe closes before the table is written."""
    proc = subprocess.Popen([sys.executable, "-m", "searchlab.cli", "trials", str(finished_run)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()   # long before the child has imported enough to write
    stderr = proc.stderr.read()
    assert proc.wait() == 1 and stderr == ""


def test_a_parameter_only_some_trials_draw_sits_with_the_others_and_stays_whole():
    """transfer: cutoff draws model.cutoff, other trials do not: its column used to come after the
    timestamps, with 2 written as 2.0 (a missing value made it float)."""
    from types import SimpleNamespace

    from optuna.distributions import CategoricalDistribution, IntDistribution
    from optuna.trial import create_trial

    from searchlab.trials_table import trial_table

    study = optuna.create_study(direction="maximize")
    transfer = CategoricalDistribution(["scratch", "cutoff"])
    study.add_trial(create_trial(params={"model.transfer": "scratch"}, distributions={"model.transfer": transfer},
                                 value=0.8, user_attrs={"metrics": {"auc": 0.8}}))
    study.add_trial(create_trial(params={"model.transfer": "cutoff", "model.cutoff": 2},
                                 distributions={"model.transfer": transfer, "model.cutoff": IntDistribution(1, 4)},
                                 value=0.9, user_attrs={"metrics": {"auc": 0.9}}))
    table = trial_table(SimpleNamespace(study=study))
    assert list(table.columns)[:6] == ["number", "state", "value", "params.model.transfer", "params.model.cutoff",
                                       "metrics.auc"]
    assert str(table["params.model.cutoff"].dtype) == "Int64"
    assert table.to_csv(index=False).splitlines()[2].startswith("1,COMPLETE,0.9,cutoff,2,0.9,")
    study.add_trial(create_trial(params={"model.transfer": "scratch"}, distributions={"model.transfer": transfer},
                                 value=0.8, user_attrs={"retry_of": 0}))
    table = trial_table(SimpleNamespace(study=study))   # blank for the trials that are no retry, whole for this one
    assert str(table["retry_of"].dtype) == "Int64" and table.to_csv(index=False).splitlines()[3].endswith(",0")


def test_a_row_says_why_its_trial_was_pruned_cut_short_or_run_again():
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from searchlab.trials_table import _row

    attrs = {"pruned": "pruned by the pruner after 2 epoch(s), at auc=0.7000", "cut_short": "stopped by "
             "budget.timeout after 1 of 3 epochs", "retry_of": 4, "curve": [{"epoch": 0}], "threshold": [0.3, 0.5],
             "device": "cpu"}
    trial = create_trial(state=TrialState.PRUNED, value=0.7, params={"x": 1.0},
                         distributions={"x": FloatDistribution(0, 2)}, user_attrs=attrs)
    row = _row(trial, ["auc"], 1)
    said = ("pruned", "cut_short", "retry_of", "device")   # device: where it trained, recorded but not shown before
    assert {k: row[k] for k in said} == {k: attrs[k] for k in said}
    assert "curve" not in row   # long attrs stay in the study
    assert row["threshold"] == "[0.3, 0.5]"   # what its sensitivity, f1... were scored at, per label


def test_stepped_floats_are_given_and_listed_as_written(write_study, tmp_path):
    """Optuna's low + k * step made step 0.1 give 0.30000000000000004 to the task and to the table."""
    from searchlab.space.params import FloatParam

    stepped = FloatParam("x", 0.1, 0.9, step=0.1)
    assert stepped.suggest(optuna.trial.FixedTrial({"x": 0.1 + 2 * 0.1})) == 0.3   # 0.30000000000000004
    assert FloatParam("x", 0.1, 0.9).suggest(optuna.trial.FixedTrial({"x": 0.1 + 2 * 0.1})) == 0.1 + 2 * 0.1
    text = callable_study(write_study, n=12).read_text().replace("x: {float: [-3, 3]}",
                                                                 "x: {float: [0.1, 0.9], step: 0.1}")
    run_study(load_study(write_study(text)), progress=False)
    listed = _cli("trials", str(tmp_path / "run"))
    assert listed.returncode == 0, listed.stderr
    written = pd.read_csv(io.StringIO(listed.stdout), dtype=str)["params.x"]   # as the CSV spells them
    assert len(written) == 12 and all(len(text) == 3 for text in written), list(written)


def test_a_proxy_trial_number_stays_whole_beside_trials_without_one():
    """`"proxy_trial": 23.0`: the trials the strategy drew itself have none, and pandas made the column float."""
    from types import SimpleNamespace

    from searchlab.trials_table import trial_table

    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"proxy_trial": 23, "zen_score": 1.5}))
    study.add_trial(optuna.trial.create_trial(value=0.4))
    table = trial_table(SimpleNamespace(study=study))
    assert str(table["proxy_trial"].dtype) == "Int64" and table["proxy_trial"].tolist()[0] == 23


def test_a_trial_seed_stays_whole_beside_a_queued_design_without_one():
    """`"seed": 4219681498.0` in `trials --format json`: a WAITING design has no seed yet."""
    from types import SimpleNamespace

    from searchlab.trials_table import trial_table

    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(value=0.5, user_attrs={"ran_with": {"seed": 4219681498,
                                                                                   "torch_threads": 2}}))
    study.enqueue_trial({})
    table = trial_table(SimpleNamespace(study=study))
    assert table["seed"].tolist()[0] == 4219681498 and str(table["seed"].dtype) == "Int64"
    assert str(table["torch_threads"].dtype) == "Int64"
