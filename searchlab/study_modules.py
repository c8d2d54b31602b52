"""Modules beside study files (a callable task, a strategy class, an NNI space, and the modules they import) in
a process that loads several studies or edits them: a notebook, a script, a test session.

A name the latest study's folder provides is imported from there, before the folder the script or notebook
runs from (a script's folder, a notebook's cwd) and `PYTHONPATH`: each study runs the `obj.py` (and the
`helpers.py` it imports) beside it even when the caller's folder has one of that name. An installed module of
that name (the standard library, site-packages) still wins, so a stray `optuna.py` or `random.py` beside a study
cannot hide the real one (unlike a script's folder, which Python puts before them). Other names are found as
Python finds them. A study's folder stays on sys.path, after every other entry, for what only an earlier
study's folder provides and for Ray workers (engine/ray_cluster.py), where this finder does not run.

Python imports a module once per process, so a second study's `obj.py` ran the first study's, and an edited
module kept its old code. Every module imported from a study folder is recorded with its file's time and size;
before a study's module is imported, if any recorded one changed since or would now come from another file (the
current study's folder gives its name), all of them are imported anew: one of them may hold another's old code
(`obj` keeps the `helpers` it imported). Installed packages are never re-imported.
"""
from __future__ import annotations

import functools
import importlib
import importlib.machinery
import os
import site
import sys
import sysconfig
from importlib.machinery import ModuleSpec
from types import ModuleType

_FOLDERS: list[str] = []                          # study folders put on sys.path, the latest first
_STAMPS: dict[str, tuple[str, int, int]] = {}     # module from a study folder -> (file, mtime_ns, size)
_PathFinder = importlib.machinery.PathFinder
_PREFERRING = {"study folder": True}   # off once a command called from Python returned (give_back_imports)
_DROPPED: set[str] = set()   # cached modules forget_if_stale took out: the caller's own come back after main()


def study_folder_first(folder: str) -> None:
    """`folder` is the study folder that names resolve to first (after installed modules); on sys.path it goes
    after every entry that is not a study folder and before the other study folders. An entry the caller had
    there (a script beside its study: its folder is sys.path[0]) stays where it was."""
    if folder in _FOLDERS:
        _FOLDERS.remove(folder)
        if folder in sys.path:
            sys.path.remove(folder)
    if folder not in sys.path:
        others = [i for i, entry in enumerate(sys.path) if entry in _FOLDERS]
        sys.path.insert(others[0] if others else len(sys.path), folder)
    _FOLDERS.insert(0, folder)
    _PREFERRING["study folder"] = True
    _install_finder()


def give_back_imports(before: dict[str, ModuleType]) -> None:
    """After a command called from Python: the caller's names resolve as its Python finds them again, and the
    modules the command imported from study folders leave the import cache (those they replaced come back).
    Else a notebook's own `import helpers` after a run gave the study's `helpers.py`, cached and first."""
    _PREFERRING["study folder"] = False
    # judged before any is taken out: a package's submodule is told by its package, which goes too
    taken = [name for name, module in list(sys.modules.items())
             if module is not before.get(name) and isinstance(module, ModuleType) and from_study_folder(module)]
    for name in taken:
        _STAMPS.pop(name, None)
        if name in before:
            sys.modules[name] = before[name]
        else:
            del sys.modules[name]
    for name in _DROPPED:   # the caller's own, taken out for the study's of that name and not imported since
        if name in before and name not in sys.modules:
            sys.modules[name] = before[name]
    _DROPPED.clear()


def forget_if_stale(module_name: str) -> None:
    """Drop every module imported from a study folder from the import cache when one of them (or the module
    about to be imported) would now give other code than it holds."""
    if not _FOLDERS:
        return
    importlib.invalidate_caches()   # a file written since the folder was last listed, in the same clock tick
    for gone in [name for name, stamp in _STAMPS.items() if not _stamp_of(sys.modules.get(name), stamp)]:
        del _STAMPS[gone]   # left the cache, or cached again from another file (a caller's import after a run)
    named = sys.modules.get(module_name.partition(".")[0])
    candidates = {name for name in _STAMPS if name in sys.modules}
    if named is not None and from_study_folder(named):
        candidates.add(named.__name__)
    # cached modules of names the study's folder provides: the caller's own `helpers` imported before the run
    # (the study ran it), or the study's own imported before this rule could record its file (never re-read)
    candidates |= {name for name in _provided_by_latest() if name in sys.modules and not _installed(name)}
    if not any(_stale(name, sys.modules[name]) for name in candidates):
        return
    for name in [n for n in sys.modules if n in candidates or n.partition(".")[0] in candidates]:
        del sys.modules[name]
        _STAMPS.pop(name, None)
        _DROPPED.add(name)


def _stamp_of(module: ModuleType | None, stamp: tuple[str, int, int]) -> bool:
    """`stamp` is of the file `module` was imported from."""
    file = getattr(module, "__file__", None)
    return file is not None and os.path.realpath(file) == os.path.realpath(stamp[0])


