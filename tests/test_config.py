"""The study file boundary: valid files load into typed objects; every mistake is one clear message."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from searchlab.config.load import load_study
from searchlab.config.schema import BudgetConfig, MedMNISTData
from searchlab.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
MINIMAL = "name: s\ntask: classify\nspace:\n  optim: {lr: {float: [1.0e-4, 1.0e-2], log: true}}\n"


def error_of(write_study, text: str, overrides: dict | None = None, **kw) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_study(write_study(text, **kw), overrides)
    return info.value


def test_quickstart_loads_into_typed_frozen_objects():
    study = load_study(REPO / "studies" / "quickstart.yaml")
    assert isinstance(study.config.data, MedMNISTData) and study.config.data.name == "breastmnist"
    assert isinstance(study.config.budget, BudgetConfig)
    assert study.objectives == (("auc", "maximize"),)
    with pytest.raises(Exception):
        study.config.budget.n_trials = 3   # frozen


def test_defaults_are_filled_in(write_study):
    study = load_study(write_study(MINIMAL))
    assert study.config.budget.n_trials == BudgetConfig().n_trials
    assert study.config.strategy.name == "tpe"
    assert study.storage_url.endswith("run/study.db")


def test_relative_paths_are_made_absolute_when_loaded(write_study, tmp_path, monkeypatch):
    """Ray runs each trial in a working folder of its own: a relative path there named another, empty
    study.db (every trial failed with "Record does not exist")."""
    monkeypatch.chdir(tmp_path)
    here = Path.cwd()
    cases = {"sqlite:///s.db": f"sqlite:///{here / 's.db'}", "journal://j/s.log": f"journal://{here / 'j/s.log'}",
             "sqlite:////abs/s.db": "sqlite:////abs/s.db", "journal:///tmp/s.log": "journal:///tmp/s.log",
             "postgresql://u@127.0.0.1/db": "postgresql://u@127.0.0.1/db",
             "sqlite:///~/s.db": f"sqlite:///{Path.home() / 's.db'}"}   # as a shell would, not a folder "~"
    for given, expected in cases.items():
        assert load_study(write_study(MINIMAL + f"storage: '{given}'\n")).storage_url == expected
    study = load_study(write_study(MINIMAL + "run_dir: runs/s\n"))
    assert study.run_dir == here / "runs" / "s" and study.storage_url == f"sqlite:///{here / 'runs/s/study.db'}"


def test_malformed_yaml_names_file_and_line(write_study):
    err = error_of(write_study, "name: s\nbudget: {n_trials: 3\nseed: 1\n", with_defaults=False)
    assert "malformed YAML" in str(err) and err.file.endswith("study.yaml") and err.line == 3


def test_a_merge_key_is_refused_as_such_and_an_alias_of_a_whole_value_is_read(write_study):
    """An unquoted `<<` said "value cannot be read (could not determine a constructor ...). Fix: write a number
    of normal size, or quote it to make it text"."""
    err = error_of(write_study, MINIMAL + "budget: &b {n_trials: 2}\nexport: {<<: *b}\n")
    assert err.line == 6 and "merge keys ('<<') are not supported" in err.rule and "write the keys out" in err.fix
    assert "constructor" not in str(err) and "number" not in str(err)
    aliased = "name: s\ntask: classify\nspace:\n  optim: {lr: &r {float: [1.0e-4, 1.0e-2]}, weight_decay: *r}\n"
    assert load_study(write_study(aliased)).space.get("optim").get("weight_decay").high == 1.0e-2


def test_unknown_key_names_line_path_and_valid_keys(write_study):
    err = error_of(write_study, MINIMAL + "budget:\n  n_trails: 5\n")
    text = str(err)
    assert err.line == 6 and "budget.n_trails" in text and "unknown key" in text
    assert "Fix: did you mean n_trials? Valid keys here: " in text   # the closest first, then all


def test_unknown_top_level_section(write_study):
    err = error_of(write_study, MINIMAL + "strategey: tpe\n")
    assert "strategey" in str(err) and "strategy" in str(err) and err.line == 5


