"""Modules beside study files (a callable task, a strategy class, an NNI space, and the modules they import) in
a process that loads several studies or edits them: a notebook, a script, a test session.

A name the latest study's folder provides is imported from there, before the folder the script or notebook
runs from (a script's folder, a notebook's cwd) and `PYTHONPATH`: each study runs the `obj.py` (and the
`helpers.py` it imports) beside it even when the caller's folder has one of that name. An installed module of
that name (the standard library, site-packages) still wins, so a stray `optuna.py` or `random.py` beside a study
cannot hide the real one (unlike a script's folder, which Python puts before them). Other names are found as
Python finds them. The study's folder goes on sys.path, after every other entry, for Ray workers
(engine/ray_cluster.py); the folder an earlier study put there leaves it, so a study never finds a module only
another study's folder has (as `searchlab run` alone would not). A folder without `__init__.py` (a namespace
package) is a package of the study's as one with it is, unless a module of its name is found elsewhere on
the path (Python's own rule).

Python imports a module once per process, so a second study's `obj.py` ran the first study's, and an edited
module kept its old code. Every module imported from a study folder is recorded with its file's time and size;
before a study's module is imported, if any recorded one changed since, would now come from another file (the
current study's folder gives its name), or came from another study's folder, all of them are imported anew:
one of them may hold another's old code (`obj` keeps the `helpers` it imported). Installed packages are never
re-imported.

A script that runs a study whose task is the script itself (`train.py` calling searchlab, task
`train:objective`) is not imported again under its own name: that ran the whole script, and its call to
searchlab, once more. The study gets the running `__main__` module. (A spawned worker imports it by name: the
script's call must be guarded by `if __name__ == "__main__":`, engine/script_guard.py.)
"""
from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
import os
import site
import sys
import sysconfig
from importlib.machinery import ModuleSpec
from types import ModuleType

_FOLDERS: list[str] = []                          # every study folder loaded in this process, the latest first
_ON_PATH: list[str] = []                          # the study folder this module put on sys.path (one at most)
_STAMPS: dict[str, tuple[str, int, int]] = {}     # module from a study folder -> (file, mtime_ns, size)
_PathFinder = importlib.machinery.PathFinder
_PREFERRING = {"study folder": True}   # off once a command called from Python returned (give_back_imports)
_DROPPED: set[str] = set()   # cached modules forget_if_stale took out: the caller's own come back after main()
_SCRIPT_NAMES: set[str] = set()   # names the running script (`__main__`) is cached under for its study


def study_folder_first(folder: str) -> None:
    """`folder` is the study folder that names resolve to first (after installed modules); on sys.path it goes
    after every other entry, and the folder an earlier study put there leaves. An entry the caller had there
    (a script beside its study: its folder is sys.path[0]) stays where it was."""
    _ON_PATH[:] = [entry for entry in _ON_PATH if entry in sys.path]   # one the caller took off is not ours now
    for other in [entry for entry in _ON_PATH if entry != folder]:
        _ON_PATH.remove(other)
        while other in sys.path:
            sys.path.remove(other)
    if folder not in sys.path:
        sys.path.append(folder)
        _ON_PATH.append(folder)
    if folder in _FOLDERS:
        _FOLDERS.remove(folder)
    _FOLDERS.insert(0, folder)
    _PREFERRING["study folder"] = True
    _install_finder()


def give_back_imports(before: dict[str, ModuleType]) -> None:
    """After a command called from Python: the caller's names resolve as its Python finds them again, and the
    modules the command imported from study folders leave the import cache (those they replaced come back).
    Else a notebook's own `import helpers` after a run gave the study's `helpers.py`, cached and first.
    Called while the study's folder is still on sys.path (a namespace package's folders follow it)."""
    _PREFERRING["study folder"] = False
    # judged before any is taken out: a package's submodule is told by its package, which goes too
    taken = [name for name, module in list(sys.modules.items())
             if module is not before.get(name) and isinstance(module, ModuleType) and from_study_folder(module)
             and name != "__main__"]
    for name in [*taken, *_SCRIPT_NAMES]:
        _STAMPS.pop(name, None)
        if name in before:
            sys.modules[name] = before[name]
        else:
            sys.modules.pop(name, None)
    _SCRIPT_NAMES.clear()
    for name in _DROPPED:   # the caller's own, taken out for the study's of that name and not imported since
        if name in before and name not in sys.modules:
            sys.modules[name] = before[name]
    _DROPPED.clear()


