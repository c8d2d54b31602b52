"""Every refused --out exits with one code, 2, the CLI's code for bad input: an existing folder given without a
trailing slash exited 2, and a path under a file, or a folder whose parent is missing, exited 1. A write the system
fails (a full disk, tests/test_paths_and_writes.py) still exits 1."""
from __future__ import annotations

from pathlib import Path

import pytest

from searchlab.cli import main
from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from test_run import callable_study


@pytest.fixture()
def two_runs(write_study, tmp_path):
    """Two finished runs of a fake task (compare refuses one run given twice)."""
    for run in ("run", "run2"):
        path = callable_study(write_study, n=2, extra=f"\nrun_dir: '{tmp_path / run}'\n")
        run_study(load_study(path), progress=False)
    return [str(tmp_path / "run"), str(tmp_path / "run2")]


@pytest.mark.parametrize("command, name", [("trials", "t.csv"), ("report", "r.html"), ("compare", "c.html")])
def test_each_refused_out_exits_2(two_runs, tmp_path, capsys, command, name):
    (tmp_path / "afolder").mkdir()
    (tmp_path / "afile").write_text("keep")
    runs = two_runs if command == "compare" else two_runs[:1]
    outs = {"a folder without a slash": str(tmp_path / "afolder"),
            "a path under a file": str(tmp_path / "afile" / name),
            "a file with a slash": f"{tmp_path / 'afile'}/"}
    codes = {}
    for what, out in outs.items():
        codes[what] = main([command, *runs, "--out", out])
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--out" in err, err
    assert codes == dict.fromkeys(outs, 2)
    assert (tmp_path / "afile").read_text() == "keep"


def test_an_export_the_system_cannot_write_exits_1_and_one_under_a_file_2(tmp_path):
    """As trials/report/compare: --out under a file is bad input (2); a write the system refuses is 1 (it was 2)."""
    from searchlab.errors import ExportError
    from searchlab.export.publish import staged

    (tmp_path / "afile").write_text("x")
    for out, code in ((Path("/proc/searchlab_no_such/best"), 1), (tmp_path / "afile" / "best", 2)):
        with pytest.raises(ExportError) as info, staged(out):
            pass
        assert info.value.exit_code == code, (out, str(info.value))
