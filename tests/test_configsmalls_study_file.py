"""Study-file leftovers: a non-finite number where a setting wants a finite one (`budget.timeout: .inf` was read
as no limit without a word), and a choice of one value, which counted as a searched parameter ("searched" counts,
the "searches nothing" check, `trials` columns) where the same value written alone is a fixed setting."""
from __future__ import annotations

import json

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution

from searchlab.cli import main, parse_overrides
from searchlab.config.load import load_study
from searchlab.engine.objective import config_of
from searchlab.engine.run import run_study
from searchlab.space import CategoricalParam, FixedParam, searchable_params
from test_config import error_of

SPACE = "name: s\ntask: classify\nspace:\n  optim: {lr: {float: [1.0e-4, 1.0e-2], log: true}}\n"
CALLABLE = """
name: own
task: {kind: callable, function: "one_choice_task:objective"}
space:
  x: {float: [-1, 1]}
  w: {choice: [8]}
objective: {metric: score, direction: maximize}
strategy: random
pruner: none
budget: {n_trials: 2, epochs: 3}
"""


@pytest.mark.parametrize("written", [".inf", "inf", "1e400", "-.inf", ".nan", '"Infinity"'])
def test_a_timeout_that_is_not_finite_is_refused_with_leave_it_out_for_no_limit(write_study, written):
    err = error_of(write_study, SPACE + f"budget:\n  timeout: {written}\n")
    assert err.key == "budget.timeout" and err.line == 6
    assert err.rule.startswith("a finite number of seconds, not ")
    assert err.fix == "leave timeout out for no limit, or give seconds, e.g. timeout: 3600"
    assert "\n" not in str(err)


@pytest.mark.parametrize("key, written, fix", [
    ("trial_timeout", ".inf", "leave trial_timeout out for no limit, or give seconds"),
    ("max_flops", ".inf", "leave max_flops out for no limit, or give a number"),
    ("max_params", ".nan", "leave max_params out for no limit, or give a number"),
    ("max_depth", ".inf", "leave max_depth out for no limit, or give a whole number"),
    ("n_trials", ".inf", "give a whole number, e.g. n_trials: 20")])
def test_other_budget_numbers_refuse_infinity_and_nan_too(write_study, key, written, fix):
    err = error_of(write_study, SPACE + f"budget: {{{key}: {written}}}\n")
    assert err.key == f"budget.{key}" and err.rule.startswith("a finite ") and err.fix.startswith(fix)


def test_a_ray_schedulers_factor_and_resources_refuse_infinity_but_a_class_may_be_named_nan():
    from pydantic import ValidationError

    from searchlab.config.schema import MedMNISTData, RaySchedulerConfig, TrialResources

    for model, key in ((TrialResources, "cpu"), (TrialResources, "gpu"), (RaySchedulerConfig, "reduction_factor")):
        with pytest.raises(ValidationError, match="a finite number, not infinity"):
            given = {"kind": "asha", key: float("inf")} if model is RaySchedulerConfig else {key: "inf"}
            model.model_validate(given)
    assert MedMNISTData.model_validate({"name": "breastmnist", "positive_class": "nan"}).positive_class == "nan"


def test_an_infinite_timeout_on_the_command_line_is_refused_there(write_study):
    err = error_of(write_study, SPACE, parse_overrides(["budget.timeout=.inf"]))
    assert err.file.endswith("(--set budget.timeout)") and "leave timeout out for no limit" in err.fix


def test_a_range_reaching_infinity_is_still_refused(write_study):
    err = error_of(write_study, SPACE.replace("[1.0e-4, 1.0e-2], log: true", "[1.0e-4, .inf]"))
    assert err.key == "space.optim.lr.float" and "finite" in err.rule


def test_finite_numbers_still_load(write_study):
    study = load_study(write_study(SPACE + "budget: {timeout: 1e5, max_flops: 3.0e+7}\n"))
    assert study.config.budget.timeout == 1e5 and study.config.budget.max_flops == 3e7


def test_a_choice_of_one_value_is_that_value_fixed(write_study):
    study = load_study(write_study(SPACE + "  model: {kind: cnn, width: {choice: [8]}, depth: {choice: [2, 3]}}\n"))
    width = study.space.get("model").get("width")
    assert isinstance(width, FixedParam) and width == FixedParam("model.width", 8)
    assert isinstance(study.space.get("model").get("depth"), CategoricalParam)
    assert sorted(param.name for param, _ in searchable_params(study.space)) == ["model.depth", "optim.lr"]


