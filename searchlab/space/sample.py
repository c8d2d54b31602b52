"""Turning a compiled space into concrete configs: one function samples a whole config from a trial."""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import optuna
from optuna.trial import BaseTrial

from searchlab.space.params import (SEARCHABLE, Branch, CategoricalParam, FixedParam, Group, Node,
                                     Searchable)
from searchlab.throwaway import throwaway_study


ConfigPath = tuple[str, ...]
# used(path, lookup): whether the setting at `path` of the config has any effect, given the settings it
# depends on, read with lookup(path) (which raises Pending while one is not sampled yet, and returns
# ABSENT for a setting the space does not have: the rule then assumes its default).
UsedRule = Callable[[ConfigPath, Callable[[ConfigPath], Any]], bool]
ABSENT = object()


class Pending(Exception):
    """A setting that a rule depends on is not sampled yet: ask again after it is."""


def sample_config(trial: BaseTrial, space: Group, used: UsedRule | None = None) -> dict[str, Any]:
    """Ask `trial` for every parameter reachable under the chosen branches; return the nested config.

    With `used` (a task's rule), a setting without effect under the values sampled so far is not asked
    for at all (define-by-run, as in an Optuna objective written by hand): e.g. RandAugment's magnitude
    when the policy drawn is another. Such a parameter would be noise to TPE, a column of meaningless
    values in the dashboard and its importances, and two trials differing only in it would train alike.
    """
    if used is None:
        return _sample_group(trial, space)
    return _DefineByRun(trial, used).sample(space)


def _sample_group(trial: BaseTrial, group: Group) -> dict[str, Any]:
    return {key: _sample_node(trial, node) for key, node in group.entries}


def _sample_node(trial: BaseTrial, node: Node) -> Any:
    if isinstance(node, SEARCHABLE):
        return node.suggest(trial)
    if isinstance(node, FixedParam):
        return node.value
    if isinstance(node, Branch):
        label = _draw_label(trial, node)
        return {node.key: label, **_sample_group(trial, node.option(label))}
    return _sample_group(trial, node)


def _draw_label(trial: BaseTrial, branch: Branch) -> Any:
    """The branch taken: asked of the trial only when there is a choice (one option is not a parameter)."""
    return trial.suggest_categorical(branch.name, branch.labels) if len(branch.labels) > 1 else branch.labels[0]


def searchable_params(space: Group) -> Iterator[tuple[Searchable, dict[str, Any]]]:
    """Every searchable parameter with the branch selections that make it exist ({selector: label})."""
    yield from _walk(space, {})


def _walk(group: Group, needs: dict[str, Any]) -> Iterator[tuple[Searchable, dict[str, Any]]]:
    for _, node in group.entries:
        if isinstance(node, SEARCHABLE):
            yield node, needs
        elif isinstance(node, Group):
            yield from _walk(node, needs)
        elif isinstance(node, Branch):
            if len(node.labels) > 1:
                yield CategoricalParam(node.name, node.labels), needs
            for label, option in node.options:
                needs_here = {**needs, node.name: label} if len(node.labels) > 1 else needs
                yield from _walk(option, needs_here)


def fixed_params(group: Group, needs: dict[str, Any] | None = None) -> Iterator[tuple[FixedParam, dict[str, Any]]]:
    """Every value the space fixes (those in a branch's options too), with the branch selections it needs to
    exist ({selector: label}), as searchable_params gives a searched parameter's."""
    for _, node in group.entries:
        if isinstance(node, FixedParam):
            yield node, needs or {}
        elif isinstance(node, Group):
            yield from fixed_params(node, needs)
        elif isinstance(node, Branch):
            for label, option in node.options:
                yield from fixed_params(option, {**(needs or {}), node.name: label} if len(node.labels) > 1 else needs)


def fixed_needs(group: Group) -> dict[str, dict[str, Any]]:
    """The branch selections each fixed value needs, by its dotted name: a point naming one checks that it takes
    that branch."""
    return {param.name: needs for param, needs in fixed_params(group)}


