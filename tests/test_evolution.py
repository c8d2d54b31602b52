"""Regularised evolution sampler: aging population, one-parameter mutations, conditional branches, and search."""
from __future__ import annotations

import re

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from searchlab.samplers.evolution import MUTATED, PARENT, RegularizedEvolutionSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)


def conditional(trial: optuna.Trial) -> float:
    """A branch selector with per-branch parameters, plus shared ones."""
    kind = trial.suggest_categorical("kind", ["a", "b"])
    x = trial.suggest_float("x", -5, 5)
    n = trial.suggest_int("n", 1, 9)
    branch = trial.suggest_float("a.w", 0, 1) if kind == "a" else trial.suggest_categorical("b.c", [1, 2, 3])
    return -abs(x - 1) - abs(n - 4) + branch


def test_children_copy_a_population_member_with_exactly_one_change():
    sampler = RegularizedEvolutionSampler(population_size=10, sample_size=3, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(conditional, n_trials=80)
    trials = study.trials
    children = [t for t in trials if PARENT in t.system_attrs]
    assert all(PARENT not in t.system_attrs for t in trials[:10])   # random until 10 have completed
    assert len(children) == 70
    for child in children:
        parent = trials[child.system_attrs[PARENT]]
        assert parent.number < child.number and parent.state == TrialState.COMPLETE
        mutated = child.system_attrs[MUTATED]
        assert child.params[mutated] != parent.params[mutated]
        shared = set(child.params) & set(parent.params)
        changed = {name for name in shared if child.params[name] != parent.params[name]}
        assert changed == {mutated}
        if mutated != "kind":   # the same branch: the same parameter names
            assert set(child.params) == set(parent.params)


def test_parents_come_from_the_youngest_population_only():
    sampler = RegularizedEvolutionSampler(population_size=8, sample_size=8, seed=1)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(conditional, n_trials=60)
    for child in study.trials[8:]:
        parent_number = child.system_attrs[PARENT]
        population = [t for t in study.trials[:child.number]][-8:]
        assert parent_number in [t.number for t in population]
        # sample_size == population_size: the parent is the best of the population (the tournament sees all)
        assert study.trials[parent_number].value == max(t.value for t in population)


def test_a_trial_that_completes_after_later_ones_joins_the_population_when_it_completes():
    """The sampler reads finished trials once; one still running (another worker's) is read again each ask."""
    sampler = RegularizedEvolutionSampler(population_size=2, sample_size=2, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    slow = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})   # still running for a while
    for value in (0.1, 0.2, 0.3):
        study.tell(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), value)
    assert sampler._tournament(study).value == 0.3   # the last two completed: 0.2 and 0.3
    study.tell(slow, 0.9)   # completes last: the population is now 0.3 and 0.9
    assert sampler._tournament(study).number == slow.number
    study.tell(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), 0.4)
    assert sampler._tournament(study).number == slow.number   # 0.9 and 0.4
    assert [t.value for t in sampler._history.complete] == [0.1, 0.2, 0.3, 0.9, 0.4]   # in completion order


def test_minimisation_picks_the_lowest():
    sampler = RegularizedEvolutionSampler(population_size=5, sample_size=5, seed=2)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=12)
    for child in study.trials[5:]:
        population = study.trials[child.number - 5:child.number]
        assert study.trials[child.system_attrs[PARENT]].value == min(t.value for t in population)


def onemax(trial: optuna.Trial) -> float:
    return float(sum(trial.suggest_categorical(f"b{i}", [0, 1]) for i in range(24)))


def test_evolution_climbs_onemax_faster_than_random():
    def best(sampler: optuna.samplers.BaseSampler) -> float:
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(onemax, n_trials=150)
        return study.best_value

    evo = [best(RegularizedEvolutionSampler(population_size=20, sample_size=5, seed=s)) for s in range(3)]
    rnd = [best(optuna.samplers.RandomSampler(seed=s)) for s in range(3)]
    assert np.mean(evo) >= np.mean(rnd) + 3, (evo, rnd)


def three_dials(trial: optuna.Trial) -> float:
    """27 configs, a smooth landscape: the best parents get picked again and again, so their few one-step
    neighbours would be bred many times over."""
    return float(sum(trial.suggest_categorical(f"d{i}", [0, 1, 2]) for i in range(3)))


def test_children_do_not_repeat_a_config_the_study_already_has():
    sampler = RegularizedEvolutionSampler(population_size=4, sample_size=2, seed=0)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(three_dials, n_trials=24)
    repeats = 0
    for child in study.trials[4:]:
        earlier = [t.params for t in study.trials[:child.number]]
        if child.params in earlier:   # only when every one-step neighbour of its parent was already run
            repeats += 1
            parent = study.trials[child.system_attrs[PARENT]].params
            assert all({**parent, k: v} in earlier for k in parent for v in (0, 1, 2)), child.number
    assert repeats < 5


