"""Scalars of a study file that YAML or pydantic's lax mode would misread: a boolean where a number or text is
wanted, a number written as text. Said by the study schema's sections (schema.Section)."""
from __future__ import annotations

import math
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from searchlab.config.yamlsrc import AmbiguousNumber, load_value

# Study files are YAML 1.1: these words, unquoted, are booleans, which pydantic's lax mode read as 1 where a
# number was wanted (`n_trials: yes` ran one trial, `timeout: on` stopped after a second)
YAML_BOOLEANS = "YAML reads the unquoted words yes/no/true/false/on/off as booleans"
# Settings whose absence means no limit: `timeout: .inf` (or inf, 1e400) meant that, and was read as a limit
# never reached, without a word; a NaN limit compared false with everything
NO_LIMIT_WHEN_LEFT_OUT = ("timeout", "trial_timeout", "max_flops", "max_params", "max_depth", "max_concurrent")


def scalar_refused(key: str, value: Any, field: Any) -> str | None:
    """Why `value` is not a value of `key` (its pydantic `field`), with the fix: a YAML boolean where a number or
    text is wanted, a number as text (quoted, or `--set 'key="2"'`) where only a number is. None where it is one,
    or where pydantic or the field's own rule says what to write (`timeout: 4m`, a class, "auto", a path)."""
    kinds, default = _kinds_of(field.annotation), field.default
    number = "a number" if "float" in kinds else "a whole number"
    number_only = kinds & {"int", "float"} and not kinds - {"int", "float", "none"}
    if number_only and _non_finite(value):   # not where text is wanted too: a class may be named "nan"
        return _non_finite_refused(key, value, number, default)
    if number_only and isinstance(value, str) and _reads_as_number(text := value.strip()):
        shown = str(int(text)) if text.lstrip("+-").isdigit() else text   # "010": write 10
        return f"{number}, not the text \"{value}\" (quoted, so YAML keeps it text). Fix: write {shown} without quotes"
    word = str(value).lower()
    if not isinstance(value, bool) or kinds & {"bool", "any", "other"} or {"int", "str"} <= kinds:
        return None
    if kinds & {"int", "float"}:
        example = f", e.g. {key}: {default}" if type(default) in (int, float) else ""
        return f"{number}, not {word} ({YAML_BOOLEANS}). Fix: write {number}{example}"
    quote = f"quote the word as written, e.g. {key}: \"{word}\""
    return f"text, not {word} ({YAML_BOOLEANS}). Fix: {quote}" if "str" in kinds else None


def _non_finite(value: Any) -> bool:
    """inf, -inf or nan, as YAML reads them (.inf, .nan, 1e400) or as text pydantic's lax mode reads so ("inf")."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return False
    return isinstance(value, float) and not math.isfinite(value)


def _non_finite_refused(key: str, value: Any, number: str, default: Any) -> str:
    """Why a number setting takes no infinity or NaN, with what to write for the meaning it was likely given."""
    seconds = key.endswith("timeout")
    wanted = "a finite number of seconds" if seconds else f"a finite {number.removeprefix('a ')}"
    example = f"{key}: 3600" if seconds else f"{key}: {default}" if type(default) in (int, float) else ""
    give = ("give seconds" if seconds else f"give {number}") + (f", e.g. {example}" if example else "")
    text = str(value).strip().lower()
    said = "nan (not a number)" if "nan" in text else "-infinity" if text.startswith("-") else "infinity"
    leave = f"leave {key} out for no limit, or " if key in NO_LIMIT_WHEN_LEFT_OUT else ""
    return f"{wanted}, not {said}. Fix: {leave}{give}"


def _reads_as_number(text: str) -> bool:
    """Whether pydantic's lax mode and YAML, unquoted, both read `text` as a number ("2", "1e-3"; not "inf")."""
    try:
        float(text)   # also keeps out text YAML could not parse
    except ValueError:
        return False
    try:
        return type(load_value(text)) in (int, float)   # not a bool (a subclass of int)
    except AmbiguousNumber:   # "010", "1:30": a number, written so YAML unquoted would misread it
        return True


def _kinds_of(annotation: Any) -> set[str]:
    """The kinds of value a field's type takes: int (Literal[1, 3] too), float, str, bool, literal, any, other"""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _kinds_of(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return set().union(*(_kinds_of(arg) for arg in get_args(annotation)))
    if origin is Literal:
        return {"int" if isinstance(v, int) and not isinstance(v, bool) else "literal" for v in get_args(annotation)}
    names = {Any: "any", bool: "bool", int: "int", float: "float", str: "str", type(None): "none"}
    return {names.get(annotation, "other")}
