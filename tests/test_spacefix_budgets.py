"""Budget limits a run could never meet, refused before any trial: a cells network whose last cell is all `none`
(depth 1, a constant output) counted as fitting max_depth, so every trial was then pruned; and a callable task
silently ignored budget.max_flops / max_params / max_depth."""
from __future__ import annotations

import pytest

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError
from test_config import error_of

OP = "{choice: [none, skip_connect]}"
CELLS = f"""name: s
task: classify
space:
  model: {{kind: cells, channels: 4, cells: 1, reductions: 0, normal: {{n1: {{op1: {OP}, in1: 0, op2: {OP}, in2: 1}}}},
          reduce: {{n1: {{}}}}}}
  train: {{batch_size: 256}}
strategy: random
pruner: none
budget: {{n_trials: 1, epochs: 1, max_depth: DEPTH}}
"""


def test_an_all_none_cell_does_not_count_as_fitting_max_depth(write_study, tmp_path):
    """skip_connect everywhere is the shallowest real network (stem, preprocessing conv, classifier: depth 3)."""
    with pytest.raises(ConfigError) as info:
        run_study(load_study(write_study(CELLS.replace("DEPTH", "2"))), progress=False)
    err = info.value
    assert err.key == "budget.max_depth" and "depth 3" in err.rule and "only `none` ops are not counted" in err.rule
    assert not (tmp_path / "run" / "study.db").exists()


def test_a_callable_task_refuses_architecture_limits_it_would_ignore(write_study):
    text = """name: s
task: {kind: callable, function: "fake_tasks:quadratic"}
space: {x: {float: [-3, 3]}}
objective: {metric: loss, direction: minimize}
strategy: random
budget: {n_trials: 2, LIMIT}
"""
    for limit in ("max_flops: 4.0e+7", "max_params: 1000", "max_depth: 4"):
        err = error_of(write_study, text.replace("LIMIT", limit))
        key = limit.split(":")[0]
        assert err.key == f"budget.{key}" and "not costed" in err.rule and f"remove budget.{key}" in err.fix
    load_study(write_study(text.replace(", LIMIT", "")))


def test_the_samplers_budget_check_does_not_count_an_all_none_cell_as_fitting(write_study):
    """Evolution's children and random start are kept within the budgets by this check: a constant network
    (depth 1) passed any max_depth."""
    from searchlab.samplers.budget import budget_check

    check = budget_check(load_study(write_study(CELLS.replace("DEPTH", "3"))))
    ops = ("model.normal.n1.op1", "model.normal.n1.op2")
    assert check(dict.fromkeys(ops, "skip_connect")) is True
    assert check(dict.fromkeys(ops, "none")) is False