def test_with_every_neighbour_run_the_repeat_is_of_a_config_that_completed_not_one_that_failed():
    from optuna.distributions import CategoricalDistribution

    dists = {"a": CategoricalDistribution([0, 1]), "b": CategoricalDistribution([0, 1])}
    for seed in range(10):
        study = optuna.create_study(direction="maximize",
                                    sampler=RegularizedEvolutionSampler(population_size=2, sample_size=2, seed=seed))
        study.add_trial(optuna.trial.create_trial(params={"a": 0, "b": 0}, distributions=dists, value=1.0))
        study.add_trial(optuna.trial.create_trial(params={"a": 0, "b": 1}, distributions=dists, value=0.5))
        study.add_trial(optuna.trial.create_trial(params={"a": 1, "b": 0}, distributions=dists,
                                                  state=TrialState.FAIL))
        child = study.ask(dists)
        assert child.params == {"a": 0, "b": 1}, seed   # (1, 0) failed: run again, it fails again


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="sample_size <= population_size"):
        RegularizedEvolutionSampler(population_size=4, sample_size=5)


def test_evolution_is_a_registered_strategy_in_a_study_with_a_conditional_space(write_study, tmp_path):
    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study

    text = """
name: evo
task: {kind: callable, function: "fake_tasks:quadratic"}
space:
  x: {float: [-3, 3]}
  shape: {one_of: {wide: {w: {int: [1, 5]}}, deep: {d: {choice: [1, 2]}}}}
objective: {metric: loss, direction: minimize}
strategy: {name: evolution, args: {population_size: 6, sample_size: 3}}
pruner: none
budget: {n_trials: 20}
"""
    study = run_study(load_study(write_study(text)), progress=False).study
    children = [t for t in study.trials if PARENT in t.system_attrs]
    assert len(study.trials) == 20 and len(children) == 14
    assert {t.system_attrs[MUTATED] for t in children} <= {"x", "shape.kind", "shape.wide.w", "shape.deep.d"}


def test_mutations_that_break_the_feasibility_check_are_redrawn():
    sampler = RegularizedEvolutionSampler(population_size=6, sample_size=3, seed=4,
                                          feasible=lambda params: params["x"] <= 0.5)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(lambda t: t.suggest_float("x", -1, 1) + 0.01 * t.suggest_int("n", 0, 3), n_trials=60)
    moved = [t for t in study.trials if t.system_attrs.get(MUTATED) == "x"]
    assert len(moved) > 10 and all(t.params["x"] <= 0.5 for t in moved)
    # without the check, evolution maximising x would push it past 0.5
    free = optuna.create_study(direction="maximize", sampler=RegularizedEvolutionSampler(6, 3, seed=4))
    free.optimize(lambda t: t.suggest_float("x", -1, 1) + 0.01 * t.suggest_int("n", 0, 3), n_trials=60)
    assert any(t.params["x"] > 0.5 for t in free.trials if t.system_attrs.get(MUTATED) == "x")


def test_evolution_in_a_budgeted_study_breeds_only_children_within_budget(write_study, tmp_path):
    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study

    from study_texts import TINY_ZEN_MODEL

    text = """
name: evo_budget
task: classify
space:""" + TINY_ZEN_MODEL + """
  train: {batch_size: 256}
strategy: {name: evolution, args: {population_size: 6, sample_size: 2}}
pruner: none
budget: {n_trials: 10, epochs: 1, max_params: 20000}
"""
    trials = run_study(load_study(write_study(text)), progress=False).study.trials
    children = [t for t in trials if PARENT in t.system_attrs]
    # the random start too: its over-budget draws were pruned untrained, counting in n_trials (11 of 12 of a
    # cells study), so evolution never began
    assert children and all(t.user_attrs["params"] <= 20000 and "over_budget" not in t.user_attrs for t in trials)


def test_configs_that_build_the_same_network_alike_are_one_config_to_evolution():
    """With an identity (the engine's: the network as built), a child that differs from a trial the study has
    only in what builds alike is a repeat: evolution retrained such a copy and exported the luckier seed's."""
    def objective(trial):
        return {0: 1.0, 1: 0.0, 2: 0.5}[trial.suggest_categorical("a", [0, 1, 2])] + 0 * len(
            trial.suggest_categorical("b", ["x", "y"]))

    def children(identity):
        found = []
        for seed in range(8):
            study = optuna.create_study(direction="maximize", sampler=RegularizedEvolutionSampler(
                population_size=2, sample_size=2, seed=seed, identity=identity))
            for params in ({"a": 0, "b": "x"}, {"a": 1, "b": "x"}):   # the population; b builds nothing
                study.enqueue_trial(params)
            study.optimize(objective, n_trials=3)
            found.append(study.trials[2].params)
        return found

    assert all(child == {"a": 2, "b": "x"} for child in children(lambda params: params["a"]))
    assert {"a": 0, "b": "y"} in children(None)   # told apart by their params, the copy is bred


