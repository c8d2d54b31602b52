"""Record many finished trials in one storage write: thousands of proxy-scored candidates (Zen-NAS) per study.

Optuna's `study.add_trials` adds trials one by one, each its own transaction with several queries: 20-200 ms
per trial on SQLite depending on the disk, so 5,000 proxy trials would cost minutes of pure I/O. Optuna has no
public batch insert, so for RDB storages (SQLite, PostgreSQL) we write all trials into Optuna's own tables in one
transaction, one multi-row insert per table (bench/proxy_recording.py). This uses private Optuna internals;
the test suite checks that what it writes reads back exactly as `add_trials` writes it.
A journal file appends one small record per trial (~1-20 ms) and other storages are in memory: both take
`add_trials` as is. The study's user attrs given with the trials (a stage's STATE, nas/stage.py) are set in the
same transaction on an RDB storage: a kill leaves both written or neither.
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
from sqlalchemy import func, insert, select


def bulk_add_trials(study: optuna.Study, trials: Sequence[FrozenTrial],
                    study_attrs: dict[str, Any] | None = None) -> str:
    """Add finished trials to `study` in one write where the storage allows, and set the study's user attrs
    `study_attrs` with them; returns the path taken."""
    study_attrs = study_attrs or {}
    storage = study._storage
    if isinstance(storage, _CachedStorage):   # Optuna's cache in front of an RDB storage
        storage = storage._backend
    if isinstance(storage, RDBStorage):
        if trials or study_attrs:
            _rdb_batch(storage, study._study_id, trials, study_attrs)
        return "rdb-batch" if trials else "none"
    study.add_trials(trials)
    for key, value in study_attrs.items():
        study.set_user_attr(key, value)
    return "one-by-one" if trials else "none"


def _rdb_batch(storage: RDBStorage, study_id: int, trials: Sequence[FrozenTrial],
               study_attrs: dict[str, Any]) -> None:
    """The trials' rows, then each child table's rows, as one multi-row insert per table, and the study's user
    attrs, in one transaction.

    Core inserts, not ORM objects: the ORM's unit of work costs ~50 us per row, and a deepmad stage's ~6,000
    designs of ~25 rows each took ~20 s to write, longer than a container's stop grace (10 s) after Ctrl-C."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    for trial in trials:
        trial._validate()
    with _create_scoped_session(storage.scoped_session) as session:
        study = models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)   # numbers stay unique
        if trials:
            _insert_trials(models, session, study_id, trials)
        for key, value in study_attrs.items():   # as Optuna's set_study_user_attr writes them
            attribute = models.StudyUserAttributeModel.find_by_study_and_key(study, key, session)
            if attribute is None:
                session.add(models.StudyUserAttributeModel(study_id=study_id, key=key, value_json=json.dumps(value)))
            else:
                attribute.value_json = json.dumps(value)


def _insert_trials(models: Any, session: Any, study_id: int, trials: Sequence[FrozenTrial]) -> None:
    """The trials' rows, numbered on from the study's last, then their child tables' rows."""
    first = session.query(func.count(models.TrialModel.trial_id)).filter(
        models.TrialModel.study_id == study_id).scalar()
    session.execute(insert(models.TrialModel.__table__), [
        {"number": first + i, "study_id": study_id, "state": t.state, "datetime_start": t.datetime_start,
         "datetime_complete": t.datetime_complete} for i, t in enumerate(trials)])
    ids = dict(session.execute(select(models.TrialModel.number, models.TrialModel.trial_id).where(
        models.TrialModel.study_id == study_id, models.TrialModel.number >= first)).all())
    for model, rows in _child_rows(models, [(ids[first + i], t) for i, t in enumerate(trials)]):
        if rows:
            session.execute(insert(model.__table__), rows)


def _child_rows(models: Any, trials: list[tuple[int, FrozenTrial]]) -> list[tuple[Any, list[dict[str, Any]]]]:
    """Each child table's rows of the trials (by their trial_id), as Optuna's own storage writes them."""
    return [
        (models.TrialParamModel, [
            {"trial_id": id_, "param_name": name, "param_value": dist.to_internal_repr(t.params[name]),
             "distribution_json": distribution_to_json(dist)}
            for id_, t in trials for name, dist in t.distributions.items()]),
        (models.TrialValueModel, [
            {"trial_id": id_, "objective": i, **_stored(models.TrialValueModel.value_to_stored_repr(v))}
            for id_, t in trials for i, v in enumerate(t.values or [])]),
        (models.TrialUserAttributeModel, [
            {"trial_id": id_, "key": k, "value_json": json.dumps(v)}
            for id_, t in trials for k, v in t.user_attrs.items()]),
        (models.TrialSystemAttributeModel, [
            {"trial_id": id_, "key": k, "value_json": json.dumps(v)}
            for id_, t in trials for k, v in t.system_attrs.items()]),
        (models.TrialIntermediateValueModel, [
            {"trial_id": id_, "step": step, **_stored_intermediate(models, v)}
            for id_, t in trials for step, v in t.intermediate_values.items()]),
    ]


def _stored(repr_: tuple[float | None, Any]) -> dict[str, Any]:
    return {"value": repr_[0], "value_type": repr_[1]}


def _stored_intermediate(models: Any, value: float) -> dict[str, Any]:
    stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
    return {"intermediate_value": stored, "intermediate_value_type": kind}
