"""kill -9 of `searchlab run` at random moments, restarted each time: nothing completed is lost or changed,
nothing is duplicated, interrupted trials are FAILED and retried, the budget is met, checkpoints load.
(tests/fault_harness.py; bench/fault_injection.py runs the same with 50 kills.)"""
from __future__ import annotations

import os
from pathlib import Path

from fault_harness import StudyWatch, kill_loop
from test_run import callable_study


def test_a_run_killed_again_and_again_keeps_every_invariant(write_study, tmp_path):
    extra = "\nbudget: {n_trials: 6, max_failed: 100}\n"
    text = callable_study(write_study, fn="checkpointed", n=6, sleep=0.9).read_text().replace("budget: {n_trials: 6}\n", "")
    study = write_study(text + extra)
    watch = StudyWatch(f"sqlite:///{tmp_path / 'run' / 'study.db'}", "fake", 6, tmp_path / "run" / "artifacts")
    tests_dir = str(Path(__file__).parent)
    report = kill_loop(study, watch, kills=5, seed=1, window=(2.5, 5.0),
                       env={"PYTHONPATH": os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))})
    assert report.violations == [] and report.kills == 5 and report.complete == 6
