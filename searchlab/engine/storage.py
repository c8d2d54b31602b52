"""Opening the Optuna storage (the single source of truth) and the artifact store beside it.

URLs: any Optuna RDB URL (sqlite:///..., postgresql://...), or journal:///path/to/file.log for Optuna's
journal file (safe for many processes on one machine or a shared file system).
"""
from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import sys
import time
import warnings
from collections.abc import Callable, Collection
from pathlib import Path
from typing import BinaryIO, TypeVar

import optuna
import sqlalchemy.exc
from optuna.artifacts import FileSystemArtifactStore
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from searchlab.config.checks_places import storage_url_fix
from searchlab.engine.trial_time import NO_HEARTBEAT
from searchlab.errors import AT_IN_PASSWORD_FIX, StorageError, ats_in_password, shown_url, without_secrets

T = TypeVar("T")

HEARTBEAT_SECONDS = 10     # a RUNNING trial whose process died is noticed after GRACE_SECONDS
GRACE_SECONDS = 60         # long enough that a busy machine never fails a live trial
SCHEMA_ATTEMPTS = 6        # opens of a new database that may collide with another process creating it
# How SQLite and PostgreSQL say a table or version row is already there (check-then-create lost a race), and
# SQLite's "locked" when a schema transaction that read first must write while another writes: SQLite then
# returns SQLITE_BUSY at once instead of waiting (its deadlock rule); seen once in a loaded CI run of 8 opens
SCHEMA_RACE_SIGNS = ("already exists", "UNIQUE constraint failed", "duplicate key value", "database is locked")
MAX_RETRIES = 2            # a config whose process died is retried this many times (executor.max_retries)
# A database server restarted (or a network blip) leaves every pooled connection dead: without a ping at checkout
# the next query on each fails, although the server is back. One `SELECT 1` per checkout is cheap beside a trial.
SERVER_ENGINE_KWARGS = {"pool_pre_ping": True}


# what a stage (nas/stage.py enqueue_top_k) scored a queued design by, which of its trials it was, and how a
# Zen-score was computed (nas/zen_nas.py HOW_SCORED): status, trials and the export read them
DESIGN_ATTRS = ("zen_score", "entropy", "proxy_trial", "zen_batch_size", "zen_seed", "zen_repeats")


class RetryLost:
    """Queue again the config of a trial whose process died (as Optuna's RetryFailedTrialCallback, whose
    system attrs `failed_trial` / `retry_history` it keeps), without copying the lost attempt's user attrs:
    its partial curve or error must not show up on the retry. The retry has user attr `retry_of`, and the
    DESIGN_ATTRS of a design a strategy's stage queued (zen_nas, deepmad): they say why it was trained, and a
    retry without them was shown by status and the export as a plain retry, its proxy score lost.

    `fixed_now`: parameters the resuming run's space fixes (searched when the trial drew them). The retry runs
    with the fixed value, so the value drawn is left out of its params: kept, it was shown by status, trials and
    the export's `trial.params` (a GAN retry listed g_width 32 and iterations 1000 and trained 16 and 30)."""

    DESIGN_ATTRS = DESIGN_ATTRS

    def __init__(self, max_retries: int = MAX_RETRIES, fixed_now: Collection[str] = ()) -> None:
        self.max_retries = max_retries
        self.fixed_now = frozenset(fixed_now)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        history = [*trial.system_attrs.get("retry_history", []), trial.number]
        if len(history) > self.max_retries:
            return
        params = {name: value for name, value in trial.params.items() if name not in self.fixed_now}
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.WAITING, params=params,
            distributions={name: trial.distributions[name] for name in params},
            user_attrs={**self.design_attrs(trial), "retry_of": trial.number},
            system_attrs={"failed_trial": history[0], "retry_history": history}))

    @classmethod
    def design_attrs(cls, trial: FrozenTrial) -> dict[str, object]:
        return {key: trial.user_attrs[key] for key in cls.DESIGN_ATTRS if key in trial.user_attrs}


def retry_callback(max_retries: int = MAX_RETRIES, fixed_now: Collection[str] = ()) -> RetryLost:
    return RetryLost(max_retries, fixed_now)


