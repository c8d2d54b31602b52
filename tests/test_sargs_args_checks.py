"""A strategy's and a pruner's args are checked at load against the signature of the class that takes them:
the kind its annotation says (a quoted "3" crashed the run's start, a quoted "24" failed every trial after the
random start-up) and the least value a count may take where the class would break on less (TPE's
n_ei_candidates 0, Hyperband's reduction_factor 1), named at the key's line with its fix. What a class takes
(an int for a float, null for an optional) is taken. Callable tasks only: nothing trains."""
from __future__ import annotations

import pytest

from searchlab.config.load import load_study
from searchlab.config.schema import StrategyConfig
from searchlab.errors import ConfigError
from searchlab.strategy import startup_warning
from searchlab.strategy_args import kinds_of

STUDY = """name: args
task: {{kind: callable, function: "fake_tasks:quadratic"}}
space: {{x: {{float: [-3, 3]}}}}
objective: {{metric: loss, direction: minimize}}
strategy: {strategy}
pruner: {pruner}
budget: {{n_trials: 3}}
export: {{after_run: false}}
"""
PLUGINS = '''
from typing import Optional

import optuna


class Annotated(optuna.samplers.RandomSampler):
    def __init__(self, seed=None, rounds: Optional[int] = None, rate: "float" = 0.5, n_draws: int = 10,
                 shape: "Shape" = None, tags: "list[str] | None" = None):
        super().__init__(seed=seed)
'''


def _load(write_study, tmp_path, strategy="{name: tpe}", pruner="none"):
    (tmp_path / "plugs.py").write_text(PLUGINS)
    return load_study(write_study(STUDY.format(strategy=strategy, pruner=pruner)))


@pytest.mark.parametrize("strategy, said", [
    ('{name: tpe, args: {n_startup_trials: "3"}}',
     "study.yaml:5: strategy.args.n_startup_trials: strategy 'tpe' takes n_startup_trials as a count: a whole number "
     "(got '3'). Fix: write it without quotes: n_startup_trials: 3"),
    ("{name: tpe, args: {n_startup_trials: null}}",
     "strategy.args.n_startup_trials: strategy 'tpe' takes n_startup_trials as a count: a whole number (got None). "
     "Fix: write n_startup_trials as a whole number, or remove it for its default (n_startup_trials: 10)"),
    ('{name: tpe, args: {n_startup_trials: 1, n_ei_candidates: "24"}}',
     "strategy.args.n_ei_candidates: strategy 'tpe' takes n_ei_candidates as a count: a whole number (got '24'). "
     "Fix: write it without quotes: n_ei_candidates: 24"),
    ("{name: tpe, args: {n_startup_trials: -1}}",
     "strategy.args.n_startup_trials: strategy 'tpe' needs n_startup_trials >= 0: the trials drawn at random before "
     "its model (got -1). Fix: n_startup_trials: 10 (its default), or more"),
    ("{name: tpe, args: {n_ei_candidates: 0}}",
     "strategy.args.n_ei_candidates: strategy 'tpe' needs n_ei_candidates >= 1: the candidates it picks each value "
     "from: 0 failed every trial after the random start-up (got 0). Fix: n_ei_candidates: 24 (its default), or more"),
    ("{name: tpe, args: {n_startup_trials: 2.5}}", "Fix: write n_startup_trials as a whole number, e.g. "
                                                   "n_startup_trials: 2"),
    ('{name: tpe, args: {multivariate: "no"}}',
     "strategy 'tpe' takes multivariate as true or false, or null (got 'no'). Fix: write it without quotes: "
     "multivariate: false"),
    ("{name: tpe, args: {prior_weight: -1}}", "strategy 'tpe' needs prior_weight >= 0"),
    # nan passed the least check, and every TPE trial after the start-up failed ("probabilities contain NaN")
    ("{name: tpe, args: {prior_weight: .nan}}", "strategy 'tpe' takes prior_weight as a finite number, not nan "
                                                "(got nan). Fix: "),
    ("{name: tpe, args: {prior_weight: .inf}}", "takes prior_weight as a finite number, not inf"),
    ('{name: evolution, args: {population_size: "20"}}',
     "strategy.args.population_size: strategy 'evolution' takes population_size as a count: a whole number"),
    ("{name: evolution, args: {sample_size: 0}}", "strategy 'evolution' needs sample_size >= 1"),
    ('{class: "optuna.samplers:NSGAIISampler", args: {population_size: 2.0}}',
     "strategy.args.population_size: strategy class 'optuna.samplers:NSGAIISampler' takes population_size as a "
     "count: a whole number (got 2.0)"),
    ('{class: "plugs:Annotated", args: {rounds: "3"}}', "takes rounds as a whole number, or null (got '3')"),
    ('{class: "plugs:Annotated", args: {rate: fast}}',
     "takes rate as a number (got 'fast'). Fix: write rate as a number, or remove it for its default (rate: 0.5)"),
    ('{class: "plugs:Annotated", args: {n_draws: -2}}', "needs n_draws >= 0: a count (got -2)"),
])
def test_a_strategys_arg_of_the_wrong_kind_or_below_its_least_is_refused_at_load(write_study, tmp_path, strategy,
                                                                                  said):
    with pytest.raises(ConfigError) as info:
        _load(write_study, tmp_path, strategy=strategy)
    assert said in str(info.value)
    assert ":5: strategy.args." in str(info.value)


