"""Exports appear whole or not at all: written into a hidden folder beside `--out`, then moved into place.

A killed or failing export never leaves a half-written folder under the name users load from; a previous
export there is replaced whole (never mixed with the new one's files). A folder holding anything else is
not touched: an export replaces its folder, so it must be new, empty, or an earlier export holding only an
export's files (notes or analyses added to one were deleted with it).
"""
from __future__ import annotations

import errno
import fcntl
import glob
import grp
import hashlib
import json
import math
import os
import shlex
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from searchlab.engine.signals import hold_stops, release_stops
from searchlab.errors import ExportError
from searchlab.export.weights_match import not_described

# What an export folder holds: its files, and Python's cache of model.py once a user imported it from there
EXPORT_FILES = frozenset({"config.json", "model.py", "weights.safetensors", "test_predictions.json", "trained_on.json",
                          "__pycache__"})


@contextmanager
def staged(out: str | os.PathLike[str]) -> Iterator[Path]:
    """Yields the folder to write the export into; moves it to `out` when the block ends without error.

    One export to a folder at a time (a lock on the folder it sits in, which the system drops with a killed
    process): a second one started meanwhile (a user's, beside a run's after-run export) took the first's
    staging folder for a killed export's leftover and deleted it, failing the first. It now waits its turn.
    `--out` given as a symbolic link is published into the folder it points to, the link left in place."""
    refuse_empty_out(out)
    out = _through_link(Path(out))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        folder = os.open(out.parent, os.O_RDONLY)
    except OSError as exc:
        raise _cannot_write(out, exc) from None
    with _one_export_at_a_time(out, folder):
        _check_replaceable(out)
        hidden = _hidden_name(out)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f"{hidden}.partial-", dir=out.parent))
        except OSError as exc:
            raise _cannot_write(out, exc) from None
        for leftover in out.parent.glob(f"{glob.escape(hidden)}.partial-*"):   # of an export killed earlier
            if leftover != staging:
                shutil.rmtree(leftover, ignore_errors=True)
        actions: list[Callable[[], None]] = []
        token = _ON_PUBLISHED.set(actions)
        try:
            yield staging
            hold_stops()   # a stop between its renames left the earlier export set aside, and none in its place
            try:
                _publish(staging, out)
                for action in actions:
                    action()
            finally:
                release_stops()   # a stop that came meanwhile is not raised: the export is whole and in place
        finally:
            _ON_PUBLISHED.reset(token)
            shutil.rmtree(staging, ignore_errors=True)


# What the export being written does once it is published (not if it fails): its record in the study
_ON_PUBLISHED: ContextVar[list[Callable[[], None]] | None] = ContextVar("on_published", default=None)


def when_published(action: Callable[[], None]) -> None:
    """Runs `action` once the export being written (in a `staged` block) is in place, or now outside one: a
    failed export was still listed in the study, and `status` pointed users at an export that was never made."""
    actions = _ON_PUBLISHED.get()
    if actions is None:
        action()
    else:
        actions.append(action)


def refuse_empty_out(out: str | os.PathLike[str]) -> None:
    """An empty --out (an unset $OUT in a script) is Path('.'), and was said as "--out  is the folder you are in"."""
    if not os.fspath(out).strip():
        raise ExportError(f"--out is empty ({os.fspath(out)!r}), so it names no folder to export to (an empty value "
                          "reads as the folder you are in). Fix: give a folder path, e.g. --out best")


def _through_link(out: Path) -> Path:
    """The folder a symbolic link `out` points to: moved aside and replaced, the link itself became a local
    folder, its target stayed empty and the study's record named the target. Staged beside the target, the
    renames stay on its filesystem."""
    if not out.is_symlink():
        return out
    if not out.exists():   # dangling, or a loop of links
        target = Path(os.path.join(out.parent, os.readlink(out)))
        raise ExportError(f"--out {out} is a symbolic link to {target}, which does not exist. Fix: create the "
                          f"folder it points to (mkdir -p {target}), or name another folder")
    return out.resolve()


