"""Settings a space declares that can never have an effect, e.g. `focal_gamma: 3` beside `loss: ce`, or a
RandAugment magnitude range beside a fixed `policy: flip_rotate`.

The sampler leaves such a setting out of every trial (define-by-run, space/sample.py), which is right for
the search but silent for the user, who wrote it and expects it to act. Only certain cases are reported:
the setting is unused in every probed config, and every setting its rule reads has one value throughout,
so no sampled combination could make it used. A group without effect is reported once, not per entry.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from searchlab.space.params import SEARCHABLE, Branch, FixedParam, Group, Node
from searchlab.space.sample import ABSENT, ConfigPath, UsedRule, probe_configs, value_at


@dataclass(frozen=True)
class UnusedSetting:
    path: str                     # dotted config path, e.g. imbalance.focal_gamma
    shown: str                    # as the space names it, one_of option included: gan.dcgan.gp_weight
    written: str                  # as the space declares it: its fixed value, "searched", or "a group"
    because: dict[str, Any]       # the settings its rule read, with their one value (ABSENT: not in the space)


def unused_settings(space: Group, used: UsedRule, seed: int = 0) -> list[UnusedSetting]:
    probes = list(probe_configs(space, seed=seed))
    return list(_unused_under(space, (), probes, used))


def _unused_under(group: Group, at: ConfigPath, probes: list[dict[str, Any]], used: UsedRule,
                  name: ConfigPath = ()) -> Iterator[UnusedSetting]:
    for key, node in group.entries:
        path, shown = at + (key,), name + (key,)
        found = _certainly_unused(path, shown, node, probes, used)
        if found is not None:
            yield found
        elif isinstance(node, Branch):
            # each option against the configs that took it: `gp_weight` written onto the dcgan option is
            # unused there even though the wgan_gp option's own gp_weight is used
            for label, option in node.options:
                taking = [config for config in probes if value_at(config, path + (node.key,)) == label]
                yield from _unused_under(option, path, taking, used, shown + (label,))
        elif isinstance(node, Group):
            yield from _unused_under(node, path, probes, used, shown)


def _certainly_unused(path: ConfigPath, shown: ConfigPath, node: Node, probes: list[dict[str, Any]],
                      used: UsedRule) -> UnusedSetting | None:
    reads: dict[ConfigPath, set[str]] = {}
    present = [config for config in probes if value_at(config, path) is not ABSENT]
    if isinstance(node, FixedParam) and node.value is None:   # null: a setting dropped (one an include set)
        return None
    if not present or any(_used_in(config, path, used, reads) for config in present):
        return None
    if not reads or any(len(values) > 1 for values in reads.values()):
        return None   # unused in these probes, but another combination of searched settings might use it
    written = repr(node.value) if isinstance(node, FixedParam) else "searched" if isinstance(node, SEARCHABLE) \
        else "a group"
    return UnusedSetting(".".join(path), ".".join(shown), written, {".".join(p): value_at(present[0], p) for p in reads})


def describe(setting: UnusedSetting, default: Callable[[str], Any]) -> str:
    """One line for the user: which setting, and the (fixed) settings that leave it without effect."""
    written = {name: value for name, value in setting.because.items() if value is not ABSENT}
    given = ", ".join(f"{name}: {value!r}" for name, value in written.items()) or \
        ", ".join(f"{name}: {default(name)!r} (default)" for name in setting.because)   # all left at defaults
    return (f"space.{setting.shown} ({setting.written}) has no effect in any trial of this space, given {given}; "
            "it is left out of every trial. Fix: remove it, or change the setting it depends on")


def _used_in(config: dict[str, Any], path: ConfigPath, used: UsedRule, reads: dict[ConfigPath, set[str]]) -> bool:
    def lookup(dependency: ConfigPath) -> Any:
        value = value_at(config, dependency)
        reads.setdefault(dependency, set()).add(repr(value) if value is not ABSENT else "<default>")
        return value
    return used(path, lookup)

