"""executor.scheduler: Ray's scheduler classes driven directly, as Tune calls them (no Ray cluster is started)."""
from __future__ import annotations

import re

import pytest

pytest.importorskip("ray")

from ray.tune.schedulers import TrialScheduler  # noqa: E402

from searchlab.config.load import load_study  # noqa: E402
from searchlab.engine.ray_executor import build_scheduler  # noqa: E402
from searchlab.engine.ray_worker import METRIC, STATE, VALUES  # noqa: E402
from searchlab.errors import ConfigError, SearchlabError  # noqa: E402
from test_run import TINY_CLASSIFY, callable_study  # noqa: E402

IT = "training_iteration"   # what Tune counts each report as, the schedulers' time_attr


class _Trial:
    """What the schedulers read of a Tune trial."""

    def __init__(self, trial_id: str, status: str = "RUNNING") -> None:
        self.trial_id, self.status = trial_id, status


class _Controller:
    """Tune's controller as the median rule asks it: the live trials, some waiting to start."""

    def __init__(self, waiting: int = 0) -> None:
        self.waiting = [_Trial(f"waiting{i}", "PENDING") for i in range(waiting)]

    def get_live_trials(self) -> list[_Trial]:
        return self.waiting


def _callable_with(write_study, executor: str, budget: str = "budget: {n_trials: 4, epochs: 20}") -> object:
    text = callable_study(write_study, n=4).read_text().replace("pruner: none\n", "")
    return load_study(write_study(text.replace("budget: {n_trials: 4}\n", "") + f"\n{budget}\n{executor}\n"))


def _classify_with(write_study, train: str, scheduler: str = "asha") -> object:
    text = TINY_CLASSIFY.replace("  train: {batch_size: 128}\n", f"  train: {train}\n").replace("pruner: none\n", "")
    text = text.replace("budget: {n_trials: 2, epochs: 2}", "budget: {n_trials: 2, epochs: 20}")
    return load_study(write_study(text + f"\nexecutor: {{kind: ray, scheduler: {scheduler}}}\n"))


def _run_epochs(scheduler, controller, trial, losses, first: int = 1) -> list[str]:
    """Each epoch's report (Tune numbers them from 1) and what the scheduler decides on it."""
    return [scheduler.on_trial_result(controller, trial, {IT: it, METRIC: loss})
            for it, loss in enumerate(losses, start=first)]


def _end(scheduler, controller, trial, epochs: int, state: str = "COMPLETE") -> None:
    """The trial's last report, its outcome (ray_worker.ray_trial): no metric, one iteration past its epochs."""
    scheduler.on_trial_complete(controller, trial, {IT: epochs + 1, STATE: state, VALUES: "[0.2]", "done": True})


# ---------------------------------------------------------------- the median rule
def test_the_median_rule_goes_on_judging_after_trials_of_other_lengths_ended_with_their_outcome(write_study):
    """Ray's rule kept each trial's outcome report and later read the metric from it: a KeyError that ended
    the whole run once trials stopped early (train.early_stopping) or failed."""
    median = build_scheduler(_callable_with(write_study, "executor: {kind: ray, scheduler: median}"))
    controller = _Controller()
    for i, epochs in enumerate((5, 5, 3)):   # two trained 5 epochs, one stopped early after 3
        finished = _Trial(f"done{i}")
        median.on_trial_add(controller, finished)
        _run_epochs(median, controller, finished, [0.2] * epochs)
        _end(median, controller, finished, epochs)
    failed = _Trial("failed")   # a trial whose code raised: its outcome FAIL after one epoch
    median.on_trial_add(controller, failed)
    _run_epochs(median, controller, failed, [0.3])
    _end(median, controller, failed, 1, state="FAIL")

    better, worse = _Trial("better"), _Trial("worse")
    for trial in (better, worse):
        median.on_trial_add(controller, trial)
    assert set(_run_epochs(median, controller, better, [0.1] * 8)) == {TrialScheduler.CONTINUE}
    assert _run_epochs(median, controller, worse, [0.9]) == [TrialScheduler.STOP]   # worse than the median


def test_the_median_rule_never_pauses_a_trial_while_others_wait(write_study):
    """Too few trials at an epoch yet and others pending: Ray paused the trial, and a function trainable
    without Tune checkpoints restarts from epoch 0 when resumed. It goes on instead."""
    median = build_scheduler(_callable_with(write_study, "executor: {kind: ray, scheduler: median}"))
    controller, first = _Controller(waiting=2), _Trial("first")
    median.on_trial_add(controller, first)
    assert set(_run_epochs(median, controller, first, [0.5] * 3)) == {TrialScheduler.CONTINUE}


# ---------------------------------------------------------------- asha / hyperband: max_t
@pytest.mark.parametrize("train, longest", [
    ("{batch_size: 128, epochs: {int: [10, 40]}}", 40),     # searched above budget.epochs (20)
    ("{batch_size: 128, epochs: 40}", 40),                  # fixed above it
    ("{batch_size: 128, epochs: {choice: [5, 30]}}", 30),
    ("{batch_size: 128, cv_folds: 5, repeats: {int: [1, 6]}}", 30),   # one report per run: up to 5 x 6
    ("{batch_size: 128}", 20),                              # budget.epochs
    ("{batch_size: 128, epochs: 5}", 5),                    # every trial trains 5: no rung past them
])
def test_asha_max_t_is_past_the_longest_trial_the_space_allows(write_study, train, longest):
    asha = build_scheduler(_classify_with(write_study, train))
    assert asha._max_t == longest + 1


