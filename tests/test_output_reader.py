"""`searchlab run study.yaml | head`: the run goes on to its end when the reader of its output leaves."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
STUDY = """
name: piped
task: {kind: callable, function: "fake_tasks:quadratic"}
space:
  x: {float: [-3, 3]}
objective: {metric: loss, direction: minimize}
strategy: random
pruner: none
budget: {n_trials: 3}
"""


@pytest.mark.parametrize("unbuffered", ["", "1"], ids=["buffered", "unbuffered"])
def test_a_run_whose_reader_leaves_goes_on_and_keeps_its_exit_code(write_study, tmp_path, unbuffered):
    """Buffered, the summary's BrokenPipeError exited 1 after a run that went well; unbuffered, the header's ended
    the run before its first trial."""
    path = write_study(STUDY)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)]), "PYTHONUNBUFFERED": unbuffered}
    proc = subprocess.Popen([sys.executable, "-m", "searchlab.cli", "run", str(path), "--no-progress"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.close()   # before the child has written anything, as `| head -0` would
    stderr = proc.stderr.read()
    assert proc.wait() == 0, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert f"the run went on to its end: searchlab status {tmp_path / 'run'} shows its summary" in stderr
    study = optuna.load_study(study_name="piped", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    assert sum(t.state.name == "COMPLETE" for t in study.trials) == 3


def test_a_run_whose_reader_stays_gets_its_whole_summary(write_study, tmp_path):
    path = write_study(STUDY)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    run = subprocess.run([sys.executable, "-m", "searchlab.cli", "run", str(path), "--no-progress"], env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "study 'piped': 3 complete" in run.stdout and "reader of this run's output left" not in run.stderr
