"""A bad value inside a searched parameter is named as written, with its rule and fix, before any check spanning
settings: a typo in a searched list said "got" the whole list and "keep it within what the classify task accepts",
`cells: {int: [0, 3]}` was blamed on `reductions`, and an anchored typo was named at whichever op drew it first."""
from __future__ import annotations

import pytest

from searchlab.config.load import load_study
from test_config import error_of

STUDY = "name: s\ntask: classify\nspace:\n  model: MODEL\n"
CELLS = "{kind: cells, CHANGE, normal: {n1: {}}, reduce: {n1: {}}}"


def _error(write_study, model: str):
    return error_of(write_study, STUDY.replace("MODEL", model))


def test_a_misspelt_choice_is_named_with_the_choice_it_likely_meant(write_study):
    err = _error(write_study, "{kind: zen, blocks: {b1: {type: {choice: [conv, basci]}}}}")
    assert (err.key, err.got) == ("space.model.blocks.b1.type", "basci")
    assert "'conv', 'basic', 'bottleneck', 'inverted' or 'none'" in err.rule and "did you mean 'basic'" in err.fix
    err = _error(write_study, CELLS.replace("CHANGE", "channels: 8").replace(
        "n1: {}}, reduce", "n1: {op1: {choice: [sep_conv_3x3, sep_cnov_5x5]}}}, reduce"))
    assert (err.key, err.got) == ("space.model.normal.n1.op1", "sep_cnov_5x5")
    assert "did you mean 'sep_conv_5x5'" in err.fix


def test_a_number_outside_a_literal_choice_is_named_with_the_values_allowed(write_study):
    err = _error(write_study, "{kind: zen, blocks: {b1: {type: basic, kernel: {choice: [3, 4]}}}}")
    assert (err.key, err.got) == ("space.model.blocks.b1.kernel", 4) and "one of 3, 5, 7" in err.fix


def test_a_fixed_misspelt_op_gets_a_did_you_mean(write_study):
    err = _error(write_study, CELLS.replace("CHANGE", "channels: 8").replace("n1: {}}, reduce",
                                                                                   "n1: {op1: sep_conv_3x4}}, reduce"))
    assert err.got == "sep_conv_3x4" and err.fix.startswith("did you mean sep_conv_3x3")


@pytest.mark.parametrize("change, key, said, fix", [
    ("cells: {int: [3, 400]}", "space.model.cells", "high end 400: Input should be less than or equal to 20",
     "search cells: {int: [3, 20]}"),
    # per-value first: cells below 1 was refused as "keep reductions at most 0"
    ("cells: {int: [0, 3]}, reductions: {int: [0, 1]}", "space.model.cells",
     "low end 0: Input should be greater than or equal to 1", "search cells: {int: [1, 3]}"),
    # reductions past 4 was offered "search cells from 9 up"
    ("cells: {int: [3, 12]}, reductions: {int: [1, 9]}", "space.model.reductions",
     "high end 9: Input should be less than or equal to 4", "search reductions: {int: [1, 3]}"),
])
def test_a_range_past_its_own_limit_names_the_end_and_the_range_that_fits(write_study, change, key, said, fix):
    err = _error(write_study, CELLS.replace("CHANGE", change))
    assert err.key == key and said in err.rule and fix in err.fix and "from 9 up" not in err.fix


@pytest.mark.parametrize("change, fix, fixed", [
    # [1, 3] was offered, and then refused for reductions 2 > cells 1
    ("cells: {int: [0, 3]}, reductions: {int: [1, 2]}", "search cells: {int: [2, 3]} (from 2: reductions reach 2",
     "cells: {int: [2, 3]}, reductions: {int: [1, 2]}"),
    ("cells: {int: [0, 3]}, reductions: 3", "write cells: 3", "cells: 3, reductions: 3, channels: {choice: [8, 16]}"),
    # [1, 4] was offered, and then refused for reductions 4 > cells 2
    ("cells: {int: [2, 12]}, reductions: {int: [1, 9]}", "search reductions: {int: [1, 2]} (up to 2: cells go down",
     "cells: {int: [2, 12]}, reductions: {int: [1, 2]}"),
    # no cells range within 1-1 fits reductions 2: the other setting's change is said
    ("cells: {int: [0, 1]}, reductions: {int: [1, 2]}", "write cells: 1, and then keep reductions at "
     "most cells' least (they reach 2)", "cells: 1, reductions: 1, channels: {choice: [8, 16]}"),
])
def test_a_range_fix_keeps_reductions_within_cells_so_the_fixed_space_loads(write_study, change, fix, fixed):
    err = _error(write_study, CELLS.replace("CHANGE", change))
    assert fix in err.fix, err.fix
    load_study(write_study(STUDY.replace("MODEL", CELLS.replace("CHANGE", fixed))))


ANCHORED = """name: s
task: classify
seed: SEED
space:
  model:
    kind: cells
    normal:
      n1: {op1: {choice: &ops [sep_conv_3x3, sep_cnov_5x5, skip_connect, none]}, op2: {choice: *ops}}
      n2: {op1: {choice: *ops}, op2: {choice: *ops}}
    reduce:
      n1: {op1: {choice: *ops}, op2: {choice: *ops}}
      n2: {op1: {choice: *ops}, op2: {choice: *ops}}
"""


@pytest.mark.parametrize("seed", range(4))
def test_an_anchored_typo_is_named_where_the_anchor_is_written(write_study, seed):
    err = error_of(write_study, ANCHORED.replace("SEED", str(seed)))
    assert (err.key, err.line, err.got) == ("space.model.normal.n1.op1", 8, "sep_cnov_5x5")


def test_cells_with_different_nodes_are_named_by_their_nodes(write_study):
    err = _error(write_study, "{kind: cells, normal: {n1: {}, n5: {}}, reduce: {n1: {}}}")
    assert err.key == "space.model.normal" and "must have the same nodes" in err.rule
    assert "normal has n1, n5, reduce has n1" in err.rule and err.fix == "add n5 to reduce, or remove it from normal"
