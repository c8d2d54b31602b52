"""One error hierarchy for everything a user can get wrong.

Every message says where (file, line, key path), the rule, the value given and the fix, so the CLI can
print it as is and exit 2 without a traceback.
"""
from __future__ import annotations

import os

import re
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
        # shown_path: a storage URL given where a file was expected is named in the message, password masked
        where = ":".join(shown_path(p) for p in (self.file, self.line) if p is not None)
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


class DataChanged(DataError):
    """The files a run's trials read changed since the run started (data/recorded_split.py). The trial that finds
    it fails, and the whole run stops (engine/worker.py, engine/ray_executor.py): every later trial would read
    the same changed files and fail the same way."""


class StorageError(SearchlabError):
    """The Optuna storage or artifact store cannot be opened or read."""


class RegistryError(SearchlabError):
    """An unknown or duplicate plug-in name."""


class ExportError(SearchlabError):
    """A run or trial cannot be exported."""


class CheckpointGone(ExportError):
    """A trial's checkpoint file is no longer in the run's artifacts/ (its id is still in the trial)."""


class TrialFailure(Exception):
    """Raised inside a trial for a reason worth storing (e.g. a NaN loss); fails that trial only."""


# A URL as SQLAlchemy reads it (its own pattern, made strict): scheme://[user[:password]@]host[:port][/db][?query].
# The password runs from the user's ':' to the first '@'; an '@' in the host or database means the URL is not
# what it seems (`postgresql:///u:pw@h` reads `u:pw@h` as the database), so it is masked as a malformed one.
_WELL_FORMED = re.compile(r"""(?P<scheme>[A-Za-z][\w+.-]*)://
    (?:(?P<user>[^:/?#@\s]*)(?::(?P<password>[^@]*))?@)?
    (?:\[[^\]/?@]*\]|[^:/?@\s]*)(?::[^/?@]*)?
    (?:/[^?@]*)?
    (?:\?.*)?""", re.VERBOSE | re.DOTALL)
# libpq's `?password=...` (and `passwd=`, `sslpassword=`, any case), also in a `key=value` connection string;
# the value runs to the next '&', as SQLAlchemy splits the query ('#', ';' and spaces are part of it)
_PASSWORD_PARAM = re.compile(r"(?P<key>(?:^|[?&;\s])[\w.-]*pass(?:word|wd)=)[^&]+", re.IGNORECASE)
# The scheme and the slashes after it, in a URL that does not parse (`postgresql:/u:pw@host/db`)
_SCHEME_AND_SLASHES = re.compile(r"[A-Za-z][\w+.-]*:/+")
MASK = "***"


def shown_url(url: str) -> str:
    """A storage URL (or any URL) as printed, written in messages, records and exports: a password in it as ***,
    since run logs, terminals, databases and exported models get shared. Covers postgresql://user:pw@host/db,
    libpq's ?password=pw, and a URL that does not parse, where everything between the ':' after the user and
    the '@' is masked (a typo'd URL is echoed in the error that says it does not parse)."""
    masked = _PASSWORD_PARAM.sub(lambda m: m["key"] + MASK, url)
    parsed = _WELL_FORMED.fullmatch(masked)
    if parsed is None:
        return _masked_malformed(masked)
    if parsed["password"] is None:
        return masked
    return masked[:parsed.start("password")] + MASK + masked[parsed.end("password"):]


def _masked_malformed(url: str) -> str:
    """Everything from the first ':' after the scheme (or the first ':' at all) up to the last '@' masked: more
    than the password, maybe, but never less."""
    head, at, host = url.rpartition("@")
    if not at:
        return url
    scheme = _SCHEME_AND_SLASHES.match(head)
    colon = head.find(":", scheme.end() if scheme else 0)
    return f"{head[:colon + 1]}{MASK}@{host}" if colon >= 0 else url


# A storage URL given where a run folder or a file is expected: `scheme://...` as typed, or as a Path leaves it
# (pathlib collapses the `//`: postgresql:/user:pw@host/db); a scheme of two letters or more (C:/ is a drive)
_URL_START = re.compile(r"[A-Za-z][\w+.-]+:/")


def storage_url_in(target: str | Path) -> str | None:
    """`target` (a command's run folder or study file) as text if it is a URL rather than a path (none such
    exists), else None."""
    text = str(target)
    if ("://" in text or _URL_START.match(text)) and not Path(text).exists():
        return text
    return None


