"""Strategy registry, presets and `module:Class` plug-ins; pruner construction."""
from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from searchlab.config.schema import PrunerConfig, StrategyConfig
from searchlab.errors import ConfigError, RegistryError
from searchlab.registry import Registry
from searchlab.strategy import STRATEGIES, build_pruner, build_sampler


def test_registered_strategies_are_optuna_samplers():
    assert {"random", "tpe"} <= set(STRATEGIES.names())
    assert isinstance(build_sampler(StrategyConfig(name="random"), 0), optuna.samplers.RandomSampler)


def test_tpe_is_set_up_for_conditional_spaces_and_parallel_workers():
    tpe = build_sampler(StrategyConfig(name="tpe"), 0)
    assert isinstance(tpe, optuna.samplers.TPESampler)
    assert tpe._multivariate and tpe._group and tpe._constant_liar


def test_unknown_name_lists_valid_ones():
    with pytest.raises(RegistryError, match="unknown strategy 'nope'; valid: deepmad, evolution, random, tpe, zen_nas"):
        build_sampler(StrategyConfig(name="nope"), 0)


def test_duplicate_registration_raises():
    reg: Registry[object] = Registry("thing")
    reg.register("a", "x:y")
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("a", "x:z")


def test_preset_file_and_arg_override():
    sampler = build_sampler(StrategyConfig(preset="quick", args={"n_ei_candidates": 7}), 0)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._n_startup_trials == 5 and sampler._n_ei_candidates == 7


def test_a_study_saved_under_its_presets_name_reads_the_shipped_preset(tmp_path, monkeypatch):
    from searchlab.config.load import load_study

    monkeypatch.chdir(tmp_path)   # also where a preset is looked for
    quickstart = (Path(__file__).resolve().parents[1] / "studies" / "quickstart.yaml").read_text()
    assert "preset: quick" in quickstart
    (tmp_path / "quick.yaml").write_text(quickstart)
    study = load_study(tmp_path / "quick.yaml")
    sampler = build_sampler(study.config.strategy, 0, study_dir=study.base_dir)
    assert isinstance(sampler, optuna.samplers.TPESampler) and sampler._n_startup_trials == 5


def test_unknown_preset_lists_shipped_ones():
    with pytest.raises(ConfigError, match="quick"):
        build_sampler(StrategyConfig(preset="nonexistent"), 0)


def test_plugin_by_module_and_class_gets_the_seed():
    sampler = build_sampler(StrategyConfig.model_validate({"class": "optuna.samplers:QMCSampler"}), 42)
    assert isinstance(sampler, optuna.samplers.QMCSampler) and sampler._seed == 42


@pytest.mark.parametrize("spec,message", [
    ("optuna.samplers", "not of the form"),
    ("no_such_module_xyz:Sampler", "cannot import"),
    ("optuna.samplers:Nope", "no attribute"),
    ("optuna.pruners:MedianPruner", "not an optuna.samplers.BaseSampler"),
    ("optuna.samplers:BaseSampler", "does not implement the sampler interface: it lacks infer_relative_search_space, "
                                    "sample_independent, sample_relative"),
])
def test_bad_plugins_are_clear_errors(spec, message):
    with pytest.raises(RegistryError, match=message):
        build_sampler(StrategyConfig.model_validate({"class": spec}), 0)


def test_bad_sampler_arguments():
    shown = r"rejected its arguments: .*population_size.* \(got \{'population_size': 1\}\)"   # no seed in it
    with pytest.raises(ConfigError, match=shown):
        build_sampler(StrategyConfig.model_validate({"class": "optuna.samplers:NSGAIISampler",
                                                     "args": {"population_size": 1}}), 0)


@pytest.mark.parametrize("strategy,wrong,close", [("tpe", "n_startup", "n_startup_trials"),
                                                  ("evolution", "population", "population_size"),
                                                  ("random", "sed", None)])
