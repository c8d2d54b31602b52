"""`--out nodir/deeper/` (a folder ending in a separator) was refused as a likely typo, while `--out
deep/a/b/x.csv` (a file) made deep/a/b, as export and sample make their --out's folders. One rule now: the missing
folders are made, whichever way the place is spelt (--out DIR/ or --out DIR/FILE)."""
from __future__ import annotations

from pathlib import Path

import pytest

from searchlab.cli import main
from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from test_run import callable_study


@pytest.fixture
def run(write_study, tmp_path) -> Path:
    run_study(load_study(callable_study(write_study, n=2)), progress=False)
    return tmp_path / "run"


@pytest.mark.parametrize("command, name", [("trials", "trials.csv"), ("report", "report.html")])
def test_a_folder_two_missing_levels_down_is_made_as_for_a_file(run, tmp_path, command, name):
    assert main([command, str(run), "--out", f"{tmp_path / 'nodir' / 'deeper'}/"]) == 0
    assert (tmp_path / "nodir" / "deeper" / name).is_file()
    assert main([command, str(run), "--out", str(tmp_path / "deep" / "a" / "b" / name)]) == 0   # as before
    assert (tmp_path / "deep" / "a" / "b" / name).is_file()


def test_a_folder_under_a_file_is_still_refused(run, tmp_path, capsys):
    (tmp_path / "afile").write_text("keep")
    assert main(["trials", str(run), "--out", f"{tmp_path / 'afile' / 'sub'}/"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err and (tmp_path / "afile").read_text() == "keep"
