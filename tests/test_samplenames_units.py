"""A classify trial under train.cv_folds or train.repeats reports its running mean once per run (fold or repeat),
at a step on the epoch scale (crossval.progress_steps), yet its pruning messages counted those steps as epochs: a
3-fold trial of a 4-epoch budget pruned after its second fold was "pruned by the pruner after 3 epoch(s)". The
unit, and the count of runs behind a step, are chosen in one place (ray_schedule.report_unit / reports_said)."""
from __future__ import annotations

import re
from types import SimpleNamespace

import optuna
import pytest

from searchlab.config.load import load_study
from searchlab.engine.ray_schedule import report_unit, reports_said
from searchlab.errors import ConfigError
from searchlab.summary import print_run_summary
from searchlab.tasks.crossval import progress_steps
from test_ganwords_units import _fake_study
from test_run import TINY_CLASSIFY

CV = {"train": {"cv_folds": 3}}


def _study(kind: str = "classify", epochs: int = 4) -> SimpleNamespace:
    return SimpleNamespace(config=SimpleNamespace(task=SimpleNamespace(kind=kind),
                                                  budget=SimpleNamespace(epochs=epochs)))


def test_the_unit_of_a_report_is_a_fold_a_repeat_an_epoch_or_an_evaluation():
    assert report_unit("classify", CV) == "fold"
    assert report_unit("classify", {"train": {"repeats": 3}}) == "repeat"
    assert report_unit("classify", {"train": {"cv_folds": 3, "repeats": 2}}) == "fold"
    assert report_unit("classify", {"train": {"repeats": 1, "epochs": 5}}) == report_unit("classify") == "epoch"
    assert report_unit("generate", {"train": {"repeats": 3}}) == "evaluation"


@pytest.mark.parametrize("train, epochs, said", [
    ({"cv_folds": 3}, 4, "{} of 3 folds"), ({"repeats": 3}, 4, "{} of 3 repeats"),
    ({"cv_folds": 5}, 2, "{} of 5 folds"),   # more runs than epochs: one step per run
    ({"cv_folds": 2, "repeats": 2}, 20, "{} of 4 folds (2 folds x 2 repeats)")])
def test_a_step_of_a_trial_of_repeated_runs_is_counted_back_in_runs(train, epochs, said):
    """Each run's step, as classify reports it (progress_steps of the runs and budget.epochs), names that run."""
    runs = (train.get("cv_folds") or 1) * train.get("repeats", 1)
    step_of = progress_steps(runs, epochs)
    for run in range(runs):
        assert reports_said(_study(epochs=epochs), {"train": train}, step_of(run)) == said.format(run + 1)


def test_a_step_of_other_trials_is_counted_in_epochs_or_evaluations():
    assert reports_said(_study(), {"train": {"epochs": 9}}, 2) == "3 epoch(s)"
    assert reports_said(_study(), None, 0) == "1 epoch(s)"
    assert reports_said(_study("generate"), {}, 1) == "2 evaluation(s)"


def _cv_study_with_ray(write_study, grace: int, folds: int = 3, epochs: int = 1):
    train = f"{{batch_size: 128, epochs: {epochs}, cv_folds: {folds}, checkpoint: last}}"
    text = TINY_CLASSIFY.replace("  train: {batch_size: 128}\n", f"  train: {train}\n").replace("pruner: none\n", "")
    executor = f"\nexecutor: {{kind: ray, scheduler: {{kind: asha, grace_period: {grace}}}}}\n"
    return load_study(write_study(text + executor))


def test_a_grace_period_past_the_folds_the_scheduler_judges_names_folds(write_study):
    """A 3-fold trial reports to the scheduler after its second fold only (not after its first, one fold is
    noise, nor its last): grace_period 2 stopped no trial and was taken; 3 was refused as "2 epochs"."""
    pytest.importorskip("ray")
    with pytest.raises(ConfigError) as caught:
        _cv_study_with_ray(write_study, 2)
    assert re.search(r"executor\.scheduler\.grace_period: the scheduler judges at most 1 fold of the longest trial "
                     r"\(space\.train\.cv_folds x space\.train\.repeats: 3; the first and last are not judged: one "
                     r"run is noise, after the last, the trial has finished\): no trial could ever be stopped \(got "
                     r"2\)\. Fix: grace_period: 1 or less, or train longer \(space\.train\.cv_folds x "
                     r"space\.train\.repeats: 4 or more\)", str(caught.value))
    assert "epoch" not in str(caught.value)
    _cv_study_with_ray(write_study, 1)


