"""Record many finished trials in one storage write: thousands of proxy-scored candidates (Zen-NAS) per study.

Optuna's `study.add_trials` adds trials one by one, each its own transaction with several queries: 20-200 ms
per trial on SQLite depending on the disk, so 5,000 proxy trials would cost minutes of pure I/O. Optuna has no
public batch insert, so for RDB storages (SQLite, PostgreSQL) we write the rows of all trials as Optuna's own
ORM models in one session and one commit (~10x cheaper per trial; bench/proxy_recording.py). This uses private
Optuna internals; the test suite checks that what it writes reads back exactly as `add_trials` writes it.
A journal file appends one small record per trial (~1-20 ms) and other storages are in memory: both take
`add_trials` as is.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import distribution_to_json
from optuna.storages import RDBStorage
from optuna.storages._cached_storage import _CachedStorage
from optuna.trial import FrozenTrial
from sqlalchemy import func


def bulk_add_trials(study: optuna.Study, trials: Sequence[FrozenTrial]) -> str:
    """Add finished trials to `study` in one write where the storage allows; returns the path taken."""
    if not trials:
        return "none"
    storage = study._storage
    if isinstance(storage, _CachedStorage):   # Optuna's cache in front of an RDB storage
        storage = storage._backend
    if isinstance(storage, RDBStorage):
        _rdb_batch(storage, study._study_id, trials)
        return "rdb-batch"
    study.add_trials(trials)
    return "one-by-one"


def _rdb_batch(storage: RDBStorage, study_id: int, trials: Sequence[FrozenTrial]) -> None:
    """All rows as ORM objects in one session: SQLAlchemy sends each table's rows as one multi-row insert."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    for trial in trials:
        trial._validate()
    with _create_scoped_session(storage.scoped_session) as session:
        models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)   # trial numbers stay unique
        first = session.query(func.count(models.TrialModel.trial_id)).filter(
            models.TrialModel.study_id == study_id).scalar()
        session.add_all([_trial_row(models, study_id, first + i, trial) for i, trial in enumerate(trials)])


def _trial_row(models: Any, study_id: int, number: int, trial: FrozenTrial) -> Any:
    row = models.TrialModel(number=number, study_id=study_id, state=trial.state, datetime_start=trial.datetime_start,
                            datetime_complete=trial.datetime_complete)
    row.params = [models.TrialParamModel(param_name=name, param_value=dist.to_internal_repr(trial.params[name]),
                                         distribution_json=distribution_to_json(dist))
                  for name, dist in trial.distributions.items()]
    values = trial.values or []
    row.values = [models.TrialValueModel(objective=i, **_stored(models.TrialValueModel.value_to_stored_repr(v)))
                  for i, v in enumerate(values)]
    row.user_attributes = [models.TrialUserAttributeModel(key=k, value_json=json.dumps(v))
                           for k, v in trial.user_attrs.items()]
    row.system_attributes = [models.TrialSystemAttributeModel(key=k, value_json=json.dumps(v))
                             for k, v in trial.system_attrs.items()]
    row.intermediate_values = [
        models.TrialIntermediateValueModel(step=step, **_stored_intermediate(models, v))
        for step, v in trial.intermediate_values.items()]
    return row


def _stored(repr_: tuple[float | None, Any]) -> dict[str, Any]:
    return {"value": repr_[0], "value_type": repr_[1]}


def _stored_intermediate(models: Any, value: float) -> dict[str, Any]:
    stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
    return {"intermediate_value": stored, "intermediate_value_type": kind}