@pytest.mark.parametrize("strategy", [
    "{name: tpe, args: {prior_weight: 1, consider_prior: null, n_startup_trials: 0, n_ei_candidates: 1}}",
    "{name: evolution, args: {population_size: 2, sample_size: 1}}",
    '{class: "optuna.samplers:NSGAIISampler", args: {population_size: 4, mutation_prob: null, crossover_prob: 1}}',
    '{class: "plugs:Annotated", args: {rounds: null, rate: 1, shape: [2, 3], tags: [a]}}',
])
def test_what_the_class_takes_is_taken(write_study, tmp_path, strategy):
    _load(write_study, tmp_path, strategy=strategy)


@pytest.mark.parametrize("pruner, said", [
    ("{kind: hyperband, args: {reduction_factor: 1}}",
     "study.yaml:6: pruner.args.reduction_factor: pruner 'hyperband' needs reduction_factor >= 2: each rung keeps 1 "
     "in reduction_factor of the trials, so 1 would keep all (got 1). Fix: reduction_factor: 3 (its default), or "
     "more"),
    ("{kind: successive_halving, args: {reduction_factor: 1.2}}",
     "pruner.args.reduction_factor: pruner 'successive_halving' takes reduction_factor as a whole number (got 1.2). "
     "Fix: write reduction_factor as a whole number, e.g. reduction_factor: 2"),
    ('{kind: median, args: {n_startup_trials: "3"}}', "Fix: write it without quotes: n_startup_trials: 3"),
    ("{kind: median, args: {interval_steps: 0}}", "pruner 'median' needs interval_steps >= 1"),
    ("{kind: median, args: {n_startup: 2}}",
     "pruner.args.n_startup: pruner 'median' has no such argument (got 'n_startup'). Fix: did you mean "
     "n_startup_trials? it takes n_startup_trials, n_warmup_steps, interval_steps, n_min_trials"),
    ("{kind: hyperband, args: {min_resource: 3, max_resource: 2}}",
     "pruner.args.max_resource: pruner 'hyperband' needs max_resource >= min_resource: with fewer it never prunes "
     "a trial (got {'min_resource': 3, 'max_resource': 2}). Fix: min_resource: 2 or less, or max_resource: 3 or "
     "more"),
    ("{kind: none, args: {x: 1}}", "pruner.args.x: pruner 'none' has no such argument (got 'x'). Fix: it takes none"),
])
def test_a_pruners_args_are_checked_by_name_kind_and_least_value(write_study, tmp_path, pruner, said):
    with pytest.raises(ConfigError) as info:
        _load(write_study, tmp_path, pruner=pruner)
    assert said in str(info.value) and "Optuna documentation" not in str(info.value)


def test_a_pruners_args_it_takes_are_taken(write_study, tmp_path):
    _load(write_study, tmp_path, pruner="{kind: hyperband, args: {min_resource: 1, max_resource: auto, "
                                        "reduction_factor: 2}}")
    _load(write_study, tmp_path, pruner="{kind: successive_halving, args: {min_resource: auto}}")


def test_a_presets_args_are_checked_at_the_presets_line(write_study, tmp_path):
    (tmp_path / "mine.yaml").write_text('description: mine\nname: tpe\nargs:\n  n_ei_candidates: "24"\n')
    with pytest.raises(ConfigError) as info:
        _load(write_study, tmp_path, strategy="{preset: mine}")
    assert str(info.value).endswith("mine.yaml:4: args.n_ei_candidates: strategy 'tpe' takes n_ei_candidates as a "
                                    "count: a whole number (got '24'). Fix: write it without quotes: "
                                    "n_ei_candidates: 24")


@pytest.mark.parametrize("annotation, kinds", [
    ("int", ["int"]), ("int | None", ["int", "None"]), ("Optional[float]", ["float", "None"]),
    ("Union[int, str]", ["int", "str"]), ("str | int", ["str", "int"]), (bool, ["bool"]),
    ("Mapping[str, Sequence[GridValueType]]", ["dict"]), ("dict[str, Any] | None", ["dict", "None"]),
    ("Callable[[int], int] | None", None), ("BaseSampler | None", None), ("Shape", None),
])
def test_the_kinds_an_annotation_takes(annotation, kinds):
    assert kinds_of(annotation) == kinds


def test_the_startup_warning_does_not_crash_on_a_count_it_cannot_compare():
    """Said at the run's start, after the load: a study built otherwise must not end in a raw TypeError."""
    assert startup_warning(StrategyConfig(name="tpe", args={"n_startup_trials": "3"}), None, 4) is None
