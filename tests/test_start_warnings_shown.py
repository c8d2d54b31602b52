"""The warnings a run started with, shown again by `status` and the report: said once on stderr, a leak of test
images into the weights' run was gone with the scrollback, while both showed the scores it made optimistic."""
from __future__ import annotations

import contextlib
import io

from searchlab.cli import main
from searchlab.report.build import report_html
from searchlab.engine.rundir import open_run
from tiny_runs import run_on_breastmnist

STUDY = """
name: warned
task: classify
space:
  model: {kind: cnn, depth: 2, width: 8}
  optim: {lr: {float: [1.0e-4, 3.0e-3], log: true}}
  train: {batch_size: 64}
strategy: {name: tpe, args: {n_startup_trials: 5}}
pruner: none
budget: {n_trials: N, epochs: 1}
"""
NEVER_PAST_RANDOM = "draws its first 5 trials at random"


def status_of(run_dir) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["status", str(run_dir)]) == 0
    return out.getvalue()


def test_status_and_the_report_repeat_the_latest_runs_start_warnings(tmp_path, breastmnist_root):
    run_dir = run_on_breastmnist(tmp_path, STUDY.replace("N", "1"), breastmnist_root)
    said = status_of(run_dir)
    assert "warnings:  1 when the latest run started" in said and f"  warning: strategy tpe {NEVER_PAST_RANDOM}" in said
    page = report_html(open_run(run_dir))
    assert "Warnings: 1 when the latest run started" in page and NEVER_PAST_RANDOM in page

    # resumed to 6 trials, the run is past the random start: the latest run's warnings are said, not the first's
    run_on_breastmnist(tmp_path, STUDY.replace("N", "6"), breastmnist_root)
    assert NEVER_PAST_RANDOM not in status_of(run_dir)
    assert NEVER_PAST_RANDOM not in report_html(open_run(run_dir))
