"""A plug-in strategy that raises or leaves the space: its trial fails, or the run stops, with one message
that names the strategy; never a traceback, a lost worker or a trial left RUNNING."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from searchlab.errors import ConfigError
from searchlab.strategy_guard import GuardedSampler, StrategyError
from strategy_plugins import OutOfRange, RaisesBeforeTrial

TESTS = Path(__file__).resolve().parent
STUDY = """
name: plug
task: {{kind: callable, function: "fake_tasks:quadratic"}}
space: {{x: {{float: [-3, 3]}}}}
objective: {{metric: loss, direction: minimize}}
strategy: {{class: "strategy_plugins:{cls}"}}
pruner: none
budget: {{n_trials: 4}}
executor: {{kind: local, workers: {workers}}}
export: {{after_run: false}}
run_dir: '{run_dir}'
"""


def test_a_value_outside_the_space_fails_before_use_naming_the_strategy_the_parameter_and_the_range():
    study = optuna.create_study(sampler=GuardedSampler(OutOfRange(seed=0), "strategy_plugins:OutOfRange"))
    trial = study.ask()
    with pytest.raises(StrategyError) as info:
        trial.suggest_float("optim.lr", 1e-4, 1e-2, log=True)
    assert str(info.value).startswith("strategy 'strategy_plugins:OutOfRange' proposed optim.lr=0.1 for trial 0, "
                                      "outside the space: a float in [0.0001, 0.01] (log scale)")
    assert 2 <= trial.suggest_int("model.depth", 2, 3) <= 3   # its own in-range values pass through


def test_a_hook_raising_outside_the_trial_fails_that_trial_and_says_which_hook():
    study = optuna.create_study(sampler=GuardedSampler(RaisesBeforeTrial(seed=0), "p:RaisesBeforeTrial"))
    study.tell(study.ask(), 1.0)
    with pytest.raises(StrategyError, match=r"strategy 'p:RaisesBeforeTrial' raised in before_trial \(trial 1\): "
                                            r"RuntimeError: boom in before_trial, trial 1\. Fix: correct"):
        study.ask()
    failed = study.get_trials()[1]
    assert failed.state == TrialState.FAIL and "raised in before_trial" in failed.user_attrs["error"]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_run_whose_strategy_breaks_stops_with_one_line_and_no_trial_left_running(tmp_path, workers):
    path = tmp_path / "study.yaml"
    path.write_text(STUDY.format(cls="RaisesBeforeTrial", workers=workers, run_dir=tmp_path / "run"))
    env = {**os.environ, "PYTHONPATH": str(TESTS)}
    done = subprocess.run([sys.executable, "-m", "searchlab.cli", "run", str(path), "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "SpawnProcess" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "strategy 'strategy_plugins:RaisesBeforeTrial' raised in before_trial" in errors[0]
    stored = optuna.load_study(study_name="plug", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    states = [t.state for t in stored.get_trials()]
    assert TrialState.RUNNING not in states and TrialState.FAIL in states
    # the other worker's copy of the same error, said once, is not left behind
    assert not list((tmp_path / "run" / ".workers").glob("*.error"))


def test_a_plugin_that_takes_no_seed_is_warned_of():
    from searchlab.config.schema import StrategyConfig
    from searchlab.strategy import unseeded_warning

    text = unseeded_warning(StrategyConfig(class_="strategy_plugins:Unseeded"), None)
    assert text.startswith("strategy class 'strategy_plugins:Unseeded' takes no seed argument")
    assert unseeded_warning(StrategyConfig(class_="strategy_plugins:OutOfRange"), None) is None   # it takes one
    assert unseeded_warning(StrategyConfig(name="random"), None) is None


def test_a_budget_inside_the_strategys_random_start_is_warned_of(tmp_path):
    from searchlab.config.schema import StrategyConfig
    from searchlab.strategy import startup_warning

    assert startup_warning(StrategyConfig(name="tpe"), None, 4).startswith(
        "strategy tpe draws its first 10 trials at random (n_startup_trials) and budget.n_trials is 4")
    assert startup_warning(StrategyConfig(name="tpe"), None, 11) is None
    assert startup_warning(StrategyConfig(name="tpe"), None, 4).endswith(
        "lower strategy.args.n_startup_trials (or strategy: {preset: quick}: TPE after 5)")
    evolution = startup_warning(StrategyConfig(name="evolution"), None, 8)
    assert "first 20 trials at random (population_size)" in evolution and "TPE" not in evolution   # not a TPE hint
    assert startup_warning(StrategyConfig(preset="quick"), None, 3).endswith("lower strategy.args.n_startup_trials")
    assert startup_warning(StrategyConfig(preset="quick"), None, 6) is None   # the quick preset starts after 5
    assert startup_warning(StrategyConfig(name="random"), None, 2) is None


def test_the_staged_strategies_evolve_from_their_trained_designs_and_warn_when_trials_between_are_random():
    """zen_nas evolved after 20 trials (4 x top_k) and deepmad after 12: their shipped studies (12 and 8
    trials) trained the designs, then only random trials, with no warning."""
    from searchlab.config.load import load_study
    from searchlab.config.schema import StrategyConfig
    from searchlab.strategy import REPO_STRATEGIES, build_sampler, startup_warning

    for name, n_trials in (("zen_nas", 12), ("deepmad", 8)):
        study = load_study(REPO_STRATEGIES.parent / "studies" / f"breastmnist_{name}.yaml")
        assert (study.config.strategy.name, study.config.budget.n_trials) == (name, n_trials)
        top_k = study.config.strategy.args.get("top_k", 3)
        assert build_sampler(study.config.strategy, 0, study.base_dir).population_size == top_k
        assert startup_warning(study.config.strategy, study.base_dir, n_trials) is None
    wide = StrategyConfig(name="deepmad", args={"population_size": 12})
    assert startup_warning(wide, None, 8) == (
        "strategy deepmad trains its 3 best designs first, then draws trials at random until 12 are done (its "
        "evolution population) before it evolves; budget.n_trials is 8, so trials 3 to 7 are random ones. Fix: "
        "strategy.args.population_size: 3 (evolve from the designs), or budget.n_trials above 12")
    assert startup_warning(wide, None, 3) is None and startup_warning(wide, None, 13) is None


@pytest.mark.parametrize("args, rule", [
    ({"top_k": 2.5}, r"strategy\.args\.top_k: zen_nas's top_k is a count: a whole number \(got 2\.5\)\. Fix: "
                     r"write top_k as a whole number, e.g\. 2"),
    ({"candidate": 10}, r"strategy\.args\.candidate: zen_nas has no such argument .*Fix: did you mean "
                        r"candidates\? zen_nas takes batch_size"),
])
def test_a_staged_strategys_bad_argument_is_named_once_with_its_fix(write_study, args, rule):
    from searchlab.config.load import load_study
    from study_texts import TINY_ZEN_MODEL

    text = ("name: z\ntask: classify\nspace:" + TINY_ZEN_MODEL + "\nstrategy: {name: zen_nas, args: ARGS}\n"
            "budget: {n_trials: 2, epochs: 1}\n").replace("ARGS", json.dumps(args))
    with pytest.raises(ConfigError, match=rule) as info:
        load_study(write_study(text))
    assert "sampler class" not in str(info.value) and str(info.value).count("Fix:") == 1


def test_evolution_sizes_that_are_not_whole_numbers_are_refused_before_any_trial(write_study):
    from searchlab.config.load import load_study

    text = ("name: e\ntask: classify\nspace: {optim: {lr: {float: [1.0e-4, 1.0e-2]}}}\n"
            "strategy: {name: evolution, args: {population_size: 4.0, sample_size: 2}}\nbudget: {n_trials: 8}\n")
    with pytest.raises(ConfigError, match=r"strategy\.args\.population_size: strategy 'evolution' takes "
                       r"population_size as a count: a whole number \(got 4\.0\)\. Fix: write population_size as a "
                       r"whole number, e\.g\. population_size: 4"):
        load_study(write_study(text))
