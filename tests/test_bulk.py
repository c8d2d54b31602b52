"""Bulk recording of finished trials: the same trials as Optuna's add_trials writes them, in one write."""
from __future__ import annotations

import math

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from searchlab.engine.bulk import bulk_add_trials
from searchlab.engine.storage import open_storage

DISTS = {"x": FloatDistribution(1e-4, 1.0, log=True), "n": IntDistribution(1, 9, step=2),
         "op": CategoricalDistribution(["sep_conv_3x3", "none", None, 2])}


def finished(i: int, directions: int = 1) -> optuna.trial.FrozenTrial:
    params = {"x": 10 ** -(i % 4), "n": 1 + 2 * (i % 5), "op": ["sep_conv_3x3", "none", None, 2][i % 4]}
    state = [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL][i % 3]
    values = None
    if state == TrialState.COMPLETE:
        values = [float(i), -math.inf if i % 2 else 0.5][:directions] if directions > 1 else [math.inf if i == 3 else i / 7]
    return create_trial(state=state, params=params, distributions=DISTS, values=values,
                        user_attrs={"zen": i * 0.5, "arch": f"net {i}", "nested": {"a": [1, 2]}},
                        system_attrs={"proxy": True}, intermediate_values={0: 0.1 * i, 3: -math.inf})


def _fields(trial: optuna.trial.FrozenTrial) -> tuple:
    return (trial.number, trial.state, trial.values, trial.params, trial.distributions, trial.user_attrs,
            trial.system_attrs, trial.intermediate_values, trial.datetime_start, trial.datetime_complete)


@pytest.mark.parametrize("directions", [1, 2])
def test_bulk_rows_read_back_exactly_as_add_trials_writes_them(tmp_path, directions):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    storage = open_storage(url)
    dirs = ["maximize", "minimize"][:directions]
    slow = optuna.create_study(storage=storage, study_name="slow", directions=dirs)
    fast = optuna.create_study(storage=storage, study_name="fast", directions=dirs)
    existing = finished(0, directions)
    for study in (slow, fast):
        study.add_trial(existing)   # an existing trial: numbers must continue after it
    trials = [finished(i, directions) for i in range(1, 40)]
    slow.add_trials(trials)
    assert bulk_add_trials(fast, trials) == "rdb-batch"
    reread = optuna.load_study(study_name="fast", storage=open_storage(url))
    for study in (fast, reread):   # the same Study object, and a fresh reader
        assert [_fields(t) for t in study.trials] == [_fields(t) for t in slow.trials]
    assert [t.number for t in reread.trials] == list(range(40))


def test_other_storages_take_add_trials(tmp_path):
    journal = optuna.create_study(storage=open_storage(f"journal://{tmp_path / 'j.log'}"))
    assert bulk_add_trials(journal, [finished(i) for i in range(5)]) == "one-by-one"
    assert len(journal.trials) == 5
    assert bulk_add_trials(optuna.create_study(), []) == "none"
