"""A trial that found the run's data changed is not queued again by the run it stops (a sibling worker took that
retry before the run stopped, and the same config failed twice): it stays FAIL, `searchlab status` says its config
runs again, and the next run queues it first (engine/recovery.py runs_again)."""
from __future__ import annotations

import pytest
from optuna.trial import TrialState

from searchlab.cli import main
from searchlab.config.load import load_study
from searchlab.engine.recovery import runs_again
from searchlab.engine.run import run_study
from searchlab.errors import DataChanged

from test_datastop_changed_data import _study, rewrite_in_the_first_trial
from test_inplace_changed_files import _folder


def test_a_data_changed_trial_stays_failed_status_says_it_runs_again_and_the_next_run_runs_it(
        tmp_path, monkeypatch, capsys):
    folder = _folder(tmp_path / "images")
    kept = rewrite_in_the_first_trial(monkeypatch)
    study_file = _study(tmp_path, folder, n_trials=3)
    with pytest.raises(DataChanged):
        run_study(load_study(study_file), progress=False)
    capsys.readouterr()
    assert main(["status", str(study_file)]) == 0
    out = capsys.readouterr().out
    assert "DataChanged" in out and "this trial's run again when the study does" in out, out

    path, original = kept[0]
    path.write_bytes(original)
    trials = run_study(load_study(study_file), progress=False).study.get_trials(deepcopy=False)
    assert trials[2].user_attrs["retry_of"] == 1 and trials[2].state == TrialState.COMPLETE


def test_the_errors_the_next_run_queues_again():
    assert runs_again("DataChanged: images: 1 file this trial reads changed")
    assert runs_again("interrupted (SIGTERM)")
    assert not runs_again("ValueError: loss is nan") and not runs_again(None)