@pytest.mark.parametrize("kind", ["asha", "{kind: hyperband, brackets: 2}"])
def test_the_best_trial_training_more_than_budget_epochs_is_never_stopped(write_study, kind):
    """max_t sized by budget.epochs stopped every trial of a larger train.epochs there: even the best, PRUNED."""
    scheduler = build_scheduler(_classify_with(write_study, "{batch_size: 128, epochs: {int: [10, 40]}}", kind))
    controller, best = _Controller(), _Trial("best")
    scheduler.on_trial_add(controller, best)
    # 40 epochs, the last one not judged (ray_worker reports it as the outcome): auc improving all along
    decisions = _run_epochs(scheduler, controller, best, [0.5 + epoch / 100 for epoch in range(39)])
    assert set(decisions) == {TrialScheduler.CONTINUE}


# ---------------------------------------------------------------- grace_period
@pytest.mark.parametrize("kind", ["asha", "hyperband", "median"])
@pytest.mark.parametrize("grace", [20, 30])
def test_a_grace_period_past_the_longest_trial_is_refused_at_load_naming_it_and_the_fix(write_study, kind, grace):
    """asha and hyperband asserted it once Ray had started; the median rule took it and stopped nothing (at 20,
    the budget's epochs, too: a trial's last epoch is not judged, it has finished)."""
    with pytest.raises(ConfigError) as caught:
        _callable_with(write_study, f"executor: {{kind: ray, scheduler: {{kind: {kind}, grace_period: {grace}}}}}")
    assert re.search(r"study\.yaml:\d+: executor\.scheduler\.grace_period: the scheduler judges at most 19 epochs "
                     r"of the longest trial \(budget\.epochs: 20; the last is not judged, the trial has finished\): "
                     rf"no trial could ever be stopped \(got {grace}\)\. Fix: grace_period: 19 or less, or train "
                     rf"longer \(budget\.epochs: {grace + 1} or more\)", str(caught.value))
    _callable_with(write_study, f"executor: {{kind: ray, scheduler: {{kind: {kind}, grace_period: 19}}}}")


def test_a_grace_period_within_the_spaces_train_epochs_is_taken(write_study):
    asha = build_scheduler(_classify_with(write_study, "{batch_size: 128, epochs: 40}",
                                          "{kind: asha, grace_period: 30}"))
    assert asha._max_t == 41


# ---------------------------------------------------------------- keys of another kind
@pytest.mark.parametrize("scheduler, key, kinds", [
    ("{kind: median, reduction_factor: 2, brackets: 5}", "reduction_factor", "asha or hyperband"),
    ("{kind: median, brackets: 5}", "brackets", "hyperband"),
    ("{kind: asha, brackets: 4}", "brackets", "hyperband"),
])
def test_a_key_the_scheduler_kind_does_not_take_is_refused(write_study, scheduler, key, kinds):
    with pytest.raises(SearchlabError, match=rf"executor\.scheduler\.{key}: {key} is a setting of kind {kinds} only"
                                             rf".*Fix: remove {key}, or use kind: {kinds}"):
        _callable_with(write_study, f"executor: {{kind: ray, scheduler: {scheduler}}}")


@pytest.mark.parametrize("scheduler", ["{kind: hyperband, brackets: 4, reduction_factor: 2}",
                                       "{kind: asha, reduction_factor: 2, grace_period: 2}",
                                       "{kind: median, grace_period: 2}", "median"])
def test_the_keys_of_the_kind_are_taken(write_study, scheduler):
    study = _callable_with(write_study, f"executor: {{kind: ray, scheduler: {scheduler}}}")
    assert build_scheduler(study) is not None


def test_the_setup_record_says_the_ray_scheduler_stopped_trials_not_the_default_pruner(write_study):
    """With a scheduler the worker prunes nothing (ray_worker._open), yet `status` and the export's
    config.json said "pruner median", the default of a study file that names no pruner."""
    from searchlab.engine.setup_record import search_setup
    from searchlab.engine.setup_said import describe_setup

    setup = search_setup(_callable_with(write_study, "executor: {kind: ray, scheduler: asha}"))
    assert setup["pruner"] == {"kind": "none", "args": {}, "ray_scheduler": "asha"}
    assert "pruner none (Ray scheduler asha), " in describe_setup(setup)
    old = {**setup, "pruner": {"kind": "median", "args": {}}}   # recorded before this was said
    assert "pruner none (Ray scheduler asha), " in describe_setup(old) and "median" not in describe_setup(old)
    setup = search_setup(_callable_with(write_study, "executor: {kind: ray}\npruner: median"))
    assert setup["pruner"] == {"kind": "median", "args": {}} and "pruner median, " in describe_setup(setup)
    assert "ray, max_concurrent none" in describe_setup(setup)   # "ray xall": as many as the cluster's slots


def test_a_grace_period_refused_for_one_epoch_trials_is_told_to_train_longer_only():
    """With 1-epoch trials the fix offered `grace_period: 1 or less`, the value just refused (it is at least 1)."""
    from searchlab.engine.ray_schedule import check_grace_period

    with pytest.raises(ConfigError) as caught:
        check_grace_period(1, 1, "budget.epochs")
    assert str(caught.value).endswith("Fix: train longer (budget.epochs: 2 or more)")
