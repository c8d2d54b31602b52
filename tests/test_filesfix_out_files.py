"""Audit verify54, items 2, 9a and 9c: `compare --out /proc/self/fd/3 3>>c.html` replaced c.html (compare wrote its
page with path.write_text, not whole as `report`: a failed compare also truncated an earlier page); an --out naming a
descriptor open for reading only (`3<ro.csv`) failed after the work with a bare "Bad file descriptor" and a fix about
paths and disk space; an empty --out was said as "--out  is a folder"."""
from __future__ import annotations

from pathlib import Path

import pytest

from searchlab.cli import main
from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from test_out_targets import _searchlab
from test_paths_and_writes import _disk_full_after_half
from test_run import callable_study

KEPT = "<!--keep-->\n"


@pytest.fixture()
def two_runs(write_study, tmp_path):
    """Two finished runs of a fake task (no data, no training), in run/ and run2/."""
    for folder in ("run", "run2"):
        study = callable_study(write_study, n=3, extra=f"\nrun_dir: '{tmp_path / folder}'\n")
        run_study(load_study(study), progress=False)
    return tmp_path / "run", tmp_path / "run2"


def test_compare_out_through_an_appending_descriptor_appends_to_the_file(two_runs, tmp_path):
    page = tmp_path / "c.html"
    page.write_text(KEPT)
    inode = page.stat().st_ino
    done = _searchlab(["compare", *two_runs, "--out", "/proc/self/fd/3"], "3>>c.html", tmp_path)
    assert done.returncode == 0, done.stderr
    assert page.stat().st_ino == inode   # the file the shell opened, not one moved over it
    text = page.read_text()
    assert text.startswith(KEPT + "<!DOCTYPE html>") and "searchlab compare" in text


def test_a_compare_that_fails_while_writing_leaves_the_earlier_page(two_runs, tmp_path, monkeypatch, capsys):
    page = tmp_path / "pages" / "c.html"
    page.parent.mkdir()
    page.write_text(KEPT)
    _disk_full_after_half(monkeypatch, Path, "write_text")   # the page's start written, then a full disk
    assert main(["compare", *map(str, two_runs), "--out", str(page)]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert page.read_text() == KEPT and sorted(p.name for p in page.parent.iterdir()) == ["c.html"]


@pytest.mark.parametrize("command", ["trials", "compare"])
def test_a_descriptor_open_for_reading_only_is_said_so(two_runs, tmp_path, command):
    kept = tmp_path / "ro.csv"
    kept.write_text(KEPT)
    args = ["trials", two_runs[0]] if command == "trials" else ["compare", *two_runs]
    done = _searchlab([*args, "--out", "/proc/self/fd/3"], "3<ro.csv", tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert ("error: --out /proc/self/fd/3 names descriptor 3, which is open for reading only, so nothing can be "
            "written through it. Fix: open it for writing in the shell, e.g. --out /proc/self/fd/3 3>>FILE "
            "(appends; 3>FILE writes anew)") in done.stderr
    assert "Bad file descriptor" not in done.stderr and kept.read_text() == KEPT


@pytest.mark.parametrize("command, example, what", [
    (["predict", "EXPORT", "scan.png"], "predictions.csv", "CSV file"), (["trials", "RUN"], "trials.csv", "file"),
    (["report", "RUN"], "report.html", "file"), (["compare", "RUN", "RUN2"], "compare.html", "file")])
def test_an_empty_out_is_said_to_be_empty(tmp_path, capsys, monkeypatch, command, example, what):
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--out", ""]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: --out is empty (''), so it names no {what} (an empty value reads as the current folder). "
                   f"Fix: name the {what} to write (e.g. --out {example})\n")
    assert list(tmp_path.iterdir()) == []