def fixed_values(group: Group) -> dict[str, Any]:
    """Every value the space fixes, by its dotted name, a one_of left with one option (`--set
    space.model.kind=cnn`) included: its selector, as a point names it, is `model.kind: cnn`."""
    found: dict[str, Any] = {}
    for _, node in group.entries:
        if isinstance(node, FixedParam):
            found[node.name] = node.value
        elif isinstance(node, Group):
            found.update(fixed_values(node))
        elif isinstance(node, Branch):
            if len(node.labels) == 1:
                found[node.name] = node.labels[0]
            for _, option in node.options:
                found.update(fixed_values(option))
    return found


def one_choices(group: Group) -> list[str]:
    """The dotted names of settings written as a choice of one value ({choice: [8]}): fixed, not searched."""
    found: list[str] = []
    for _, node in group.entries:
        if isinstance(node, FixedParam) and node.one_choice:
            found.append(node.name)
        elif isinstance(node, Group):
            found += one_choices(node)
        elif isinstance(node, Branch):
            for _, option in node.options:
                found += one_choices(option)
    return found


def probe_configs(space: Group, seed: int = 0, limit: int = 400) -> Iterator[dict[str, Any]]:
    """Configs that together use every choice and both ends of every range at least once.

    Used to validate a space against a task's schema before any trial runs, so an unknown model name or
    an impossible combination fails at load time with the parameter's name, not in trial 17.
    """
    for config, _ in _probes(space, seed, limit):
        yield config


def cheapest_config(space: Group, cost: Callable[[dict[str, Any]], float], seed: int = 0, probes: int = 100,
                    steps: int = 300) -> tuple[dict[str, Any], float, int]:
    """The config of least `cost` found, its cost and how many configs were costed; stops at a cost of 0.

    The probes come first; then a descent from the cheapest of them tries each parameter's extremes in turn
    and keeps every change that lowers the cost, until a round changes nothing or `steps` configs were
    costed. Probes change one setting at a time around random draws, so they rarely draw a network small
    in every setting at once: that is the one a tight FLOPs budget needs, and the descent finds it.
    """
    study = _throwaway_study(seed)
    best, best_params, best_cost, costed = {}, {}, float("inf"), 0
    for config, params in _probes(space, seed, probes):
        costed += 1
        value = cost(config)
        if value < best_cost:
            best, best_params, best_cost = config, params, value
        if best_cost <= 0:
            return best, best_cost, costed
    changed = True
    while changed and best_cost > 0 and costed < steps:
        changed = False
        moves = [{param.name: value} for param, _ in searchable_params(space) for value in _extremes(param)
                 if param.name in best_params and best_params[param.name] != value]
        for move in moves + _uniform_moves(space, best_params):
            if costed >= steps:
                break
            config, params = _ask_with(study, space, {**best_params, **move})
            costed += 1
            if (new_cost := cost(config)) < best_cost:
                best, best_params, best_cost, changed = config, params, new_cost, True
    return best, best_cost, costed


def _uniform_moves(space: Group, params: dict[str, Any]) -> list[dict[str, Any]]:
    """For each choice some categorical parameters share, all of those set to it at once (every op of a cell
    `skip`): a network's depth is its longest path, which no single change shortens, and the descent took a
    depth of 8 for the least a cells space could reach (5), refusing a max_depth it could meet."""
    offered: dict[str, tuple[Any, list[str]]] = {}   # by repr: choices may be unhashable (lists)
    for param, _ in searchable_params(space):
        if isinstance(param, CategoricalParam) and param.name in params:
            for value in param.choices:
                offered.setdefault(repr(value), (value, []))[1].append(param.name)
    return [{name: value for name in names} for value, names in offered.values()
            if len(names) > 1 and any(params[name] != value for name in names)]


def _probes(space: Group, seed: int, limit: int) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    study = _throwaway_study(seed)
    seen: set[tuple[tuple[str, Any], ...]] = set()
    for param, needs in searchable_params(space):
        for value in _probe_values(param):
            fixed = {**needs, param.name: value}
            key = tuple(sorted(fixed.items(), key=lambda kv: kv[0]))
            if key in seen:
                continue
            seen.add(key)
            if len(seen) > limit:
                return
            yield _ask_with(study, space, fixed)
    if not seen:
        yield _ask_with(study, space, {})


