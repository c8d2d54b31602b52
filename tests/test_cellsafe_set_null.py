"""`--set KEY=null` removes KEY from the study, so its default applies: a `test_fraction` the file writes beside a
`--set data.split_column` was refused, and the error's fix ("leave data.test_fraction out") could not be followed
from the command line."""
from __future__ import annotations

import pytest

from searchlab.cli import _parser, parse_overrides
from searchlab.config.load import load_study
from searchlab.config.schema import BudgetConfig
from searchlab.errors import ConfigError
from searchlab.space import FixedParam

MINIMAL = "name: s\ntask: classify\nspace:\n  optim: {lr: {float: [1.0e-4, 1.0e-2], log: true}}\n"


def csv_study(write_study, tmp_path, extra: str = "") -> object:
    data = (f"data: {{source: csv, path: '{tmp_path / 'x.csv'}', image_column: file, label_columns: [y], "
            f"test_fraction: 0.2{extra}}}\n")
    return write_study(MINIMAL + data + f"run_dir: '{tmp_path / 'run'}'\n", with_defaults=False)


@pytest.mark.parametrize("options", [["data.split_column=split", "data.test_fraction=null"],
                                     ["data.test_fraction=null", "data.split_column=split"]])
def test_null_removes_a_written_key_whatever_the_order_of_the_options(write_study, tmp_path, options):
    study = load_study(csv_study(write_study, tmp_path), parse_overrides(options))
    assert study.config.data.split_column == "split"
    assert "test_fraction" not in study.config.data.model_fields_set


def test_null_gives_a_written_setting_its_default(write_study):
    study = load_study(write_study(MINIMAL + "budget: {n_trials: 2, epochs: 3}\n"), {"budget.epochs": None})
    assert study.config.budget.epochs == BudgetConfig().epochs != 3 and study.config.budget.n_trials == 2


def test_null_for_a_key_the_study_does_not_write_is_accepted_as_nothing_to_remove(write_study):
    study = load_study(write_study(MINIMAL), {"budget.epochs": None, "executor.address": None})
    assert study.config.budget.epochs == BudgetConfig().epochs and "executor" not in study.config.model_fields_set


def test_null_for_a_misspelt_key_is_refused_as_unknown_not_silently_accepted(write_study):
    path = write_study(MINIMAL)
    with pytest.raises(ConfigError) as info:
        load_study(path, {"budget.epoks": None})
    err = info.value
    assert err.file == f"{path} (--set budget.epoks)" and err.key == "budget.epoks" and "epochs" in err.fix
    with pytest.raises(ConfigError, match=r"\(--set budjet.epochs\): budjet: unknown key"):
        load_study(path, {"budjet.epochs": None})


def test_null_inside_a_set_mapping_is_told_the_option_that_removes_it(write_study):
    path = write_study(MINIMAL)
    with pytest.raises(ConfigError) as info:
        load_study(path, {"budget": {"n_trials": 2, "epochs": None}})
    err = info.value
    assert err.file == f"{path} (--set budget)" and err.key == "budget.epochs"
    assert err.fix.endswith("--set budget.epochs=null removes it")
    study = load_study(path, {"budget": {"n_trials": 2, "epochs": None}, "budget.epochs": None})
    assert study.config.budget.epochs == BudgetConfig().epochs


def test_null_removes_a_space_key_the_study_writes_and_the_included_value_applies(write_study):
    text = "name: s\ntask: classify\nspace:\n  model: {include: plain_cnn.yaml, depth: 3}\n"
    written = load_study(write_study(text)).space.get("model").get("depth")
    assert isinstance(written, FixedParam) and written.value == 3
    removed = load_study(write_study(text), {"space.model.depth": None}).space.get("model").get("depth")
    assert not (isinstance(removed, FixedParam) and removed.value == 3)


def test_the_help_of_set_says_null_removes_a_key():
    run = _parser()._subparsers._group_actions[0].choices["run"]
    assert "KEY=null removes KEY from the study, so its default applies" in " ".join(run.format_help().split())
