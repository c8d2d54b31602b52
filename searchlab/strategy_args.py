"""A strategy's or a pruner's `args`, as a study file or a preset writes them, checked when the study loads against
the signature of the class that takes them (strategy.py calls check_arg_values)."""
from __future__ import annotations

import contextlib
import inspect
import math
import re
from collections.abc import Callable
from typing import Any

from searchlab.errors import ConfigError

# The args a study file (or a preset) gives a sampler or a pruner, checked against the signature of the class
# that takes them: nothing else looked at their values, so TPE's n_startup_trials "3" crashed the run's start,
# its n_ei_candidates "24" (or 0) failed every trial after the random start-up, and Hyperband's
# reduction_factor 1 divided by zero.
KINDS = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "text", "None": "null",
         "dict": "a mapping", "list": "a list"}
SAME_KIND = {"Mapping": "dict", "MutableMapping": "dict", "Sequence": "list", "tuple": "list", "NoneType": "None"}
FITS: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),   # an int is a float's too
    "bool": lambda v: isinstance(v, bool), "str": lambda v: isinstance(v, str), "None": lambda v: v is None,
    "dict": lambda v: isinstance(v, dict), "list": lambda v: isinstance(v, (list, tuple))}
COUNT = re.compile(r"^n_|_(size|count|trials|steps|candidates)$|^popsize$")
# The least value of an argument whose constructor takes a smaller one that then breaks sampling or pruning,
# or that means nothing (a count below 0): its least, and what it counts. By the class (or a class it extends).
STARTUP = (0, "the trials drawn at random before its model")
HALVING = {"min_resource": (1, "the steps each trial runs before its first rung"), "bootstrap_count": (0, "a count"),
           "reduction_factor": (2, "each rung keeps 1 in reduction_factor of the trials, so 1 would keep all")}
LEAST: dict[str, dict[str, tuple[int, str]]] = {
    "TPESampler": {"n_startup_trials": STARTUP, "prior_weight": (0, "a weight (a negative one failed every trial)"),
                   "n_ei_candidates": (1, "the candidates it picks each value from: 0 failed every trial after the "
                                          "random start-up")},
    "GPSampler": {"n_startup_trials": STARTUP}, "CmaEsSampler": {"n_startup_trials": STARTUP},
    "RegularizedEvolutionSampler": {"population_size": (2, "the trials it breeds from"),
                                    "sample_size": (1, "the members of each tournament")},
    "PercentilePruner": {"n_startup_trials": (0, "the trials never pruned, at the start"), "n_warmup_steps":
                         (0, "a count of steps"), "interval_steps": (1, "the steps from one check to the next"),
                         "n_min_trials": (1, "the trials a step needs before it is compared")},
    "SuccessiveHalvingPruner": {**HALVING, "min_early_stopping_rate": (0, "a count of rungs")},
    "HyperbandPruner": {**HALVING, "max_resource": (1, "the steps of the longest trial")}}
LEAST["MedianPruner"] = LEAST["PercentilePruner"]


def check_arg_values(target: Any, args: dict[str, Any], what: str, section: str,
                     defaults: dict[str, Any] | None = None) -> None:
    """Each of `args` against its annotation in `target`'s signature (int, float, bool, str, None, a list, a
    mapping and unions of them; any other annotation takes what it is given, as the class would) and the least
    value of a count. `section`: the key the args are under (strategy.args); `defaults`: searchlab's own."""
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):   # no readable signature: the class says it, if anything
        return
    for name, value in args.items():
        if name not in params:
            continue
        default = (defaults or {}).get(name, params[name].default)
        kinds = kinds_of(params[name].annotation)
        least = least_of(target, name, kinds, default)
        if kinds is not None and not any(FITS[kind](value) for kind in kinds):
            raise ConfigError(f"{what} takes {name} as {_described(name, kinds)}", key=f"{section}.{name}",
                              got=value, fix=_kind_fix(name, value, kinds, default, least[0] if least else None))
        if isinstance(value, float) and not math.isfinite(value):   # nan passed `value < least`, and broke TPE
            raise ConfigError(f"{what} takes {name} as a finite number, not {value}", key=f"{section}.{name}",
                              got=value, fix=f"{name}: {default}" if _finite(default) else "give a finite number")
        if least is not None and FITS["float"](value) and value < least[0]:
            suggest = default if FITS["float"](default) and default >= least[0] else least[0]
            raise ConfigError(f"{what} needs {name} >= {least[0]}: {least[1]}", key=f"{section}.{name}", got=value,
                              fix=f"{name}: {suggest} ({'its default' if suggest == default else 'the least'}), or "
                              "more")


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def kinds_of(annotation: Any) -> list[str] | None:
    """The kinds of YAML value an annotation takes ("int | None": int, None); None when it names any other."""
    if annotation is inspect.Parameter.empty:
        return None
    text = annotation if isinstance(annotation, str) else \
        annotation.__name__ if isinstance(annotation, type) else str(annotation)
    text = re.sub(r"\b(typing|collections\.abc|builtins)\.", "", text)
    kinds = [SAME_KIND.get(base, base) for base in (re.match(r"\w*", alt).group(0) for alt in _alternatives(text))]
    return list(dict.fromkeys(kinds)) if all(kind in KINDS for kind in kinds) else None


