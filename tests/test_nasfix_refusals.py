"""zen_nas and deepmad refuse, before a run folder exists, a task that builds no network and proxy-search sizes
their evolution cannot run: both raised a raw traceback mid-run."""
from __future__ import annotations

import pytest

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError
from test_nas_stage import CELLS
from test_zen_nas import STUDY as ZEN_STUDY

CALLABLE = """
name: own
task: {kind: callable, function: "own_task:objective"}
space:
  x: {float: [0, 1]}
  model: {include: zen.yaml}
strategy: {name: STRATEGY, args: {top_k: 2}}
objective: {metric: score, direction: maximize}
pruner: none
budget: {n_trials: 2, max_flops: 4.0e+7}
"""


@pytest.mark.parametrize("strategy", ["zen_nas", "deepmad"])
def test_a_callable_task_is_refused_before_the_run_makes_anything(write_study, tmp_path, strategy):
    """'CallableTask' object has no attribute 'candidate', raised by the stage after the run's folder was made."""
    (tmp_path / "own_task.py").write_text("def objective(config, ctx):\n    return {'score': config['x']}\n")
    study = load_study(write_study(CALLABLE.replace("STRATEGY", strategy)))
    with pytest.raises(ConfigError) as info:
        run_study(study, progress=False)
    said = str(info.value)
    assert info.value.key == "task.kind" and info.value.got == "callable" and "\n" not in said
    assert f"{strategy} scores the space's networks before any trial trains" in said and "a callable task" in said
    assert "Fix: use strategy random, tpe or evolution, or a classify task" in said
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("override", [{"strategy.args.population_size": 2}, {"strategy.args.sample_size": 100}])
def test_a_sample_size_over_the_population_is_refused_at_load_by_evolutions_rule(write_study, override):
    """population_size 2 under sample_size 3, or sample_size 100 over population_size 8: a ValueError raised
    mid-stage, after the run's folder was made."""
    with pytest.raises(ConfigError) as info:
        load_study(write_study(ZEN_STUDY.replace("N", "1")), override)
    sizes = {"population_size": 8, "sample_size": 3, **{k.split(".")[-1]: v for k, v in override.items()}}
    assert info.value.key == "strategy.args.sample_size" and info.value.got == sizes
    said = str(info.value)
    assert "need population_size >= 2 and 1 <= sample_size <= population_size" in said
    assert f"Fix: set sample_size to at most {sizes['population_size']}" in said


def test_evolution_says_the_same_rule(write_study):
    text = ZEN_STUDY.replace("N", "1").replace("{name: zen_nas, args: {candidates: 30, top_k: 3, ",
                                               "{name: evolution, args: {").replace(", batch_size: 8}}", "}}")
    with pytest.raises(ConfigError, match=r"need population_size >= 2 and 1 <= sample_size <= population_size; "
                                          r"got population_size=2, sample_size=3"):
        load_study(write_study(text), {"strategy.args.population_size": 2})


def test_a_population_under_two_is_refused_with_its_own_fix(write_study):
    with pytest.raises(ConfigError, match="population_size: .*Fix: set population_size to 2 or more"):
        load_study(write_study(ZEN_STUDY.replace("N", "1")), {"strategy.args.population_size": 1,
                                                              "strategy.args.sample_size": 1})


def test_deepmad_on_a_cells_space_offers_evolution(write_study):
    text = (f"name: c\ntask: classify\nspace:{CELLS}\n  train: {{batch_size: 128}}\nstrategy: deepmad\n"
            "pruner: none\nbudget: {n_trials: 1, epochs: 1}\n")
    with pytest.raises(ConfigError, match="deepmad designs Zen-NAS .*, or use strategy evolution"):
        run_study(load_study(write_study(text)), progress=False)