def test_a_bound_and_an_empty_value_get_fixes_that_say_what_to_write(write_study, tmp_path):
    err = error_of(write_study, MINIMAL + "budget: {n_trials: 2, epochs: 0}\n")
    assert str(err).endswith("(got 0). Fix: give a value >= 1")
    folder = f"data: {{source: folder, path: '{tmp_path}', val_fraction: }}\n"   # no union tag in the key
    err = error_of(write_study, MINIMAL + folder)
    assert str(err).endswith("(got None). Fix: give a value, or leave data.val_fraction out for its default")


def test_wrong_type_names_value(write_study):
    err = error_of(write_study, MINIMAL + "budget: {n_trials: ten}\n")
    assert "budget.n_trials" in str(err) and "'ten'" in str(err)


def test_out_of_range_budget(write_study):
    err = error_of(write_study, MINIMAL + "budget: {n_trials: 0}\n")
    assert "greater than or equal to 1" in str(err) and "(got 0)" in str(err)


def test_space_low_above_high(write_study):
    err = error_of(write_study, "name: s\nspace:\n  optim:\n    lr: {float: [0.1, 0.01]}\n")
    assert err.line == 4 and "space.optim.lr.float" in str(err) and "low must be <= high" in str(err)
    assert "[0.01, 0.1]" in str(err)   # the fix


def test_unknown_strategy_lists_valid_ones(write_study):
    err = error_of(write_study, MINIMAL + "strategy: annealing\n")
    assert "unknown strategy 'annealing'" in str(err) and "random" in str(err) and "tpe" in str(err)
    assert err.line == 5


def test_unknown_model_suggests_close_names(write_study):
    err = error_of(write_study, "name: s\nspace:\n  model: {kind: timm, backbone: {choice: [resnet18, resnet19]}}\n")
    assert "resnet19" in str(err) and "did you mean" in str(err) and "space.model" in str(err)


def test_unknown_classify_setting_in_space(write_study):
    err = error_of(write_study, "name: s\nspace:\n  optim: {learning_rate: 0.1}\n")
    assert "learning_rate" in str(err) and "no such setting" in str(err) and "settings here: " in str(err)
    assert "momentum, name, schedule, weight_decay" in str(err)
    err = error_of(write_study, "name: s\nspace:\n  model: {depth: {int: [2, 6]}}\n")
    assert str(err).endswith("space.model: names no kind: it selects which settings the section takes. Fix: add "
                             "kind: one of cnn, timm, rnn, zen, cells, nni (e.g. kind: cnn)")


@pytest.mark.parametrize("space,suggested", [
    ("model: {kind: cnn, dept: 3}", "did you mean depth?"),                          # inside a model kind
    ("augment: {polcy: flip_rotate}", "did you mean policy?"),
    ("model: {kind: timm, backbone: efficientnet_bo}", "did you mean efficientnet_b0,"),   # o for 0 first
    ("model: {kind: timm, backbone: mobilenetv3}", "it names a family; its models include mobilenetv3_large_075"),
])
def test_misspelt_settings_and_names_suggest_the_right_one_first(write_study, space, suggested):
    assert suggested in str(error_of(write_study, f"name: s\nspace:\n  {space}\n"))


def test_unknown_metric_lists_valid(write_study):
    err = error_of(write_study, MINIMAL + "objective: acc\n")
    assert "unknown metric 'acc'" in str(err) and "accuracy" in str(err) and "flops" in str(err)
    assert str(error_of(write_study, MINIMAL + "objective: AUC\n")).endswith("Fix: did you mean auc?")
    # one metric is `objective`, not `objective[0]`, which the study has not; a list's own are numbered
    assert error_of(write_study, MINIMAL + "objective: {metric: acc}\n").key == "objective"
    assert error_of(write_study, MINIMAL + "objective: [auc, acc]\n").key == "objective[1]"


def test_medmnists_size_under_a_folder_suggests_image_size(write_study, tmp_path):
    """difflib scores size / image_size below its cutoff: the fix listed every key without a suggestion."""
    err = error_of(write_study, MINIMAL + f"data: {{source: folder, path: '{tmp_path}', size: 64}}\n")
    assert "data.size: unknown key" in str(err) and "did you mean image_size?" in str(err)


