"""Fixed space settings that changed between a study's runs, warned about on resume.

A fixed setting (e.g. a GAN's `train.iterations: 1000`, or a CNN's `width: 16`) is no Optuna parameter, so
Optuna cannot see that the new run's trials differ in it: they would be ranked beside trials trained another
way, with nothing in the dashboard to tell them apart. Warned, not refused, as for `budget.epochs`:
lengthening a short exploratory search is a real use. Each trial stores its whole config (engine/objective.py),
so the values earlier trials ran with are known.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

from optuna.trial import FrozenTrial
from pydantic import BaseModel, ValidationError

from searchlab.engine.objective import config_of
from searchlab.space.params import Branch, FixedParam, Group
from searchlab.space.sample import ABSENT, ConfigPath, UsedRule, value_at

# A fixed setting's path in a config, its constant (its value, and its name as an Optuna parameter were it
# searched), and the branch labels it exists under ((path, label), ...)
FixedSetting = tuple[ConfigPath, FixedParam, tuple[tuple[ConfigPath, str], ...]]
SHOWN_VALUES = 3


def fixed_settings(group: Group, at: ConfigPath = (), under: tuple[tuple[ConfigPath, str], ...] = (),
                   ) -> Iterator[FixedSetting]:
    for key, node in group.entries:
        path = at + (key,)
        if isinstance(node, FixedParam):
            yield path, node, under
        elif isinstance(node, Branch):
            for label, option in node.options:
                yield from fixed_settings(option, path, under + ((path + (node.key,), label),))
        elif isinstance(node, Group):
            yield from fixed_settings(node, path, under)


def changed_settings_warnings(name: str, space: Group, trials: list[FrozenTrial], used: UsedRule | None = None,
                              schema: type[BaseModel] | None = None) -> list[str]:
    """One line per fixed setting of `space` that some of `trials` (the scored ones) ran with another value.

    A setting an earlier trial's config lacks ran at its default in the task's trial `schema`, if the task's
    `used` rule says it had an effect there (the earlier space left it out and this run writes it: e.g. a
    GAN's default 1000 iterations, now `--set space.train.iterations=2000`)."""
    configs = [config_of(trial) for trial in trials]
    lines = []
    for path, fixed, under in fixed_settings(space):
        value = fixed.value
        ran = Counter(_shown(old) for config in configs if all(value_at(config, p) == label for p, label in under)
                      and (old := _ran_with(config, path, used, schema)) is not ABSENT and old != value)
        if not ran:
            continue
        dotted, before = ".".join(path), ran.most_common(1)[0][0]
        others = ", ".join(f"{v} ({n} trials)" for v, n in ran.most_common(SHOWN_VALUES))
        if any(fixed.name in trial.params for trial in trials):   # searched then, fixed now
            lines.append(f"study '{name}' searched space.{dotted} in earlier trials ({len(ran)} values, e.g. "
                         f"{others}); this run fixes it at {_shown(value)}, and all are ranked together. Fix: "
                         f"leave space.{dotted} searched (drop the --set or fixed value) to resume like for like, "
                         "or give the study a new name (or run_dir) for a search with it fixed")
            continue
        lines.append(f"study '{name}' has trials that ran with space.{dotted} {others}; this run's trials "
                     f"use {_shown(value)}, and all are ranked together (the setting is fixed, so no "
                     f"parameter tells them apart). Fix: set space.{dotted} back to {before} to resume like "
                     "for like, or give the study a new name (or run_dir)")
    return lines


def _ran_with(config: dict[str, Any], path: ConfigPath, used: UsedRule | None,
              schema: type[BaseModel] | None) -> Any:
    """The value a trial of `config` had at `path`: as written, else its schema default where it had an
    effect, else ABSENT."""
    written = value_at(config, path)
    if written is not ABSENT or used is None or schema is None or not used(path, lambda p: value_at(config, p)):
        return written
    try:
        value: Any = schema.model_validate(config)
    except ValidationError:   # a config this searchlab no longer accepts: nothing to compare
        return ABSENT
    for part in path:
        value = value.get(part, ABSENT) if isinstance(value, dict) else getattr(value, part, ABSENT)
    return value


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)
