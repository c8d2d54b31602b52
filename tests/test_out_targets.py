"""Where `predict` and `trials` put their rows, as shells hand them over: an --out naming a descriptor the shell
opened (`--out /proc/self/fd/3 3>>all.csv` appends, never replaces), a standard output closed at start (`>&-`:
refused, not thrown away), and `predict --out F.parquet` (Parquet, as `trials --out F.parquet`)."""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from searchlab.cli import main
from test_paths_and_writes import finished_run  # noqa: F401  (four trials of a fake task)
from test_run import REPO, TESTS

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
EARLIER = "earlier,rows\nkeep,me\n"
# source (tests/conftest.py): a run of a small image folder and its export, run/best, once per session


def _searchlab(args: list[str], redirections: str, cwd: Path) -> subprocess.CompletedProcess:
    """`searchlab ARGS REDIRECTIONS` as bash runs it: the descriptors are the shell's, opened before searchlab."""
    command = f'exec "{sys.executable}" -m searchlab.cli {shlex.join(map(str, args))} {redirections}'
    return subprocess.run(["bash", "-c", command], env=ENV, cwd=cwd, capture_output=True, text=True, timeout=300)


def _predict_args(source: Path) -> list[str]:  # noqa: F811
    return ["predict", source / "run" / "best", source / "set" / "a" / "0.png", source / "set" / "b" / "1.png"]


def test_predict_out_through_an_appending_descriptor_appends_to_the_file(source, tmp_path):  # noqa: F811
    """`--out /proc/self/fd/3 3>>all.csv` exited 0 with the earlier rows gone: the file was written beside and
    moved over all.csv (a new inode), as an ordinary path is."""
    together = tmp_path / "all.csv"
    together.write_text(EARLIER)
    inode = together.stat().st_ino
    done = _searchlab([*_predict_args(source), "--out", "/proc/self/fd/3"], "3>>all.csv", tmp_path)
    assert done.returncode == 0, done.stderr
    assert together.stat().st_ino == inode   # the file the shell opened, not one moved over it
    lines = together.read_text().splitlines()
    assert lines[:3] == ["earlier,rows", "keep,me", "path,p(a),p(b),predicted"] and len(lines) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.csv"]   # no partial file beside it


def test_an_unreadable_image_appends_nothing_through_a_descriptor(source, tmp_path):  # noqa: F811
    """Through a descriptor as beside a file: the rows are written whole or not at all."""
    together = tmp_path / "all.csv"
    together.write_text(EARLIER)
    (tmp_path / "empty.png").write_bytes(b"")
    done = _searchlab([*_predict_args(source), tmp_path / "empty.png", "--out", "/dev/fd/3"], "3>>all.csv", tmp_path)
    assert done.returncode == 2 and "empty.png" in done.stderr, done.stderr
    assert together.read_text() == EARLIER


def test_trials_out_through_descriptors_append_or_write_as_the_shell_opened_them(finished_run,  # noqa: F811
                                                                                    tmp_path):
    appended, written = tmp_path / "appended.csv", tmp_path / "written.csv"
    appended.write_text(EARLIER)
    written.write_text("old,table\n" * 50)
    args = ["trials", finished_run, "--format", "csv", "--out"]
    assert _searchlab([*args, "/proc/self/fd/3"], "3>>appended.csv", tmp_path).returncode == 0
    assert appended.read_text().startswith(EARLIER + "number,state,value")
    assert len(appended.read_text().splitlines()) == 2 + 1 + 4
    done = _searchlab([*args, "/dev/fd/4"], "4>written.csv", tmp_path)   # `>`: the shell emptied it
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(written)) == 4 and "old,table" not in written.read_text()