def give_back_import_path(path: list[str], meta_path: list[object]) -> None:
    """After a command called from Python: the caller's sys.path and sys.meta_path as they were. The study's
    folder left on the path gave the caller's `import onlyA` a file only that study's folder has, and a later
    study that imports it worked in the notebook but not with `searchlab run`. An entry the study's own code
    added stays (after the caller's)."""
    added_by_the_study_code = [entry for entry in sys.path if entry not in path and entry not in _FOLDERS]
    sys.path[:] = [*path, *added_by_the_study_code]
    _ON_PATH[:] = [entry for entry in _ON_PATH if entry in sys.path]
    if _StudyFolderFinder not in meta_path and _StudyFolderFinder in sys.meta_path:
        sys.meta_path.remove(_StudyFolderFinder)


def forget_if_stale(module_name: str) -> None:
    """Drop every module imported from a study folder from the import cache when one of them (or the module
    about to be imported) would now give other code than it holds."""
    if not _FOLDERS:
        return
    importlib.invalidate_caches()   # a file written since the folder was last listed, in the same clock tick
    for gone in [name for name, stamp in _STAMPS.items() if not _stamp_of(sys.modules.get(name), stamp)]:
        del _STAMPS[gone]   # left the cache, or cached again from another file (a caller's import after a run)
    top_name = module_name.partition(".")[0]
    named = sys.modules.get(top_name)
    candidates = {name for name in _STAMPS if name in sys.modules}
    if named is not None and from_study_folder(named):
        candidates.add(top_name)   # its name, not the module's: the running script is `__main__` under it
    # cached modules of names the study's folder provides: the caller's own `helpers` imported before the run
    # (the study ran it), or the study's own imported before this rule could record its file (never re-read)
    candidates |= {name for name in _provided_by_latest() if name in sys.modules and not _installed(name)}
    candidates.discard("__main__")   # never imported by name: taking it out of the cache breaks the script
    if not any(_stale(name, sys.modules[name]) for name in candidates):
        return
    for name in [n for n in sys.modules if n in candidates or n.partition(".")[0] in candidates]:
        del sys.modules[name]
        _STAMPS.pop(name, None)
        _DROPPED.add(name)


def the_running_script(module_name: str) -> ModuleType | None:
    """The `__main__` module when importing `module_name` would run the file of the script that is running
    (`python train.py` whose study's task is `train:objective`); cached under that name while the command runs,
    for the study's other modules that import it. Importing it ran the script's top level once more: its call
    to searchlab started a whole search inside the first, which then found its budget spent. None in a spawned
    worker (there `__main__` is the script imported as `__mp_main__`), a notebook, or for another module."""
    script = sys.modules.get("__main__")
    file = getattr(script, "__file__", None)
    if script is None or not file or getattr(script, "__name__", None) != "__main__":
        return None
    if sys.modules.get(module_name) is script:
        return script
    try:
        spec = importlib.util.find_spec(module_name)
    except Exception:   # noqa: BLE001 - its package failed to import: the import proper says why
        return None
    if spec is None or not spec.origin or os.path.realpath(spec.origin) != os.path.realpath(file):
        return None
    sys.modules[module_name] = script
    _SCRIPT_NAMES.add(module_name)
    return script


def _stamp_of(module: ModuleType | None, stamp: tuple[str, int, int]) -> bool:
    """`stamp` is of the file `module` was imported from."""
    file = getattr(module, "__file__", None)
    if module is not None and file is None and hasattr(module, "__path__"):
        return True   # a namespace package: no file, and its folders follow sys.path, not its import
    return file is not None and os.path.realpath(file) == os.path.realpath(stamp[0])


def _latest_folder() -> str | None:
    """The latest study's folder, while it is on sys.path (one the caller took off is left alone)."""
    return _FOLDERS[0] if _FOLDERS and _FOLDERS[0] in sys.path else None


