"""A plug-in sampler that refuses a kind of parameter (BruteForceSampler: a float range without a step; GridSampler:
a parameter its grid lacks) is told from a bug in its code: the fix named is the space or the strategy's args, the
space is refused before the run's folder when a first draw shows it, and a refusal met later stops the run with
that one message. A sampler that ends the study itself says so. Callable tasks only: nothing trains."""
from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError
from searchlab.strategy import check_strategy_space
from searchlab.strategy_guard import GuardedSampler, StrategyError

BRUTE = "optuna.samplers:BruteForceSampler"
STUDY = """
name: refused
task: {{kind: callable, function: "fake_tasks:quadratic"}}
space: {space}
objective: {{metric: loss, direction: minimize}}
strategy: {strategy}
pruner: none
budget: {{n_trials: 4}}
export: {{after_run: false}}
"""
PLUGINS = '''
import optuna
from optuna.distributions import CategoricalDistribution


class RefusesChoicesLater(optuna.samplers.RandomSampler):
    """Takes every kind at its first trial (as the check before the run sees it), refuses choices after."""

    def sample_independent(self, study, trial, param_name, param_distribution):
        if trial.number >= 1 and isinstance(param_distribution, CategoricalDistribution):
            raise NotImplementedError("CategoricalDistribution is not supported by this sampler")
        return super().sample_independent(study, trial, param_name, param_distribution)
'''


def _brute_force(**args):
    with pytest.warns(optuna.exceptions.ExperimentalWarning):
        return GuardedSampler(optuna.samplers.BruteForceSampler(seed=0, **args), BRUTE)


def test_brute_force_on_a_float_range_without_a_step_is_told_as_the_space_with_its_step_fix():
    study = optuna.create_study(sampler=_brute_force())
    trial = study.ask()
    with pytest.raises(StrategyError) as info:
        trial.suggest_float("x", -3.0, 3.0)
    said = str(info.value)
    assert said.startswith(f"strategy '{BRUTE}' raised in sample_independent (trial 0): ValueError: "
                           "FloatDistribution.step must be given for BruteForceSampler")
    assert "it cannot sample space.x (a float in [-3.0, 3.0]); the cause is the study's space" in said
    assert said.endswith("Fix: give every float range a step (a finite grid), e.g. x: {float: [-3, 3], step: 0.6}, "
                         "or use a strategy that takes continuous ranges (strategy: {name: tpe}, or random)")
    assert "correct the strategy class" not in said and ".." not in said
    # the trial fails by it, and the run stops there, saying why (BruteForce took it for a searched-out space)
    with pytest.raises(StrategyError, match=r"it cannot sample space\.x \(a float in \[-3\.0, 3\.0\]\), so the run "
                                            r"stopped after trial 0: every trial that draws x would fail the same "
                                            r"way\. Fix: give every float range a step"):
        study.tell(trial, state=TrialState.FAIL)
    assert study.trials[0].state == TrialState.FAIL


def test_a_log_scale_range_is_told_to_become_values_as_it_cannot_take_a_step():
    trial = optuna.create_study(sampler=_brute_force()).ask()
    with pytest.raises(StrategyError, match=r"a log-scale range cannot take a step: write optim\.lr as values, "
                                            r"e\.g\. lr: \{choice: \[0\.0001, 0\.001, 0\.01\]\}"):
        trial.suggest_float("optim.lr", 1e-4, 1e-2, log=True)


def test_a_bug_in_the_samplers_code_is_still_told_as_its_code():
    class Broken(optuna.samplers.RandomSampler):
        def sample_independent(self, study, trial, param_name, param_distribution):
            raise ValueError("math domain error")

    trial = optuna.create_study(sampler=GuardedSampler(Broken(seed=0), "p:Broken")).ask()
    with pytest.raises(StrategyError, match=r"ValueError: math domain error\. Fix: correct the strategy class"):
        trial.suggest_float("x", 0.0, 1.0)


def _study(write_study, tmp_path, space: str, strategy: str):
    (tmp_path / "plugs.py").write_text(PLUGINS)
    return load_study(write_study(STUDY.format(space=space, strategy=strategy)))


def test_a_space_brute_force_cannot_sample_is_refused_before_the_run_naming_each_range(write_study, tmp_path):
    study = _study(write_study, tmp_path, "{x: {float: [-3, 3]}, n: {int: [0, 2]}, optim: {lr: {float: [1.0e-4, "
                                          "1.0e-2], log: true}}}", f'{{class: "{BRUTE}"}}')
    with pytest.raises(ConfigError) as info:
        run_study(study, progress=False)
    said = str(info.value)
    assert f"space.x: strategy class '{BRUTE}' cannot sample a float in [-3.0, 3.0] (ValueError: " in said
    assert "it refuses space.optim.lr too. Fix: give every float range a step" in said
    assert said.endswith("and space.optim.lr: the strategy needs a finite grid and a log-scale range cannot take a "
                         "step: write optim.lr as values, e.g. lr: {choice: [0.0001, 0.001, 0.01]}")
    assert ":4: space.x" in said and not (tmp_path / "run").exists()   # at its line; no run folder made
    stepped = _study(write_study, tmp_path, "{x: {float: [-3, 3], step: 1.5}, n: {int: [0, 2]}}",
                     f'{{class: "{BRUTE}"}}')
    check_strategy_space(stepped)   # a finite grid: taken


