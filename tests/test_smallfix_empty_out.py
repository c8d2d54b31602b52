"""`searchlab export RUN --out ''` (an unset $OUT in a script) was refused saying "--out  is the folder you are in":
an empty --out reads as Path('.'). It is now said to be empty, with the fix (a folder path, e.g. --out best), as
sample, trials, predict, report and compare say of theirs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ExportError
from searchlab.export.publish import staged
from test_run import TINY_CLASSIFY


@pytest.mark.parametrize("out", ["", "  "])
def test_an_empty_out_is_refused_as_empty_before_anything_is_written(tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExportError, match=r"--out is empty .*Fix: give a folder path, e.g. --out best"):
        with staged(out):
            pass
    assert list(tmp_path.iterdir()) == []


def test_export_with_an_empty_out_says_it_is_empty(write_study, tmp_path):
    run_study(load_study(write_study(TINY_CLASSIFY)), progress=False)
    here = tmp_path / "here"
    here.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run([sys.executable, "-m", "searchlab.cli", "export", str(tmp_path / "run"), "--out", ""],
                          capture_output=True, text=True, cwd=here, env=env)
    assert done.returncode == 2, done.stderr
    assert "--out is empty ('')" in done.stderr and "e.g. --out best" in done.stderr
    assert list(here.iterdir()) == []