class HeartbeatRDBStorage(RDBStorage):
    """Optuna's RDB storage, with two changes to its heartbeats:

    - a heartbeat that cannot reach the database (a server restarting, SQLite locked) is skipped, not raised:
      Optuna's heartbeat thread ended at the first error (a 2-second server restart), and the trial, alive,
      then looked dead to every other runner. One missed beat is harmless: the grace period is 6 intervals;
    - a trial about to be failed as stale gets the reason first (a finished trial takes no more attributes), as
      `run` does for trials a killed local run left: it was failed with "no reason stored"."""

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            super().record_heartbeat(trial_id)
        except Exception as exc:
            if not is_connection_lost(exc):
                raise

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        stale = super()._get_stale_trial_ids(study_id)
        for trial_id in stale:
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):   # another runner failed it
                if "error" not in self.get_trial(trial_id).user_attrs:   # its own reason, stored as it died, stays
                    self.set_trial_user_attr(trial_id, "error", stale_reason(self.grace_period or GRACE_SECONDS))
        return stale


def stale_reason(grace_seconds: int) -> str:
    return (f"{NO_HEARTBEAT} for over {grace_seconds} s (killed, crashed, or lost its connection to "
            "the storage)")


# The errors of a storage that went away: the server stopped or restarted, the network dropped. Not a refused
# query (bad data, a constraint), which would say something else.
CONNECTION_ERRORS = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)


def is_connection_lost(exc: BaseException | None) -> bool:
    return _lost_connection(exc) is not None


def _lost_connection(exc: BaseException | None) -> BaseException | None:
    """The lost-connection error `exc` is or was raised from, if any: Optuna wraps SQLAlchemy's errors in its
    StorageInternalError, and its tell, failing to read the trial back while handling one, ends in an
    UnboundLocalError ('updated_state')."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, CONNECTION_ERRORS) or getattr(exc, "connection_invalidated", False):
            return exc
        # `raise ... from None` (a SearchlabError already saying what happened) ends the chain, as in a traceback
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return None


OUTAGE_SECONDS = 30   # how long a Ray driver or worker tries again while the database server is away (a restart)


def through_outage(call: Callable[[], T], seconds: float | None = None, said: list[bool] | None = None) -> T:
    """`call()`, tried again every second while the database server cannot be reached, for up to `seconds`
    (default OUTAGE_SECONDS; then its error is raised). A Ray run's driver asks for and tells every trial, and
    each new worker opens the storage: one of those during a server restart of a few seconds ended the whole
    run. `said`: a one-item flag, so the wait is said once per process."""
    seconds = OUTAGE_SECONDS if seconds is None else seconds
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except Exception as exc:
            if not server_away(exc) or time.monotonic() >= deadline:
                raise
            if said is not None and not said:
                said.append(True)
                print(f"note: the storage's server cannot be reached ({outage_reason(exc)}); trying again "
                      f"for up to {seconds:.0f} s", file=sys.stderr)
            time.sleep(1.0)


def outage_reason(exc: BaseException) -> str:
    """Why the server cannot be reached, in the database driver's words ("the database system is shutting
    down"): Optuna's wrapper says only "An exception is raised during the commit ... invalid data in the
    commit", which points at the data, not at the server."""
    cause = _lost_connection(exc)
    if cause is None:   # e.g. open_storage's StorageError (raised from None): its own first clause
        return storage_error_reason(exc).partition(". Fix: ")[0]
    return storage_error_reason(getattr(cause, "orig", None) or cause)


# What a server that is up says to a connection it refuses for good (PostgreSQL's words): no outage to wait out
REFUSED_FOR_GOOD = ("does not exist", "authentication failed", "no password supplied", "permission denied")


def server_away(exc: BaseException) -> bool:
    """Whether `exc` says the database server cannot be reached now (stopped, restarting, the network), not that
    it refuses this connection for good (a wrong password or database name)."""
    if not (is_connection_lost(exc) or getattr(exc, "server_unreachable", False)):
        return False
    return not any(words in str(exc) for words in REFUSED_FOR_GOOD)


def lost_storage_error(url: str, exc: BaseException) -> StorageError | None:
    """One line for a run whose database server went away mid-run, instead of the traceback Optuna's tell ends
    in; None when `exc` is no such loss, or the storage is a file (SQLite's "disk I/O error" is no server gone)."""
    cause = _lost_connection(exc)
    if cause is None or is_local_file(url):
        return None
    # the driver's words, not SQLAlchemy's, without the password (or a piece of it) they may hold
    reason = without_secrets(storage_error_reason(getattr(cause, "orig", None) or cause), url)
    return StorageError(f"lost the connection to storage '{shown_url(url)}' during the run ({reason}). The trials "
                        "that finished are stored there; those running then run again when you resume. Fix: once the "
                        "server is reachable again, run the same `searchlab run` command to resume")


