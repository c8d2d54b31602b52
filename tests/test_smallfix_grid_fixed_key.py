"""A GridSampler's search_space naming a key the space fixes (a one-value choice, {choice: [8]}, or a constant)
was refused as "a parameter the space does not search": it now says the key is fixed at its value, so the grid
need not list it, and the fix (drop it from the grid, or give the choice more values)."""
from __future__ import annotations

import pytest

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError

GRID_STUDY = """
name: fake
task: {{kind: callable, function: "fake_tasks:quadratic"}}
space:
  x: {{float: [-3, 3]}}
  w: {w}
objective: {{metric: loss, direction: minimize}}
strategy: {{class: "optuna.samplers:GridSampler", args: {{search_space: {grid}}}}}
pruner: none
budget: {{n_trials: 2}}
"""


def test_a_grid_naming_a_one_value_choice_says_it_is_fixed_and_the_fix(write_study, tmp_path):
    study = load_study(write_study(GRID_STUDY.format(w="{choice: [8]}", grid="{x: [-1.0, 1.0], w: [8]}")))
    with pytest.raises(ConfigError) as info:
        run_study(study, progress=False)
    said = str(info.value)
    assert "the grid names w, which the space fixes at 8 (a one-value choice, {choice: [8]}" in said
    assert "Fix: drop w from strategy.args.search_space, or give space.w's choice more values" in said
    assert info.value.key == "strategy.args.search_space.w"
    assert not (tmp_path / "run").exists()   # refused before the run's folder


def test_a_grid_naming_a_constant_says_it_is_fixed(write_study):
    study = load_study(write_study(GRID_STUDY.format(w="8", grid="{x: [-1.0, 1.0], w: [8]}")))
    with pytest.raises(ConfigError, match=r"fixes at 8 \(written as a constant\).*Fix: drop w from"):
        run_study(study, progress=False)


def test_a_grid_naming_an_unknown_key_is_still_said_to_be_unsearched(write_study):
    study = load_study(write_study(GRID_STUDY.format(w="8", grid="{x: [-1.0, 1.0], v: [8]}")))
    with pytest.raises(ConfigError, match="the grid names a parameter the space does not search"):
        run_study(study, progress=False)