def _hidden_name(out: Path) -> str:
    """The hidden name beside `out` that its staging and set-aside folders start with. A name too long to take
    a suffix within the filesystem's limit (a 245-character --out failed) is cut to a prefix and a hash."""
    try:
        limit = os.pathconf(out.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(os.fsencode(out.name)) + 32 <= limit:   # room for ".", ".partial-XXXXXXXX" and ".old-PID"
        return f".{out.name}"
    return f".{out.name[:16]}.{hashlib.sha256(os.fsencode(out.name)).hexdigest()[:12]}"


def _cannot_write(out: Path, exc: OSError) -> ExportError:
    error = ExportError(f"--out {out}: cannot write in {out.parent} ({exc.strerror or exc}). Fix: name a folder "
                        "in a directory you can write to")
    if not isinstance(exc, (NotADirectoryError, FileExistsError)):   # bad input (a file in the path) exits 2;
        error.exit_code = 1   # a write the system refused (no permission, /proc, a full disk) 1, as trials/report
    return error


@contextmanager
def _one_export_at_a_time(out: Path, folder: int) -> Iterator[None]:
    """`folder`: a descriptor of out's parent, locked here and closed after (which releases the lock)."""
    try:
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"export: another export is writing in {out.parent}; waiting for it to finish", file=sys.stderr)
            fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)   # releases the lock


