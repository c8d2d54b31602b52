"""The command line's output streams as shells leave them: closed (`>&-`), of a narrow encoding, shared by two
predicts writing one --out, read by awk; and the fix for a report a user may not write beside its run."""
from __future__ import annotations

import errno
import os
import subprocess
import sys

from searchlab.cli import main
from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from test_run import REPO, TESTS, callable_study

# exported (tests/conftest.py): test_export.py's run on BreastMNIST and its export, once per session
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
# Writes `rows` lines slowly into predict's --out handle, as a long predict does
SLOW_PREDICT = """
import sys, time
from searchlab.export import predict
def slow(export_dir, inputs, out):
    for i in range(int(sys.argv[2])):
        out.write(f"{sys.argv[1]},{i}\\n"); out.flush(); time.sleep(0.01)
    return int(sys.argv[2])
predict.predict_files = slow
predict.write_predictions("unused", [], sys.argv[3])
"""


def test_a_closed_standard_output_ends_nothing(write_study, tmp_path):
    """`searchlab run study.yaml >&-`: sys.stdout is None, and the run ended in an AttributeError."""
    path = callable_study(write_study, n=2)
    done = subprocess.run(["bash", "-c", f'exec "{sys.executable}" -m searchlab.cli run "{path}" --no-progress >&-'],
                          env=ENV, capture_output=True, text=True)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


def test_a_narrow_encoding_gets_data_in_utf8_and_messages_escaped(write_study, tmp_path):
    """PYTHONIOENCODING=ascii and a run folder named café: status ended in a UnicodeEncodeError."""
    path = callable_study(write_study, n=2)
    run_study(load_study(path, {"run_dir": str(tmp_path / "café")}), progress=False)
    done = subprocess.run([sys.executable, "-m", "searchlab.cli", "status", str(tmp_path / "café")],
                          env={**ENV, "PYTHONIOENCODING": "ascii"}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "café" in done.stdout and "2 complete" in done.stdout   # data as UTF-8, as --out files are
    refused = subprocess.run([sys.executable, "-m", "searchlab.cli", "status", str(tmp_path / "café" / "x")],
                             env={**ENV, "PYTHONIOENCODING": "ascii"}, capture_output=True, text=True)
    assert refused.returncode == 2 and "caf\\xe9" in refused.stderr   # messages escaped where they cannot be said


def test_predict_rows_end_as_unix_tools_read_them(exported, tmp_path, capsys):  # noqa: F811
    """Rows ended in \\r\\n: `awk -F, '$NF=="malignant"'` counted none, as each last cell ended in \\r."""
    from PIL import Image
    import numpy as np

    tmp, _ = exported
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(tmp_path / "scan.png")
    assert main(["predict", str(tmp / "best"), str(tmp_path / "scan.png")]) == 0
    assert main(["predict", str(tmp / "best"), str(tmp_path / "scan.png"), "--out", str(tmp_path / "p.csv")]) == 0
    printed = capsys.readouterr().out
    assert "\r" not in printed and printed.startswith("path,")
    assert b"\r" not in (tmp_path / "p.csv").read_bytes()


def test_two_predicts_into_one_out_each_leave_a_whole_file(tmp_path):
    """Both wrote one `out.partial`: the file ended with the rows of both, a broken line between them, while
    the first said it could not find its partial file."""
    out = tmp_path / "same.csv"
    runs = [subprocess.Popen([sys.executable, "-c", SLOW_PREDICT, name, str(rows), str(out)], env=ENV,
                             stderr=subprocess.PIPE, text=True) for name, rows in (("first", 60), ("second", 20))]
    assert [run.wait() for run in runs] == [0, 0], [run.stderr.read() for run in runs]
    lines = out.read_text().splitlines()
    assert lines in ([f"first,{i}" for i in range(60)], [f"second,{i}" for i in range(20)])
    assert [p.name for p in tmp_path.iterdir()] == ["same.csv"]   # no partial file left


def test_a_report_the_user_may_not_write_beside_its_run_names_out(write_study, tmp_path, monkeypatch, capsys):
    """A colleague's run folder: RUN/report.html cannot be written, and the fix said nothing of --out."""
    from searchlab.report import build

    run_study(load_study(callable_study(write_study, n=2)), progress=False)

    def refused(path, write):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(build, "write_whole", refused)
    assert main(["report", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'run' / 'report.html'}: Permission denied" in err
    assert "or write it elsewhere with --out FILE" in err
    assert main(["report", str(tmp_path / "run"), "--out", str(tmp_path / "r.html")]) == 1
    assert "--out FILE" not in capsys.readouterr().err   # given one already: the path is said
