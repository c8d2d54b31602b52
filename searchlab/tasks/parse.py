"""A sampled config dict through a task's trial schema; every error names the space key and the value."""
from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from searchlab.config.yamlsrc import Located, dotted
from searchlab.errors import (AtKey, TrialFailure, bound_fix, error_loc, pydantic_fix, rule_and_fix,
                              shown_input)
from searchlab.space.params import Group, IntParam, written_path
from searchlab.suggest import close_names, did_you_mean, fields_at

Config = TypeVar("Config", bound=BaseModel)


@dataclass(frozen=True)
class Limit:
    """What another setting asks of a setting past its own limits (searched or fixed): at least `least`, at most
    `most` (`why` says it), or, when no value within its own limits meets that, what to change in the other
    setting (`otherwise`)."""

    least: Any
    most: Any
    why: str
    otherwise: str

Error = dict[str, Any]
VALUE_CUTOFF = 0.75   # a misspelt value's likeness to the one meant (basci/basic 0.8; finetune/features 0.62: no)
# errors about a key, not its value: every member of a searched parameter would break them alike
_NOT_OF_THE_VALUE = ("missing", "extra_forbidden", "union_tag_not_found", "union_tag_invalid")


def parse_trial(schema: type[Config], task: str, config: dict[str, Any], src: Located | None,
                searched: dict[str, Any] | None = None, union_tags: tuple[str, ...] = (),
                space: Group | None = None) -> Config:
    """`schema` validated from `config`; a ConfigError at the space key (with `src`), else a TrialFailure.
    `union_tags`: discriminator values pydantic puts in error locations, which are not keys the user wrote.
    `space` (the compiled space `config` was drawn from) locates a key inside the one_of option drawn."""
    try:
        return schema.model_validate(config)
    except ValidationError as exc:
        raise _trial_error(schema, task, config, exc.errors()[0], src, searched, union_tags, space) from None


def check_searched_values(schema: type[BaseModel], task: str, configs: Iterable[dict[str, Any]], src: Located,
                          searched: dict[str, Any], union_tags: tuple[str, ...] = (),
                          space: Group | None = None, across: dict[str, Limit] | None = None) -> None:
    """A searched parameter with a member the schema refuses on its own (a misspelt choice, a range past a
    limit), named before any check spanning several settings, which would blame another key for it (`cells:
    {int: [0, 3]}` was refused as `reductions` past cells). Of several, the one written first: one misspelt
    choice in a YAML anchor shared by 16 ops was named at whichever op a random draw took it for first.
    `across`: by parameter name, the limit other settings put on a setting (cells at least the reductions), so the
    fix offered is not refused next by the check spanning both; a fixed setting named there (`reductions: 9`) is
    checked here too, after the searched ones, for the same reason."""
    across = across or {}
    first: dict[str, tuple[dict[str, Any], Error]] = {}
    for config in configs:
        try:
            schema.model_validate(config)
        except ValidationError as exc:
            for err in exc.errors():
                name = _param_name(space, config, _config_loc(err, union_tags))
                if (name in searched or name in across) and _of_the_value(err):
                    first.setdefault(name, (config, err))
    for name in dict.fromkeys([*searched, *across]):   # searched in the order the space writes them, then fixed
        if name in first:
            config, err = first[name]
            raise _trial_error(schema, task, config, err, src, searched, union_tags, space, across)


