"""Turning a compiled space into concrete configs: one function samples a whole config from a trial."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import optuna
from optuna.trial import BaseTrial

from searchlab.space.params import (SEARCHABLE, Branch, CategoricalParam, FixedParam, Group, Node,
                                     Searchable)


def sample_config(trial: BaseTrial, space: Group) -> dict[str, Any]:
    """Ask `trial` for every parameter reachable under the chosen branches; return the nested config."""
    return _sample_group(trial, space)


def _sample_group(trial: BaseTrial, group: Group) -> dict[str, Any]:
    return {key: _sample_node(trial, node) for key, node in group.entries}


def _sample_node(trial: BaseTrial, node: Node) -> Any:
    if isinstance(node, SEARCHABLE):
        return node.suggest(trial)
    if isinstance(node, FixedParam):
        return node.value
    if isinstance(node, Branch):
        label = trial.suggest_categorical(node.name, node.labels) if len(node.labels) > 1 else node.labels[0]
        return {node.key: label, **_sample_group(trial, node.option(label))}
    return _sample_group(trial, node)


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
            for label, option in node.options:
                needs_here = {**needs, node.name: label} if len(node.labels) > 1 else needs
                if len(node.labels) > 1:
                    yield CategoricalParam(node.name, node.labels), needs
                yield from _walk(option, needs_here)


def probe_configs(space: Group, seed: int = 0, limit: int = 400) -> Iterator[dict[str, Any]]:
    """Configs that together use every choice and both ends of every range at least once.

    Used to validate a space against a task's schema before any trial runs, so an unknown model name or
    an impossible combination fails at load time with the parameter's name, not in trial 17.
    """
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)   # a throwaway in-memory study is not news
    try:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    finally:
        optuna.logging.set_verbosity(previous)
    seen: set[tuple[tuple[str, Any], ...]] = set()
    for param, needs in searchable_params(space):
        for value in _extremes(param):
            fixed = {**needs, param.name: value}
            key = tuple(sorted(fixed.items(), key=lambda kv: kv[0]))
            if key in seen:
                continue
            seen.add(key)
            if len(seen) > limit:
                return
            study.enqueue_trial(fixed, skip_if_exists=False)
            yield sample_config(study.ask(), space)
    if not seen:
        yield sample_config(study.ask(), space)


def _extremes(param: Searchable) -> tuple[Any, ...]:
    if isinstance(param, CategoricalParam):
        return param.choices
    dist = param.distribution()
    return (dist.low, dist.high)   # Optuna has already snapped `high` onto the step grid
