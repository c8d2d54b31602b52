"""A trial whose process was killed unseen ends at its last sign of life, not at the later run that failed it:
`searchlab trials`, `status` and `compare` counted the whole gap between the two runs as the trial's time."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
from optuna.trial import TrialState

from searchlab.config.load import load_study
from searchlab.engine.rundir import open_run
from searchlab.engine.run import run_study
from searchlab.engine.run_history import runs_line
from searchlab.engine.trial_time import ALIVE_AT, trial_seconds
from searchlab.report.compare import _busy_intervals
from searchlab.summary import _time_spent
from searchlab.trials_table import trial_table
from test_run import callable_study

TESTS = Path(__file__).resolve().parent
# seconds between the killed run and the resume that fails its trial: at least the 2.0 s the dead trial's time
# must stay under, so a gap counted as its time fails that bound (the resume's start adds seconds more)
GAP = 2.0


def test_a_trial_killed_unseen_ends_at_its_last_report_not_at_the_resume(write_study, tmp_path):
    marker = tmp_path / "marker"
    text = callable_study(write_study, fn="reports_then_dies_once", n=2).read_text()
    study_file = write_study(text.replace("  sleep: 0.0\n", f"  sleep: 0.0\n  marker: '{marker}'\n"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))}
    killed = subprocess.run([sys.executable, "-m", "searchlab.cli", "run", str(study_file)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9 and marker.exists(), killed.stderr[-2000:]
    time.sleep(GAP)
    run_study(load_study(study_file), progress=False)

    study = optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    dead = study.trials[0]
    assert dead.state == TrialState.FAIL and dead.user_attrs["error"].startswith("interrupted")
    stamped = (dead.datetime_complete - dead.datetime_start).total_seconds()
    assert stamped > GAP and ALIVE_AT in dead.user_attrs
    assert 0 <= trial_seconds(dead) < 2.0   # one report, then 0.5 s of work before it died
    table = trial_table(open_run(tmp_path / "run"))
    assert table.loc[table.number == 0, "duration_s"].item() == trial_seconds(dead)
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert len(done) == 2
    ran = sum(trial_seconds(t) for t in study.trials)
    assert f"time:      {ran:.0f} s of trials run" in _time_spent(study)
    busy = sum(end - start for start, end in _busy_intervals(study.trials))
    assert busy < stamped, (busy, stamped)   # the gap is not drawn as search time
    # the killed run is in the study's history too, as a run that ended without a word
    killed_run, resumed = study.user_attrs["searchlab_runs"]
    assert killed_run["stopped_by"] is None and resumed["stopped_by"] == "budget.n_trials"
    assert "runs:      2 recorded; 1 ended without a word (killed -9" in runs_line(study, in_progress=False)


def test_the_last_sign_of_life_is_written_at_most_every_ten_seconds(monkeypatch):
    from searchlab.engine import trial_time

    written = []

    class Trial:
        def set_user_attr(self, key, value):
            written.append((key, value))

    clock = iter([100.0, 101.0, 109.9, 110.0, 125.0])
    monkeypatch.setattr(trial_time, "time", SimpleNamespace(time=lambda: next(clock)))   # this module's clock only
    stamp = trial_time.AliveStamp()
    for _ in range(5):
        stamp.touch(Trial())
    assert written == [(ALIVE_AT, 100.0), (ALIVE_AT, 110.0), (ALIVE_AT, 125.0)]
