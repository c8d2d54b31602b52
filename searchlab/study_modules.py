"""Modules beside study files (a callable task, a strategy class, an NNI space) in a process that loads
several studies or edits them: a notebook, a script, a test session.

Python imports a module once per process, so a second study's `obj.py` ran the first study's `obj.py`
(found first on the path, then cached), and an edited task function kept running its old code while the run
warned that the code had changed. Here the latest study's folder comes first among study folders, and a
module from a study folder is imported anew when its file changed since it was imported or when the path
now finds another file of its name. Installed packages are never re-imported.
"""
from __future__ import annotations

import importlib.machinery
import os
import sys
from pathlib import Path
from types import ModuleType

_FOLDERS: list[str] = []                          # study folders put on sys.path, the latest first
_STAMPS: dict[str, tuple[str, int, int]] = {}     # module name -> (file, mtime_ns, size) when imported


def study_folder_first(folder: str) -> None:
    """`folder` on sys.path after every entry that is not a study folder (so an installed package of the same
    name still wins) and before the other study folders."""
    if folder in sys.path:
        sys.path.remove(folder)
    if folder in _FOLDERS:
        _FOLDERS.remove(folder)
    others = [i for i, entry in enumerate(sys.path) if entry in _FOLDERS]
    sys.path.insert(others[0] if others else len(sys.path), folder)
    _FOLDERS.insert(0, folder)


def forget_if_stale(module_name: str) -> None:
    """Drop a study folder's module (and its submodules) from the import cache when importing it now would
    give other code than it holds."""
    module = sys.modules.get(module_name.partition(".")[0])
    if module is None or not _from_study_folder(module):
        return
    top = module.__name__
    if _stale(top, module) or any(_stale(name, sys.modules[name]) for name in list(_STAMPS)
                                  if name.startswith(f"{top}.") and name in sys.modules):
        for name in [n for n in sys.modules if n == top or n.startswith(f"{top}.")]:
            del sys.modules[name]


def remember(module: ModuleType) -> None:
    """The module's file as it was imported, to tell later whether it changed."""
    stamp = _stamp(getattr(module, "__file__", None))
    if stamp is not None and _from_study_folder(module):
        _STAMPS[module.__name__] = stamp


def _stale(name: str, module: ModuleType) -> bool:
    recorded = _STAMPS.get(name)
    if recorded is not None and _stamp(recorded[0]) != recorded:
        return True   # edited (or removed) since it was imported
    if "." in name:
        return False
    found = importlib.machinery.PathFinder.find_spec(name)   # what the path gives now, past the cache
    return found is not None and found.origin is not None and \
        Path(found.origin).resolve() != Path(module.__file__).resolve()


def _from_study_folder(module: ModuleType) -> bool:
    file = getattr(module, "__file__", None)
    if not file or not _FOLDERS:
        return False
    where = os.path.realpath(file)
    return any(where.startswith(os.path.realpath(folder) + os.sep) for folder in _FOLDERS)


def _stamp(file: str | None) -> tuple[str, int, int] | None:
    if not file:
        return None
    try:
        stat = os.stat(file)
    except OSError:
        return (file, -1, -1)
    return (file, stat.st_mtime_ns, stat.st_size)