def _provided_by_latest() -> set[str]:
    """The module names the latest study's folder has a file or package of."""
    latest = next((folder for folder in _FOLDERS if folder in sys.path), None)
    try:
        entries = os.listdir(latest) if latest else []
    except OSError:
        return set()
    return {entry[:-3] if entry.endswith(".py") else entry for entry in entries
            if entry.endswith(".py") or os.path.isfile(os.path.join(latest, entry, "__init__.py"))}


def remember(module: ModuleType) -> None:
    """The module's file as it was imported (if the import did not record it), to tell later whether it
    changed."""
    stamp = _stamp(getattr(module, "__file__", None))
    if stamp is not None and from_study_folder(module):
        _STAMPS.setdefault(module.__name__, stamp)


class _StudyFolderFinder:
    """Before Python's path finder on sys.meta_path: a name the latest study's folder provides (and no installed
    module has) comes from there, and every module imported from a study folder is recorded."""

    @classmethod
    def find_spec(cls, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        spec = _study_spec(name, path)
        stamp = _stamp(spec.origin) if spec is not None else None
        if stamp is not None:
            _STAMPS[name] = stamp
        return spec

    @classmethod
    def invalidate_caches(cls) -> None:
        _installed_entries.cache_clear()


def _install_finder() -> None:
    if _StudyFolderFinder in sys.meta_path:
        return
    at = sys.meta_path.index(_PathFinder) if _PathFinder in sys.meta_path else len(sys.meta_path)
    sys.meta_path.insert(at, _StudyFolderFinder)


def _study_spec(name: str, path: object = None) -> ModuleSpec | None:
    """Where importing `name` now gets it from, when that is a study folder; None leaves it to Python."""
    if path is not None:   # a submodule: recorded when its package came from a study folder
        package = sys.modules.get(name.rpartition(".")[0]) if name.rpartition(".")[0] in _STAMPS else None
        return _PathFinder.find_spec(name, path) if package is not None and from_study_folder(package) else None
    latest = next((folder for folder in _FOLDERS if folder in sys.path), None)   # one taken off is left alone
    if latest is None or not _PREFERRING["study folder"]:
        return None
    spec = _PathFinder.find_spec(name, [latest]) or _PathFinder.find_spec(name)
    if spec is None or not _folder_of(spec.origin, spec.submodule_search_locations):
        return None
    if _installed(name):
        return None
    return spec


def _installed(name: str) -> bool:
    """An installed module of that name: the standard library, site-packages, or a distribution's, editable
    ones included (searchlab's own checkout, a study file at its root beside `searchlab/`)."""
    installed = _PathFinder.find_spec(name, _installed_entries(tuple(sys.path)))
    return (installed is not None and installed.origin is not None) or name in _distributed_names()


@functools.lru_cache(maxsize=1)
def _distributed_names() -> frozenset[str]:
    from importlib.metadata import packages_distributions

    return frozenset(packages_distributions())


@functools.lru_cache(maxsize=4)
def _installed_entries(path: tuple[str, ...]) -> list[str]:
    """The sys.path entries of this Python's installation: its standard library, site-packages, zip files."""
    homes = [sysconfig.get_path(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    homes += [*getattr(site, "getsitepackages", list)(), site.getusersitepackages()]
    homes = [os.path.realpath(home) for home in homes if home]
    return [entry for entry in path if entry and (os.path.isfile(entry) or any(
        os.path.realpath(entry) == home or os.path.realpath(entry).startswith(home + os.sep) for home in homes))]


def _stale(name: str, module: ModuleType) -> bool:
    recorded = _STAMPS.get(name)
    if recorded is not None and _stamp(recorded[0]) != recorded:
        return True   # edited (or removed) since it was imported
    if recorded is None and from_study_folder(module):
        return True   # imported before this rule recorded its file (a notebook's own `import obj`): unknown
    if "." in name:
        return False
    found = _study_spec(name) or _PathFinder.find_spec(name)   # what importing it now gives, past the cache
    return found is not None and found.origin is not None and \
        os.path.realpath(found.origin) != os.path.realpath(getattr(module, "__file__", None) or found.origin)


def from_study_folder(module: ModuleType) -> bool:
    """The module's top package (or the module) is a file or folder right in a study folder; a package
    installed somewhere inside one (a virtual environment beside the study) is not."""
    top = sys.modules.get(module.__name__.partition(".")[0], module)
    return _folder_of(getattr(top, "__file__", None), getattr(top, "__path__", None))


def _folder_of(origin: str | None, package_path: object) -> bool:
    if not origin or not _FOLDERS:
        return False
    where = os.path.dirname(os.path.realpath(origin))
    if package_path is not None:   # a package: its __init__ sits in a folder of its name
        where = os.path.dirname(where)
    return any(where == os.path.realpath(folder) for folder in _FOLDERS)


def _stamp(file: str | None) -> tuple[str, int, int] | None:
    if not file:
        return None
    try:
        stat = os.stat(file)
    except OSError:
        return (file, -1, -1)
    return (file, stat.st_mtime_ns, stat.st_size)
