"""Broken strategy plug-ins, as users write them by mistake (importable: tests/ is on sys.path)."""
from __future__ import annotations

import optuna


class OutOfRange(optuna.samplers.RandomSampler):
    """Proposes ten times the top of every float range."""

    def sample_independent(self, study, trial, param_name, param_distribution):
        if isinstance(param_distribution, optuna.distributions.FloatDistribution):
            return param_distribution.high * 10
        return super().sample_independent(study, trial, param_name, param_distribution)


class RaisesBeforeTrial(optuna.samplers.RandomSampler):
    """Breaks from its second trial on, outside the objective."""

    def before_trial(self, study, trial):
        if trial.number >= 1:
            raise RuntimeError(f"boom in before_trial, trial {trial.number}")


class Unseeded(optuna.samplers.RandomSampler):
    """Takes no seed: its draws differ on every run."""

    def __init__(self):
        super().__init__()
