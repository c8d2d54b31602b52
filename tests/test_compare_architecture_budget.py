"""compare of NAS runs whose architecture budgets differ (max_flops 3e7 against 6e7): the larger budget searched
more networks, so their best-so-far curves compare the budgets too, and compare said nothing of it."""
from __future__ import annotations

from types import SimpleNamespace

from searchlab.report.compare import setup_difference

SPACE = {"space_searched": {"cells": "int"}, "space_fixed": {}}


def _run(**budget):
    return SimpleNamespace(record={"epochs": 1}, search={**SPACE, "budget": {"n_trials": 4, **budget}})


def test_compare_names_an_architecture_budget_that_differs_between_runs():
    said = setup_difference([_run(max_flops=3e7), _run(max_flops=6e7)], ["a", "b"])
    assert "differ in the architecture budget (budget.max_params, max_flops, max_depth)" in said


def test_compare_says_nothing_when_only_the_trial_count_differs():
    assert setup_difference([_run(max_flops=3e7), _run(max_flops=3e7, n_trials=8)], ["a", "b"]) is None