def test_a_misspelt_sampler_argument_is_named_with_what_the_sampler_takes(strategy, wrong, close):
    # Python's "unexpected keyword argument" named neither the close match nor the choices, and showed the seed
    # searchlab passes as if the study had written it
    with pytest.raises(ConfigError) as caught:
        build_sampler(StrategyConfig(name=strategy, args={wrong: 3}), 0)
    text = str(caught.value)
    assert f"strategy.args.{wrong}: strategy '{strategy}' has no such argument (got '{wrong}')" in text
    assert (f"did you mean {close}?" in text) if close else "it takes no arguments: remove strategy.args" in text
    assert "'seed'" not in text and "unexpected keyword" not in text


def test_pruners_by_kind():
    assert isinstance(build_pruner(PrunerConfig(kind="hyperband"), 10), optuna.pruners.HyperbandPruner)
    assert isinstance(build_pruner(PrunerConfig(kind="none"), 10), optuna.pruners.NopPruner)
    median = build_pruner(PrunerConfig(kind="median", args={"n_startup_trials": 2}), 20)
    assert median._n_startup_trials == 2 and median._n_warmup_steps == 5


def test_points_to_evaluate_run_first_once_and_are_checked_at_load(write_study, tmp_path):
    from test_run import callable_study

    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study

    def study(points, n=4):
        text = callable_study(write_study, n=n).read_text().replace(
            "strategy: random", f"strategy: {{name: random, points_to_evaluate: {points}}}")
        return load_study(write_study(text))

    first = run_study(study("[{x: 1.0}, {x: -2.5}]"), progress=False).study
    assert [t.params["x"] for t in first.trials[:2]] == [1.0, -2.5] and first.trials[0].value == 0.0
    assert len({t.params["x"] for t in first.trials[2:]} - {1.0, -2.5}) == 2   # then the strategy's own
    resumed = run_study(study("[{x: 1.0}, {x: -2.5}]", n=6), progress=False).study
    assert [t.params["x"] for t in resumed.trials].count(1.0) == 1   # not queued again on resume
    with pytest.raises(ConfigError, match=r"points_to_evaluate\[0\]\.xx.*did you mean x"):
        study("[{xx: 1.0}]")
    with pytest.raises(ConfigError, match=r"points_to_evaluate\[1\]\.x: .*must lie in.*-3.0 to 3.0 \(got 7\)"):
        study("[{x: 1.0}, {x: 7}]")


def test_a_plugin_that_cannot_be_imported_is_one_error_with_one_fix(write_study):
    from searchlab.config.load import load_study

    text = "name: s\nspace: {optim: {lr: {float: [1.0e-4, 1.0e-2]}}}\nstrategy: {class: 'no_such_module_xyz:Sampler'}\n"
    with pytest.raises(ConfigError) as info:
        load_study(write_study(text))
    assert info.value.key == "strategy" and "cannot import module 'no_such_module_xyz'" in info.value.rule
    assert str(info.value).count("Fix:") == 1 and "PYTHONPATH" in info.value.fix


def test_a_plugin_beside_the_study_file_is_found_and_an_installed_module_of_its_name_wins(write_study, tmp_path):
    import sys

    from searchlab.config.load import load_study

    (tmp_path / "beside_the_study_sampler.py").write_text(
        "import optuna\nclass Loud(optuna.samplers.RandomSampler):\n    pass\n")
    (tmp_path / "optuna.py").write_text("raise RuntimeError('a stray file must not shadow the real optuna')\n")
    text = ("name: s\nspace: {optim: {lr: {float: [1.0e-4, 1.0e-2]}}}\n"
            "strategy: {class: 'beside_the_study_sampler:Loud'}\n")
    try:
        study = load_study(write_study(text))
        assert type(build_sampler(study.config.strategy, 0)).__name__ == "Loud"
        assert sys.path.index(str(tmp_path)) > sys.path.index(str(Path(optuna.__file__).parents[1]))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("beside_the_study_sampler", None)


