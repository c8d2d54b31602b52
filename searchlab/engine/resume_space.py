"""Resuming a study with an edited space: Optuna keeps one distribution kind per parameter name.

Optuna's storage refuses a parameter whose kind (int, float, choice), log scale or list of choices differs
from what earlier trials of the study used, so every new trial would fail on its first `suggest`. We compare
once, before any trial, and say which parameter changed and how to go on.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import optuna
from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  check_distribution_compatibility)

from searchlab.errors import ConfigError
from searchlab.space import searchable_params

if TYPE_CHECKING:
    from searchlab.config.load import Study


def check_space_fits_study(study: "Study", ostudy: optuna.Study) -> None:
    stored: dict[str, BaseDistribution] = {}
    for trial in ostudy.get_trials(deepcopy=False):
        for name, distribution in trial.distributions.items():
            stored.setdefault(name, distribution)
    for param, _ in searchable_params(study.space):
        old = stored.get(param.name)
        if old is None:
            continue
        new = param.distribution()
        try:
            check_distribution_compatibility(old, new)
        except ValueError:
            raise ConfigError(
                f"study '{study.config.name}' in {study.storage_url} already has trials where this parameter is "
                f"{describe(old)}; Optuna keeps one kind (and one list of choices) per parameter for a whole "
                "study", file=str(study.file), key=f"space.{param.name}", got=describe(new),
                fix=f"keep it {describe(old)} to resume this study, or give the study a new name (or run_dir) "
                "to search the new space") from None


def describe(distribution: BaseDistribution) -> str:
    if isinstance(distribution, CategoricalDistribution):
        return f"a choice of {list(distribution.choices)}"
    kind = "a float" if isinstance(distribution, FloatDistribution) else "an int"
    log = " (log scale)" if distribution.log else ""   # type: ignore[attr-defined]
    return f"{kind} in [{distribution.low}, {distribution.high}]{log}"   # type: ignore[attr-defined]
