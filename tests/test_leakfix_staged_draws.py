"""A zen_nas or deepmad run's first top_k trials are its stage's designs, queued: no random draw happens while
budget.n_trials <= top_k, so the start warning about random draws over the budget (taken unchecked, pruned
untrained) described trials the run never draws (dm.yaml, n_trials 1 = top_k 1: its one trial, a design,
completed)."""
from __future__ import annotations

import pytest

NARROW = ("name: widths\ntask: classify\nspace:\n  model: {{kind: cnn, depth: 1, width: {{int: [4, 128]}}, "
          "convs_per_stage: 1}}\n  optim: {{lr: {{float: [1.0e-3, 1.0e-2], log: true}}}}\n"
          "strategy: {{name: {name}, args: {{top_k: 2}}}}\npruner: none\n"
          "budget: {{n_trials: {n_trials}, epochs: 1, max_params: 60}}\n")


def said_at_start(write_study, name, n_trials):
    from searchlab.config.load import load_study
    from searchlab.tasks import get_task
    from searchlab.tasks.costs import draws_over_budget_warning

    study = load_study(write_study(NARROW.format(name=name, n_trials=n_trials)))
    return draws_over_budget_warning(study, get_task(study.config.task).candidate)


@pytest.mark.parametrize("name", ["zen_nas", "deepmad"])
def test_no_draw_warning_when_every_trial_is_a_queued_design(write_study, name):
    assert said_at_start(write_study, name, 1) is None
    assert said_at_start(write_study, name, 2) is None


@pytest.mark.parametrize("name", ["zen_nas", "deepmad"])
def test_the_draw_warning_stays_when_trials_after_the_designs_are_drawn(write_study, name):
    said = said_at_start(write_study, name, 3)
    assert said is not None and f"{name}'s random draws look for one within it among 20 at a time" in said