def is_local_file(url: str) -> bool:
    """SQLite and journal files: one machine's storage, where `run`'s lock finds trials left RUNNING."""
    return url.startswith(("sqlite:", "journal:"))


def _rdb(url: str, heartbeat: bool, retries: int, **engine_kwargs: object) -> RDBStorage:
    """RDB storage; with heartbeats, a trial whose process died is failed and its config re-queued."""
    beat = dict(heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                heartbeat_stale_trial_callback=retry_callback(retries)) if heartbeat else {}

    def connect() -> RDBStorage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage_class = HeartbeatRDBStorage if heartbeat else RDBStorage
            return storage_class(url, engine_kwargs=engine_kwargs or None, **beat)

    for attempt in range(1, SCHEMA_ATTEMPTS):
        try:
            return connect()
        except sqlalchemy.exc.DatabaseError as exc:
            if not _lost_schema_race(exc):
                raise
            time.sleep(0.2 * attempt)   # the winner is still writing the rest of the schema
    return connect()


def _lost_schema_race(exc: BaseException) -> bool:
    """Optuna creates the schema of a new database by check-then-create (tables, then the version rows):
    several processes opening it at once (machines starting on one PostgreSQL study, a dashboard opened as a
    run starts) collide on a table or row that another has just made. Harmless: open again and it exists."""
    return any(sign in str(exc) for sign in SCHEMA_RACE_SIGNS)


def open_storage(url: str, heartbeat: bool = False, retries: int = MAX_RETRIES,
                 reading: bool = False) -> BaseStorage:
    """An Optuna storage for `url`; any failure is a StorageError naming the URL and the fix.

    `heartbeat` (RDB only) is for processes that run trials where another process may die unseen: several
    workers or machines. A lone local runner does without (its run lock recovers trials left RUNNING), which
    saves a thread and a few writes per trial. `reading`: for commands that only read the study (status,
    trials, report, export, the dashboard): a SQLite file this user cannot write is opened read-only.
    """
    if ats_in_password(url):   # SQLAlchemy would cut the password at its first '@' and dial the rest as the host
        raise StorageError(f"cannot open storage '{shown_url(url)}': the user:password part of the URL holds more "
                           f"than one '@', and a URL's password ends at its first '@'. Fix: {AT_IN_PASSWORD_FIX}")
    try:
        if url.startswith("journal://"):
            path = Path(url.removeprefix("journal://"))
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        if url.startswith("sqlite:///"):
            return _sqlite(url, heartbeat, retries, reading)
        return _rdb(_with_driver(url), heartbeat, retries, **SERVER_ENGINE_KWARGS)
    except StorageError:
        raise
    except Exception as exc:   # sqlalchemy/driver errors come in many types; the message is what matters
        reason = without_secrets(storage_error_reason(exc), url)
        error = StorageError(f"cannot open storage '{shown_url(url)}': {reason}. Fix: {_storage_fix(url, reason)}")
        error.server_unreachable = is_connection_lost(exc)   # for through_outage: a restart, not a wrong URL
        raise error from None


# How PostgreSQL (libpq) says the password is wrong or missing
AUTH_FAILED = ("password authentication failed", "no password supplied")
PASSWORD_FIX = ("give the user's correct password: in the environment variable PGPASSWORD, in ~/.pgpass "
                "(host:port:database:user:password, mode 0600), or in the URL")


# How PostgreSQL says the URL's database is not on the server
MISSING_DATABASE = re.compile(r'database "(?P<name>[^"]*)" does not exist')


def is_auth_failure(reason: str) -> bool:
    return any(words in reason for words in AUTH_FAILED)