def _trial_error(schema: type[BaseModel], task: str, config: dict[str, Any], err: Error, src: Located | None,
                 searched: dict[str, Any] | None, union_tags: tuple[str, ...],
                 space: Group | None, across: dict[str, Limit] | None = None) -> Exception:
    loc = list(error_loc(err))
    if len(loc) > 1 and loc[1] in union_tags:
        del loc[1]
    key = dotted(tuple(loc))
    written = written_path(space, config, tuple(loc)) if space is not None else tuple(loc)
    message, own_fix = _rule_of(err.get("input"), err)
    rule = f"not a valid {task} config: {message}"
    fix = own_fix or _value_fix(err, key) or "check this parameter's range or choices"
    if err["type"] == "missing":
        rule, fix = f"the {task} task needs {loc[-1]} here", f"add {loc[-1]}: ..."
    # parameters are named by the option they belong to (`model.cnn.depth`), as --set spells them
    name = dotted(tuple(part for part in written if part != "one_of"))
    param = (searched or {}).get(name)
    got: Any = ...
    if param is not None:
        rule, got, fix = _searched_error(schema, task, config, err, param, name, tuple(loc), union_tags, rule,
                                         own_fix, (across or {}).get(name))
    elif (limit := (across or {}).get(name)) and _of_the_value(err):
        fix = _value_within_limit(err, fix, limit)
    if err["type"] == "union_tag_not_found":   # e.g. model: {depth: ...} without kind: cnn
        tag = err["ctx"]["discriminator"].strip("'")
        rule = f"names no {tag}: it selects which settings the section takes"
        fix = f"add {tag}: one of {', '.join(union_tags)} (e.g. {tag}: {union_tags[0]})" if union_tags else \
            f"add {tag}"
    if err["type"] == "extra_forbidden":
        known = fields_at(schema, tuple(err["loc"][:-1]))
        rule = f"the {task} task has no such setting"
        fix = did_you_mean(str(loc[-1]), known) or (f"settings here: {', '.join(known)}" if known else
                                                    "remove it or fix its spelling")
    if src is None:
        shown = shown_input(err)
        quoted = "" if shown is ... else f" (got {shown!r})"
        return TrialFailure(f"{dotted(('space',) + tuple(loc))}: {rule}{quoted}")
    # an unknown setting's value is what a probe drew (a range's low end), not what was written: name the key
    if got is ... or err["type"] == "extra_forbidden":
        got = loc[-1] if err["type"] == "extra_forbidden" else shown_input(err)
    return src.error(("space",) + tuple(loc), rule, got=got, fix=fix, written=("space",) + written)


def _searched_error(schema: type[BaseModel], task: str, config: dict[str, Any], err: Error, param: Any, name: str,
                    loc: tuple[Any, ...], union_tags: tuple[str, ...], rule: str,
                    own_fix: str | None, limit: Limit | None = None) -> tuple[str, Any, str]:
    """Rule, value and fix of an error at a searched parameter: the members the schema refuses on their own, as
    written; else (a check spanning settings, whose own fix is kept) the choices or range written, not one draw
    of it (1.3985909084407415 of [0.0, 1.5])."""
    span = _members(param)
    if err["type"] == "int_from_float" and not hasattr(param, "choices"):
        low, high = math.ceil(param.low), math.floor(param.high)   # whole numbers within the range
        fix = f"write {loc[-1]}: {low}" if low == high else f"search whole numbers: {loc[-1]}: {{int: [{low}, {high}]}}"
        return rule, list(span), fix
    if _of_the_value(err) and (bad := _bad_members(schema, config, loc, span, union_tags)):
        return _searched_value_error(task, param, name, bad, limit)
    return rule, list(span), own_fix or (f"the space searches {list(span)} for '{name}'; keep it within what the "
                                         f"{task} task accepts")


def _value_fix(err: Error, key: str) -> str | None:
    """pydantic's fix, with the allowed value closest to a misspelt one first (sep_conv_3x4: sep_conv_3x3)."""
    if _not_finite(err.get("input"), err):   # pydantic's rule for it is "a finite number" or a bound it does not break
        return f"write a finite number in place of {err['input']} (.inf and .nan are no setting's value)"
    close = close_names(str(err.get("input")), _allowed(err), cutoff=VALUE_CUTOFF)
    return f"did you mean {', '.join(close)}?" if close else pydantic_fix(err, key)


def _searched_value_error(task: str, param: Any, name: str, bad: list[tuple[Any, Error]],
                          limit: Limit | None = None) -> tuple[str, Any, str]:
    """Rule, value and fix of a searched parameter some members of which the schema refuses: the members named,
    each with its rule; a choice with the allowed value it likely meant, a range with the range that fits."""
    leaf = name.rsplit(".", 1)[-1]
    if hasattr(param, "choices"):
        messages = dict.fromkeys(_rule_of(member, err)[0] for member, err in bad)
        members = [member for member, _ in bad]
        fixes = (limit and _choice_fix(param.choices, leaf, bad, limit)) or \
            "; ".join(_replacement(member, err) for member, err in bad)
        return (f"not a valid {task} config: {'; '.join(messages)}", members[0] if len(members) == 1 else members,
                f"the space searches {list(param.choices)} for '{name}': {fixes}")
    ends = {member: err for member, err in bad}
    said = "; ".join(f"its {'low' if member == param.low else 'high'} end {member}: {rule_and_fix(err)[0]}"
                     for member, err in ends.items())
    return (f"not a valid {task} config: {said}", [param.low, param.high],
            f"the space searches {[param.low, param.high]} for '{name}': {_range_fix(param, leaf, ends, limit)}")


