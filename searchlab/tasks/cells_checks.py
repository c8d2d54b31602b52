"""Checks of a cells space (spaces/cells.yaml) that span several settings, and the cells networks that are no
network at all: run by the classify task after each setting's own values were checked (tasks/parse.py)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from searchlab.config.yamlsrc import Located
from searchlab.space.params import Group, written_path
from searchlab.tasks.arch_config import CellNetSpec
from searchlab.tasks.parse import Limit


def check_reductions_within_cells(searched: dict[str, Any], src: Located) -> None:
    """Both searched, the two ranges must fit together: the probes (one setting at an end, the rest drawn) met
    reductions 4 with cells 3 on some seeds only, so a space loaded or not by its seed, and its trials drawing
    the pair failed. Run after each range was checked against its own limits (cells >= 1, reductions <= 4), so
    the fix offered here is one the task accepts."""
    for name, reductions in searched.items():
        cells = searched.get(name.removesuffix("reductions") + "cells") if name.endswith("model.reductions") else None
        if cells is None:
            continue
        most, least = max(_values(reductions)), min(_values(cells))
        if most > least:
            raise src.error(("space", *name.split(".")), f"reductions reach {most} while cells go down to {least}: "
                            "a trial drawing both would fail (reductions cannot exceed cells)",
                            got=list(_values(reductions)), fix=f"keep reductions at most {least} (cells' least), or "
                            f"search cells from {most} up")


def cells_limits(searched: dict[str, Any], configs: list[dict[str, Any]]) -> dict[str, Limit]:
    """What reductions <= cells asks of cells or reductions, searched or fixed, within the other's own limits
    (reductions 0-4, cells 1-20), for the fix of a value past its own limits: `cells: {int: [0, 3]}` was told to
    search [1, 3], and `reductions: 9` with `cells: 3` to give a value <= 4, which the check of both then refused.
    The other setting counts as written: searched, fixed, or left out for its default."""
    limits = {}
    for name in dict.fromkeys([*searched, *_fixed_names(configs)]):
        if name.endswith("model.cells"):
            reductions, said = _other(name, "reductions", searched, configs)
            if reductions:
                most = max(reductions)
                least = min(most, 4)
                limits[name] = Limit(least, None, f"reductions {said(most, least)}, and cannot exceed cells",
                                     f"keep reductions at most cells' least (they {said(most, least)})")
        elif name.endswith("model.reductions"):
            cells, said = _other(name, "cells", searched, configs)
            if cells:
                least = min(cells)
                most = max(least, 1)
                change = "search cells from" if _sibling(name, "cells") in searched else "set cells to at least"
                limits[name] = Limit(None, most, f"cells {said(least, most)}, and reductions cannot exceed cells",
                                     f"{change} reductions' most (cells {said(least, most)})")
    return limits


def _fixed_names(configs: list[dict[str, Any]]) -> list[str]:
    """`model.cells` and `model.reductions` where a config of a cells model sets them to one value."""
    names: dict[str, None] = {}
    for config in configs:
        model = config.get("model")
        if isinstance(model, dict) and model.get("kind") == "cells":
            names.update((f"model.{key}", None) for key in ("cells", "reductions") if key in model)
    return list(names)


def _other(name: str, setting: str, searched: dict[str, Any],
           configs: list[dict[str, Any]]) -> tuple[tuple[Any, ...], Callable[[Any, Any], str]]:
    """The numbers the sibling `setting` of `name` takes (searched, as set in the configs, else its default), and
    how to say the one that sets the limit and where the setting's own limits bring it (`reach 9 (4 within...)`)."""
    sibling = _sibling(name, setting)
    if sibling in searched:
        verb = "reach" if setting == "reductions" else "go down to"
        values, how = _values(searched[sibling]), "{verb} {value}"
    else:
        values, how, verb = _set_to(sibling, configs), "are {value}", ""
        if not values:   # left out: the model is built with its default
            values, how = (CellNetSpec.model_fields[setting].default,), "are {value} by default"

    def said(value: Any, within: Any) -> str:
        bounded = "" if value == within else f" ({within} within their own limit)"
        return how.format(verb=verb, value=value) + bounded

    return tuple(v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)), said


def _sibling(name: str, setting: str) -> str:
    return name.rsplit(".", 1)[0] + "." + setting


def _set_to(key: str, configs: list[dict[str, Any]]) -> tuple[Any, ...]:
    """The numbers the configs set the dotted `key` to."""
    set_to = set()
    for config in configs:
        value: Any = config
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, int) and not isinstance(value, bool):
            set_to.add(value)
    return tuple(set_to)


def _values(param: Any) -> tuple[Any, ...]:
    return tuple(param.choices) if hasattr(param, "choices") else (param.low, param.high)


def check_same_cell_nodes(configs: list[dict[str, Any]], src: Located, space: Group) -> None:
    """Every cell of the network is built from the normal or the reduce genotype, one output per node, so the two
    need as many nodes: an extra n5 in `normal` was refused with "check this parameter's range or choices"."""
    for config in configs:
        model = config.get("model")
        if not isinstance(model, dict) or model.get("kind") != "cells":
            continue
        normal, reduce = model.get("normal"), model.get("reduce")
        if not isinstance(normal, dict) or not isinstance(reduce, dict):
            continue   # the schema says what is missing
        if len(normal) == len(reduce) and normal:
            continue
        only_normal = [key for key in normal if key not in reduce]
        only_reduce = [key for key in reduce if key not in normal]
        fix = "; ".join([*(f"add {key} to reduce, or remove it from normal" for key in only_normal),
                         *(f"add {key} to normal, or remove it from reduce" for key in only_reduce)]) or \
            "give both cells the same nodes, at least one (n1: {op1: ..., in1: 0, op2: ..., in2: 1})"
        at = ("space", *written_path(space, config, ("model", "normal")))
        raise src.error(at, "the normal and reduce cells must have the same nodes (each cell of the network is "
                        f"built from one of the two): normal has {_names(normal)}, reduce has {_names(reduce)}",
                        fix=fix)


def _names(nodes: dict[str, Any]) -> str:
    return ", ".join(nodes) if nodes else "none"


def outputs_constant(model: Any) -> bool:
    """A cells network (a parsed `model` spec) whose last cell has every op `none`: that cell outputs zeros whatever
    the image, so the network predicts one constant. It costs next to nothing (depth 1, ~12k params), so counted
    as fitting it let an unreachable budget.max_depth pass the check before the run, and every trial was pruned."""
    from searchlab.models.cells import _cell_reduction_indices

    if not isinstance(model, CellNetSpec):
        return False
    last = model.reduce if model.cells - 1 in _cell_reduction_indices(model.cells, model.reductions) else model.normal
    return all(node.op1 == node.op2 == "none" for node in last.values())