def _storage_fix(url: str, reason: str = "") -> str:
    if is_auth_failure(reason):   # the server answered: the URL, server and driver are fine
        return PASSWORD_FIX
    if missing := MISSING_DATABASE.search(reason):   # the server answered: a name in the URL is wrong
        return (f"create the database ({_createdb(url, missing['name'])}, as a user allowed to) or correct its name, "
                "the URL's last part (after the host's /)")
    if url.startswith("postgres://"):   # libpq's and Heroku's spelling, which SQLAlchemy does not know
        return "use postgresql:// (SQLAlchemy names the dialect postgresql), e.g. " + \
            shown_url("postgresql://" + url.removeprefix("postgres://"))
    if "://" not in url:   # a path (a hand-edited manifest's): SQLAlchemy "could not parse" it
        return storage_url_fix(url)
    if url.startswith(("sqlite:///", "journal://")):   # a file: no server, no driver
        return "name a file in a folder you can write to (e.g. sqlite:////absolute/path.db or sqlite:///~/path.db)"
    return ("check the URL, that the server is running and reachable, and that its driver is installed "
            "(PostgreSQL: pip install 'searchlab[postgres]')")


def _createdb(url: str, name: str) -> str:
    """The createdb command that makes database `name` on the server of `url` (its host, port and user)."""
    import shlex

    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    options = [(flag, value) for flag, value in (("-h", parsed.host), ("-p", parsed.port), ("-U", parsed.username))
               if value]
    return shlex.join(["createdb", *(str(part) for option in options for part in option), name])


def _with_driver(url: str) -> str:
    """postgresql:// means psycopg2 to SQLAlchemy 2; use psycopg 3 (searchlab[postgres]) when only it is there."""
    if not url.startswith("postgresql://"):
        return url
    import importlib.util

    if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg") is not None:
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def _sqlite(url: str, heartbeat: bool, retries: int, reading: bool = False) -> RDBStorage:
    path = Path(url.removeprefix("sqlite:///"))
    if path.exists() and path.is_file():
        if not _writable(path):   # before the check below, which opens it read-write
            if reading:
                return _read_only(path)
            raise StorageError(f"cannot write the study database {path}: {READ_ONLY}, and a run writes every trial "
                               "to it. Fix: run in a copy you can write (cp -r the run folder, then --set "
                               "run_dir=COPY), or get write access to the file and its folder")
        _check_sqlite_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Several local workers write at once: wait for the lock instead of failing with "database is locked".
    storage = _rdb(url, heartbeat, retries, connect_args={"timeout": 120})
    for attempt in range(1, SCHEMA_ATTEMPTS + 1):
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=120)) as conn:
                # WAL lets readers (dashboard, progress) proceed while a worker writes; it persists in the file.
                conn.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == SCHEMA_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)   # another process is switching it too
    return storage


READ_ONLY = "this user cannot write it or its folder (a colleague's run, an archive, a read-only disk)"


def opened_read_only(storage: object) -> bool:
    """Whether `storage` is a SQLite database open_storage(reading=True) opened read-only (a write to it fails,
    and a write that changes nothing may not even be tried: SQLAlchemy skips it)."""
    backend = getattr(storage, "_backend", storage)   # Optuna wraps RDB storages in a cache
    return "mode=ro" in str(getattr(backend, "url", ""))


