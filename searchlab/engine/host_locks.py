"""Lock files that the searchlab processes of one machine share, whatever their run folder.

One file per thing locked, named by a digest of its key (a study name, a stage's storage and name), in
`searchlab-locks` in the system's temporary folder: a run folder's own files keep out the runs of that folder only,
and two run folders of one study (one SQLite or journal file through `storage:`, two Ray drivers of a PostgreSQL
study) write one record. A lock of a local storage file's record is kept beside that file (storage_lock_folder). A
lock held by a process killed with -9 (or by the out-of-memory killer) is released by the kernel at once: no stale
lock is ever waited on. Processes on two machines are not serialised by these.
No torch: `searchlab status` imports it.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TextIO

FOLDER = "searchlab-locks"


def host_lock_folder() -> Path:
    return Path(tempfile.gettempdir()) / FOLDER


def host_lock_path(key: str, suffix: str = ".lock") -> Path:
    """Where the lock of `key` is on this machine (the file may not exist yet)."""
    name = hashlib.sha256(key.encode(errors="surrogateescape")).hexdigest()[:16]
    return host_lock_folder() / f"{name}{suffix}"


def open_host_lock(key: str, suffix: str = ".lock", fallback: Path | None = None,
                   beside: Path | None = None) -> TextIO | None:
    """The lock file of `key`, opened (not locked: flock it). In the folder `beside` (storage_lock_folder) when
    given and writable, else in the machine's lock folder, else at `fallback` when that folder cannot be written (a
    temporary folder this user may not write in); None when none opens."""
    if beside is not None:
        try:
            beside.mkdir(exist_ok=True)
            return _open(beside / host_lock_path(key, suffix).name)
        except OSError:
            pass
    try:
        _make_folder()
        return _open(host_lock_path(key, suffix))
    except OSError:
        pass
    if fallback is None:
        return None
    try:
        return _open(fallback)
    except OSError:
        return None


def _make_folder() -> None:
    """The lock folder, made writable by every user of the machine (sticky, as /tmp is): a folder made with one
    user's umask kept another user's runs of a shared study from making their lock files in it."""
    folder = host_lock_folder()
    try:
        folder.mkdir()
    except FileExistsError:
        return
    try:
        folder.chmod(0o1777)
    except OSError:   # the folder still serves this user
        pass


def _open(path: Path) -> TextIO:
    """Opened for appending, else for reading (another user's lock file: flock needs no write access)."""
    try:
        return path.open("a")
    except PermissionError:
        if not path.exists():
            raise
        return path.open("r")


def storage_file(storage_url: str) -> str | None:
    """The real path of a local storage file (SQLite, journal), None for a server's URL."""
    for scheme in ("sqlite:///", "journal://"):
        if storage_url.startswith(scheme):
            return same_file(storage_url.removeprefix(scheme))
    return None


def storage_lock_folder(storage_url: str) -> Path | None:
    """The lock folder beside a local storage file: every process on that file sees it, whatever its TMPDIR (a
    SLURM job's, systemd's PrivateTmp). In a temporary folder, runs with two TMPDIRs took one lock each: an audit's
    two runs waiting for one killed stage writer both continued its stage. None for a server storage."""
    file = storage_file(storage_url)
    return Path(file).parent / ".searchlab-locks" if file else None


def same_file(path: str | os.PathLike[str]) -> str:
    """A lock file's path as two processes compare it (links and `..` resolved)."""
    return os.path.realpath(path)
