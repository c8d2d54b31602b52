"""The disks a run writes to, as a run start and a failing run say them: a disk that filled, and a SQLite
database on a network file system."""
from __future__ import annotations

import errno
import shutil
from pathlib import Path

from searchlab.engine.storage import storage_error_reason
from searchlab.errors import StorageError


FULL_SIGNS = ("database or disk is full", "No space left on device", "Disk quota exceeded")


def disk_full_error(run_dir: Path, exc: BaseException) -> StorageError | None:
    """One line for a run that filled its disk (the study database, a checkpoint, the journal), instead of the
    90-line traceback Optuna's tell ends in (its last line: "AssertionError: Should not reach"); None otherwise."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or \
                any(sign in str(exc) for sign in FULL_SIGNS):
            error = StorageError(f"the disk holding {run_dir} is full: {storage_error_reason(exc)}. The run "
                                 "stopped; the trials that finished are stored, and those running then run again "
                                 f"when you resume. Fix: free space there (df -h {run_dir}; export.keep_checkpoints: "
                                 "K keeps the weights of the K best trials only), then run the same command")
            error.exit_code = 1
            return error
        exc = exc.__cause__ or exc.__context__
    return None


NEARLY_FULL = 64 * 2 ** 20   # bytes free below which a disk is too full for a run: a checkpoint is tens of MB


def free_space_note(folder: Path) -> str | None:
    """'the disk holding F has 12 kB free' when it has less than NEARLY_FULL; None otherwise, or unknown."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    return f"the disk holding {folder} has {free / 1024:.0f} kB free" if free < NEARLY_FULL else None


NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "9p", "afs", "lustre", "glusterfs")


def network_filesystem(path: Path, mounts: Path = Path("/proc/mounts")) -> str | None:
    """The network file system type `path` sits on (nfs4, cifs, ...), from the longest mount point holding it;
    None on a local disk, or where mounts cannot be read (not Linux)."""
    try:
        lines = mounts.read_text().splitlines()
    except OSError:
        return None
    where = str(path.resolve())
    best = ("", None)
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")   # /proc/mounts escapes spaces
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, fields[2])
    return best[1] if best[1] in NETWORK_FILESYSTEMS else None


def sqlite_on_network_warning(url: str) -> str | None:
    """SQLite's locking is unreliable on network file systems (its own documentation, and Optuna's): several
    writers there can corrupt the database, and WAL needs shared memory they do not give."""
    if not url.startswith("sqlite:///"):
        return None
    folder = Path(url.removeprefix("sqlite:///")).parent
    kind = network_filesystem(folder)
    if kind is None:
        return None
    return (f"the study database is on a network file system ({kind}: {folder}), where SQLite's locks are "
            "unreliable: its writers can corrupt it. Fix: put run_dir on a local disk, or storage: "
            "journal:///path/on/the/share/study.log (Optuna's journal file, made for shared disks), or a PostgreSQL "
            "server")


def refuse_an_unwritable_run_dir(run_dir: Path, manifest: str) -> None:
    """A run_dir this user can neither write nor make, said before the data is read: into an existing folder it
    was said as a storage the user never set ("cannot open storage 'sqlite:///...'"), and under one as a bare
    Permission denied once the data had loaded; a colleague's run folder (its `manifest` there) as a study.db it
    could not write, after the data had loaded."""
    import os

    if (run_dir / manifest).is_file():
        if not os.access(run_dir, os.W_OK | os.X_OK):
            raise StorageError(f"run_dir {run_dir}: a run this user cannot write (another user's, or an archive), "
                               "and a run writes its trials, checkpoints and export there. Fix: run in a copy you "
                               f"can write (cp -r {run_dir} COPY, then --set run_dir=COPY), or --set run_dir=DIR "
                               "for a new run")
        return
    existing = next((folder for folder in (run_dir, *run_dir.parents) if folder.exists()), None)
    if existing is None or not existing.is_dir() or os.access(existing, os.W_OK | os.X_OK):
        return
    where = "it" if existing == run_dir else f"{existing}, where it would be made"
    raise StorageError(f"run_dir {run_dir}: this user cannot write {where} (a colleague's folder, an archive, a "
                       "read-only disk), and a run writes its study, checkpoints and export there. Fix: --set "
                       "run_dir=DIR with a folder you can write")