def _provided_by_latest() -> set[str]:
    """The module names the latest study's folder has a file or folder (a package, or a namespace one) of."""
    latest = _latest_folder()
    try:
        entries = os.listdir(latest) if latest else []
    except OSError:
        return set()
    return {entry[:-3] if entry.endswith(".py") else entry for entry in entries
            if entry.endswith(".py") or entry.isidentifier() and os.path.isdir(os.path.join(latest, entry))}


def remember(module: ModuleType) -> None:
    """The module's file as it was imported (if the import did not record it), to tell later whether it
    changed."""
    stamp = _stamp(_source(getattr(module, "__file__", None), getattr(module, "__path__", None)))
    if stamp is not None and from_study_folder(module):
        _STAMPS.setdefault(module.__name__, stamp)


class _StudyFolderFinder:
    """Before Python's path finder on sys.meta_path: a name the latest study's folder provides (and no installed
    module has) comes from there, and every module imported from a study folder is recorded."""

    @classmethod
    def find_spec(cls, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        spec = _study_spec(name, path)
        stamp = _stamp(_source(spec.origin, spec.submodule_search_locations)) if spec is not None else None
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
    latest = _latest_folder()
    if latest is None or not _PREFERRING["study folder"]:
        return None
    spec = _PathFinder.find_spec(name, [latest]) or _PathFinder.find_spec(name)
    if spec is None or not _folder_of(spec.origin, spec.submodule_search_locations):
        return None
    if spec.origin is None and _a_module_elsewhere(name):   # Python's rule: a module beats a namespace folder
        return None
    if _installed(name):
        return None
    return spec


def _a_module_elsewhere(name: str) -> bool:
    """A module or package (with a file) of that name on sys.path."""
    found = _PathFinder.find_spec(name)
    return found is not None and found.origin is not None


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
    if _of_another_study(name):
        return True   # a study runs its own modules only, as in a process of its own
    if "." in name:
        return False
    found = _study_spec(name) or _PathFinder.find_spec(name)   # what importing it now gives, past the cache
    now = _source(found.origin, found.submodule_search_locations) if found is not None else None
    then = recorded[0] if recorded is not None else \
        _source(getattr(module, "__file__", None), getattr(module, "__path__", None))
    return now is not None and then is not None and os.path.realpath(now) != os.path.realpath(then)


def _of_another_study(name: str) -> bool:
    """Its (top) package was recorded from a study folder other than the latest study's."""
    top = _STAMPS.get(name.partition(".")[0])
    latest = _latest_folder()
    return top is not None and latest is not None and _home_of(top[0]) != os.path.realpath(latest)


def from_study_folder(module: ModuleType) -> bool:
    """The module's top package (or the module) is a file or folder right in a study folder; a package
    installed somewhere inside one (a virtual environment beside the study) is not."""
    top = sys.modules.get(module.__name__.partition(".")[0], module)
    return _folder_of(getattr(top, "__file__", None), getattr(top, "__path__", None))


def _folder_of(origin: str | None, package_path: object) -> bool:
    source = _source(origin, package_path)
    if not source or not _FOLDERS:
        return False
    return _home_of(source) in {os.path.realpath(folder) for folder in _FOLDERS}


def _source(origin: str | None, package_path: object) -> str | None:
    """The file a module is imported from; for a namespace package (a folder without __init__.py, which has
    no file) its first folder."""
    if origin:
        return origin
    return next(iter(package_path), None) if package_path is not None else None   # type: ignore[call-overload]


def _home_of(source: str) -> str:
    """The folder the module or package of that file (or namespace package folder) sits in."""
    where = os.path.realpath(os.path.dirname(source))
    return os.path.dirname(where) if os.path.basename(source).startswith("__init__.") else where


def _stamp(file: str | None) -> tuple[str, int, int] | None:
    if not file:
        return None
    try:
        stat = os.stat(file)
    except OSError:
        return (file, -1, -1)
    if os.path.isdir(file):   # a namespace package's folder: its modules have stamps of their own
        return (file, 0, 0)
    return (file, stat.st_mtime_ns, stat.st_size)