@pytest.mark.parametrize("grid, said", [
    ("{x: [0, 1]}", r"strategy\.args\.search_space: GridSampler draws every parameter from its grid, which does "
                    r"not list n .*Fix: add n: \[its values\] to strategy\.args\.search_space"),
    ("{x: [0, 10], n: [1]}", r"strategy\.args\.search_space\.x: the grid's values for x must be within the "
                             r"space's x: a float in \[-3\.0, 3\.0\] \(got \[10\]\)"),
    ("{x: [0], n: [1], w: [1]}", r"the grid names a parameter the space does not search \(got 'w'\)"),
])
def test_a_grid_that_does_not_fit_the_space_is_refused_before_the_run(write_study, tmp_path, grid, said):
    study = _study(write_study, tmp_path, "{x: {float: [-3, 3]}, n: {int: [0, 2]}}",
                   f'{{class: "optuna.samplers:GridSampler", args: {{search_space: {grid}}}}}')
    with pytest.raises(ConfigError, match=said):
        check_strategy_space(study)


@pytest.mark.parametrize("strategy, said", [
    ('{class: "optuna.samplers:GridSampler"}',
     r"strategy\.args\.search_space: .*GridSampler' needs the argument search_space\. Fix: give "
     r"strategy\.args\.search_space \(one list of values per searched key"),
    ('{class: "optuna.samplers:PartialFixedSampler", args: {fixed_params: {x: 1}, base_sampler: tpe}}',
     r"strategy\.args\.base_sampler: .*takes a Python object \(an optuna BaseSampler\), which a study file cannot "
     r"give \(got 'tpe'\)\. Fix: write the parameters to fix as fixed values in the space"),
    ('{class: "optuna.samplers:PartialFixedSampler"}', r"strategy\.args\.base_sampler: .*takes a Python object"),
    ('{class: "optuna.samplers:QMCSampler", args: {independent_sampler: random}}',
     r"strategy\.args\.independent_sampler: .*takes a Python object \(an optuna BaseSampler\)"),
])
def test_sampler_arguments_a_study_file_must_or_cannot_give_are_named(write_study, tmp_path, strategy, said):
    with pytest.raises(ConfigError, match=said):
        _study(write_study, tmp_path, "{x: {float: [-3, 3]}}", strategy)


def test_a_refusal_met_after_the_first_trial_stops_the_run_with_one_message_saying_so(write_study, tmp_path):
    study = _study(write_study, tmp_path, "{x: {float: [-3, 3]}, c: {choice: [a, b]}}",
                   '{class: "plugs:RefusesChoicesLater"}')
    with pytest.raises(StrategyError) as info:
        run_study(study, progress=False)
    said = str(info.value)
    assert said.startswith("strategy 'plugs:RefusesChoicesLater' raised in sample_independent (trial 1): "
                           "NotImplementedError: CategoricalDistribution is not supported by this sampler: it "
                           "cannot sample space.c (a choice of ['a', 'b']), so the run stopped after trial 1")
    assert "Fix: write space.c as a kind the strategy takes" in said and "correct the strategy class" not in said
    assert info.value.run_result.trials_finished == 1   # trial 0, kept and summarised; trials 2 and 3 never ran
    assert [t.state for t in info.value.run_result.study.trials] == [TrialState.COMPLETE, TrialState.FAIL]


def test_a_sampler_that_ends_the_study_itself_is_said_to(write_study, tmp_path, capsys):
    study = _study(write_study, tmp_path, "{x: {float: [-3, 3]}}",
                   '{class: "optuna.samplers:GridSampler", args: {search_space: {x: [0, 1]}}}')
    result = run_study(study, progress=False)
    assert result.trials_finished == 2   # its grid of two, of budget.n_trials 4
    assert ("note: strategy 'optuna.samplers:GridSampler' ended the run itself after trial 1 (its after_trial "
            "called study.stop(), as Optuna's GridSampler") in capsys.readouterr().err


def test_an_experimental_optuna_sampler_is_built_without_a_python_warning_each_time():
    """BruteForceSampler's "is experimental" warning, with a file:line of strategy.py, was printed at each build
    (the study's load, the check of its space, each worker)."""
    import warnings

    from searchlab.config.schema import StrategyConfig
    from searchlab.strategy import build_sampler

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        build_sampler(StrategyConfig(class_=BRUTE), 0)
    assert not [w for w in said if issubclass(w.category, optuna.exceptions.ExperimentalWarning)]