def test_the_engine_identity_is_the_network_as_built_with_the_training_settings(write_study):
    from searchlab.config.load import load_study
    from searchlab.samplers.budget import config_identity, random_params

    from study_texts import TINY_ZEN_MODEL

    study = load_study(write_study("""
name: zen_identity
task: classify
space:""" + TINY_ZEN_MODEL + """
  optim: {lr: {choice: [1.0e-3, 1.0e-2]}}
"""))
    identity = config_identity(study)
    [params] = random_params(study, 0, 1)
    params.update({"model.blocks.b1.type": "conv", "model.blocks.b2.type": "none", "optim.lr": 1.0e-3})
    params.pop("model.blocks.b2.width", None)
    unbuilt = {**params, "model.blocks.b2.width": 64}   # the width of a block left out builds nothing
    assert identity(unbuilt) == identity({**params, "model.blocks.b2.width": 16})
    assert identity(unbuilt) != identity({**unbuilt, "optim.lr": 1.0e-2})   # trains otherwise
    assert identity(unbuilt) != identity({**unbuilt, "model.blocks.b1.width": 16 if params[
        "model.blocks.b1.width"] != 16 else 8})


def test_a_queued_config_is_no_ones_child():
    """A retry or a queued point was recorded as a mutation of a parent whose params it did not have."""
    study = optuna.create_study(sampler=RegularizedEvolutionSampler(population_size=2, sample_size=1, seed=0))

    def objective(trial):
        return trial.suggest_float("x", 0, 1) + trial.suggest_float("y", 0, 1)

    study.optimize(objective, n_trials=3)
    study.enqueue_trial({"x": 0.123, "y": 0.456})
    study.optimize(objective, n_trials=2)
    queued, bred = study.trials[3], study.trials[4]
    assert queued.params == {"x": 0.123, "y": 0.456} and PARENT not in queued.system_attrs
    assert MUTATED not in queued.system_attrs and PARENT in bred.system_attrs   # the next one is bred as before


def test_a_child_whose_network_cannot_be_built_is_left_to_its_trial_not_raised_in_the_sampler(monkeypatch):
    """The budget check let the task's TrialFailure out of the sampler's before_trial: the run ended."""
    from types import SimpleNamespace

    import searchlab.tasks as tasks
    from searchlab.errors import TrialFailure
    from searchlab.samplers.budget import budget_check

    def candidate(study, config):
        raise TrialFailure("this wiring cannot be built")

    monkeypatch.setattr(tasks, "get_task", lambda cfg: SimpleNamespace(candidate=candidate))
    monkeypatch.setattr(tasks, "sample_trial_config", lambda trial, study: {})
    study = SimpleNamespace(config=SimpleNamespace(task="classify", budget=SimpleNamespace(
        max_flops=1e6, max_params=None, max_depth=None)))
    assert budget_check(study)({"x": 1}) is None


# widths 64-128 are over max_params 500 and width 4 within it: most random draws are over
def _widths_study(write_study, strategy: str, max_params: str, n_trials: int = 2):
    from searchlab.config.load import load_study

    return load_study(write_study(f"""
name: widths
task: classify
space:
  model: {{kind: cnn, depth: 1, width: {{choice: [4, 64, 96, 128]}}, convs_per_stage: 1}}
  optim: {{lr: {{float: [1.0e-3, 1.0e-2], log: true}}}}
strategy: {strategy}
pruner: none
budget: {{n_trials: {n_trials}, epochs: 1, max_params: {max_params}}}
"""))


@pytest.mark.parametrize("strategy,warned", [("random", True), ("tpe", True), ("evolution", False)])
def test_a_run_start_says_when_most_random_draws_are_over_the_budget(write_study, strategy, warned):
    """Random and TPE trials drawn over the budget are pruned untrained but count in n_trials, unsaid; evolution
    draws within it."""
    from searchlab.tasks import get_task
    from searchlab.tasks.costs import draws_over_budget_warning

    study = _widths_study(write_study, strategy, "500")
    said = draws_over_budget_warning(study, get_task(study.config.task).candidate)
    if warned:
        assert said is not None and re.search(r"^\d+ of \d+ random configs of this space are over the architecture "
                                              r"budget \(e\.g\. params \d+ > max_params 500\)", said)
        assert "count in budget.n_trials" in said
    else:
        assert said is None
    roomy = _widths_study(write_study, strategy, "1.0e+5")
    assert draws_over_budget_warning(roomy, get_task(roomy.config.task).candidate) is None


