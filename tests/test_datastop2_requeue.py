"""A trial that found the run's data changed is not queued again by the run it stops (a sibling worker took that
retry before the run stopped, and the same config failed twice): it stays FAIL, `searchlab status` says its config
runs again, and the next run queues it first (engine/recovery.py runs_again)."""
from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from searchlab.cli import main
from searchlab.config.load import load_study
from searchlab.engine.recovery import runs_again
from searchlab.engine.run import run_study
from searchlab.errors import DataChanged

from test_datastop_changed_data import _rewrite, _study
from test_inplace_changed_files import _folder


def test_a_data_changed_trial_stays_failed_status_says_it_runs_again_and_the_next_run_runs_it(
        tmp_path, monkeypatch, capsys):
    import searchlab.tasks.classify as classify

    folder = _folder(tmp_path / "images")
    check, kept = classify.split_as_recorded, []

    def split_as_recorded(data, record):   # a training file rewritten inside trial 0, after its own check
        check(data, record)
        if not kept:
            kept.append((path := Path(data.extra["files"]["train"][0]), _rewrite(path)))

    monkeypatch.setattr(classify, "split_as_recorded", split_as_recorded)
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