def _alternatives(text: str) -> list[str]:
    """"Optional[int]", "Union[int, str]" and "int | None" as their alternatives."""
    text = text.strip()
    if found := re.fullmatch(r"Optional\[(.*)\]", text):
        return _alternatives(found.group(1)) + ["None"]
    parts = _split(found.group(1), ",") if (found := re.fullmatch(r"Union\[(.*)\]", text)) else _split(text, "|")
    return [text] if len(parts) == 1 else [alt for part in parts for alt in _alternatives(part)]


def _split(text: str, separator: str) -> list[str]:
    """`text` split at `separator` outside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char in "[(") - (char in "])")
        if char == separator and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [part.strip() for part in parts + [text[start:]]]


def _described(name: str, kinds: list[str], count: bool = True) -> str:
    said = " or ".join(KINDS[kind] for kind in kinds if kind != "None") or "null"
    if count and kinds[0] == "int" and COUNT.search(name):
        said = f"a count: {said}"
    return f"{said}, or null" if "None" in kinds and len(kinds) > 1 else said


def _kind_fix(name: str, value: Any, kinds: list[str], default: Any, least: int | None) -> str:
    """The value as it should be written: a quoted number or boolean unquoted, a fraction of a count whole."""
    if isinstance(value, str) and (unquoted := _unquoted(value.strip(), kinds)) is not None:
        return f"write it without quotes: {name}: {unquoted}"
    if "int" in kinds and "float" not in kinds and isinstance(value, float) and math.isfinite(value):
        whole = round(value) if least is None else max(round(value), least)
        return f"write {name} as a whole number, e.g. {name}: {whole}"
    fix = f"write {name} as {_described(name, kinds, count=False)}"
    if default is not inspect.Parameter.empty:
        fix += f", or remove it for its default ({name}: {_as_yaml(default)})"
    return fix


def _unquoted(text: str, kinds: list[str]) -> str | None:
    """A quoted value of a kind the argument takes ("3", "0.5", "false"), as written without its quotes."""
    for kind, parse in (("int", int), ("float", float)):
        with contextlib.suppress(ValueError):
            if kind in kinds and math.isfinite(number := parse(text)):
                return str(number)
    if "bool" in kinds and text.lower() in ("true", "false", "yes", "no", "on", "off"):
        return "true" if text.lower() in ("true", "yes", "on") else "false"
    return None


def _as_yaml(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def least_of(target: Any, name: str, kinds: list[str] | None, default: Any) -> tuple[int, str] | None:
    """The least value of the argument `name`: by the table above, else 0 for a count (n_...) whose default
    counts, e.g. a plug-in's n_startup_trials: 10."""
    for cls in inspect.getmro(target) if inspect.isclass(target) else (target,):
        if name in LEAST.get(getattr(cls, "__name__", ""), {}):
            return LEAST[cls.__name__][name]
    if kinds and kinds[0] == "int" and name.startswith("n_") and FITS["int"](default) and default >= 0:
        return 0, "a count"
    return None


def refuse_grid_naming_fixed(grid: Any, space: Any) -> None:
    """A GridSampler's search_space key the space fixes (`w: 8`, or `w: {choice: [8]}`, a one-value choice) is
    no Optuna parameter: it was refused as "a parameter the space does not search", which a choice seemed to be."""
    from searchlab.space.sample import fixed_params

    fixed = {param.name: param for param, _ in fixed_params(space)}
    for name in grid if isinstance(grid, dict) else ():
        if (param := fixed.get(name)) is None:
            continue
        how = (f"a one-value choice, {{choice: [{param.value!r}]}}, so no parameter is drawn for it" if param.one_choice
               else "written as a constant")
        more = f"give space.{name}'s choice more values" if param.one_choice else f"search space.{name} in the space"
        raise ConfigError(f"the grid names {name}, which the space fixes at {param.value!r} ({how}); the grid need "
                          "not list it", key=f"strategy.args.search_space.{name}", got=grid[name],
                          fix=f"drop {name} from strategy.args.search_space, or {more} to search it")
