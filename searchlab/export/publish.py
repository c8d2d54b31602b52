"""Exports appear whole or not at all: written into a hidden folder beside `--out`, then moved into place.

A killed or failing export never leaves a half-written folder under the name users load from; a previous
export there is replaced whole (never mixed with the new one's files). A folder holding anything else is
not touched: an export replaces its folder, so it must be new, empty, or an earlier export holding only an
export's files (notes or analyses added to one were deleted with it).
"""
from __future__ import annotations

import fcntl
import glob
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from searchlab.errors import ExportError

# What an export folder holds: its files, and Python's cache of model.py once a user imported it from there
EXPORT_FILES = frozenset({"config.json", "model.py", "weights.safetensors", "test_predictions.json", "trained_on.json",
                          "__pycache__"})


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """Yields the folder to write the export into; moves it to `out` when the block ends without error.

    One export to a folder at a time (a lock on the folder it sits in, which the system drops with a killed
    process): a second one started meanwhile (a user's, beside a run's after-run export) took the first's
    staging folder for a killed export's leftover and deleted it, failing the first. It now waits its turn."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        folder = os.open(out.parent, os.O_RDONLY)
    except OSError as exc:
        raise _cannot_write(out, exc) from None
    with _one_export_at_a_time(out, folder):
        _check_replaceable(out)
        try:
            staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
        except OSError as exc:
            raise _cannot_write(out, exc) from None
        for leftover in out.parent.glob(f".{glob.escape(out.name)}.partial-*"):   # of an export killed earlier
            if leftover != staging:
                shutil.rmtree(leftover, ignore_errors=True)
        try:
            yield staging
            _publish(staging, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _cannot_write(out: Path, exc: OSError) -> ExportError:
    return ExportError(f"--out {out}: cannot write in {out.parent} ({exc.strerror or exc}). Fix: name a folder "
                       "in a directory you can write to")


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
    here = Path.cwd().resolve()
    if out.resolve() in (here, *here.parents):   # moved aside whole, it would take this shell's folder with it
        raise ExportError(f"--out {out} is the folder you are in (or holds it), and an export replaces its folder "
                          f"whole. Fix: name a new folder inside it, e.g. --out {Path(out) / 'best'}")
    found = sorted(p.name for p in out.iterdir())
    if found and not is_export(out):
        raise ExportError(f"--out {out} holds other files ({', '.join(found[:5])}); an export replaces its folder "
                          "whole. Fix: name a new or empty folder, or a previous export")
    added = [name for name in found if name not in EXPORT_FILES]
    if added:
        raise ExportError(f"--out {out} is an earlier export with files added to it ({', '.join(added[:5])}), and an "
                          "export replaces its folder whole. Fix: move them out first, or name a new folder")


def is_export(folder: Path) -> bool:
    try:
        return str(json.loads((folder / "config.json").read_text()).get("format", "")).startswith("searchlab-")
    except (OSError, ValueError, AttributeError):
        return False


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
    return what + (f" of study {study!r}" if study else "")


def _publish(staging: Path, out: Path) -> None:
    """One rename when `out` is new; else two (old aside, new in place): `out` is never half-written."""
    _permissions_as_umask_allows(staging)
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(out)


def _permissions_as_umask_allows(folder: Path) -> None:
    """mkdtemp makes the folder owner-only (0700), and safetensors writes owner-only files: an export is for
    sharing, so give it the modes any folder and file made here would have (usually 0755 / 0644)."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~umask)


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
