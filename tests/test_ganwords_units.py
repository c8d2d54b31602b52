"""A GAN trial reports at its evaluations (checkpoints of train.iterations) and has no epochs: the Ray
scheduler's stop reason, the grace_period check and the all-pruned advice said "epochs" for it."""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from searchlab.config.load import load_study
from searchlab.config.schema import ExportConfig
from searchlab.errors import ConfigError
from searchlab.summary import print_run_summary
from test_gan_scoring import STUDY

GAN = STUDY.replace("conditional: true", "conditional: false")   # train: {iterations: 40, evaluations: 2}


def _fake_study(task: str, scheduler: str | None = "asha") -> SimpleNamespace:
    """What the tell path and the summary read of a study: its task kind, scheduler, name, budget, export."""
    return SimpleNamespace(
        config=SimpleNamespace(name="s", task=SimpleNamespace(kind=task), budget=SimpleNamespace(n_trials=2),
                               export=ExportConfig(),
                               executor=SimpleNamespace(scheduler=scheduler and SimpleNamespace(kind=scheduler))),
        run_dir=Path("runs/s"), storage_url="sqlite:///runs/s/study.db")


@pytest.mark.parametrize("task, unit", [("generate", "evaluation"), ("classify", "epoch")])
def test_a_trial_the_ray_scheduler_stopped_counts_the_reports_of_its_task(task, unit):
    """The Optuna pruner said "after 2 evaluation(s)" of a GAN trial, the Ray scheduler "after 2 epoch(s)"."""
    pytest.importorskip("ray")
    from searchlab.engine.ray_executor import tell_outcome
    from searchlab.engine.ray_worker import EPOCH

    ostudy = optuna.create_study()
    trial = ostudy.ask()
    frozen = tell_outcome(ostudy, trial, {EPOCH: 1}, error=False, study=_fake_study(task))
    assert frozen.state == optuna.trial.TrialState.PRUNED
    assert frozen.user_attrs["pruned"] == f"stopped by the Ray asha scheduler after 2 {unit}(s)"


@pytest.mark.parametrize("task, unit", [("generate", "evaluation"), ("classify", "epoch")])
def test_the_workers_report_to_the_scheduler_counts_the_reports_of_its_task(monkeypatch, task, unit):
    """ray_worker._run_trial hands the task a report hook whose stop names the task's unit."""
    pytest.importorskip("ray")
    from ray import tune

    import searchlab.engine.objective as objective_module
    import searchlab.engine.ray_worker as worker

    hooks = []

    def make_objective(study, task_, artifacts, deadline, on_epoch=None):
        hooks.append(on_epoch)
        return lambda trial: 1.0

    def stopped(result):   # how Tune ends a function trial its scheduler stops
        raise SystemExit(0)

    monkeypatch.setattr(objective_module, "make_objective", make_objective)
    monkeypatch.setattr(worker, "_actor_state", lambda study: SimpleNamespace(task=None, artifacts=None))
    monkeypatch.setattr(worker, "_started_trial", lambda actor, trial_id: SimpleNamespace(params={}, user_attrs={}))
    monkeypatch.setattr(tune, "report", stopped)
    study = _fake_study(task)
    study.config.budget.trial_timeout = None
    assert worker._run_trial({"trial_id": 0}, study, deadline=None)["searchlab_state"] == "COMPLETE"
    with pytest.raises(worker.StoppedByScheduler, match=rf"^stopped by the Ray scheduler after 2 {unit}\(s\)$"):
        hooks[0](1, 0.5)


def test_a_grace_period_past_a_gans_evaluations_names_evaluations_not_epochs(write_study):
    pytest.importorskip("ray")
    text = GAN.replace("pruner: none\n", "") + "\nexecutor: {kind: ray, scheduler: {kind: asha, grace_period: 3}}\n"
    with pytest.raises(ConfigError) as caught:
        load_study(write_study(text))
    assert re.search(r"executor\.scheduler\.grace_period: the scheduler judges at most 1 evaluation of the longest "
                     r"trial \(space\.train\.evaluations: 2; the last is not judged, the trial has finished\): no "
                     r"trial could ever be stopped \(got 3\)\. Fix: grace_period: 1 or less, or train longer "
                     r"\(space\.train\.evaluations: 4 or more\)", str(caught.value))
    assert "epoch" not in str(caught.value)


def _all_pruned_summary(task: str, capsys) -> str:
    ostudy = optuna.create_study()
    for _ in range(2):
        ostudy.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, user_attrs={
            "pruned": "pruned by the pruner after 1 evaluation(s), at medfid=90.0000"}))
    result = SimpleNamespace(study=ostudy, seconds=1.0, interrupted=False, trials_before=0, trials_finished=2)
    print_run_summary(_fake_study(task, scheduler=None), result, exported=None)
    return capsys.readouterr().out


def test_a_gan_study_all_pruned_is_told_to_train_more_iterations_not_more_epochs(capsys):
    out = _all_pruned_summary("generate", capsys)
    assert "no trial completed: every finished trial was pruned" in out
    assert ("more space.train.iterations, fewer space.train.evaluations (at 1 none is judged before the trial "
            "ends) or a gentler pruner lets some finish") in out
    assert "epoch" not in out
    assert "more epochs or a gentler pruner lets some finish" in _all_pruned_summary("classify", capsys)