@pytest.mark.parametrize("command", ["predict", "trials csv", "trials json", "status", "cache"])
def test_rows_for_a_closed_standard_output_are_refused(source, finished_run, tmp_path, command):  # noqa: F811
    """`searchlab predict EXPORT scans/ >&-` (and `status RUN >&-`) exited 0, its rows written nowhere and nothing
    said."""
    args = {"predict": _predict_args(source), "status": ["status", finished_run], "cache": ["cache"]}.get(
        command, ["trials", finished_run, "--format", command[7:]])
    done = _searchlab(args, ">&-", tmp_path)
    assert done.returncode == 1, done.stderr
    assert "standard output (stdout) is closed" in done.stderr
    assert ("--out FILE" in done.stderr) == (command not in ("status", "cache")), done.stderr   # they have no --out
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["predict", "report"])
def test_out_naming_standard_output_gets_the_data_alone(source, tmp_path, command):  # noqa: F811
    """`--out /proc/self/fd/1 > p.csv` (or --out /dev/stdout) ended p.csv with "3 predictions written to
    /proc/self/fd/1", and a report with "report: /proc/self/fd/1" after </html>."""
    args = _predict_args(source) if command == "predict" else ["report", source / "run"]
    done = _searchlab([*args, "--out", "/proc/self/fd/1"], "> data", tmp_path)
    assert done.returncode == 0, done.stderr
    data = (tmp_path / "data").read_text()
    if command == "predict":
        assert pd.read_csv(tmp_path / "data")["path"].str.endswith(".png").all(), data
    else:
        assert data.rstrip().endswith("</html>"), data[-200:]
    assert "/proc/self/fd/1" not in data and "/proc/self/fd/1" in done.stderr


def test_predict_out_parquet_writes_parquet_with_the_csv_columns(source, tmp_path, capsys):  # noqa: F811
    """`--out p.parquet` silently wrote CSV under the Parquet name, which pd.read_parquet cannot read."""
    args = [str(a) for a in _predict_args(source)]
    assert main([*args, "--out", str(tmp_path / "p.csv")]) == 0
    assert main([*args, "--out", str(tmp_path / "p.parquet")]) == 0
    csv, parquet = pd.read_csv(tmp_path / "p.csv"), pd.read_parquet(tmp_path / "p.parquet")
    assert list(parquet.columns) == list(csv.columns) == ["path", "p(a)", "p(b)", "predicted"]
    pd.testing.assert_frame_equal(parquet, csv)
    assert "2 predictions written to" in capsys.readouterr().out


def test_a_descriptor_searchlab_opened_itself_or_none_is_refused_and_left_alone(tmp_path):
    """/proc/self/fd/7 of a trials command was the study's own database: written into through it (or, before,
    replaced by the table); a descriptor not open fell through to 'No such file or directory'."""
    from searchlab.whole_file import OutPathError, write_whole

    own = tmp_path / "study.db"
    own.write_bytes(b"SQLite format 3\0")
    with own.open("ab") as handle:   # Python's files are not inherited (O_CLOEXEC), as SQLite's are not
        with pytest.raises(OutPathError, match=rf"descriptor {handle.fileno()}, which searchlab opened for itself"):
            write_whole(Path(f"/proc/self/fd/{handle.fileno()}"), lambda part: part.write_text("number\n"))
    assert own.read_bytes() == b"SQLite format 3\0"
    with pytest.raises(OutPathError, match=r"descriptor 987, which is not open\. Fix: .* 987>>FILE"):
        write_whole(Path("/dev/fd/987"), lambda part: part.write_text("number\n"))


def test_predict_and_trials_write_into_a_folder_named_with_a_trailing_slash(  # noqa: F811
        source, finished_run, tmp_path, capsys):
    """`--out preds/` wrote a file named `preds` (as report did), and `--out p.json` wrote CSV under a JSON name."""
    args = [str(a) for a in _predict_args(source)]
    assert main([*args, "--out", f"{tmp_path / 'preds'}/"]) == 0
    assert len(pd.read_csv(tmp_path / "preds" / "predictions.csv")) == 2
    assert f"written to {tmp_path / 'preds' / 'predictions.csv'}" in capsys.readouterr().out
    assert main(["trials", str(finished_run), "--format", "json", "--out", f"{tmp_path / 'preds'}/"]) == 0
    assert (tmp_path / "preds" / "trials.json").read_text().startswith("[")
    assert main([*args, "--out", str(tmp_path / "p.json")]) == 2 and not (tmp_path / "p.json").exists()
    assert "predict writes CSV or Parquet" in capsys.readouterr().err
