"""Cells networks costed from their config (no network built), and what the budget checks do with the costs:
a cells study with an architecture budget pruned every trial untrained, unsaid, and one with an unreachable
max_depth hung for minutes, because every cells network was built (~0.5-1.5 s) to cost it."""
from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

CELLS_SPACE = """
name: cells
task: classify
space:
  optim: {{lr: 1.0e-3}}
  model:
    kind: cells
    channels: {{choice: [8, 12, 16]}}
    cells: {{int: [3, 6]}}
    reductions: {{int: [1, 2]}}
    normal:
      n1: {{op1: {{choice: &ops [sep_conv_3x3, dil_conv_5x5, max_pool_3x3, skip_connect, none]}}, in1: {{int: [0, 1]}},
           op2: {{choice: *ops}}, in2: {{int: [0, 1]}}}}
      n2: {{op1: {{choice: *ops}}, in1: {{int: [0, 2]}}, op2: {{choice: *ops}}, in2: {{int: [0, 2]}}}}
    reduce:
      n1: {{op1: {{choice: *ops}}, in1: {{int: [0, 1]}}, op2: {{choice: *ops}}, in2: {{int: [0, 1]}}}}
      n2: {{op1: {{choice: *ops}}, in1: {{int: [0, 2]}}, op2: {{choice: *ops}}, in2: {{int: [0, 2]}}}}
strategy: evolution
pruner: none
budget: {{n_trials: 2, epochs: 1, {budget}}}
"""


def _random_cells(rng: random.Random) -> dict:
    from searchlab.models.cells import CELL_OPS

    def nodes(n: int) -> list[dict]:
        return [{"op1": rng.choice(CELL_OPS), "in1": rng.randrange(i + 2), "op2": rng.choice(CELL_OPS),
                 "in2": rng.randrange(i + 2)} for i in range(n)]

    n, cells = rng.randint(1, 4), rng.randint(1, 6)
    return {"normal": nodes(n), "reduce": nodes(n), "channels": rng.choice([4, 5, 8, 16]), "cells": cells,
            "reductions": rng.randint(0, min(cells, 3)), "stem_multiplier": rng.randint(1, 3),
            "dropout": 0.0}


def test_cells_costs_from_the_config_equal_the_built_networks():
    """params, FLOPs (torch's counter) and depth (conv_depth) of random genotypes, odd and non-square sizes,
    up to 3 reductions (two in a row) and `none` ops, as measure_costs counts them on the built CellNet."""
    from searchlab.models.cells import CellNet
    from searchlab.tasks.costs import analytic_costs, measure_costs

    rng = random.Random(0)
    for _ in range(15):
        args = _random_cells(rng)
        channels, outputs, size = rng.choice([1, 3]), rng.choice([2, 5]), rng.choice([(28, 28), (27, 31), (9, 13)])
        data = SimpleNamespace(channels=channels, image_size=size)
        spec = {"architecture": "cells", "args": args, "in_channels": channels, "num_outputs": outputs}
        assert analytic_costs(spec, data) == measure_costs(CellNet(channels, outputs, **args), data), args


def _no_building(monkeypatch):
    from searchlab.models import cells

    def refuse(*args, **kwargs):
        raise AssertionError("a CellNet was built to cost it")

    monkeypatch.setattr(cells.CellNet, "__init__", refuse)


def test_the_check_before_a_run_costs_cells_without_building_them(write_study, monkeypatch):
    """max_depth 4 is reachable only by pool-only cells: the check costed ~300 built networks (minutes)."""
    from searchlab.config.load import load_study
    from searchlab.tasks import get_task

    study = load_study(write_study(CELLS_SPACE.format(budget="max_depth: 4")))
    _no_building(monkeypatch)
    get_task(study.config.task)._check_some_candidate_fits(study)


def test_the_random_start_finds_cells_within_the_budget(write_study, monkeypatch):
    from searchlab.config.load import load_study
    from searchlab.samplers.budget import budget_check

    study = load_study(write_study(CELLS_SPACE.format(budget="max_flops: 1.0e+7, max_params: 3.0e+4")))
    _no_building(monkeypatch)
    check = budget_check(study)
    found = [check.random_fitting(seed) for seed in range(3)]
    assert all(params is not None and check(params) for params in found)


def test_a_search_cut_short_by_time_is_not_counted_as_a_miss(write_study, monkeypatch):
    """Two searches cut after ~3 of their 20 draws made the sampler stop looking for the rest of the run."""
    from searchlab.config.load import load_study
    from searchlab.samplers import budget

    study = load_study(write_study(CELLS_SPACE.format(budget="max_params: 10")))   # nothing fits
    check = budget.budget_check(study)
    monkeypatch.setattr(budget, "RANDOM_SECONDS", -1.0)   # every search cut before its first draw
    assert [check.random_fitting(seed) for seed in range(3)] == [None] * 3
    assert check.misses == 0
    monkeypatch.setattr(budget, "RANDOM_SECONDS", 60.0)
    assert check.random_fitting(0) is None and check.misses == 1   # all 20 costed, none fits: a miss


def test_the_start_warning_says_when_it_cannot_judge(write_study, monkeypatch):
    from searchlab.config.load import load_study
    from searchlab.tasks import costs, get_task

    study = load_study(write_study(CELLS_SPACE.format(budget="max_params: 10")))
    monkeypatch.setattr(costs, "COSTING_SECONDS", -1.0)
    said = costs.draws_over_budget_warning(study, get_task(study.config.task).candidate)
    assert said is not None and said.startswith("could not tell what share of this space's random configs is "
                                                "within the architecture budget: only 0 of 24 draws were costed")


@pytest.mark.parametrize("budget,over", [("max_params: 10", True), ("max_params: 1.0e+7", False)])
def test_the_start_warning_costs_all_its_cells_draws(write_study, budget, over):
    from searchlab.config.load import load_study
    from searchlab.tasks import costs, get_task

    study = load_study(write_study(CELLS_SPACE.format(budget=budget)))
    said = costs.draws_over_budget_warning(study, get_task(study.config.task).candidate)
    assert (said is not None and said.startswith(f"{costs.DRAWS_COSTED} of {costs.DRAWS_COSTED} random")) == over
    assert over or said is None
