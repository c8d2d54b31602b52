"""A fixed value or a choice of `cells` or `reductions` past its own limit gets one error whose fix also keeps
reductions within cells, the other setting as written (fixed, choice, range or left to its default): `reductions: 9`
with `cells: 3` was told "give a value <= 4", and 4 was then refused for exceeding cells (a two-step error)."""
from __future__ import annotations

import pytest

from searchlab.config.load import load_study
from test_config import error_of

# channels searched: a space that searches nothing is refused for its n_trials
STUDY = ("name: s\ntask: classify\nspace:\n"
         "  model: {kind: cells, channels: {choice: [8, 12]}, CHANGE, normal: {n1: {}}, reduce: {n1: {}}}\n")


def _study(write_study, change: str):
    return write_study(STUDY.replace("CHANGE", change))


@pytest.mark.parametrize("change, key, fix, fixed", [
    # a fixed value, the other fixed, searched, or a choice
    ("cells: 3, reductions: 9", "space.model.reductions", "give a value <= 3 (cells are 3, and reductions cannot "
     "exceed cells)", "cells: 3, reductions: 3"),
    ("cells: {int: [2, 6]}, reductions: 9", "space.model.reductions", "give a value <= 2 (cells go down to 2",
     "cells: {int: [2, 6]}, reductions: 2"),
    ("cells: 0, reductions: 2", "space.model.cells", "give a value >= 2 (reductions are 2, and cannot exceed cells)",
     "cells: 2, reductions: 2"),
    ("cells: 0, reductions: {choice: [1, 3]}", "space.model.cells", "give a value >= 3 (reductions reach 3",
     "cells: 3, reductions: {choice: [1, 3]}"),
    ("cells: 30, reductions: 3", "space.model.cells", "give a value from 3 to 20 (reductions are 3",
     "cells: 3, reductions: 3"),
    # the other left out: its default (reductions 2) counts
    ("cells: 0", "space.model.cells", "give a value >= 2 (reductions are 2 by default", "cells: 2"),
    # a choice, the other fixed or searched
    ("cells: 3, reductions: {choice: [1, 3, 4, 9]}", "space.model.reductions",
     "search reductions: {choice: [1, 3]} (cells are 3", "cells: 3, reductions: {choice: [1, 3]}"),
    ("cells: {int: [1, 2]}, reductions: {choice: [1, 9]}", "space.model.reductions",
     "write reductions: 1", "cells: {int: [1, 2]}, reductions: 1"),
    ("cells: {choice: [0, 1, 3]}, reductions: {int: [1, 2]}", "space.model.cells", "write cells: 3 "
     "(reductions reach 2", "cells: 3, reductions: {int: [1, 2]}"),
    ("cells: 2, reductions: {choice: [7, 9]}", "space.model.reductions", "replace 7, 9 with values <= 2 (cells are 2",
     "cells: 2, reductions: {choice: [1, 2]}"),
])
def test_a_value_past_its_own_limit_gets_a_fix_that_also_keeps_reductions_within_cells(write_study, change, key,
                                                                                       fix, fixed):
    err = error_of(write_study, STUDY.replace("CHANGE", change))
    assert err.key == key and fix in err.fix, err.fix
    load_study(_study(write_study, fixed))   # the fix applied: no second error


@pytest.mark.parametrize("change, fix", [
    # no choice within its own limits fits: the choice's fix, then what to change in the other setting
    ("cells: 2, reductions: {choice: [3, 9]}", "write reductions: 3, and then set cells to at least "
     "reductions' most (cells are 2)"),
    ("cells: {choice: [0, 1]}, reductions: 2", "write cells: 1, and then keep reductions at most "
     "cells' least (they are 2)"),
])
def test_a_choice_none_of_whose_members_fits_says_what_to_change_in_the_other_setting(write_study, change, fix):
    assert fix in error_of(write_study, STUDY.replace("CHANGE", change)).fix


def test_a_fixed_value_the_other_setting_leaves_free_keeps_its_own_fix(write_study):
    err = error_of(write_study, STUDY.replace("CHANGE", "reductions: 9"))   # cells default to 5
    assert err.fix == "give a value <= 4"