def test_a_sampler_missing_an_optional_package_is_refused_before_any_trial(write_study, tmp_path):
    """Optuna's CmaEsSampler imports cmaes only when it first samples; so does this plug-in with its package.
    Without the check every trial of the run failed with the same ModuleNotFoundError."""
    import sys

    from searchlab.config.load import load_study

    (tmp_path / "lazy_sampler.py").write_text(
        "import optuna\nclass Lazy(optuna.samplers.TPESampler):\n"
        "    def sample_relative(self, study, trial, space):\n"
        "        import no_such_optimiser_xyz  # noqa: F401\n")
    text = "name: s\nspace: {optim: {lr: {float: [1.0e-4, 1.0e-2]}}}\nstrategy: {class: 'lazy_sampler:Lazy'}\n"
    try:
        with pytest.raises(ConfigError) as info:
            load_study(write_study(text))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("lazy_sampler", None)
    assert info.value.key == "strategy" and "No module named 'no_such_optimiser_xyz'" in info.value.rule
    assert "pip install no_such_optimiser_xyz" in info.value.fix
    load_study(write_study(text.replace("lazy_sampler:Lazy", "optuna.samplers:TPESampler")))   # a complete one loads


def test_tpe_without_the_joint_model_builds_without_grouping():
    """`multivariate: false` was refused for the grouping searchlab turned on by default."""
    tpe = build_sampler(StrategyConfig(name="tpe", args={"multivariate": False}), 0)
    assert not tpe._multivariate and not tpe._group


@pytest.mark.parametrize("strategy", [{"name": "random", "args": {"seed": 42}},
                                      {"class": "optuna.samplers:QMCSampler", "args": {"seed": 42}}])
def test_a_seed_in_the_strategys_args_is_refused_as_every_worker_and_resume_would_repeat_its_draws(strategy):
    """Its seed replaced each worker's and each resumed run's own: a resume replayed the first trials."""
    with pytest.raises(ConfigError, match=r"strategy\.args\.seed: a seed in the strategy's args makes every worker "
                                          r"and every resumed run draw the same configs.*\(got 42\).*top-level `seed:`"):
        build_sampler(StrategyConfig.model_validate(strategy), 0)


def test_a_strategy_named_null_is_a_config_error():
    with pytest.raises(ConfigError, match=r"strategy\.name: names no strategy.*Fix: one of deepmad, evolution"):
        build_sampler(StrategyConfig(name=None), 0)


def test_points_to_evaluate_in_a_preset_are_refused_as_they_were_ignored(tmp_path):
    (tmp_path / "mine.yaml").write_text("name: random\npoints_to_evaluate: [{x: 1.0}]\n")
    with pytest.raises(ConfigError, match=r"mine\.yaml:2: points_to_evaluate: a preset holds a strategy and its "
                                          r"args.*Fix: move points_to_evaluate under the study file's strategy"):
        build_sampler(StrategyConfig(preset="mine"), 0, study_dir=tmp_path)


def test_a_point_naming_a_branchs_parameter_takes_that_branch(write_study):
    """Left to the sampler, another branch was drawn and the point's value dropped without a word."""
    from test_run import callable_study

    from searchlab.config.load import load_study

    def study(point):
        text = callable_study(write_study, n=2).read_text().replace(
            "strategy: random", f"strategy: {{name: random, points_to_evaluate: [{point}]}}")
        text = text.replace("space:\n", "space:\n  pick: {one_of: {a: {p: {float: [0, 1]}}, b: {q: {float: [0, 1]}}}}\n")
        return load_study(write_study(text))

    with pytest.raises(ConfigError, match=r"points_to_evaluate\[0\]\.pick\.b\.q: it exists only when pick\.kind is "
                                          r"'b', which this point leaves to the sampler.*Fix: add pick\.kind: b"):
        study("{pick.b.q: 0.5}")
    with pytest.raises(ConfigError, match=r"this point sets pick\.kind to 'a'.*Fix: drop pick\.b\.q from this point"):
        study("{pick.kind: a, pick.b.q: 0.5}")
    study("{pick.kind: b, pick.b.q: 0.5}")


