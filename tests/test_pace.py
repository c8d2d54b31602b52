"""Before a run: a trial that cannot finish inside the study's time limits at this machine's pace is said."""
from __future__ import annotations

import pytest

from searchlab.config.load import load_study
from searchlab.tasks import get_task
from searchlab.tasks.classify import parse_trial_config
from searchlab.tasks.pace import trial_runs
from test_run import TINY_CLASSIFY


def _prepared(write_study, capsys, budget: str, train: str = "{batch_size: 128}") -> str:
    text = TINY_CLASSIFY.replace("budget: {n_trials: 2, epochs: 2}", budget).replace("{batch_size: 128}", train)
    study = load_study(write_study(text))
    get_task(study.config.task).prepare(study)
    return capsys.readouterr().err


def test_a_trial_longer_than_the_timeout_is_warned_of_before_any_trial_runs(write_study, capsys):
    err = _prepared(write_study, capsys, "budget: {n_trials: 2, epochs: 20, timeout: 0.01}",
                    "{batch_size: 128, cv_folds: 3}")
    assert "warning: one trial of this space takes about " in err
    assert "more than budget.timeout=0.01 s: 20 epochs x 4 runs (3 folds + the model trained on the training " \
           "split) of ~416 training images" in err
    assert "a trial of several runs cut short is pruned" in err and "Fix: raise budget.timeout" in err
    err = _prepared(write_study, capsys, "budget: {n_trials: 2, epochs: 20, trial_timeout: 0.01, timeout: 60}")
    assert "more than budget.trial_timeout=0.01 s: 20 epochs of ~546 training images" in err
    assert "Trials past it are killed and fail" in err


@pytest.mark.parametrize("budget", ["budget: {n_trials: 2, epochs: 2, timeout: 3600}", "budget: {n_trials: 2}"])
def test_a_trial_inside_the_limits_or_without_any_is_not_warned_of(write_study, capsys, budget):
    assert "one trial of this space" not in _prepared(write_study, capsys, budget)


def test_a_trial_trains_each_fold_and_repeat_and_the_refit():
    def runs(train: dict) -> list[tuple[int, int]]:
        spec = parse_trial_config({"model": {"kind": "cnn"}, "train": train}, None)
        return trial_runs(spec, 546, 78)

    assert runs({}) == [(546, 78)] and runs({"repeats": 3}) == [(546, 78)] * 3
    assert runs({"cv_folds": 5}) == [(500, 124)] * 5 + [(546, 78)]
    assert runs({"cv_folds": 5, "cv_model": "bag", "repeats": 2}) == [(500, 124)] * 10
