"""Several processes opening one new storage at once (machines starting on one PostgreSQL study, a dashboard
opened as a run starts): every one gets the storage. Optuna creates a new database's schema by check-then-
create, so all but one used to fail on a table or version row another had just made."""
from __future__ import annotations

import multiprocessing as mp
import uuid

import optuna

from searchlab.engine.storage import open_storage

PROCESSES = 8
ROUNDS = 2   # before the fix, most rounds of 8 processes had all but one or two fail


def _open_when_all_are_ready(url: str, ready: mp.Barrier, outcomes: mp.Queue) -> None:
    ready.wait(timeout=120)   # a sibling that never started must not leave the others waiting for ever
    try:
        open_storage(url)
        outcomes.put("ok")
    except Exception as exc:   # the outcome is what the test checks; any error is a failure it shows
        outcomes.put(f"{type(exc).__name__}: {exc}")


def _open_at_once(url: str) -> list[str]:
    # forked from a server that imported the storage code once: no copy of the test process's threads and
    # connections (as with spawn), without 16 processes importing optuna and sqlalchemy each (~20 s on 2 cores)
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["optuna", "searchlab.engine.storage"])
    ready, outcomes = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=_open_when_all_are_ready, args=(url, ready, outcomes)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    results = [outcomes.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return results


def _usable(url: str) -> None:
    study = optuna.create_study(study_name="after", storage=open_storage(url))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name="after", storage=open_storage(url)).trials) == 2


def test_processes_opening_one_new_sqlite_file_at_once_all_get_it(tmp_path):
    for round_ in range(ROUNDS):
        url = f"sqlite:///{tmp_path / f'study{round_}.db'}"
        failures = [r for r in _open_at_once(url) if r != "ok"]
        assert failures == [], failures
        _usable(url)


def test_processes_opening_one_new_postgresql_database_at_once_all_get_it(postgres):
    import psycopg

    server, _ = postgres.rsplit("/", 1)
    for _ in range(ROUNDS):
        name = f"race_{uuid.uuid4().hex[:8]}"   # a new database each round (the server may be a shared one)
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
            try:
                failures = [r for r in _open_at_once(f"{server}/{name}") if r != "ok"]
                assert failures == [], failures
                _usable(f"{server}/{name}")
            finally:
                conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