def test_a_trial_over_the_budget_is_infeasible_to_optuna(write_study):
    """TPE took such trials (PRUNED, no values) for pruned ones, which it counts among the good while few trials
    have completed; as constraints it ranks them last (NSGA-II and the dashboard read them too)."""
    from searchlab.engine.run import run_study

    if not hasattr(optuna.Trial, "set_constraint"):
        pytest.skip("Optuna before 5.0 has no trial constraints")
    study = _widths_study(write_study, "random", "500", n_trials=4)
    trials = run_study(study, progress=False).study.trials
    over = [t for t in trials if "over_budget" in t.user_attrs]
    assert over and all(t.state == TrialState.PRUNED for t in over)
    assert all(set(t.constraints) == {"max_params"} and t.constraints["max_params"] > 0 for t in over)
    assert all(not t.constraints for t in trials if t not in over)


def test_the_random_start_stops_looking_for_configs_within_the_budget_when_none_are_found(monkeypatch):
    """Each search costs up to 20 networks (seconds for cells): where fewer than 1 in 20 draws fits, it gave
    nothing for that time on every ask of the random start."""
    import searchlab.samplers.budget as budget

    drawn = []
    monkeypatch.setattr(budget, "random_params", lambda study, seed, n: drawn.extend([seed] * n) or [{"x": 1}] * n)
    check = budget.BudgetCheck(study=None, task=None)
    monkeypatch.setattr(budget.BudgetCheck, "__call__", lambda self, params: False)
    assert [check.random_fitting(seed) for seed in range(4)] == [None] * 4
    assert drawn == [0] * 20 + [1] * 20   # two searches, then none


@pytest.mark.parametrize("named", ["name: evolution",
                                   'class: "searchlab.samplers.evolution:RegularizedEvolutionSampler"'])
def test_the_random_start_draws_no_config_twice(write_study, named):
    """In a space of 8 configs, a random start of 8 drew some of them twice: trials spent on a repeat while
    others were never tried. Named by its class, evolution was not given the study's identity (nor its budget
    check) and repeated configs."""
    from searchlab.config.load import load_study
    from searchlab.strategy import build_sampler
    from searchlab.tasks import sample_trial_config

    study = load_study(write_study("""
name: tiny_space
task: classify
space:
  model: {kind: cnn, depth: 1, width: {choice: [4, 8]}, convs_per_stage: {choice: [1, 2]}}
  optim: {lr: {choice: [1.0e-3, 1.0e-2]}}
strategy: {NAMED, args: {population_size: 8, sample_size: 2}}
budget: {n_trials: 8, epochs: 1}
""".replace("NAMED", named)))
    for seed in range(3):
        sampler = build_sampler(study.config.strategy, seed, study=study)
        memory = optuna.create_study(direction="maximize", sampler=sampler)
        memory.optimize(lambda trial: sample_trial_config(trial, study) and 0.5, n_trials=8)
        drawn = {tuple(sorted(t.params.items())) for t in memory.trials}
        assert len(drawn) == 8, f"seed {seed}: {len(drawn)} distinct configs in 8 trials"



def test_evolution_is_warned_of_when_so_few_draws_fit_that_its_random_start_mostly_finds_none(write_study):
    """Its random start looks for a config within the budget among 20 draws and takes an unchecked one when none
    does: 2 of a zen_nas study's 3 trials were pruned so, unsaid (its draws were said to keep within it)."""
    from searchlab.config.load import load_study
    from searchlab.tasks import get_task
    from searchlab.tasks.costs import draws_over_budget_warning

    # _widths_study's space with its widths a range that width 4 alone fits (params 13 x width + 2)
    narrow = load_study(write_study("name: widths\ntask: classify\nspace:\n  model: {kind: cnn, depth: 1, width: "
                                    "{int: [4, 128]}, convs_per_stage: 1}\n  optim: {lr: {float: [1.0e-3, 1.0e-2], "
                                    "log: true}}\nstrategy: evolution\npruner: none\n"
                                    "budget: {n_trials: 2, epochs: 1, max_params: 60}\n"))
    said = draws_over_budget_warning(narrow, get_task(narrow.config.task).candidate)
    assert said is not None and "evolution's random draws look for one within it among 20 at a time" in said
