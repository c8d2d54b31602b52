"""Numbers YAML 1.1 reads otherwise than as written: `epochs: 010` trained 8 epochs (octal), `name: 0123` was
refused as "got 83", `08` stayed text and a number setting then read it as 8, and `timeout: 1:30` was 90 seconds
(base 60), all unsaid. Each is now refused at its line with the value as written and the fix; a `--set` value too."""
from __future__ import annotations

import pytest

from searchlab.cli import parse_overrides
from searchlab.config.yamlsrc import AmbiguousNumber, load_value, parse_yaml
from searchlab.errors import ConfigError
from test_config import error_of

MINIMAL = "name: s\ntask: classify\nspace:\n  optim: {lr: {float: [1.0e-4, 1.0e-2], log: true}}\n"


def _refusal(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_yaml(text, "study.yaml")
    return info.value


@pytest.mark.parametrize("text, key, got, read, fix", [
    ("budget: {epochs: 010}", "budget.epochs", "010", "octal, 8, not 10", "write 10 for the number"),
    ("name: 0123", "name", "0123", "octal, 83, not 123", "write 123 for the number"),
    ("budget: {epochs: 08}", "budget.epochs", "08", "keeps it text, which a number setting reads as 8",
     "write 8 for the number"),
    ("seed: -010", "seed", "-010", "octal, -8, not -10", "write -10 for the number"),
    ("x: !!int 010", "x", "010", "octal, 8, not 10", "write 10 for the number"),   # a tag by hand: octal too
])
def test_a_number_with_a_leading_zero_is_refused_with_its_decimal(text, key, got, read, fix):
    err = _refusal(text)
    assert (err.file, err.line, err.key, err.got) == ("study.yaml", 1, key, got)
    assert "a number with a leading zero is refused" in err.rule and read in err.rule
    assert fix in err.fix and f'quote it, "{got}", to mean the text' in err.fix


def test_each_choice_with_a_leading_zero_is_named_at_its_own_line():
    err = _refusal("space:\n  width:\n    choice:\n      - 16\n      - 016\n")
    assert (err.line, err.key, err.got) == (5, "space.width.choice[1]", "016")
    assert "octal, 14, not 16" in err.rule


@pytest.mark.parametrize("text, got, value", [("budget: {timeout: 1:30}", "1:30", "90"),
                                              ("budget: {timeout: 1:30.5}", "1:30.5", "90.5")])
def test_a_number_with_colons_is_refused_not_read_as_base_60(text, got, value):
    err = _refusal(text)
    assert (err.key, err.got) == ("budget.timeout", got)
    assert f"a number with colons is refused ({got} unquoted: YAML reads it as base 60, {value})" in err.rule
    assert f"write the number itself, e.g. {value} (seconds" in err.fix and f'quote it, "{got}"' in err.fix


@pytest.mark.parametrize("text, value", [
    ("x: 0", 0), ("x: 10", 10), ("x: '010'", "010"), ('x: "1:30"', "1:30"), ("x: !!str 010", "010"),
    # prefixed on purpose, each means what YAML reads; 0o is no YAML 1.1 prefix, so 0o10 stays text as written
    ("x: 0x10", 16), ("x: 0b101", 5), ("x: 0o10", "0o10"),
    ("x: 010.5", 10.5), ("x: 1_000", 1000), ("x: 1.0e-3", 0.001), ("x: 0:30", "0:30"),
])
def test_numbers_read_as_written_and_quoted_text_still_load(text, value):
    assert parse_yaml(text, "study.yaml").data == {"x": value}


def test_a_study_with_a_leading_zero_names_the_file_line_and_key(write_study):
    err = error_of(write_study, MINIMAL + "budget:\n  n_trials: 2\n  epochs: 010\n")
    assert err.file.endswith("study.yaml") and (err.line, err.key, err.got) == (7, "budget.epochs", "010")


@pytest.mark.parametrize("value, said", [("010", "octal, 8, not 10"), ("08", "reads as 8"),
                                         ("1:30", "base 60, 90"), ("{choice: [010, 016]}", "octal, 8, not 10")])
def test_a_set_value_gets_the_same_refusal(value, said):
    with pytest.raises(AmbiguousNumber) as info:
        parse_overrides([f"budget.epochs={value}"])
    assert said in info.value.rule and info.value.fix.startswith("write ")


def test_a_set_value_names_its_option_and_the_shell_quoting_when_given_the_key():
    with pytest.raises(AmbiguousNumber) as info:
        load_value("0123", key="name")
    err = info.value
    assert err.file == "--set name" and err.got == "0123"
    assert "write 123 for the number" in err.fix and "--set 'name=\"0123\"'" in err.fix


def test_a_quoted_set_value_is_the_text():
    assert parse_overrides(["name='0123'", "budget.epochs=10", "x=0x10"]) == {"name": "0123", "budget.epochs": 10,
                                                                              "x": 16}
