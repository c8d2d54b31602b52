"""What a run killed mid-trial leaves, as the next commands say it: the resume's note (a config over
executor.max_retries is not said to run again), export (no "wait" for a trial that can never complete) and
status (a failed trial whose config ran again says so beside the counts). Real SQLite storages and real runs."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from searchlab.config.load import load_study
from searchlab.engine.recovery import Recovery, left_running_note, recover_left_trials
from searchlab.engine.run import create_or_load, recover_interrupted, run_study
from searchlab.engine.run_history import run_entry
from searchlab.engine.rundir import open_run
from searchlab.errors import ExportError
from searchlab.export.picking import pick_trial
from searchlab.summary import print_status
from test_run import callable_study

TESTS = Path(__file__).resolve().parent


def _killed_run(write_study, tmp_path: Path, extra: str = "") -> Path:
    """A study file whose first run was killed -9 mid-trial 0 (its whole process, as the OOM killer does)."""
    marker = tmp_path / "marker"
    text = callable_study(write_study, fn="reports_then_dies_once", n=2).read_text()
    study_file = write_study(text.replace("  sleep: 0.0\n", f"  sleep: 0.0\n  marker: '{marker}'\n") + extra)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}
    killed = subprocess.run([sys.executable, "-m", "searchlab.cli", "run", str(study_file), "--no-progress"],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9 and marker.exists(), killed.stderr[-2000:]
    return study_file


def test_a_config_over_max_retries_is_not_said_to_run_again_by_the_resume_note(write_study, tmp_path, capsys):
    """Killed -9 more often than executor.max_retries, the resume warned "not run again" and noted "the configs
    they drew run again" of the same trial."""
    study_file = _killed_run(write_study, tmp_path, "executor: {kind: local, workers: 1, max_retries: 0}\n")
    capsys.readouterr()
    run_study(load_study(study_file), progress=False)
    err = capsys.readouterr().err
    assert ("note: 1 trial(s) left RUNNING by a run that ended without finishing them (killed) are now FAIL; "
            "trial 0's config is not run again (executor.max_retries: see the warning above)") in err
    assert "run again" not in err.split("note:")[1].replace("not run again", "")
    assert "warning: trial 0's config ended its process without a word 1 time (out of memory? a crash?)" in err
    study = optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    assert not any(t.user_attrs.get("retry_of") == 0 for t in study.trials)   # as the note says


def test_the_resume_note_names_which_configs_run_again_and_which_do_not(write_study, tmp_path):
    """One recovery of a requeued, a dropped and a self-failed trial, as recover_left_trials returns it."""
    assert left_running_note(Recovery([3], [3], [], [])).endswith("are now FAIL, and the configs they drew run again")
    mixed = left_running_note(Recovery([2, 3, 4, 5], [3, 5], [2], [4]))
    assert mixed.endswith("; the configs of trials 3, 5 run again; trial 2's config is not run again "
                          "(executor.max_retries: see the warning above); trial 4's config is not run again: the "
                          "trial stored its own error (searchlab trials shows it)")
    # the counts themselves, from a real storage: a trial that stored its error is failed, not run again
    study = load_study(callable_study(write_study, n=2))
    tmp_path.joinpath("run").mkdir()
    ostudy = create_or_load(study)
    ostudy.ask({"x": optuna.distributions.FloatDistribution(-3, 3)}).set_user_attr("error", "MemoryError: its own")
    assert recover_left_trials(ostudy, max_retries=2) == Recovery([0], [], [], [0])
    assert recover_interrupted(ostudy, max_retries=2) == 0   # its callers' count: nothing left RUNNING now


def test_export_after_a_killed_run_says_to_run_it_again_not_to_wait(write_study, tmp_path):
    """kill -9 mid-trial: export said "wait until a trial completes" of a trial that never can, while status
    said its run ended without a word."""
    _killed_run(write_study, tmp_path)
    study = open_run(tmp_path / "run").study
    with pytest.raises(ExportError) as refused:
        pick_trial(study, None)
    said = str(refused.value)
    assert "no completed trial to export yet (1 RUNNING; trial 0 was left RUNNING by a run that ended without a " \
           "word" in said and "wait" not in said
    assert said.endswith("Fix: run the study again (searchlab run STUDY resumes: the trial is failed and its config "
                         "runs again), then export")
    # a run of the study that is alive (this process's, say) may still finish it: then waiting is the fix
    with run_entry(study, tmp_path / "run", time.time()):
        with pytest.raises(ExportError, match=r"\(1 RUNNING\)\. Fix: wait until a trial completes"):
            pick_trial(open_run(tmp_path / "run").study, None)


def test_status_says_a_failed_trial_whose_config_ran_again_beside_the_counts(write_study, tmp_path, capsys):
    """A stop mid-trial and a resume: status said "3 complete, 1 fail" and nothing of the retry."""
    marker = tmp_path / "stopped"
    text = callable_study(write_study, fn="swallows_a_stop_once", n=3).read_text()
    path = write_study(text.replace("  sleep:", f"  marker: '{marker}'\n  sleep:"))
    assert run_study(load_study(path), progress=False).interrupted   # SIGTERM in trial 0
    run_study(load_study(path), progress=False)
    capsys.readouterr()
    print_status(open_run(tmp_path / "run"), top=1)
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith(": 3 complete, 1 fail (trial 0: interrupted (SIGTERM); its config re-ran as trial 1)")
    study = optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    assert study.trials[1].user_attrs["retry_of"] == 0 and study.trials[1].state == TrialState.COMPLETE
