"""A non-finite number in the search space (.inf, .nan) got the fix "check this parameter's range or choices", or
for a nan beyond a bound "give a value <= 10.0" (nan is not above 10): it is now said to be no finite number, with
the fix to write a finite one (for a range, a finite low and high)."""
from __future__ import annotations

from pathlib import Path

import pytest

from searchlab.cli import parse_overrides
from searchlab.config.load import load_study
from searchlab.errors import ConfigError

STUDIES = Path(__file__).parents[1] / "studies"


def _refusal(study: str, setting: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_study(STUDIES / study, parse_overrides([setting]))
    return str(info.value)


@pytest.mark.parametrize("setting", ["space.gan.gp_weight=.inf", "space.gan.r1_gamma={choice: [.nan]}"])
def test_a_fixed_non_finite_value_is_said_to_be_no_finite_number(setting):
    said = _refusal("breastmnist_gan.yaml", setting)
    assert "is not a finite number" in said and "Fix: write a finite number in place of" in said
    assert "check this parameter's range or choices" not in said


@pytest.mark.parametrize("study, setting", [("breastmnist_gan.yaml", "space.gan.gp_weight={choice: [1.0, .nan]}"),
                                            ("quickstart.yaml", "space.optim.lr={choice: [0.1, .nan]}")])
def test_a_choice_holding_a_non_finite_value_says_which_and_to_write_a_finite_one(study, setting):
    said = _refusal(study, setting)
    assert "nan is not a finite number" in said and "remove nan (not a finite number), or write a finite" in said
    assert "<= 10" not in said   # nan broke no bound


def test_a_range_with_a_non_finite_end_asks_for_a_finite_low_and_high():
    said = _refusal("quickstart.yaml", "space.optim.lr={float: [1.0e-3, .inf]}")
    assert "bounds must be finite numbers" in said and "Fix: write a finite low and high" in said


def test_a_finite_value_outside_a_bound_keeps_the_bounds_fix():
    said = _refusal("quickstart.yaml", "space.optim.lr={choice: [0.1, 20.0]}")
    assert "remove 20.0 (give a value <= 10" in said


def test_an_infinite_step_is_said_to_be_not_finite_not_not_positive():
    said = _refusal("quickstart.yaml", "space.optim.lr={float: [1.0e-3, 1.0e-2], step: .inf}")
    assert "step must be a finite positive number" in said   # inf is positive: "a positive number" misled