def test_a_timeout_with_a_unit_is_told_to_be_seconds(write_study):
    err = error_of(write_study, MINIMAL + "budget: {timeout: 4m}\n")
    assert "budget.timeout" in str(err) and str(err).endswith("Fix: give a number of seconds, e.g. 240 for 4 minutes")


def test_an_objective_against_its_metrics_direction_is_refused(write_study):
    err = error_of(write_study, MINIMAL + "objective: {metric: accuracy, direction: minimize}\n")
    assert "metric 'accuracy' is better when higher, and this objective asks to minimize it" in str(err)
    assert err.key.startswith("objective") and "drop direction" in str(err)
    assert load_study(write_study(MINIMAL + "objective: {metric: accuracy, direction: maximize}\n")).objectives == \
        (("accuracy", "maximize"),)
    err = error_of(write_study, MINIMAL + "objective: [auc, {metric: flops, direction: maximize}]\n")
    assert "metric 'flops' is better when lower, and this objective asks to maximize it" in str(err)


def test_multi_objective_with_cost(write_study):
    study = load_study(write_study(MINIMAL + "objective: [auc, flops]\n"))
    assert study.objectives == (("auc", "maximize"), ("flops", "minimize"))


def test_a_setting_the_task_lacks_in_an_included_fragment_is_named_at_the_fragments_line(write_study, tmp_path):
    """A typo in the user's own fragment was reported at the study's include line, with the range's low end as
    what was written: "bf.yaml:3: space.optim.lrr: the classify task has no such setting (got 0.0001)"."""
    (tmp_path / "own").mkdir()
    (tmp_path / "own" / "badfrag.yaml").write_text("# my optimiser\noptim: {lrr: {float: [1e-4, 1e-2], log: true}}\n")
    (tmp_path / "own" / "branch.yaml").write_text("model:\n  one_of:\n    cnn: {depht: 3}\n")
    err = error_of(write_study, "name: s\ntask: classify\nspace:\n  include: own/badfrag.yaml\n", name="bf.yaml")
    assert (err.file, err.line, err.key, err.got) == (str(tmp_path / "own" / "badfrag.yaml"), 2, "optim.lrr", "lrr")
    assert "the classify task has no such setting" in err.rule and "did you mean lr?" in err.fix
    err = error_of(write_study, "name: s\ntask: classify\nspace:\n  model: {include: 'own/branch.yaml#model'}\n")
    assert (err.file, err.line, err.key) == (str(tmp_path / "own" / "branch.yaml"), 3, "model.one_of.cnn.depht")
    # written beside the include, in the study file: named there
    (tmp_path / "own" / "good.yaml").write_text("optim: {lr: {float: [1e-4, 1e-2], log: true}}\n")
    err = error_of(write_study, "name: s\ntask: classify\nspace:\n  include: own/good.yaml\n  optim: {lrrr: 3}\n")
    assert (Path(err.file).name, err.line, err.key, err.got) == ("study.yaml", 5, "space.optim.lrrr", "lrrr")


