"""Settings a `strategy.points_to_evaluate` point names that its own trial will not use: `optim.momentum: 0.6`
beside `optim.name: adamw` was left out of the trial without a word (Optuna kept it among the queued values,
the trial's params and config did not have it), so the point did not run as written."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from searchlab.space.params import FixedParam, Group
from searchlab.space.sample import ABSENT, ConfigPath, UsedRule, put_at, value_at


def unused_point_settings(points: Sequence[dict[str, Any]], space: Group, searched: set[str],
                          used: UsedRule) -> list[str]:
    """One line per setting a point names that has no effect given the point's other values and the space's
    fixed ones. A setting whose effect hangs on a searched value the point leaves to the strategy is not
    judged: its trial may draw a value that uses it."""
    fixed = {path: node.value for path, node in _fixed_outside_branches(space)}
    said = []
    for i, point in enumerate(points):
        config: dict[str, Any] = {}
        for path, value in [*fixed.items(), *((tuple(name.split(".")), v) for name, v in point.items())]:
            put_at(config, path, value)
        for name, value in point.items():
            path = tuple(name.split("."))
            reads: dict[ConfigPath, Any] = {}
            if _used(config, path, used, reads):
                continue
            if any(seen is _UNSET and ".".join(dep) in searched for dep, seen in reads.items()):
                continue   # decided by a value the strategy draws for this point's trial
            given = ", ".join(f"{'.'.join(dep)} at its default" if seen is _UNSET else f"{'.'.join(dep)}={seen!r}"
                              for dep, seen in reads.items())
            said.append(f"strategy.points_to_evaluate[{i}] sets {name}={value!r}, which has no effect"
                        f"{f' given {given}' if given else ''}: its trial leaves it out. Fix: drop it from the "
                        "point, or give the point the value that uses it")
    return said


_UNSET = object()   # a dependency neither the point nor the space fixes


def _used(config: dict[str, Any], path: ConfigPath, used: UsedRule, reads: dict[ConfigPath, Any]) -> bool:
    def lookup(dependency: ConfigPath) -> Any:
        value = value_at(config, dependency)
        reads[dependency] = _UNSET if value is ABSENT else value
        return value
    return used(path, lookup)


def _fixed_outside_branches(group: Group, at: ConfigPath = ()) -> Iterator[tuple[ConfigPath, FixedParam]]:
    for key, node in group.entries:
        if isinstance(node, FixedParam):
            yield at + (key,), node
        elif isinstance(node, Group):   # not into a one_of's options: which one a trial takes is drawn
            yield from _fixed_outside_branches(node, at + (key,))

