"""A YAML boolean (yes/no/true/false/on/off, unquoted) where the study wants a class, a number or text: the
positive class got pydantic's union wording (a valid string ... also a valid integer), and a number field read
`true` as 1 without a word (`n_trials: yes` ran one trial, `timeout: on` stopped the search after a second)."""
from __future__ import annotations

import pytest

from searchlab.cli import parse_overrides
from searchlab.config.load import load_study
from test_config import error_of

MINIMAL = "name: s\ntask: classify\nspace:\n  optim: {lr: {float: [1.0e-4, 1.0e-2], log: true}}\n"
DATA = {"medmnist": "{source: medmnist, name: breastmnist, download: false, positive_class: VALUE}",
        "folder": "{source: folder, path: imgs, positive_class: VALUE}",
        "csv": "{source: csv, path: labels.csv, positive_class: VALUE}"}


def study_text(source: str, value: str) -> str:
    return MINIMAL + f"data: {DATA[source].replace('VALUE', value)}\n"


@pytest.mark.parametrize("source", sorted(DATA))
def test_a_boolean_positive_class_gets_one_message_with_the_quoted_fix(write_study, source):
    err = error_of(write_study, study_text(source, "true"))
    assert err.key == "data.positive_class" and err.line == 5 and err.got is True
    assert "a class name as text, or a class index as a whole number" in err.rule
    assert "yes/no/true/false/on/off" in err.rule
    assert 'quote the word as written, e.g. positive_class: "true"' in err.fix and "class name or index" in err.fix
    assert "Input should be" not in str(err) and "also:" not in str(err)   # pydantic's union members, once each


def test_a_positive_class_of_another_type_is_said_once(write_study):
    err = error_of(write_study, study_text("medmnist", "1.5"))
    assert err.key == "data.positive_class" and err.got == 1.5 and "Input should be" not in str(err)
    assert err.rule == "a class name as text, or a class index as a whole number"


def test_a_boolean_positive_class_set_on_the_command_line_is_told_the_quoting_there(write_study):
    err = error_of(write_study, study_text("medmnist", "1"), parse_overrides(["data.positive_class=no"]))
    assert err.file.endswith("(--set data.positive_class)") and err.got is False
    assert "--set 'data.positive_class=\"false\"'" in err.fix


@pytest.mark.parametrize("value, expected", [('"true"', "true"), ("malignant", "malignant"), ("1", 1)])
def test_a_quoted_name_or_an_index_still_loads(write_study, value, expected):
    assert load_study(write_study(study_text("medmnist", value))).config.data.positive_class == expected


@pytest.mark.parametrize("section, key, value, wanted", [
    ("budget", "n_trials", "yes", "a whole number"), ("budget", "timeout", "on", "a number"),
    ("executor", "workers", "true", "a whole number"), ("export", "top_k", "yes", "a whole number"),
])
def test_a_boolean_for_a_number_is_refused_not_read_as_1(write_study, section, key, value, wanted):
    err = error_of(write_study, MINIMAL + f"{section}: {{{key}: {value}}}\n")
    assert err.key == f"{section}.{key}" and err.got is True
    assert err.rule.startswith(f"{wanted}, not true") and "yes/no/true/false/on/off" in err.rule


def test_a_boolean_seed_and_image_settings_are_refused_with_an_example(write_study):
    err = error_of(write_study, MINIMAL + "seed: yes\n")
    assert err.key == "seed" and err.fix == "write a whole number, e.g. seed: 0"
    err = error_of(write_study, MINIMAL + "data: {source: csv, path: labels.csv, channels: true}\n")
    assert err.key == "data.channels" and "e.g. channels: 1" in err.fix


def test_a_boolean_for_text_is_told_to_quote_it(write_study):
    err = error_of(write_study, MINIMAL + "data: {source: csv, path: labels.csv, split_column: no}\n")
    assert err.key == "data.split_column" and err.got is False
    assert err.rule.startswith("text, not false") and 'split_column: "false"' in err.fix


def test_booleans_where_a_boolean_is_meant_still_load(write_study):
    study = load_study(write_study(MINIMAL + "export: {after_run: yes}\n"))   # data: ... download: false
    assert study.config.export.after_run is True and study.config.data.download is False