@pytest.mark.parametrize("args, message", [
    ({"reduction_factor": 1}, r"pruner\.args\.reduction_factor: pruner 'hyperband' needs reduction_factor >= 2"),
    ({"reduction_factor": "three"},
     r"pruner\.args\.reduction_factor: pruner 'hyperband' takes reduction_factor as a whole number"),
    ({"max_resource": 0}, r"pruner\.args\.max_resource: pruner 'hyperband' needs max_resource >= 1")])
def test_hyperband_arguments_it_checks_only_when_judging_are_refused_at_load(args, message):
    """Optuna's Hyperband checks them at its first prune(): every trial of the study failed on them."""
    with pytest.raises(ConfigError, match=message):
        build_pruner(PrunerConfig(kind="hyperband", args=args), 10)


def test_a_preset_naming_no_strategy_is_refused_rather_than_read_as_tpe(tmp_path):
    (tmp_path / "vague.yaml").write_text("description: my favourite\nargs: {n_startup_trials: 3}\n")
    with pytest.raises(ConfigError, match=r"vague\.yaml.*a preset names its strategy.*Fix: add name:"):
        build_sampler(StrategyConfig(preset="vague"), 0, study_dir=tmp_path)


@pytest.mark.parametrize("text, message", [
    ("preset: quick\n", r"preset: a preset cannot name another preset"),
    ("nmae: tpe\n", r"nmae: unknown key.*did you mean name")])
def test_a_presets_own_mistake_is_named_before_its_missing_strategy(tmp_path, text, message):
    (tmp_path / "chained.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        build_sampler(StrategyConfig(preset="chained"), 0, study_dir=tmp_path)


def test_the_staged_start_up_warning_numbers_the_random_trials_from_0_as_everywhere_else():
    """top_k 2, population 5, n_trials 3: the designs are trials 0 and 1 and the random one is trial 2, yet the
    warning said "trials 3 to 3 are random ones"."""
    from searchlab.strategy import startup_warning

    args = {"top_k": 2, "rho0": 0.5, "iterations": 5, "popsize": 5}
    one = startup_warning(StrategyConfig(name="deepmad", args=args), None, 3)
    assert "trains its 2 best designs first" in one and "budget.n_trials is 3, so trial 2 is a random one." in one
    wide = StrategyConfig(name="deepmad", args={**args, "population_size": 6})
    assert "budget.n_trials is 5, so trials 2 to 4 are random ones." in startup_warning(wide, None, 5)


def test_a_strategy_that_steers_by_the_first_objective_is_warned_of_in_a_multi_objective_study():
    from searchlab.strategy import first_objective_warning

    said = first_objective_warning(StrategyConfig(name="deepmad"), None, ["auc", "flops"])
    assert said.startswith("strategy 'deepmad' designs for the most entropy, then breeds by the first objective "
                           "(auc) only: flops is recorded, and in the Pareto front, but does not steer the search")
    assert "NSGAIISampler" in first_objective_warning(StrategyConfig(preset="evolution"), None, ["auc", "params"])
    assert first_objective_warning(StrategyConfig(name="tpe"), None, ["auc", "params"]) is None   # models both
    assert first_objective_warning(StrategyConfig(name="evolution"), None, ["auc"]) is None


def test_a_sampler_argument_that_takes_a_function_is_refused_and_not_offered():
    # `gamma: 3` ran, and every trial after TPE's random start failed with "'int' object is not callable"
    with pytest.raises(ConfigError, match=r"strategy\.args\.gamma: strategy 'tpe': its argument gamma takes a Python "
                                          r"function, which a study file cannot give \(got 3\)"):
        build_sampler(StrategyConfig(name="tpe", args={"gamma": 3}), 0)
    with pytest.raises(ConfigError) as caught:
        build_sampler(StrategyConfig(name="tpe", args={"n_startup": 3}), 0)
    assert "n_startup_trials" in str(caught.value) and "constraints_func" not in str(caught.value)