def test_a_rule_broken_in_one_option_is_named_at_that_options_line_not_at_another_sharing_the_key(write_study,
                                                                                                   tmp_path):
    """Options sharing a key (the shipped GAN space's YAML anchors) each wrote `gan.latent`, and an error was
    named at the last option's line: `--set space.gan.dcgan.latent=4` was blamed on stylegan2's line of gan.yaml,
    with no word of the --set."""
    gan = "name: s\ntask: generate\nspace: {include: gan.yaml}\n"
    err = error_of(write_study, gan, {"space.gan.dcgan.latent": 4})
    assert (err.file, err.key, err.got) == (str(tmp_path / "study.yaml (--set space.gan.dcgan.latent)"),
                                            "space.gan.dcgan.latent", 4)
    err = error_of(write_study, gan, {"space.gan.latent": 4})   # onto every option: the option named as written
    assert (err.file, err.key) == (str(tmp_path / "study.yaml (--set space.gan.latent)"), "space.gan.latent")

    options = "gan:\n  one_of:\n    dcgan: {latent: {choice: [32, 4]}}\n    stylegan2: {latent: 64}\n  key: family\n"
    (tmp_path / "own.yaml").write_text(options)
    err = error_of(write_study, "name: s\ntask: generate\nspace: {include: own.yaml}\n")
    assert (err.file, err.line, err.key) == (str(tmp_path / "own.yaml"), 3, "gan.one_of.dcgan.latent")
    assert "the space searches [32, 4]" in err.fix   # the option's own parameter, found by its name
    inline = "name: s\ntask: generate\nspace:\n" + "".join(f"  {line}\n" for line in options.splitlines())
    err = error_of(write_study, inline)
    assert (err.line, err.key) == (6, "space.gan.one_of.dcgan.latent")
    cnn = "name: s\ntask: classify\nspace:\n  model:\n    one_of: {rnn: {}, cnn: {depth: {int: [0, 3]}}}\n"
    err = error_of(write_study, cnn)   # a model option: pydantic's union tag, not a key of the config
    assert (err.line, err.key) == (5, "space.model.one_of.cnn.depth") and "for 'model.cnn.depth'" in err.fix


def test_missing_include_says_where_it_looked(write_study):
    err = error_of(write_study, "name: s\nspace:\n  include: nowhere.yaml\n")
    assert "included file not found" in str(err) and "nowhere.yaml" in str(err) and "looked in" in str(err)


def test_missing_study_file():
    with pytest.raises(ConfigError, match="file not found"):
        load_study("/nonexistent/study.yaml")


