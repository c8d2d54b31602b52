"""A run's storage: one that cannot be opened, SQLite locks and pooled connections, error codes, the journal."""
from __future__ import annotations

import optuna
import pytest

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import StorageError
from test_run import callable_study, states


def test_a_storage_that_cannot_be_opened(write_study, tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_text("not a database")
    with pytest.raises(StorageError, match="not an SQLite database"):
        run_study(load_study(callable_study(write_study, extra=f"\nstorage: 'sqlite:///{junk}'\n")), progress=False)
    with pytest.raises(StorageError, match="cannot open storage"):
        run_study(load_study(callable_study(write_study, extra="\nstorage: 'nosuchdb://x'\n")), progress=False)


def test_opening_the_storage_again_keeps_the_runs_sqlite_locks(tmp_path):
    """A run opens its storage several times. Another process that reads the study and exits must not find
    the run's locks gone: it would delete the WAL under the run, and the run's later trials would be lost to
    every other process (the cause of "disk I/O error" at the end of 30-minute benchmark runs)."""
    import subprocess
    import sys

    from searchlab.engine.storage import open_storage

    url = f"sqlite:///{tmp_path / 'a.db'}"
    study = optuna.create_study(study_name="s", storage=open_storage(url))
    study.add_trial(optuna.trial.create_trial(value=0.0))
    open_storage(url)   # as the worker does after create_or_load, in the same process
    study.add_trial(optuna.trial.create_trial(value=1.0))
    count = f"import optuna; print(len(optuna.load_study(study_name='s', storage='{url}').trials))"
    assert subprocess.run([sys.executable, "-c", count], capture_output=True, text=True).stdout.strip() == "2"
    study.add_trial(optuna.trial.create_trial(value=2.0))    # after the reader closed its connection
    assert (tmp_path / "a.db-wal").exists()
    assert subprocess.run([sys.executable, "-c", count], capture_output=True, text=True).stdout.strip() == "3"


def test_close_connections_empties_the_pool_and_the_study_reconnects(tmp_path):
    from searchlab.engine.storage import close_connections, open_storage

    study = optuna.create_study(study_name="s", storage=open_storage(f"sqlite:///{tmp_path / 's.db'}"))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    backend = study._storage._backend
    assert backend.engine.pool.checkedin() >= 1   # the pool keeps the search's connection open
    close_connections(study._storage)
    assert backend.engine.pool.checkedin() == 0
    assert len(study.trials) == 2   # used again, it reconnects


def test_storage_errors_name_sqlites_extended_code(tmp_path):
    import sqlite3

    from searchlab.engine.storage import storage_error_reason

    (tmp_path / "not.db").write_bytes(b"SQLite format 3\x00" + b"x" * 200)   # right header, no database
    with pytest.raises(sqlite3.DatabaseError) as caught:
        sqlite3.connect(tmp_path / "not.db").execute("select * from sqlite_master").fetchall()
    assert storage_error_reason(caught.value) == "file is not a database [SQLITE_NOTADB]"
    assert storage_error_reason(ValueError()) == "ValueError"


def test_journal_storage(write_study, tmp_path):
    path = callable_study(write_study, n=3, extra=f"\nstorage: 'journal://{tmp_path / 'j.log'}'\n")
    run_study(load_study(path), progress=False)
    from searchlab.engine.storage import open_storage

    study = optuna.load_study(study_name="fake", storage=open_storage(f"journal://{tmp_path / 'j.log'}"))
    assert states(study) == {"COMPLETE": 3}
    from optuna_dashboard._storage_url import guess_storage_from_url   # what its command line does

    from searchlab.summary import dashboard_argument

    said = dashboard_argument(f"journal://{tmp_path / 'j.log'}")   # the run summary's optuna-dashboard command
    assert said == str(tmp_path / "j.log")   # journal:///... failed there with a SQLAlchemy error
    assert len(optuna.load_study(study_name="fake", storage=guess_storage_from_url(said)).trials) == 3


def test_failing_stale_trials_of_a_shared_storage_warns_nothing_experimental(write_study, tmp_path):
    """Every run with workers printed Optuna's 'fail_stale_trials is experimental' warning with its source line."""
    import warnings

    from searchlab.engine.storage import open_storage
    from searchlab.engine.worker import Budget

    storage = open_storage(f"sqlite:///{tmp_path / 'db.sqlite'}", heartbeat=True)
    ostudy = optuna.create_study(storage=storage, study_name="s")
    ostudy.ask()   # running: may_open asks Optuna to fail it if its heartbeat is stale
    budget = Budget(load_study(callable_study(write_study, n=1)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert budget.may_open(ostudy)
    assert not [w for w in caught if issubclass(w.category, optuna.exceptions.ExperimentalWarning)], caught


def test_a_storage_that_cannot_be_opened_is_named_at_its_line_and_leaves_no_empty_run_folder(write_study, tmp_path):
    """The error named the URL but not the study file's line (every other error of the file does), and the run
    folder it had just made stayed behind, empty."""
    path = callable_study(write_study, extra="\nstorage: 'nosuchdb://x'\n")
    line = path.read_text().splitlines().index("storage: 'nosuchdb://x'") + 1
    with pytest.raises(StorageError, match=rf"^{path}:{line}: storage: cannot open storage 'nosuchdb://x'"):
        run_study(load_study(path), progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(StorageError, match=rf"^{path} \(--set storage\): storage: cannot open storage"):
        run_study(load_study(callable_study(write_study), {"storage": "nosuchdb://y"}), progress=False)
