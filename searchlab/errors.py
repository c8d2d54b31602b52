"""One error hierarchy for everything a user can get wrong.

Every message says where (file, line, key path), the rule, the value given and the fix, so the CLI can
print it as is and exit 2 without a traceback.
"""
from __future__ import annotations


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
