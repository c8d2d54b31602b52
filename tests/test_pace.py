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
    assert "at the pace of one of its configs (cnn; measured now: " in err   # which one, to judge how typical
    assert "Trials past it are killed and fail" in err


def test_the_config_timed_is_one_that_trains_its_network():
    """A mixed transfer space whose first config was a `features` one (a head on cached features, which
    batches of the whole network do not time) was not estimated at all."""
    from searchlab.tasks.pace import config_said, timed_config

    def spec(transfer: str):
        return parse_trial_config({"model": {"kind": "cnn", "depth": 1, "width": 4, "weights": "w.safetensors",
                                             "transfer": transfer}}, None)

    assert config_said(timed_config([spec("features"), spec("cutoff")])) == "cnn, transfer cutoff"
    assert timed_config([spec("features")]) is None


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


def test_the_pace_is_the_steady_one_after_the_first_batches_warm_up(write_study, monkeypatch):
    """A fresh process's first batches are many times slower than the rest (a small CNN: 80-110 images/s for
    5 batches, then 640-900): timing the second batch over-estimated small nets 4-10x. Training and validation
    batches that are slow for their first calls, then fast, give the fast pace, in about the time allowed."""
    import time

    from searchlab.data import load_dataset
    from searchlab.space import probe_configs
    from searchlab.tasks import pace
    from searchlab.tasks.classify import make_batches, model_spec_for

    study = load_study(write_study(TINY_CLASSIFY))
    data = load_dataset(study.config.data, splits=("train", "val"), seed=0, base_dir=study.base_dir)
    spec = parse_trial_config(next(iter(probe_configs(study.space))), None)
    calls = {"train": 0, "val": 0}

    def slow_first(kind: str, slow: int, *_args, **_kwargs) -> None:
        calls[kind] += 1
        time.sleep(0.25 if calls[kind] <= slow else 0.01)

    monkeypatch.setattr(pace, "one_epoch", lambda *a, **k: slow_first("train", 4))
    monkeypatch.setattr(pace, "evaluate", lambda *a, **k: slow_first("val", 1))
    started = time.perf_counter()
    train_seconds, val_seconds = pace.measured_pace(make_batches(data), spec, model_spec_for(spec, data), 1)
    took = time.perf_counter() - started
    assert 0.01 <= train_seconds * 128 < 0.05 and 0.01 <= val_seconds * 78 < 0.05   # per batch: steady, not 0.25
    assert calls["train"] >= 10 and calls["val"] >= 5 and took < pace.TRAIN_SECONDS + pace.VAL_SECONDS + 1.5


def test_steady_seconds_times_a_slow_step_twice_and_a_fast_one_at_most_so_often():
    from searchlab.tasks.pace import steady_seconds

    times = iter([0.3, 0.2, 0.2, 0.2])
    calls = []

    def step() -> None:
        calls.append(1)
        __import__("time").sleep(next(times))

    assert 0.2 <= steady_seconds(step, budget=0.1) < 0.3 and len(calls) == 2   # over the budget: one timed call
    calls.clear()
    assert steady_seconds(lambda: calls.append(1), budget=10.0, most=7) < 0.001 and len(calls) == 7


def test_the_estimate_counts_the_synthetic_images_a_generator_adds(write_study):
    """20,000 generated images per class trained beside 546 real ones, and the estimate counted the real only:
    no warning, then every trial failed at budget.trial_timeout."""
    from searchlab.data import load_dataset
    from searchlab.tasks.classify import make_batches, model_spec_for
    from searchlab.tasks.pace import estimated_trial, trial_time_warning

    # 2 epochs of 20,546 images take over 0.05 s on any CPU (a quiet one did them within 0.5 s: no warning)
    text = TINY_CLASSIFY.replace("budget: {n_trials: 2, epochs: 2}",
                                 "budget: {n_trials: 2, epochs: 2, trial_timeout: 0.05}")
    study = load_study(write_study(text))
    data = load_dataset(study.config.data, splits=("train", "val"), seed=0, base_dir=study.base_dir)
    config = {"model": {"kind": "cnn", "depth": 1, "width": 4, "convs_per_stage": 1}, "train": {"batch_size": 128}}
    plain = parse_trial_config(config, None)
    added = parse_trial_config({**config, "augment": {"synthetic": "gen", "synthetic_per_class": 20000,
                                                      "synthetic_classes": "minority"}}, None)
    batches = make_batches(data)
    assert estimated_trial(study, batches, plain, model_spec_for(plain, data)).runs == [(546, 78)]
    assert estimated_trial(study, batches, added, model_spec_for(added, data)).runs == [(20546, 78)]
    said = trial_time_warning(study, batches, added, model_spec_for(added, data))
    assert "2 epochs of ~20546 training images (20000 of them synthetic)" in said
