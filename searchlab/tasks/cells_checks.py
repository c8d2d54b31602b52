"""Checks of a cells space (spaces/cells.yaml) that span several settings, and the cells networks that are no
network at all: run by the classify task after each setting's own values were checked (tasks/parse.py)."""
from __future__ import annotations

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
    """What reductions <= cells asks of a searched cells or reductions range, within the other's own limits
    (reductions 0-4, cells 1-20), for the fix of a range past its own limits: `cells: {int: [0, 3]}` was told to
    search [1, 3], which the check of reductions 2 against cells 1 then refused."""
    limits = {}
    for name in searched:
        if name.endswith("model.cells") and (reductions := _other(name, "reductions", searched, configs)):
            least = min(max(reductions), 4)
            limits[name] = Limit(least, None, f"from {least}: reductions reach {least}, and cannot exceed cells",
                                 f"keep reductions at most cells' least (they reach {least})")
        elif name.endswith("model.reductions") and (cells := _other(name, "cells", searched, configs)):
            most = max(min(cells), 1)
            limits[name] = Limit(None, most, f"up to {most}: cells go down to {most}, and reductions cannot exceed "
                                 "cells", f"search cells from reductions' most up (cells go down to {most})")
    return limits


def _other(name: str, setting: str, searched: dict[str, Any], configs: list[dict[str, Any]]) -> tuple[Any, ...]:
    """The values the sibling `setting` of the searched `name` takes: searched, or as set in the configs."""
    sibling = name.rsplit(".", 1)[0] + "." + setting
    if sibling in searched:
        return _values(searched[sibling])
    set_to = set()
    for config in configs:
        value: Any = config
        for key in sibling.split("."):
            value = value.get(key) if isinstance(value, dict) else None
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