def test_a_space_of_one_value_choices_searches_nothing_and_says_why(write_study):
    text = ("name: s\ntask: classify\nspace:\n  optim: {lr: {choice: [1.0e-3]}}\n"
            "  model: {kind: cnn, width: {choice: [8]}}\n")
    err = error_of(write_study, text + "budget: {n_trials: 3}\n")
    assert err.key == "budget.n_trials" and "the space searches nothing (space.optim.lr, space.model.width: a " \
        "choice of one value is that value, fixed)" in err.rule
    assert load_study(write_study(text + "budget: {n_trials: 1}\n")).config.budget.n_trials == 1


def test_a_point_may_name_a_one_value_choice_with_its_value_only(write_study):
    text = SPACE + "  model: {kind: cnn, width: {choice: [8]}}\nstrategy: {name: random, points_to_evaluate: [PT]}\n"
    assert load_study(write_study(text.replace("PT", "{model.width: 8}")))
    err = error_of(write_study, text.replace("PT", "{model.width: 16}"))
    assert "the space fixes model.width to 8" in err.rule


@pytest.mark.parametrize("written", ["{choice: [0.001]}", "0.001"])
def test_a_point_naming_a_fixed_value_of_a_branch_it_does_not_take_is_refused(write_study, written):
    """As a searched parameter of that branch is: its trial runs the other branch, the value silently unused."""
    text = SPACE.replace("  optim: {lr: {float: [1.0e-4, 1.0e-2], log: true}}\n", "") + (
        "  optim: {one_of: {adamw: {lr: LR}, sgd: {lr: {float: [0.001, 0.1]}}}, key: name}\n"
        "strategy: {name: random, points_to_evaluate: [PT]}\n").replace("LR", written)
    assert load_study(write_study(text.replace("PT", "{optim.name: adamw, optim.adamw.lr: 0.001}")))
    err = error_of(write_study, text.replace("PT", "{optim.name: sgd, optim.sgd.lr: 0.002, optim.adamw.lr: 0.001}"))
    assert err.key == "strategy.points_to_evaluate.0.optim.adamw.lr" or "optim.adamw.lr" in str(err)
    assert "it exists only when optim.name is 'adamw'" in err.rule


def test_a_study_whose_trials_stored_a_one_value_choice_as_a_param_resumes(write_study, tmp_path, capsys):
    """Trials run before stored `w` as an Optuna parameter (and their config as their params only); a waiting
    retry holds it too. The resumed run treats it as fixed: every trial, old and new, runs w 8."""
    (tmp_path / "one_choice_task.py").write_text(
        "def objective(config, ctx):\n    assert config['w'] == 8\n    return {'score': config['x']}\n")
    path = write_study(CALLABLE)
    study = load_study(path)
    storage = f"sqlite:///{tmp_path / 'run' / 'study.db'}"
    (tmp_path / "run").mkdir()
    ostudy = optuna.create_study(study_name="own", storage=storage, direction="maximize")
    distributions = {"x": FloatDistribution(-1, 1), "w": CategoricalDistribution([8])}
    ostudy.add_trial(optuna.trial.create_trial(params={"x": 0.5, "w": 8}, distributions=distributions, value=0.5))
    ostudy.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.WAITING, params={"x": -0.25, "w": 8},
                                               distributions=distributions))
    run_study(load_study(path, {"budget.n_trials": 3}), progress=False)
    assert "space.w" not in capsys.readouterr().err   # the same value: no "searched then, fixed now" warning
    trials = optuna.load_study(study_name="own", storage=storage).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3, [t.user_attrs for t in trials]
    assert [config_of(t)["w"] for t in trials] == [8, 8, 8] and trials[1].params["x"] == -0.25
    assert "w" not in trials[2].params and study.space.get("w") == FixedParam("w", 8)
    assert main(["trials", str(tmp_path / "run"), "--format", "json"]) == 0   # old and new trials in one table
    assert len(json.loads(capsys.readouterr().out)) == 3


@pytest.mark.parametrize("setting", ["space.gan.gp_weight=.inf", "space.gan.r1_gamma=.nan"])
def test_a_gan_weight_that_is_not_finite_is_refused(setting):
    from pathlib import Path

    from searchlab.errors import ConfigError

    with pytest.raises(ConfigError, match="finite number") as info:   # inf/nan loaded, and broke the losses
        load_study(Path(__file__).parents[1] / "studies" / "breastmnist_gan.yaml", parse_overrides([setting]))
    assert info.value.key == setting.split("=")[0]
