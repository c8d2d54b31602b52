"""A choice of 8 and "8" (two choices to Optuna, one width to the task: the same config trained twice as often),
and a range whose ends are equal ({int: [8, 8]}: every trial trains 8, yet the "space searches nothing" check
only looked for searchable parameters) got past the space's checks; both are refused at their line."""
from __future__ import annotations

import pytest

from searchlab.config.yamlsrc import parse_yaml
from searchlab.errors import ConfigError
from searchlab.space.compile import compile_space
from searchlab.space.params import CategoricalParam, IntParam


def _compiled(text: str):
    return compile_space(parse_yaml(text, "study.yaml"), ("space",))


def _refusal(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _compiled(text)
    return info.value


@pytest.mark.parametrize("choices, number, text, place", [
    ("[8, '8']", 8, "'8'", "8 (choice 1) and '8' (choice 2)"),
    ("['8.0', 16, 8]", 8, "'8.0'", "8 (choice 3) and '8.0' (choice 1)"),
    ("[0.5, 1, ' 0.5 ']", 0.5, "' 0.5 '", "0.5 (choice 1) and ' 0.5 ' (choice 3)"),
])
def test_a_number_and_the_same_number_as_text_are_one_choice(choices, number, text, place):
    err = _refusal(f"space:\n  model:\n    width: {{choice: {choices}}}\n")
    assert err.line == 3 and err.key.startswith("space.model.width.choice[")
    assert "are the same number, once as text" in err.rule and place in err.rule
    assert err.fix == f"keep one of them: {number!r} for the number, or quote both to mean text"


def test_distinct_numbers_and_text_still_compile():
    space = _compiled("space:\n  width: {choice: [8, '16', 'relu', '8x', nan_text, .nan]}\n")
    assert isinstance(space.get("width"), CategoricalParam)


@pytest.mark.parametrize("written, kind, constant", [("{int: [8, 8]}", "int", "width: 8"),
                                                     ("{float: [0.5, 0.5], log: true}", "float", "width: 0.5")])
def test_a_range_of_one_value_is_refused_with_the_constant_to_write(written, kind, constant):
    err = _refusal(f"space:\n  model:\n    width: {written}\n")
    assert (err.line, err.key, err.got) == (3, f"space.model.width.{kind}", [float(constant[7:])] * 2)
    assert "holds one value, so it searches nothing" in err.rule
    assert err.fix == f"write the value as a constant ({constant}), or widen the range"


def test_a_range_of_two_values_still_compiles():
    assert isinstance(_compiled("space:\n  width: {int: [8, 9]}\n").get("width"), IntParam)


def test_a_study_with_a_one_value_range_is_refused_before_training(write_study):
    from searchlab.config.load import load_study

    text = ("name: s\ntask: classify\nbudget: {n_trials: 3, epochs: 1}\nspace:\n  model:\n"
            "    kind: plain_cnn\n    width: {int: [8, 8]}\n")
    with pytest.raises(ConfigError) as info:
        load_study(write_study(text))
    assert info.value.line == 7 and "searches nothing" in info.value.rule
