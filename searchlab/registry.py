"""One registry per plug-in kind (strategies, tasks, ...).

Entries are "module:attribute" strings so heavy optional imports stay lazy; a duplicate name raises;
an unknown name lists the valid ones. Arbitrary user code loads only when a study names it explicitly
as "module:Class" (never from a data file or an export).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from searchlab.errors import RegistryError

T = TypeVar("T")


def import_object(spec: str, what: str) -> Any:
    """Import "package.module:Attribute"; every failure is a RegistryError that says what to fix."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise RegistryError(f"{what} '{spec}' is not of the form 'module:Name'. Fix: write e.g. "
                            "'mypkg.samplers:MySampler' (the module must be importable)")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise RegistryError(f"{what} '{spec}': cannot import module '{module_name}' ({exc}). Fix: put it beside "
                            "the study file, install it, or put its folder on PYTHONPATH") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise RegistryError(f"{what} '{spec}': module '{module_name}' has no attribute '{attr}'")
        obj = getattr(obj, part)
    return obj


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