def _writable(path: Path) -> bool:
    """Whether SQLite can write the database: the file, and its folder (a WAL database's -shm and -wal files
    are made beside it, even to read). Asked of the system, never by opening the file: closing any descriptor
    of it drops every SQLite lock this process holds on it (POSIX locks), which lost a run's trials."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _read_only(path: Path) -> RDBStorage:
    """The database opened read-only (status, trials and export of a colleague's run or an archived one failed
    with "attempt to write a readonly database": SQLite makes a WAL database's -shm file beside it even to read).
    Without a -wal file beside it (every connection closed: all is in the file), as immutable, which needs no
    -shm file; with one (a run still open, or killed), plainly read-only, which reads the -wal through the -shm
    file its writer left, so no trial it holds is missed."""
    from urllib.parse import quote

    immutable = "" if path.with_name(path.name + "-wal").exists() else "&immutable=1"
    return _rdb(f"sqlite:///file:{quote(str(path.resolve()))}?mode=ro{immutable}&uri=true", False, 0)


def storage_error_reason(exc: BaseException) -> str:
    """A storage error's first line (any backend), with SQLite's extended code name (SQLITE_IOERR_...) if any."""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    name = getattr(getattr(exc, "orig", exc), "sqlite_errorname", None)
    return f"{first} [{name}]" if name else first


def heartbeat_ages(storage: BaseStorage, trials: list[FrozenTrial]) -> dict[int, float]:
    """Seconds since each of `trials` (RUNNING ones) last sent a heartbeat, by trial number; only trials that
    sent one (RDB storages of runs with heartbeats). Both times are the database server's clock: the clocks
    of the machines involved may differ. Optuna has no public reader; this reads its heartbeat table."""
    from optuna.storages._rdb import models

    backend = getattr(storage, "_backend", storage)   # Optuna wraps RDB storages in a cache
    if not isinstance(backend, RDBStorage) or not trials:
        return {}
    number = {t._trial_id: t.number for t in trials}
    with contextlib.closing(backend.scoped_session()) as session:
        # the heartbeat column keeps no time zone: dropped here too, as Optuna's own staleness check does
        now = session.execute(sqlalchemy.func.now()).scalar_one().replace(tzinfo=None)
        beats = session.query(models.TrialHeartbeatModel).filter(
            models.TrialHeartbeatModel.trial_id.in_(list(number))).all()
        return {number[b.trial_id]: (now - b.heartbeat).total_seconds() for b in beats}


def count_trials(storage: BaseStorage, study_id: int) -> int:
    """How many trials the study has. Optuna's get_n_trials loads every trial to count them (2.3 s of a run's
    start at 3,333 trials); an RDB storage is asked for the count."""
    from optuna.storages._rdb import models

    backend = getattr(storage, "_backend", storage)   # Optuna wraps RDB storages in a cache
    if not isinstance(backend, RDBStorage):
        return storage.get_n_trials(study_id)
    with contextlib.closing(backend.scoped_session()) as session:
        return session.query(models.TrialModel).filter(models.TrialModel.study_id == study_id).count()


def close_connections(storage: BaseStorage) -> None:
    """Close an RDB storage's pooled database connections (it would reconnect on next use).

    SQLite keeps per-process state for a file while any connection of the process has it open; the after-run
    export closes the search's connections first, so it opens the study as a new process would."""
    backend = getattr(storage, "_backend", storage)   # Optuna wraps RDB storages in a cache
    if isinstance(backend, RDBStorage):
        backend.remove_session()
        backend.engine.dispose()


def _check_sqlite_file(path: Path) -> None:
    """Refuse a file that is not an SQLite database, asking SQLite itself.

    Never by reading the file with open(): SQLite's locks are POSIX locks, which close() of *any* descriptor
    of the file drops for the whole process. A run opens its storage several times; a plain read at the
    second open dropped the locks of the first connection, so another process (the dashboard, a user's
    check) closing its own connection believed itself the last one, checkpointed and deleted the WAL under
    the run, and the run's later trials went into a deleted file: lost to every other process, and "disk I/O
    error [SQLITE_IOERR_SHORT_READ]" when the run opened the study again for its export."""
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=120)) as conn:
            conn.execute("PRAGMA schema_version")
    except sqlite3.DatabaseError as exc:
        if "not a database" not in str(exc):
            raise
        raise StorageError(f"'{path}' exists but is not an SQLite database. Fix: point storage at another "
                           "file or move this one away") from None


class ContainedArtifactStore(FileSystemArtifactStore):
    """Optuna's file artifact store, also refusing ids that leave its folder through a symlink (Optuna itself
    refuses absolute ids and `..`): an artifact id read from a shared or copied study cannot make searchlab
    read, write or delete a file elsewhere."""

    def _inside(self, artifact_id: str) -> str:
        base = os.path.realpath(self._base_path)
        target = os.path.realpath(os.path.join(base, artifact_id))
        if os.path.isabs(artifact_id) or os.path.commonpath([base, target]) != base:
            raise ValueError(f"artifact id {artifact_id!r} points outside the artifact folder {base}")
        return artifact_id

    def open_reader(self, artifact_id: str) -> BinaryIO:
        return super().open_reader(self._inside(artifact_id))

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        try:
            super().write(self._inside(artifact_id), content_body)
        except OSError:   # a full disk left the part written: nothing refers to it, and it held the space freed
            with contextlib.suppress(OSError, ValueError):
                os.remove(os.path.join(self._base_path, self._inside(artifact_id)))
            raise

    def remove(self, artifact_id: str) -> None:
        super().remove(self._inside(artifact_id))

    def exists(self, artifact_id: str) -> bool:
        try:
            return os.path.isfile(os.path.join(self._base_path, self._inside(artifact_id)))
        except ValueError:   # an id pointing outside the folder is no artifact of this store
            return False


def artifact_store(run_dir: Path) -> ContainedArtifactStore:
    path = run_dir / "artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return ContainedArtifactStore(path)
