"""One error hierarchy for everything a user can get wrong.

Every message says where (file, line, key path), the rule, the value given and the fix, so the CLI can
print it as is and exit 2 without a traceback.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


class SearchlabError(Exception):
    """Base class: a problem the user can fix; printed without a traceback."""

    exit_code = 2


class ConfigError(SearchlabError):
    """The study file (or a space/strategy file it includes) breaks a rule."""

    def __init__(self, rule: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None, got: object = ..., fix: str | None = None) -> None:
        self.rule, self.file, self.line, self.key, self.got, self.fix = rule, file, line, key, got, fix
        super().__init__(self._render())

    def _render(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line) if p is not None)
        parts = [f"{where}: " if where else ""]
        if self.key:
            parts.append(f"{self.key}: ")
        parts.append(self.rule)
        if self.got is not ...:
            parts.append(f" (got {self.got!r})")
        if self.fix:
            parts.append(f". Fix: {self.fix}")
        return "".join(parts)


class AtKey(ValueError):
    """Raised by a check that spans a section (a pydantic model validator) about one key of it, so the error
    names that key and its line (e.g. `pruner` beside `executor.scheduler`), not the whole section."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.path = tuple(key.split("."))


def error_loc(error: dict) -> tuple:
    """A pydantic error's location, with the key an AtKey check named added."""
    raised = (error.get("ctx") or {}).get("error")
    return tuple(error["loc"]) + (raised.path if isinstance(raised, AtKey) else ())


_BOUNDS = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}


def bound_fix(error: dict) -> str | None:
    """'give a value <= 10' for a pydantic range error, from the limit it names; None for other errors."""
    ctx = error.get("ctx") or {}
    bounds = [f"{symbol} {ctx[k]}" for k, symbol in _BOUNDS.items() if k in ctx]
    return f"give a value {' and '.join(bounds)}" if bounds else None


def pydantic_fix(error: dict[str, Any], key: str = "") -> str | None:
    """What to write instead, for a pydantic error: the allowed values, the bound, the type wanted."""
    ctx = error.get("ctx") or {}
    if "expected" in ctx:
        return f"use one of {ctx['expected']}"
    if error["type"] == "union_tag_invalid":   # e.g. data: {source: CSV}
        return f"use one of {ctx['expected_tags']} (lower case)"
    if error["type"] == "tuple_type":
        return "give a list, e.g. [a, b] (or [a] for one)"
    if error["type"] == "string_pattern_mismatch" and error["loc"] == ("name",):
        return "use letters, digits, '_', '.' and '-' (not dots alone): the name is also the run's folder, runs/<name>"
    if error["type"] == "string_pattern_mismatch":
        return f"use a value matching {ctx.get('pattern')}"
    if error["type"] == "string_too_short":
        return "give a non-empty value"
    if error["type"].startswith(("greater", "less")):
        return bound_fix(error) or "use a value in the allowed range"
    if error.get("input", ...) is None:   # `key:` with nothing after it, or --set key=null
        return f"give a value, or leave {key or 'it'} out for its default"
    kind = error["type"].removesuffix("_parsing").removesuffix("_type")
    if kind == "float" and str(error["loc"][-1]).endswith("timeout"):   # `timeout: 4m`
        return "give a number of seconds, e.g. 240 for 4 minutes"
    if kind in _TYPE_FIXES:
        return _TYPE_FIXES[kind]
    return "use a value of the expected type" if kind != error["type"] else None


# What to write instead of a value of the wrong type, by pydantic error type (int_parsing and int_type alike)
_TYPE_FIXES = {
    "int_from_float": "give a whole number, without a fractional part",
    "int": "give a whole number, e.g. 10", "float": "give a number, e.g. 0.5 or 1e-3",
    "bool": "give true or false", "string": "give text (quoted if it looks like a number or true/false)",
    "list": "give a list, e.g. [a, b]",
    "dict": "give a mapping of keys, e.g. {key: value}", "model": "give a mapping of keys, e.g. {key: value}",
    "model_attributes": "give a mapping of keys, e.g. {key: value}",
}


def rule_and_fix(error: dict[str, Any]) -> tuple[str, str | None]:
    """A check's own message (a validator's ValueError) split at the '. Fix: ' it may carry."""
    rule, _, fix = error["msg"].removeprefix("Value error, ").partition(". Fix: ")
    return rule, fix or None


def shown_input(error: dict) -> object:
    """The value to quote: not a whole section (a check spanning it says what is wrong in words)."""
    value = error.get("input", ...)
    raised = (error.get("ctx") or {}).get("error")
    for part in raised.path if isinstance(raised, AtKey) else ():
        value = value.get(part, ...) if isinstance(value, dict) else ...
    return ... if isinstance(value, dict) else value


class DataError(SearchlabError):
    """A data set is missing, corrupt or inconsistent."""


class StorageError(SearchlabError):
    """The Optuna storage or artifact store cannot be opened or read."""


class RegistryError(SearchlabError):
    """An unknown or duplicate plug-in name."""


class ExportError(SearchlabError):
    """A run or trial cannot be exported."""


class TrialFailure(Exception):
    """Raised inside a trial for a reason worth storing (e.g. a NaN loss); fails that trial only."""


def shown_url(url: str) -> str:
    """A storage URL as printed and written in messages: a password in it (postgresql://user:pw@host/db) as ***,
    since run logs and terminals get shared."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}{sep}{credentials.split(':')[0]}:***@{host}" if at and ":" in credentials else url


def refuse_folder(out: str | Path | None, example: str, what: str = "file") -> None:
    """--out names a file to write: a folder there was an OSError after the work ('Is a directory')."""
    if out is not None and Path(out).is_dir():
        raise SearchlabError(f"--out {out} is a folder. Fix: name the {what} to write (e.g. {Path(out) / example})")


def a_few(items: Sequence[object], shown: int = 3) -> str:
    """The first `shown` items, comma-separated, then ', ...' if there are more: examples in a one-line message."""
    return ", ".join(map(str, items[:shown])) + (", ..." if len(items) > shown else "")