def test_a_folder_or_unreadable_study_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="is a folder, not a study file"):
        load_study(tmp_path)
    a_file = tmp_path / "study.yaml"
    a_file.write_text("name: s\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_study(a_file / "inside.yaml")


def test_command_line_overrides_reach_the_space_and_the_sections(write_study):
    from searchlab.space import probe_configs

    path = write_study(MINIMAL + "budget: {n_trials: 4}\n")
    study = load_study(path, {"space.optim.lr": 5.0e-4, "space.train.batch_size": 16, "budget.n_trials": 1})
    assert study.config.budget.n_trials == 1
    assert {(c["optim"]["lr"], c["train"]["batch_size"]) for c in probe_configs(study.space)} == {(5.0e-4, 16)}
    err = error_of(write_study, MINIMAL, overrides={"name.x": 3})
    assert "--set name.x: 'name' is a value" in str(err) and "--set name=" in str(err)
    err = error_of(write_study, MINIMAL, overrides={"space.optim.lr": 50})
    assert "space.optim.lr" in str(err) and "50" in str(err)


def test_data_section_discriminated_by_source(write_study):
    err = error_of(write_study, MINIMAL + "data: {source: folder}\n")
    assert "data.path" in str(err) and "missing" in str(err)


def test_bad_pruner_argument(write_study):
    err = error_of(write_study, MINIMAL + "pruner: {kind: median, args: {n_warmup: 3}}\n")
    assert "pruner" in str(err) and "n_warmup" in str(err)


def test_cli_prints_one_message_and_exits_2(write_study):
    path = write_study(MINIMAL + "budget: {n_trials: -1}\n")
    proc = subprocess.run([sys.executable, "-m", "searchlab.cli", "run", str(path)], capture_output=True, text=True,
                          cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr and "budget.n_trials" in proc.stderr
    debug = subprocess.run([sys.executable, "-m", "searchlab.cli", "--debug", "run", str(path)], capture_output=True,
                           text=True, cwd=REPO)
    assert "Traceback" in debug.stderr


def test_every_shipped_space_fragment_compiles_and_fits_the_classify_task(write_study):
    text = ("name: s\ntask: classify\nspace:\n  include: optim.yaml\n  model: {include: models.yaml}\n"
            "  augment: {include: augmentation.yaml}\n  imbalance: {include: imbalance.yaml}\n")
    study = load_study(write_study(text))
    names = {p.name for p, _ in __import__("searchlab.space", fromlist=["x"]).searchable_params(study.space)}
    assert {"optim.lr", "model.kind", "model.cnn.depth", "model.timm.backbone", "augment.policy",
            "augment.sub_policies.s1.op", "imbalance.loss"} <= names


def test_every_shipped_study_and_preset_loads():
    for path in sorted((REPO / "studies").glob("*.yaml")):
        load_study(path)
    from searchlab.strategy import REPO_STRATEGIES, build_sampler
    from searchlab.config.schema import StrategyConfig

    for preset in sorted(REPO_STRATEGIES.glob("*.yaml")):
        build_sampler(StrategyConfig(preset=preset.stem), 0)


def test_the_classifier_space_covers_models_training_augmentation_and_imbalance(write_study):
    from searchlab.space import probe_configs, searchable_params

    study = load_study(write_study("name: s\ntask: classify\nspace: {include: classifier.yaml, train: {repeats: 2}}\n"))
    names = {p.name for p, _ in searchable_params(study.space)}
    assert {"optim.lr", "model.kind", "model.cnn.depth", "model.rnn.cell", "model.timm.backbone", "train.patch_epochs",
            "train.patch_size", "augment.policy", "augment.neural", "augment.mix", "imbalance.loss",
            "imbalance.threshold"} <= names
    config = next(probe_configs(study.space))
    assert config["train"]["repeats"] == 2 and "batch_size" in config["train"]   # overrides merge into the include


@pytest.mark.parametrize("name", ["a/b", "..", ".", "a b"])
def test_a_study_name_is_one_plain_folder_name(write_study, name):
    err = error_of(write_study, MINIMAL.replace("name: s", f"name: '{name}'"))
    assert err.key == "name" and "not dots alone" in str(err)
    assert load_study(write_study(MINIMAL.replace("name: s", "name: v1.2_b-3"))).config.name == "v1.2_b-3"


def test_a_space_that_searches_nothing_trains_once(write_study):
    fixed = "name: s\ntask: classify\nspace:\n  model: {kind: cnn, depth: 1}\n"
    err = error_of(write_study, fixed + "budget: {n_trials: 3}\n")
    assert err.key == "budget.n_trials" and "same result" in str(err) and "train.repeats" in str(err)
    assert load_study(write_study(fixed + "budget: {n_trials: 1}\n")).config.budget.n_trials == 1


def test_the_ray_executor_without_ray_installed_is_a_config_error(write_study, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    err = error_of(write_study, MINIMAL + "executor: {kind: ray}\n")
    assert err.key == "executor.kind" and "pip install 'searchlab[ray]'" in str(err)


def test_a_bad_value_from_the_command_line_is_named_as_the_option_not_a_line_of_the_file(write_study):
    path = write_study(MINIMAL + "budget:\n  epochs: 3\n")
    with pytest.raises(ConfigError) as info:
        load_study(path, {"budget.epochs": "two"})
    assert str(info.value).startswith(f"{path} (--set budget.epochs): budget.epochs: ") and info.value.line is None
    with pytest.raises(ConfigError, match=r"\(--set space.optim.l_r\): space.optim.l_r: .*did you mean lr\?"):
        load_study(path, {"space.optim.l_r": 0.1})
    with pytest.raises(ConfigError) as info:   # a key of the file keeps its line
        load_study(write_study(MINIMAL + "budget:\n  epochs: two\n"), {"budget.n_trials": 3})
    assert info.value.line == 6
    with pytest.raises(ConfigError) as info:   # a section only the option wrote: its typo is the option's
        load_study(path := write_study(MINIMAL), {"budjet.n_trials": 2})
    assert str(info.value).startswith(f"{path} (--set budjet.n_trials): budjet: unknown key")
    assert info.value.line is None


@pytest.mark.parametrize(("text", "fix"), [
    ("budget: {n_trials: 2.5}\n", "give a whole number, without a fractional part"),
    ("budget: {n_trials: [1]}\n", "give a whole number, e.g. 10"),
    ("export: {after_run: maybe}\n", "give true or false"),
    ("budget: 5\n", "give a mapping of keys, e.g. {key: value}"),
])
def test_a_value_of_the_wrong_type_is_told_what_to_write(write_study, text, fix):
    assert str(error_of(write_study, MINIMAL + text)).endswith(f"Fix: {fix}")


def test_a_zero_step_and_a_run_folder_that_is_a_file_are_told_what_to_write(write_study, tmp_path):
    err = error_of(write_study, "name: s\ntask: classify\nspace:\n  model: {depth: {int: [2, 4], step: 0}}\n")
    assert err.key == "space.model.depth.step" and str(err).endswith("Fix: e.g. step: 1, or leave step out for "
                                                                     "every value in the range")
    (tmp_path / "taken").write_text("")
    err = error_of(write_study, MINIMAL + f"run_dir: '{tmp_path / 'taken'}'\n")
    assert err.key == "run_dir" and "the run folder is a file" in str(err) and "Fix: name a folder" in str(err)


def test_a_test_fraction_beside_a_split_column_is_refused_not_ignored(write_study, tmp_path):
    err = error_of(write_study, f"name: s\ndata: {{source: csv, path: '{tmp_path / 'x.csv'}', split_column: split,\n"
                                "  test_fraction: 0.2}\n", with_defaults=False)
    assert "data.test_fraction: not used with split_column" in str(err) and err.line == 3


def test_an_unknown_data_source_names_the_key_and_the_kinds(write_study):
    err = error_of(write_study, MINIMAL + "data: {source: CSV, path: x.csv}\n")
    assert err.key == "data.source" and err.got == "CSV" and "'medmnist', 'folder', 'csv' (lower case)" in str(err)


def test_one_label_column_may_be_written_without_a_list(tmp_path):
    from searchlab.config.schema import CsvData

    assert CsvData(source="csv", path=tmp_path / "t.csv", label_columns="diagnosis").label_columns == ("diagnosis",)


@pytest.mark.parametrize("address,message", [
    ("127.0.0.1", "a Ray address is 'host:port'"),
    ("nonsense", "a Ray address is 'host:port'"),
    ("ray://127.0.0.1:10001", "Ray Client addresses \\(ray://\\) are not supported"),
])
def test_a_malformed_ray_address_is_refused_at_load(write_study, address, message):
    err = error_of(write_study, MINIMAL + f"executor: {{kind: ray, address: '{address}'}}\n")
    assert err.key == "executor.address" and err.line == 5
    assert re.search(message, str(err)) and err.got == address


def test_a_check_spanning_the_study_names_the_key_at_fault_not_the_whole_file(write_study):
    err = error_of(write_study, MINIMAL + "pruner: median\nexecutor: {kind: ray, scheduler: asha}\n")
    assert err.key == "pruner" and err.line == 5 and err.got == "median" and "pruner: none" in str(err)
    assert "'name'" not in str(err)   # the study's other sections are not quoted


def test_every_problem_is_named_and_a_nested_section_lists_its_own_keys(write_study):
    err = error_of(write_study, MINIMAL + "budget: {n_trials: 0}\nexecutor: {kind: ray, resources_per_trial: "
                                          "{cpus: 1}}\n")
    assert "also: executor.resources_per_trial.cpus: Extra inputs are not permitted" in str(err)
    err = error_of(write_study, MINIMAL + "executor: {kind: ray, resources_per_trial: {cpus: 1}}\n")
    assert err.key == "executor.resources_per_trial.cpus" and "Valid keys here: cpu, gpu" in str(err)


@pytest.mark.parametrize(("text", "ending"), [
    ("task: {kind: callable}\n", "Fix: task: {kind: callable, function: 'my_module:train'}, or remove task.function"),
    ("strategy: {preset: quick, class: 'optuna.samplers:TPESampler'}\n",
     "not several (got preset, class). Fix: keep one of them"),
    ("strategy: {name: random, class: 'optuna.samplers:TPESampler'}\n",   # ran the class, saying nothing
     "not several (got name, class). Fix: keep one of them"),
    ("strategy: {name: evolution, preset: quick}\n", "not several (got name, preset). Fix: keep one of them"),
    ("executor: {scheduler: asha}\n", "Fix: executor.kind: ray, or remove scheduler and use pruner (e.g. pruner: "
                                      "successive_halving)"),
    ("space:\n  model: {kind: cnn, transfer: finetune}\n", "Fix: use one of 'scratch', 'features', 'cutoff' or 'full'"),
    ("space:\n  model: {kind: cnn, transfer: full}\n", "Fix: add weights: PATH (a .safetensors file, an export folder "
                                                       "or a run folder), or transfer: scratch"),
    ("space:\n  optim: {include: 'optim.yaml#optimiser'}\n", "Fix: one of its keys: augment, optim, train"),
])
def test_a_check_of_the_study_or_a_trial_config_says_what_to_write(write_study, text, ending):
    body = "name: s\ntask: classify\n" + text if "task:" not in text else "name: s\n" + text
    if "space:" not in text:
        body += "space:\n  optim: {lr: {float: [1.0e-4, 1.0e-2]}}\n"
    assert str(error_of(write_study, body)).endswith(ending)


def test_a_preset_file_with_an_unknown_key_names_the_key(write_study, tmp_path):
    (tmp_path / "mine.yaml").write_text("name: tpe\nargz: {n_startup_trials: 5}\n")
    err = error_of(write_study, MINIMAL + "strategy: {preset: mine}\n")
    assert str(err).endswith("argz: unknown key (got 'argz'). Fix: did you mean args?")


def test_a_run_dir_and_export_dir_under_home_are_the_home_folder(write_study, tmp_path, monkeypatch):
    """`~/runs` made a folder named `~` under the current one (storage and data paths expanded it)."""
    from test_run import callable_study

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    study = load_study(callable_study(write_study), {"run_dir": "~/runs/x", "export.dir": "~/best"})
    assert study.run_dir == tmp_path / "home" / "runs" / "x"
    assert study.config.export.dir == tmp_path / "home" / "best"
    with pytest.raises(ConfigError, match=r"run_dir: ~nosuchuser123/x: '~' names a home folder this machine cannot "
                                          r"find"):   # a RuntimeError traceback before
        load_study(callable_study(write_study), {"run_dir": "~nosuchuser123/x"})


def test_an_ensemble_or_tta_export_of_a_gan_study_is_refused_at_load(write_study):
    """`export: {after_run: true, top_k: 2}` in a GAN study loaded; after the run the export was skipped and
    the `--top-k 2` command it suggested failed the same way."""
    gan = ("name: g\ntask: generate\nspace:\n  gan: {family: dcgan, latent: {choice: [16, 32]}}\n"
           "data: {source: medmnist, name: breastmnist, size: 28}\n")
    err = error_of(write_study, gan + "export: {after_run: true, top_k: 2}\n")
    assert (err.key, err.line, err.got) == ("export.top_k", 6, 2) and err.fix == "remove export.top_k"
    assert "exports its best generator alone" in err.rule
    assert error_of(write_study, gan + "export: {tta: flip}\n").key == "export.tta"
    load_study(write_study(gan + "export: {after_run: true}\n"))


@pytest.mark.parametrize("model, typo, meant", [
    ("{kind: zen, blocks: {b1: {tpye: conv, width: 8}}}", "tpye", "type"),      # under a block the user named
    ("{kind: cells, normal: {n1: {opp1: none}}, reduce: {n1: {}}}", "opp1", "op1"),   # under a node
    ("{kind: zen, stme: 8, blocks: {b1: {type: conv}}}", "stme", "stem"),         # a kind the schema must be given
])
def test_a_misspelt_setting_under_a_kind_or_a_user_named_key_gets_the_setting_meant(write_study, model, typo, meant):
    """Below a key the user chose (`b1`, `n1`) and in a model whose `kind` has no default, the settings there
    were not found: the fix said only "remove it or fix its spelling"."""
    err = error_of(write_study, f"name: s\ntask: classify\nspace:\n  model: {model}\n")
    assert err.got == typo and f"did you mean {meant}?" in err.fix, err.fix