def _not_finite(value: Any, err: Error) -> bool:
    """.inf or .nan where the schema wants a finite number, or a number within bounds (not where it wants text)."""
    wants_a_number = err["type"] == "finite_number" or err["type"].startswith(("greater", "less"))
    return wants_a_number and isinstance(value, float) and not math.isfinite(value)


def _rule_of(value: Any, err: Error) -> tuple[str, str | None]:
    """The schema's rule and own fix for `value`; for .inf or .nan, that it is not a finite number: pydantic said
    'Input should be less than or equal to 10' of a nan, which is not above 10."""
    if _not_finite(value, err):
        return f"{value} is not a finite number", None
    return rule_and_fix(err)


def _replacement(member: Any, err: Error) -> str:
    if _not_finite(member, err):
        return f"remove {member!r} (not a finite number), or write a finite number in its place"
    allowed = _allowed(err)
    close = close_names(str(member), allowed, n=1, cutoff=VALUE_CUTOFF)
    if close:
        return f"did you mean {close[0]!r} for {member!r}?"
    if allowed:
        return f"replace {member!r} with one of {', '.join(allowed)}, or remove it"
    return f"remove {member!r} ({pydantic_fix(err) or 'not accepted'})"


def _range_fix(param: Any, leaf: str, ends: dict[Any, Error], limit: Limit | None = None) -> str:
    """The range written, narrowed to the limits its ends broke (cells: {int: [3, 400]} -> {int: [3, 20]}), and to
    the `limit` other settings put on it where that leaves a range (else the limit is said beside it)."""
    low, high, whole = param.low, param.high, isinstance(param, IntParam)
    for err in ends.values():
        if (bound := _bound(err, whole)) is None:   # an open bound of a float range, or not a bound: say the rule
            allowed = _allowed(err)
            return (f"search {leaf}: {{choice: [{', '.join(allowed)}]}}" if allowed else
                    bound_fix(err) or "keep both ends within what the task accepts")
        low, high = _tighter(max, low, bound[0]), _tighter(min, high, bound[1])
    log = ", log: true" if param.log else ""
    step = f", step: {param.step}" if param.step not in (None, 1) else ""
    low, high, beside = _within_limit(low, high, limit)
    if low == high:   # one value: space/compile.py refuses a range that searches nothing
        return f"write {leaf}: {low}{beside}"
    return f"search {leaf}: {{{'int' if whole else 'float'}: [{low}, {high}]{log}{step}}}{beside}"


def _within_limit(low: Any, high: Any, limit: Limit | None) -> tuple[Any, Any, str]:
    if limit is None:
        return low, high, ""
    least, most = _tighter(max, low, limit.least), _tighter(min, high, limit.most)
    if least <= most:
        said = f"from {limit.least}" if limit.least is not None else f"up to {limit.most}"
        return least, most, f" ({said}: {limit.why})" if (least, most) != (low, high) else ""
    return low, high, f", and then {limit.otherwise}"


def _value_within_limit(err: Error, own_fix: str, limit: Limit) -> str:
    """The bound a fixed value broke, narrowed to the `limit` another setting puts on it: `reductions: 9` with
    `cells: 3` was told "<= 4", and 4 was then refused for exceeding cells."""
    bound = _bound(err, whole=True)
    if bound is None:   # not a bound (`cells: abc`): its own fix first
        return own_fix
    return _values_said("give a value", *bound, limit) or own_fix


def _choice_fix(choices: Iterable[Any], leaf: str, bad: list[tuple[Any, Error]], limit: Limit) -> str | None:
    """The choices within their own limits and the `limit` another setting puts on them (`reductions: {choice:
    [1, 9]}` with `cells: 3`: [1]); if none, what to change in the other setting; if none is within its own limits,
    the values to give instead. None where a member is refused for other than a bound (the usual fixes then)."""
    bounds = [_bound(err, whole=True) for _, err in bad]
    if any(bound is None for bound in bounds):
        return None
    refused = [member for member, _ in bad]
    own_ok = [choice for choice in choices if choice not in refused]
    fits = [choice for choice in own_ok if _meets(choice, limit)]
    kept = fits or own_ok   # one value left: written as that value (space/compile.py: a choice of one is fixed)
    listed = ", ".join(str(choice) for choice in kept)
    give = f"write {leaf}: {listed}" if len(kept) == 1 else f"search {leaf}: {{choice: [{listed}]}}"
    if fits:
        return give + (f" ({limit.why})" if fits != own_ok else "")
    if own_ok:
        return f"{give}, and then {limit.otherwise}"
    low = max((bound[0] for bound in bounds if bound[0] is not None), default=None)
    high = min((bound[1] for bound in bounds if bound[1] is not None), default=None)
    return _values_said(f"replace {', '.join(str(member) for member in refused)} with values", low, high, limit)


