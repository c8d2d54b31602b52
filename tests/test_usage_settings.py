"""Settings that cannot act are said, and the start warnings about threads say what will run.

Audit: `train: {checkpoint: last, early_stopping: 3}` (last keeps every epoch, so the patience never runs out),
`cv_model` without `cv_folds` and `channels_last` on the row RNN were silent; `workers: 4, threads_per_worker: 8`
on 2 cores was told "one torch thread each", and 2 workers x 4 threads on 2 cores was not told at all.
"""
from __future__ import annotations

from types import SimpleNamespace

import optuna
import pytest

from searchlab.config.load import load_study
from searchlab.config.schema import ExecutorConfig
from searchlab.config.yamlsrc import parse_yaml
from searchlab.engine import run as run_module
from searchlab.space import compile_space, sample_config
from searchlab.space.unused import describe, unused_settings
from searchlab.tasks import get_task
from searchlab.tasks.classify_usage import classify_setting_used, setting_default
from test_run import TINY_CLASSIFY

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _unused(space_text: str) -> dict[str, str]:
    space = compile_space(parse_yaml(f"space:\n{space_text}", "inline.yaml"), ("space",))
    return {u.path: describe(u, setting_default) for u in unused_settings(space, classify_setting_used)}


@pytest.mark.parametrize("space_text, path, given", [
    ("  train: {checkpoint: last, early_stopping: 3}\n", "train.early_stopping", "train.checkpoint: 'last'"),
    ("  train: {checkpoint: last, early_stopping: {int: [2, 5]}}\n", "train.early_stopping",
     "train.checkpoint: 'last'"),
    ("  train: {cv_model: refit}\n", "train.cv_model", "train.cv_folds: None (default)"),
    ("  model: {kind: rnn}\n  train: {channels_last: true}\n", "train.channels_last", "model.kind: 'rnn'"),
])
def test_a_setting_its_other_settings_leave_without_effect_is_reported(space_text, path, given):
    said = _unused(space_text)
    assert list(said) == [path]
    assert said[path].startswith(f"space.{path} (") and f"has no effect in any trial of this space, given {given};" \
        in said[path] and "Fix: remove it" in said[path]


@pytest.mark.parametrize("space_text", [
    "  train: {checkpoint: best, early_stopping: 3}\n",
    "  train: {early_stopping: 3}\n",                                       # best, the default
    "  train: {checkpoint: {choice: [best, last]}, early_stopping: 3}\n",   # some trials stop early
    "  train: {cv_model: refit, cv_folds: 5}\n",
    "  train: {cv_model: {choice: [refit, bag]}, cv_folds: {choice: [3, 5]}}\n",
    "  model: {kind: cnn}\n  train: {channels_last: true}\n",
    "  model: {kind: {choice: [rnn, cnn]}}\n  train: {channels_last: true}\n",
])
def test_a_setting_some_trial_uses_is_not_reported(space_text):
    assert _unused(space_text) == {}


def test_early_stopping_is_not_drawn_for_a_trial_that_keeps_its_last_epoch():
    space = compile_space(parse_yaml("space:\n  train: {checkpoint: {choice: [best, last]}, early_stopping: "
                                     "{int: [2, 5]}}\n", "inline.yaml"), ("space",))
    for checkpoint, drawn in (("last", {"train.checkpoint"}), ("best", {"train.checkpoint", "train.early_stopping"})):
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
        study.enqueue_trial({"train.checkpoint": checkpoint})
        trial = study.ask()
        sample_config(trial, space, classify_setting_used)
        assert set(trial.params) == drawn


def test_early_stopping_beside_checkpoint_last_is_warned_of_when_the_run_starts(write_study, capsys):
    text = TINY_CLASSIFY.replace("train: {batch_size: 128}", "train: {batch_size: 128, checkpoint: last, "
                                 "early_stopping: 3}")
    study = load_study(write_study(text))
    get_task(study.config.task).prepare(study)
    assert "warning: space.train.early_stopping (3) has no effect in any trial of this space, given " \
           "train.checkpoint: 'last'" in capsys.readouterr().err


def _local(**executor) -> ExecutorConfig:
    return ExecutorConfig(kind="local", **executor)


@pytest.mark.parametrize("executor, said", [
    ({"workers": 4, "threads_per_worker": 8},
     "executor.workers=4 x executor.threads_per_worker=8 on 2 cores: 4 trial(s) at once with 8 torch thread(s) "
     "each, 32 threads on 2 cores; the threads beyond the cores take turns on them, so each trial runs slower than "
     "with one thread per core. Fix: workers: 2, and leave threads_per_worker out"),
    ({"workers": 2, "threads_per_worker": 4},
     "executor.workers=2 x executor.threads_per_worker=4 on 2 cores: 2 trial(s) at once with 4 torch thread(s) "
     "each, 8 threads on 2 cores; the threads beyond the cores take turns on them, so each trial runs slower than "
     "with one thread per core. Fix: threads_per_worker: 1, or leave it out (cores // workers)"),
    ({"threads_per_worker": 3}, "executor.workers=1 x executor.threads_per_worker=3 on 2 cores: 1 trial(s) at "
     "once with 3 torch thread(s) each, 3 threads on 2 cores; "),
    ({"workers": 3}, "executor.workers=3 on 2 cores: 3 trial(s) at once with 1 torch thread(s) each, 3 threads on "
     "2 cores; the threads beyond the cores take turns on them, so each trial runs slower than with one thread per "
     "core. Fix: workers: 2"),
])
def test_local_threads_beyond_the_cores_are_said_with_their_numbers_and_fix(executor, said):
    found = run_module._local_threads_over_cores(_local(**executor), cores=2)
    assert found is not None and found.startswith(said)
    if "threads_per_worker" not in executor:
        assert found.endswith("Fix: workers: 2")   # no threads_per_worker to leave out


@pytest.mark.parametrize("executor", [{}, {"workers": 2}, {"threads_per_worker": 2}, {"workers": 2,
                                                                                      "threads_per_worker": 1}])
def test_local_threads_within_the_cores_are_not_warned_of(executor):
    assert run_module._local_threads_over_cores(_local(**executor), cores=2) is None


def test_the_start_warning_is_printed_for_a_local_executor(monkeypatch, capsys):
    monkeypatch.setattr(run_module, "usable_cores", lambda: 2)
    study = SimpleNamespace(config=SimpleNamespace(executor=_local(workers=4, threads_per_worker=8)))
    run_module._warn_if_oversubscribed(study)
    err = capsys.readouterr().err
    assert err.startswith("warning: executor.workers=4 x executor.threads_per_worker=8 on 2 cores") and \
        "one torch thread each" not in err