def _check_replaceable(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise ExportError(f"--out {out} is a file. Fix: name a new folder")
    if os.path.ismount(out):   # said before the export is made: the rename at its end would fail
        raise _cannot_rename(out, "it is a mount point")
    here = Path.cwd().resolve()
    if out.resolve() in (here, *here.parents):   # moved aside whole, it would take this shell's folder with it
        raise ExportError(f"--out {out} is the folder you are in (or holds it), and an export replaces its folder "
                          f"whole. Fix: name a new folder inside it, e.g. --out {Path(out) / 'best'}")
    found = sorted(p.name for p in out.iterdir())
    if found and not is_export(out):
        raise ExportError(f"--out {out} holds other files ({', '.join(found[:5])}); an export replaces its folder "
                          "whole. Fix: name a new or empty folder, or a previous export")
    if holds_fine_tuned_weights(out):   # replaced, they would be gone: an export can only make the weights it had
        raise ExportError(f"--out {out} holds fine-tuned weights that model.save wrote (its config.json has "
                          "fine_tuned_from), which no export can make again, and an export replaces its folder whole. "
                          f"Fix: move them out first (mv {shlex.quote(str(out))} {shlex.quote(str(out) + '_tuned')}), "
                          "or name another --out")
    added = [name for name in found if name not in EXPORT_FILES]
    if added:
        raise ExportError(f"--out {out} is an earlier export with files added to it ({', '.join(added[:5])}), and an "
                          "export replaces its folder whole. Fix: move them out first, or name a new folder")


def is_export(folder: Path) -> bool:
    try:
        return str(json.loads((folder / "config.json").read_text()).get("format", "")).startswith("searchlab-")
    except (OSError, ValueError, AttributeError):
        return False


def holds_fine_tuned_weights(folder: Path) -> bool:
    """Whether model.save (an export's model.py) wrote `folder`: fine-tuned weights, in a new folder or, with
    replace_export=True, in place of an export's."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and "fine_tuned_from" in config


def moving_aside(out: Path) -> str:
    """Said after an export command whose --out holds weights model.save fine-tuned, which an export refuses to
    replace: a summary's command alone failed when copied."""
    if not holds_fine_tuned_weights(out):
        return ""
    return f" (after moving {shlex.quote(str(out))} aside, or with another --out)"


def describe_export(folder: Path) -> str | None:
    """What an export folder holds ("trial 3 of study s", "ensemble of trials 3, 5 of study s"), or None
    when it is no export: said when an export replaces it."""
    if not is_export(folder):
        return None
    config = json.loads((folder / "config.json").read_text())
    if "trials" in config:
        what = "ensemble of trials " + ", ".join(str(t.get("number")) for t in config["trials"])
        study = (config["trials"][0] or {}).get("study") if config["trials"] else None
    else:
        trial = config.get("trial") or {}
        what, study = f"trial {trial.get('number')}", trial.get("study")
    swapped = not_described(folder)   # config.json names that trial; the weights there are another's
    return what + (f" of study {study!r}" if study else "") + (f" (but its {swapped})" if swapped else "")


def export_of_another_study(folder: Path, study: Any) -> str | None:
    """What the export in `folder` holds ("trial 0 of study 'b'") when a trial it records is not a completed
    trial of the Optuna `study` (another study run in the same folder, or one made anew under this name), or
    when model.save wrote it (fine-tuned weights); None when all are, or when it records no study to tell by."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    if "fine_tuned_from" in config:   # its trial entry is the export's it started from: no export of the search
        return ("weights that model.save fine-tuned (config.json has fine_tuned_from; its test metrics are those "
                "before fine-tuning)")
    for entry in config.get("trials") or [config.get("trial")]:
        if isinstance(entry, dict) and "study" in entry and not _completed_trial_of(entry, study):
            what = describe_export(folder) or f"trial {entry.get('number')} of study {entry.get('study')!r}"
            # the same name: a trial of an earlier study of that name, not one of this one's
            return what + (" (not one of its trials now: the study was made anew)"
                           if entry.get("study") == study.study_name else "")
    return None


def _completed_trial_of(entry: dict[str, Any], study: Any) -> bool:
    """The exported trial `entry` (study, number, params) is that completed trial of `study`."""
    from optuna.trial import TrialState

    if entry.get("study") != study.study_name:
        return False
    trial = next((t for t in study.get_trials(deepcopy=False) if t.number == entry.get("number")), None)
    return (trial is not None and trial.state == TrialState.COMPLETE
            and entry.get("params", trial.params) == trial.params)


def _publish(staging: Path, out: Path) -> None:
    """One rename when `out` is new; else two (old aside, new in place): `out` is never half-written."""
    _take_permissions(staging, out if out.exists() else None)   # before the export appears, not after
    if not out.exists():
        staging.rename(out)
        return
    old = out.parent / f"{_hidden_name(out)}.old-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    try:
        out.rename(old)
    except OSError as exc:
        if exc.errno in (errno.EBUSY, errno.EXDEV, errno.EPERM, errno.EACCES):
            raise _cannot_rename(out, f"the system refused to rename it ({exc.strerror}), as it does a mount "
                                 "point") from None
        raise
    try:
        staging.rename(out)
    except OSError:
        old.rename(out)   # the earlier export back in place
        raise
    shutil.rmtree(old, ignore_errors=True)


def _cannot_rename(out: Path, why: str) -> ExportError:
    return ExportError(f"--out {out} cannot be replaced: {why}, and an export replaces its folder by renaming a "
                       f"new one in. Fix: export into a sub-folder, e.g. --out {out / 'best'}")


def _take_permissions(folder: Path, replaced: Path | None) -> None:
    """An export gets the mode, group and (where the system lets it, e.g. as root) owner of the folder it
    replaces, setgid included, else the mode the umask gives a new folder; everything inside gets the same
    permissions (files without execute). mkdtemp made it owner-only and safetensors writes owner-only files,
    and a replaced team folder (2770, group team) came back 0755 root:root with its patient file paths
    readable by all. Where the group cannot be given (not one of ours), the folder's group gets what others get."""
    umask = os.umask(0)
    os.umask(umask)
    if replaced is None:   # keep a setgid bit inherited from a shared parent folder, which chmod would clear
        mode, owner = 0o777 & ~umask | stat.S_IMODE(folder.stat().st_mode) & stat.S_ISGID, None
    else:
        was = replaced.stat()
        mode, owner = stat.S_IMODE(was.st_mode), (was.st_uid, was.st_gid)
    if not _give(folder, mode, owner) and mode & 0o070:
        print(f"note: {replaced} was shared with group {_group_name(owner[1])}, which this user cannot give the "
              "export: that group has no access to it now. Fix: export as a member of that group", file=sys.stderr)
    for path in folder.rglob("*"):
        _give(path, mode if path.is_dir() else mode & 0o666, owner)


def _group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _give(path: Path, mode: int, owner: tuple[int, int] | None) -> bool:
    """Gives `path` the owner (uid, gid) and `mode`; False when the group could not be given (its group then
    gets what others get)."""
    grouped = owner is None or _chown(path, *owner)
    path.chmod(mode if grouped else mode & ~0o070 | (mode & 0o007) << 3)   # after chown, which may clear setgid
    return grouped


def _chown(path: Path, uid: int, gid: int) -> bool:
    """The owner and group, else the group alone (only root gives files away); False when neither is allowed."""
    for user in (uid, -1):
        try:
            os.chown(path, user, gid)
            return True
        except OSError:
            continue
    return False


def json_text(value: Any, indent: int | None = None) -> str:
    """JSON that every parser reads: a metric undefined on a split (AUC with one class present) is null, not
    Python's bare NaN, which JSON does not have."""
    return json.dumps(_finite(value), indent=indent, allow_nan=False) + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
