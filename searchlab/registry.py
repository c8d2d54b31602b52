"""One registry per plug-in kind (strategies, tasks, ...).

Entries are "module:attribute" strings so heavy optional imports stay lazy; a duplicate name raises;
an unknown name lists the valid ones. Arbitrary user code loads only when a study names it explicitly
as "module:Class" (never from a data file or an export).
"""
from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from searchlab.errors import RegistryError
from searchlab.study_modules import forget_if_stale, from_study_folder, remember, the_running_script
from searchlab.suggest import did_you_mean

T = TypeVar("T")


def import_object(spec: str, what: str) -> Any:
    """Import "package.module:Attribute"; every failure is a RegistryError that says what to fix."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        example = "'mytasks:objective'" if "function" in what else "'mypkg.samplers:MySampler'"
        raise RegistryError(f"{what} '{spec}' is not of the form 'module:Name'. Fix: write e.g. {example} (the "
                            "module must be importable)")
    module = _import_module(module_name, spec, what)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = sorted(n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None)))
            hint = did_you_mean(part, names) or (f"it has {', '.join(names[:12])}" if names else "it defines none")
            hint = _shadowing(module, module_name) or hint
            raise RegistryError(f"{what} '{spec}': module '{module_name}' has no attribute '{part}'. Fix: {hint}")
        obj = getattr(obj, part)
    return obj


def _shadowing(module: Any, module_name: str) -> str | None:
    """The fix when a module of the same name earlier on sys.path (Python's own `code`, `test`, `types`...)
    was imported instead of the user's file: the study's folder comes after the installed packages, so an
    installed one wins. A module from the study's folder is the user's file (another on the path lost to it)."""
    imported = getattr(module, "__file__", None)
    if module is sys.modules.get("__main__"):
        return (f"'{module_name}' is the script that is running ({imported}), which has not defined it yet when "
                "it calls searchlab: define it above that call")
    if from_study_folder(module):
        return None
    relative = Path(*module_name.split("."))
    for folder in sys.path:
        for candidate in (Path(folder or ".") / f"{relative}.py", Path(folder or ".") / relative / "__init__.py"):
            if imported and _is_file(candidate) and candidate.resolve() != Path(imported).resolve():
                return (f"'{module_name}' is {imported}, which comes before {candidate} on the import path. Rename "
                        f"{candidate.name if candidate.name != '__init__.py' else candidate.parent.name} (and the "
                        "study's reference to it) to a name no installed module has")
    return None


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:   # a folder on the import path this user may not read: not the user's module
        return False


def _import_module(module_name: str, spec: str, what: str) -> Any:
    forget_if_stale(module_name)   # a study file's module edited since, or another study's of the same name
    script = the_running_script(module_name)
    if script is not None:   # the script that runs the study: importing it ran it (and its search) once more
        return script
    try:
        module = importlib.import_module(module_name)
        remember(module)
        return module
    except ModuleNotFoundError as exc:
        if exc.name and module_name != exc.name and not module_name.startswith(exc.name + "."):
            # the module was found; something it imports was not
            raise RegistryError(f"{what} '{spec}': module '{module_name}' imports '{exc.name}', which is not "
                                "installed. Fix: install it in this environment") from None
        raise RegistryError(f"{what} '{spec}': cannot import module '{module_name}' ({exc}). Fix: put it beside "
                            "the study file, install it, or put its folder on PYTHONPATH") from None
    except Exception as exc:   # a SyntaxError or an error raised while the module runs: the user's code
        where = _where(exc)
        raise RegistryError(f"{what} '{spec}': importing module '{module_name}' failed{where}: "
                            f"{type(exc).__name__}: {exc}. Fix: correct the module (python -c 'import "
                            f"{module_name}' shows the whole traceback)") from None


def _where(exc: BaseException) -> str:
    """' at file:line' of a SyntaxError, or of the innermost frame of the module's own code."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" at {exc.filename}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if "importlib" not in f.filename]
    return f" at {own[-1].filename}:{own[-1].lineno}" if own else ""


class Registry(Generic[T]):
    """Named, lazily imported plug-ins of one kind."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, str | Callable[..., T]] = {}

    def register(self, name: str, target: str | Callable[..., T]) -> None:
        if name in self._entries:
            raise RegistryError(f"{self.kind} '{name}' is already registered")
        self._entries[name] = target

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str) -> Callable[..., T]:
        if name not in self._entries:
            raise RegistryError(f"unknown {self.kind} '{name}'; valid: {', '.join(self.names())}")
        target = self._entries[name]
        if isinstance(target, str):
            target = import_object(target, self.kind)
            self._entries[name] = target
        return target