def test_a_grace_period_of_trials_that_all_cross_validate_counts_folds_however_many_epochs(write_study):
    """3 folds under budget.epochs 5: the longest trial was measured as 5 epochs, so grace_period 2 to 4 were
    taken, and no such trial could be stopped (a scheduler judges one report of it)."""
    pytest.importorskip("ray")
    with pytest.raises(ConfigError, match=r"judges at most 1 fold of the longest trial"):
        _cv_study_with_ray(write_study, 2, epochs=5)


def _all_pruned(config: dict, capsys, why: str = "pruned by the pruner after 2 of 3 folds, at auc=0.6000") -> str:
    ostudy = optuna.create_study()
    for _ in range(2):
        ostudy.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, user_attrs={
            "pruned": why, "config": config}))
    result = SimpleNamespace(study=ostudy, seconds=1.0, interrupted=False, trials_before=0, trials_finished=2)
    print_run_summary(_fake_study("classify", scheduler=None), result, exported=None)
    return capsys.readouterr().out


def test_all_trials_of_repeated_runs_pruned_are_told_to_run_fewer_runs_not_more_epochs(capsys):
    out = _all_pruned(CV, capsys)
    assert ("fewer runs per trial (space.train.cv_folds x space.train.repeats: at 2 none is judged, neither the first "
            "run nor the last) or a gentler pruner lets some finish") in out
    assert "more epochs" not in out
    assert "more epochs or a gentler pruner" in _all_pruned({"train": {"epochs": 3}}, capsys)


def test_trials_budget_timeout_cut_are_not_told_of_a_pruner(capsys):
    """pruner: none, and the advice was "... or a gentler pruner lets some finish"."""
    out = _all_pruned(CV, capsys, why="stopped by budget.timeout after 2 of 3 runs: not comparable")
    assert "2 of 2 pruned trials were stopped by budget.timeout (e.g. trial 0: stopped by budget.timeout after 2" in out
    assert "a longer budget.timeout, or shorter trials, lets some finish" in out and "pruner" not in out


def test_a_cv_trial_the_pruner_stops_says_after_how_many_folds(write_study, monkeypatch):
    from searchlab.engine import worker
    from searchlab.engine.run import run_study

    monkeypatch.setattr(worker, "build_pruner", lambda cfg, epochs: optuna.pruners.ThresholdPruner(lower=2.0))
    train = "{batch_size: 128, epochs: 1, cv_folds: 3, checkpoint: last}"
    text = TINY_CLASSIFY.replace("  train: {batch_size: 128}\n", f"  train: {train}\n")
    [pruned] = run_study(load_study(write_study(text), {"budget.epochs": 4, "budget.n_trials": 1}),
                         progress=False).study.trials
    assert list(pruned.intermediate_values) == [0, 2]   # after folds 1 and 2, on the epoch scale
    assert pruned.user_attrs["pruned"].startswith("pruned by the pruner after 2 of 3 folds, at auc=")


def test_a_cv_trial_the_ray_scheduler_stops_says_after_how_many_folds():
    pytest.importorskip("ray")
    from searchlab.engine.ray_executor import tell_outcome
    from searchlab.engine.ray_worker import EPOCH

    ostudy = optuna.create_study()
    trial = ostudy.ask()
    trial.set_user_attr("config", CV)
    study = _fake_study("classify")
    study.config.budget.epochs = 4
    frozen = tell_outcome(ostudy, trial, {EPOCH: 2}, error=False, study=study)
    assert frozen.user_attrs["pruned"] == "stopped by the Ray asha scheduler after 2 of 3 folds"