def shown_path(path: object) -> str:
    """A path as printed: one that is (or was, before pathlib collapsed its `//`) a URL, password masked."""
    text = str(path)
    return shown_url(text) if "://" in text or _URL_START.match(text) else text


def ats_in_password(url: str) -> bool:
    """Whether the user:password part of a server URL holds more than one '@' (an '@' of the password not
    written %40): SQLAlchemy, and so the driver, ends the password at the first '@' and reads the rest as part of
    the host (`failed to resolve host 'ret@127.0.0.1'`, a piece of the password in the message)."""
    if url.count("@") < 2 or url.startswith(("sqlite:", "journal:")):
        return False
    from sqlalchemy.engine import make_url   # here: this module is imported by every command, most need no URL

    try:
        host = make_url(url).host
    except Exception:   # a URL SQLAlchemy cannot parse is said by whoever opens it
        return False
    return "@" in (host or "")


AT_IN_PASSWORD_FIX = ("percent-encode each '@' of the password as %40 (p@ss -> p%40ss), or leave the password out "
                      "of the URL and give it in the environment variable PGPASSWORD or in ~/.pgpass")


def without_secrets(text: str, url: str) -> str:
    """`text` (a database driver's error about `url`) with the URL's password, and every piece of it that an
    unencoded '@' cut off (3 characters or more: shorter ones would mask common words), as ***."""
    from urllib.parse import unquote

    rest = url.partition("://")[2]
    userinfo = rest.rpartition("@")[0]
    password = userinfo.partition(":")[2]
    secrets = {password, unquote(password), *password.split("@"), *unquote(password).split("@")}
    secrets |= {match.group().partition("=")[2] for match in _PASSWORD_PARAM.finditer(url)}
    for secret in sorted((s for s in secrets if len(s) >= 3), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


# A quoted string (one value, spaces and all) or a run of text without spaces or quotes
_TOKEN = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|[^\s'\"]+")


def shown_text(text: str) -> str:
    """`text` (a study file as read) with shown_url applied to each value in it: a storage URL's password
    masked wherever the file writes it, before the text is stored where others read it (the study's record,
    served by the dashboard)."""
    def masked(token: re.Match) -> str:
        value = token.group()
        if value[0] in "'\"" and len(value) > 1:
            return value[0] + shown_url(value[1:-1]) + value[-1]
        return shown_url(value)

    return _TOKEN.sub(masked, text)


def shown_value(value: Any) -> Any:
    """A JSON-like value (a `--set` value, a record) with shown_url applied to every string in it."""
    if isinstance(value, str):
        return shown_url(value)
    if isinstance(value, dict):
        return {key: shown_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shown_value(item) for item in value]
    return value


_MASKED_PARAM = re.compile(r"[\w.-]*pass(?:word|wd)=" + re.escape(MASK), re.IGNORECASE)


def without_password(url: str) -> str:
    """`url` with its password left out, not masked: what names the database. The same database reached with a
    rotated password, or with the password moved to PGPASSWORD or ~/.pgpass, gives the same string."""
    base, question, query = shown_url(url).partition("?")
    kept = [param for param in query.split("&") if param and not _MASKED_PARAM.fullmatch(param)]
    return base.replace(f":{MASK}@", "@", 1) + (question + "&".join(kept) if kept else "")


def refuse_folder(out: str | Path | None, example: str, what: str = "file", into_folder: bool = False) -> None:
    """--out names a file to write: a folder there was an OSError after the work ('Is a directory'). An empty
    --out (an unset $OUT in a script) reads as the current folder, and was said as a bare "--out  is a folder".
    `into_folder`: a command that writes `<folder>/<example>` for an --out ending in a separator (`--out dir/`)."""
    if out is not None and not str(out).strip():
        raise SearchlabError(f"--out is empty ({str(out)!r}), so it names no {what} (an empty value reads as the "
                             f"current folder). Fix: name the {what} to write (e.g. --out {example})")
    if into_folder and str(out).endswith(("/", os.sep)):
        return
    if out is not None and Path(out).is_dir():
        raise SearchlabError(f"--out {out} is a folder. Fix: name the {what} to write (e.g. {Path(out) / example})")


def a_few(items: Sequence[object], shown: int = 3) -> str:
    """The first `shown` items, comma-separated, then ', ...' if there are more: examples in a one-line message."""
    return ", ".join(map(str, items[:shown])) + (", ..." if len(items) > shown else "")
