"""The closed set of immutable parameter kinds a search space is made of.

Each searchable kind maps one-to-one onto an Optuna distribution under a stable dotted name
(`optim.lr`, `model.cnn.depth`), so optuna-dashboard shows the study in the user's own words.
Includes of fragments are resolved at compile time (space/compile.py) into these same kinds.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution)
from optuna.trial import BaseTrial

Choice = Union[None, bool, int, float, str]


@dataclass(frozen=True)
class FloatParam:
    name: str
    low: float
    high: float
    log: bool = False
    step: float | None = None
    # which of log and step the YAML wrote: a range written over an included one keeps the others (compile.py)
    written: frozenset[str] = field(default=frozenset({"log", "step"}), compare=False, repr=False)

    def distribution(self) -> BaseDistribution:
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def suggest(self, trial: BaseTrial) -> float:
        value = trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)
        return value if self.step is None else on_step(value)


def on_step(value: float) -> float:
    """A stepped float as written: Optuna computes low + k * step, so step 0.1 gives 0.30000000000000004 and
    0.7000000000000001; 15 significant digits drop that noise and nothing a study could have written."""
    return float(f"{value:.15g}")


@dataclass(frozen=True)
class IntParam:
    name: str
    low: int
    high: int
    log: bool = False
    step: int = 1
    written: frozenset[str] = field(default=frozenset({"log", "step"}), compare=False, repr=False)

    def distribution(self) -> BaseDistribution:
        return IntDistribution(self.low, self.high, log=self.log, step=self.step)

    def suggest(self, trial: BaseTrial) -> int:
        return trial.suggest_int(self.name, self.low, self.high, log=self.log, step=self.step)


@dataclass(frozen=True)
class CategoricalParam:
    name: str
    choices: tuple[Choice, ...]

    def distribution(self) -> BaseDistribution:
        return CategoricalDistribution(self.choices)

    def suggest(self, trial: BaseTrial) -> Choice:
        return trial.suggest_categorical(self.name, self.choices)


@dataclass(frozen=True)
class FixedParam:
    """A constant: part of every config, never an Optuna parameter."""

    name: str
    value: Any
    # written as a choice of one value ({choice: [8]}): said when the space then searches nothing
    one_choice: bool = field(default=False, compare=False, repr=False)


@dataclass(frozen=True)
class Group:
    """Named entries in the order the user wrote them; becomes one nested dict of the config."""

    entries: tuple[tuple[str, "Node"], ...] = ()

    def get(self, key: str) -> "Node | None":
        return dict(self.entries).get(key)


@dataclass(frozen=True)
class Branch:
    """A conditional choice: the selected option's sub-space exists only on that branch.

    The selector is the Optuna categorical `name` (e.g. `model.kind`); option parameters are named
    `<path>.<option>.<key>` so two options may each have e.g. a `depth` with its own range.
    """

    name: str
    key: str
    options: tuple[tuple[str, Group], ...]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label, _ in self.options)

    def option(self, label: str) -> Group:
        return dict(self.options)[label]


Searchable = Union[FloatParam, IntParam, CategoricalParam]
Node = Union[FloatParam, IntParam, CategoricalParam, FixedParam, Group, Branch]
SEARCHABLE = (FloatParam, IntParam, CategoricalParam)


def written_path(space: Group, config: dict[str, Any], path: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """`path` of a sampled config as the space's YAML writes it: the option a config took is named after its
    section (`gan.latent` of a dcgan trial is written at `gan.one_of.dcgan.latent`), so an error names the line
    of the option drawn, not of whichever option last wrote a key they share (a YAML anchor, or a `--set`)."""
    out: list[str | int] = []
    node: Node | None = space
    data: Any = config
    for i, part in enumerate(path):
        out.append(part)
        node = node.get(str(part)) if isinstance(node, Group) else None
        data = data.get(part) if isinstance(data, dict) else None
        label = data.get(node.key) if isinstance(node, Branch) and isinstance(data, dict) else None
        if label in getattr(node, "labels", ()) and i + 1 < len(path) and path[i + 1] != node.key:
            out += ["one_of", label]
            node = node.option(label)
    return tuple(out)


def within(distribution: BaseDistribution, value: Any) -> bool:
    """Whether `value` is one the distribution allows (a categorical value none of its choices: no)."""
    try:
        return distribution._contains(distribution.to_internal_repr(value))
    except (ValueError, TypeError):
        return False