def _values_said(give: str, low: Any, high: Any, limit: Limit) -> str | None:
    """`give` what lies within the own bounds `low`..`high` (one may be None) and the `limit`; None if the limit
    asks nothing more; the own bounds, and what to change in the other setting, if nothing lies within both."""
    least, most = _tighter(max, low, limit.least), _tighter(min, high, limit.most)
    if (least, most) == (low, high):
        return None
    if least is not None and most is not None and least > most:
        return f"{give} {_span(low, high)}, and then {limit.otherwise}"
    return f"{give} {_span(least, most)} ({limit.why})"


def _span(low: Any, high: Any) -> str:
    if low is not None and high is not None:
        return f"of {low}" if low == high else f"from {low} to {high}"
    return f">= {low}" if low is not None else f"<= {high}"


def _meets(value: Any, limit: Limit) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return True   # not a number: its type is the schema's to refuse
    return (limit.least is None or value >= limit.least) and (limit.most is None or value <= limit.most)


def _bound(err: Error, whole: bool) -> tuple[Any, Any] | None:
    """(low, None) or (None, high): the bound a pydantic error names; None for an open bound of a float (there
    is no last value below it) or an error not of a bound."""
    ctx = err.get("ctx") or {}
    if "ge" in ctx or ("gt" in ctx and whole):
        return (ctx["ge"] if "ge" in ctx else ctx["gt"] + 1), None
    if "le" in ctx or ("lt" in ctx and whole):
        return None, (ctx["le"] if "le" in ctx else ctx["lt"] - 1)
    return None


def _tighter(pick: Any, own: Any, other: Any) -> Any:
    """`pick` (max for a low end, min for a high one) of two bounds, either of which may be None (no bound)."""
    return own if other is None else other if own is None else pick(own, other)


def _bad_members(schema: type[BaseModel], config: dict[str, Any], loc: tuple[Any, ...], members: Iterable[Any],
                 union_tags: tuple[str, ...]) -> list[tuple[Any, Error]]:
    """The members of a searched parameter the schema refuses at `loc` whatever the other settings are: each put
    in `config` in turn, refused with an error of the value itself (not of a check spanning settings)."""
    bad = []
    for member in members:
        trial = copy.deepcopy(config)
        if not _put(trial, loc, member):
            return []
        try:
            schema.model_validate(trial)
        except ValidationError as exc:
            own = [e for e in exc.errors() if _config_loc(e, union_tags) == loc and _of_the_value(e)]
            if own:
                bad.append((member, own[0]))
    return bad


def _of_the_value(err: Error) -> bool:
    return err["type"] not in _NOT_OF_THE_VALUE and not isinstance((err.get("ctx") or {}).get("error"), AtKey)


def _config_loc(err: Error, union_tags: tuple[str, ...]) -> tuple[Any, ...]:
    """Where in the config a pydantic error is (its location less a union tag; an AtKey check's key not added)."""
    loc = list(err["loc"])
    if len(loc) > 1 and loc[1] in union_tags:
        del loc[1]
    return tuple(loc)


def _param_name(space: Group | None, config: dict[str, Any], loc: tuple[Any, ...]) -> str:
    written = written_path(space, config, loc) if space is not None else loc
    return dotted(tuple(part for part in written if part != "one_of"))


def _put(config: dict[str, Any], loc: tuple[Any, ...], value: Any) -> bool:
    node: Any = config
    for part in loc[:-1]:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    if not isinstance(node, dict) or not loc:
        return False
    node[loc[-1]] = value
    return True


def _members(param: Any) -> tuple[Any, ...]:
    return tuple(param.choices) if hasattr(param, "choices") else (param.low, param.high)


def _allowed(err: Error) -> list[str]:
    """The values a Literal setting allows, as pydantic lists them ("'conv', 'basic' or 'none'")."""
    expected = (err.get("ctx") or {}).get("expected")
    if err["type"] != "literal_error" or not isinstance(expected, str):
        return []
    return [part.strip().strip("'\"") for part in re.split(r", | or ", expected)]