def _throwaway_study(seed: int) -> optuna.Study:
    return throwaway_study(sampler=optuna.samplers.RandomSampler(seed=seed))


def _ask_with(study: optuna.Study, space: Group, fixed: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A config with the `fixed` parameter values (the rest drawn at random), and all its parameters."""
    study.enqueue_trial(fixed, skip_if_exists=False)
    trial = study.ask()
    return sample_config(trial, space), trial.params


def _probe_values(param: Searchable) -> tuple[Any, ...]:
    """Every choice, both ends of a range, and a fractional value inside a continuous one: its ends can be
    whole numbers, and a float range where a setting takes an integer ({float: [0, 3]} for a state index)
    then passed every probe and failed its trials."""
    dist = None if isinstance(param, CategoricalParam) else param.distribution()
    if isinstance(dist, optuna.distributions.FloatDistribution) and dist.step is None and dist.high > dist.low:
        inner = dist.low + (dist.high - dist.low) * _INNER
        return (*_extremes(param), inner if inner != round(inner) else math.nextafter(inner, dist.high))
    return _extremes(param)


_INNER = 0.381966   # of the way from low to high: no simple fraction, so rarely a whole number


def _extremes(param: Searchable) -> tuple[Any, ...]:
    if isinstance(param, CategoricalParam):
        return param.choices
    dist = param.distribution()
    return (dist.low, dist.high)   # Optuna has already snapped `high` onto the step grid


class _DefineByRun:
    """Samples a space node by node, in the space's order, deferring a node whose rule waits on a setting
    still queued; a setting nothing queued can produce is ABSENT (the rule reads its default)."""

    def __init__(self, trial: BaseTrial, used: UsedRule) -> None:
        self.trial, self.used = trial, used
        self.root: dict[str, Any] = {}
        self.queue: list[tuple[ConfigPath, Node, dict[str, Any]]] = []
        self.waiting: list[tuple[ConfigPath, Node, dict[str, Any]]] = []

    def sample(self, space: Group) -> dict[str, Any]:
        self._enqueue((), space, self.root)
        force = False
        while self.queue:
            progressed = False
            while self.queue:
                path, node, parent = self.queue.pop(0)
                try:
                    if force or self.used(path, self._lookup):
                        self._place(path, node, parent)
                except Pending:
                    self.waiting.append((path, node, parent))
                    continue
                progressed = True
            self.queue, self.waiting = self.waiting, []
            force = not progressed   # rules waiting on each other: sample what is left as used
        return self.root

    def _enqueue(self, path: ConfigPath, group: Group, parent: dict[str, Any]) -> None:
        self.queue.extend((path + (key,), node, parent) for key, node in group.entries)

    def _place(self, path: ConfigPath, node: Node, parent: dict[str, Any]) -> None:
        key = path[-1]
        if isinstance(node, SEARCHABLE):
            parent[key] = node.suggest(self.trial)
        elif isinstance(node, FixedParam):
            parent[key] = node.value
        elif isinstance(node, Branch):
            label = _draw_label(self.trial, node)
            parent[key] = {node.key: label}
            self._enqueue(path, node.option(label), parent[key])
        else:
            parent[key] = {}
            self._enqueue(path, node, parent[key])

    def _lookup(self, path: ConfigPath) -> Any:
        node = value_at(self.root, path)
        if node is ABSENT and any(path[:len(queued)] == queued for queued, _, _ in self.queue + self.waiting):
            raise Pending(".".join(path))
        return node


def put_at(config: dict[str, Any], path: ConfigPath, value: Any) -> None:
    """Set `path` of a nested config to `value`, making the sections on the way; nothing where a section on
    the way is a value (a dotted name below a fixed setting)."""
    node = config
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            return
    node[path[-1]] = value


def value_at(config: dict[str, Any], path: ConfigPath) -> Any:
    """The setting at `path` of a nested config, or ABSENT."""
    node: Any = config
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return ABSENT
        node = node[part]
    return node
