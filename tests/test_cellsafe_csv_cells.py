"""CSV cells a spreadsheet would run as a formula (CSV injection): `searchlab predict --out p.csv` wrote an image
named `=cmd().png` into its path cell as it was, and `trials` an error message or a categorical value the same
way. In CSV output such text cells get a single quote before them (OWASP); Parquet and JSON keep the text as it is."""
from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest
import torch

from searchlab.csv_cells import spreadsheet_safe
from searchlab.export import predict as predict_module
from searchlab.trials_table import write_table

NAMES = ["-1", "=SUM(A1)"]   # a class named by a negative label stays a number; one like a formula is quoted
FILES = ["=cmd().png", "+a.png", "-b.png", "@c.png", "ok.png"]


@pytest.mark.parametrize(("cell", "written"), [
    ("=cmd()", "'=cmd()"), ("+1+1", "'+1+1"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"),
    ("\r=x", "'\r=x"), ("weird/=cmd().png", "weird/=cmd().png"), ("-1", "-1"), ("+0.5e-3", "+0.5e-3"),
    ("", ""), (-1.5, -1.5), (None, None),
])
def test_a_cell_is_quoted_only_where_a_spreadsheet_would_read_a_formula(cell, written):
    assert spreadsheet_safe(cell) == written


@pytest.fixture()
def fake_export(tmp_path, monkeypatch):
    """An export as predict reads it, without a trained run: a network saying class 1 for every image."""
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1, 2))
    with torch.no_grad():
        net[1].weight.zero_(), net[1].bias.copy_(torch.tensor([0.0, 15.0]))
    config = {"task": "binary", "threshold": 0.5, "class_names": NAMES,
              "preprocessing": {"mean": [0.0], "std": [1.0]}}
    monkeypatch.setattr(predict_module, "_classifier_config", lambda export_dir: config)
    monkeypatch.setattr(predict_module, "_say_what_the_files_are", lambda files, config: None)
    monkeypatch.setattr(predict_module, "_model", lambda export_dir, config: net.eval())
    monkeypatch.setattr(predict_module, "_read_or_error", lambda path, config: torch.zeros(1, 1, 1, dtype=torch.uint8))
    for name in FILES:
        (tmp_path / name).write_bytes(b"")
    monkeypatch.chdir(tmp_path)   # the files named as a shell glob in their folder names them: `=cmd().png`
    return tmp_path


def test_predict_csv_quotes_path_and_label_cells_a_spreadsheet_would_run(fake_export):
    predict_module.write_predictions("export", FILES, "p.csv")
    header, *rows = list(csv.reader((fake_export / "p.csv").open(newline="")))
    assert header == ["path", "p(-1)", "p(=SUM(A1))", "predicted"]
    assert [row[0] for row in rows] == ["'=cmd().png", "'+a.png", "'-b.png", "'@c.png", "ok.png"]
    assert {row[-1] for row in rows} == {"'=SUM(A1)"}


def test_predict_to_standard_output_is_the_same_csv(fake_export, capsys):
    predict_module.write_predictions("export", FILES[:1], None)
    assert capsys.readouterr().out.splitlines()[1].startswith("'=cmd().png,")


def test_predict_parquet_keeps_the_names_as_they_are(fake_export):
    predict_module.write_predictions("export", FILES, "p.parquet")
    table = pd.read_parquet(fake_export / "p.parquet")
    assert table["path"].tolist() == FILES and set(table["predicted"]) == {"=SUM(A1)"}


TABLE = pd.DataFrame({"number": [0, 1], "state": ["FAIL", "COMPLETE"], "value": [None, -0.5],
                      "params.act": ["@relu", "-1"], "error": ["=HYPERLINK(\"http://x\")", None],
                      "class_names": ['["=a", "b"]', '["=a", "b"]']})


def test_trials_csv_quotes_text_cells_a_spreadsheet_would_run(tmp_path, capsys):
    write_table(TABLE, "csv", tmp_path / "t.csv")
    write_table(TABLE, "csv", None)
    for text in ((tmp_path / "t.csv").read_text(), capsys.readouterr().out):
        header, *rows = list(csv.reader(io.StringIO(text)))
        assert header == list(TABLE.columns)
        assert rows[0] == ["0", "FAIL", "", "'@relu", "'=HYPERLINK(\"http://x\")", '["=a", "b"]']
        assert rows[1] == ["1", "COMPLETE", "-0.5", "-1", "", '["=a", "b"]']


def test_trials_json_and_parquet_keep_the_text_as_it_is(tmp_path):
    write_table(TABLE, "json", tmp_path / "t.json")
    write_table(TABLE, "parquet", tmp_path / "t.parquet")
    rows = json.loads((tmp_path / "t.json").read_text())
    assert rows[0]["error"] == "=HYPERLINK(\"http://x\")" and rows[0]["params.act"] == "@relu"
    assert pd.read_parquet(tmp_path / "t.parquet")["error"].tolist()[0] == "=HYPERLINK(\"http://x\")"
