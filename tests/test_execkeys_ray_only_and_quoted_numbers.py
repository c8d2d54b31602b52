"""Two settings the study file took without a word.

- A Ray setting under the local executor: `executor: {kind: local, address: "10.0.0.5:6379"}` (or max_concurrent,
  resources_per_trial) ran every trial on this machine's CPU; only `scheduler` was refused. A user who forgot
  `kind: ray` is now told so, by key.
- A number written as text: pydantic's lax mode read `workers: "2"` as 2. Text where only a number is wanted is
  refused with "write 2 without quotes"; fields that take text too ("auto", a path, a class name) are not.
"""
from __future__ import annotations

import pytest

from searchlab.cli import parse_overrides
from searchlab.config.load import load_study
from searchlab.config.schema import ExecutorConfig
from searchlab.errors import ConfigError
from test_config import MINIMAL, error_of

RAY_ONLY = [("address", '"10.0.0.5:6379"', "10.0.0.5:6379"), ("max_concurrent", "3", 3),
            ("resources_per_trial", "{cpu: 2, gpu: 1}", ...), ("scheduler", "asha", "asha")]


@pytest.mark.parametrize("kind", ["kind: local, ", ""])   # written, or the default
@pytest.mark.parametrize("key, value, got", RAY_ONLY)
def test_a_ray_setting_under_the_local_executor_is_refused_by_name(write_study, kind, key, value, got):
    err = error_of(write_study, MINIMAL + f"executor: {{{kind}{key}: {value}}}\n")
    assert err.key == f"executor.{key}" and err.line == 5 and err.got == got
    assert f"executor.{key} is a Ray setting and needs kind: ray (kind local never reads it)" in err.rule
    assert err.fix.startswith(f"executor.kind: ray, or remove {key}")


def test_the_audit_case_of_several_ray_settings_is_refused(write_study):
    err = error_of(write_study, MINIMAL + "executor: {kind: local, max_concurrent: 3, resources_per_trial: "
                                          "{cpu: 2, gpu: 1}}\n")
    assert err.key in ("executor.max_concurrent", "executor.resources_per_trial") and "needs kind: ray" in err.rule


def test_a_ray_study_run_locally_from_the_command_line_is_told_which_key_to_remove(write_study):
    path = write_study(MINIMAL + "executor: {kind: ray, address: auto, max_concurrent: 2}\n")
    with pytest.raises(ConfigError, match=r"executor.address is a Ray setting .* Fix: executor.kind: ray, or remove "
                                        r"address"):
        load_study(path, parse_overrides(["executor.kind=local"]))
    options = ["executor.kind=local", "executor.address=null", "executor.max_concurrent=null"]
    assert load_study(path, parse_overrides(options)).config.executor.kind == "local"


def test_null_ray_settings_and_empty_resources_under_local_are_the_defaults_and_load(write_study):
    text = MINIMAL + "executor: {kind: local, address: null, max_concurrent: null, resources_per_trial: {}}\n"
    executor = load_study(write_study(text)).config.executor
    assert executor.kind == "local" and executor.address is None and executor.max_concurrent is None


def test_ray_settings_and_the_local_ones_ray_reads_load_under_kind_ray():
    executor = ExecutorConfig.model_validate({   # the schema alone: a Ray study's load imports ray (seconds)
        "kind": "ray", "address": "auto", "max_concurrent": 2, "resources_per_trial": {"cpu": 2},
        "threads_per_worker": 2, "device": "cpu", "max_retries": 1, "scheduler": "asha"})
    assert (executor.address, executor.max_concurrent, executor.resources_per_trial.cpu) == ("auto", 2, 2.0)
    assert executor.scheduler.kind == "asha" and executor.ray_threads == 2   # the shorthand still names the kind


@pytest.mark.parametrize("section, value, key", [
    ("executor: {workers: VALUE}", '"2"', "executor.workers"), ("budget: {n_trials: VALUE}", "'2'", "budget.n_trials"),
    ("budget: {timeout: VALUE}", '" 2 "', "budget.timeout"), ("seed: VALUE", '"2"', "seed"),
    ("export: {top_k: VALUE}", '"2"', "export.top_k"),
    ("executor: {kind: ray, resources_per_trial: {cpu: VALUE}}", '"2"', "executor.resources_per_trial.cpu"),
    ("data: {source: csv, path: x.csv, image_size: VALUE}", '"2"', "data.image_size"),
])
def test_a_quoted_number_is_refused_with_the_unquoted_fix(write_study, section, value, key):
    err = error_of(write_study, MINIMAL + section.replace("VALUE", value) + "\n")
    assert err.key == key and err.got.strip() == "2" and err.fix == "write 2 without quotes"
    assert "not the text" in err.rule and "quoted, so YAML keeps it text" in err.rule


def test_a_quoted_number_for_a_choice_of_numbers_is_told_the_unquoted_fix(write_study):
    err = error_of(write_study, MINIMAL + "data: {source: csv, path: x.csv, channels: '3'}\n")
    assert err.key == "data.channels" and err.rule.startswith('a whole number, not the text "3"')
    assert err.fix == "write 3 without quotes"
    err = error_of(write_study, MINIMAL + "budget: {timeout: '1e3'}\n")
    assert err.rule.startswith('a number, not the text "1e3"') and err.fix == "write 1e3 without quotes"


def test_a_quoted_number_from_the_command_line_is_refused_and_an_unquoted_one_loads(write_study):
    path = write_study(MINIMAL)
    err = error_of(write_study, MINIMAL, parse_overrides(['executor.workers="2"']))
    assert err.file == f"{path} (--set executor.workers)" and err.fix == "write 2 without quotes"
    budget = load_study(path, parse_overrides(["budget.n_trials=5", "budget.timeout=1e3"])).config.budget
    assert (budget.n_trials, budget.timeout) == (5, 1000.0)


def test_text_that_is_no_number_keeps_pydantic_s_own_fix(write_study):
    err = error_of(write_study, MINIMAL + "budget: {timeout: 4m}\n")
    assert err.fix == "give a number of seconds, e.g. 240 for 4 minutes"


def test_text_where_a_field_takes_text_still_loads(write_study, tmp_path):
    text = MINIMAL + ("executor: {device: 'cpu'}\nrun_dir: '2'\nstorage: 'sqlite:///3.db'\nexport: {dir: '7'}\n"
                      "data: {source: csv, path: '4', image_column: '5', label_columns: '6', positive_class: '1'}\n")
    config = load_study(write_study(text)).config
    assert config.data.positive_class == "1" and config.data.label_columns == ("6",)   # a class named "1"
    assert config.executor.device == "cpu" and str(config.run_dir) == "2" and config.storage == "sqlite:///3.db"
    address = ExecutorConfig.model_validate({"kind": "ray", "address": "127.0.0.1:6379"}).address
    assert address == "127.0.0.1:6379"


def test_an_empty_objective_list_is_still_refused(write_study):
    err = error_of(write_study, MINIMAL + "objective: []\n")
    assert err.key == "objective" and err.fix == "e.g. objective: auc"
