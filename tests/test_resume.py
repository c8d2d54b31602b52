"""Resuming a study: what must stay as it was (objectives, data, the space as Optuna keeps it), and what is
warned about when it changed (epochs, fixed settings)."""
from __future__ import annotations

import shutil

import optuna
import pytest

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError
from test_run import TINY_CLASSIFY, callable_study, states

def test_resume_keeps_completed_trials_and_counts_the_total(write_study):
    path = callable_study(write_study, n=3)
    first = run_study(load_study(path), progress=False).study
    before = [(t.number, t.params, t.value) for t in first.get_trials()]
    second = run_study(load_study(path, {"budget.n_trials": 5}), progress=False).study
    after = second.get_trials()
    assert [(t.number, t.params, t.value) for t in after[:3]] == before
    assert states(second) == {"COMPLETE": 5}
    assert len({t.params["x"] for t in after}) == 5   # a resumed random search does not replay its first run


def test_resuming_with_other_epochs_is_warned_about(write_study, capsys):
    path = callable_study(write_study, n=1)
    run_study(load_study(path), progress=False)
    run_study(load_study(path, {"budget.n_trials": 2}), progress=False)
    assert "budget.epochs" not in capsys.readouterr().err
    run_study(load_study(path, {"budget.n_trials": 2, "budget.epochs": 5}), progress=False)   # nothing runs
    capsys.readouterr()
    run_study(load_study(path, {"budget.n_trials": 3, "budget.epochs": 2}), progress=False)
    # the run that trained nothing did not record its epochs as those of the trials
    assert "has trials trained with budget.epochs=20; this run's train 2" in capsys.readouterr().err
    failed = callable_study(write_study, fn="fails_when_positive", n=1).read_text().replace("x: {float: [-3, 3]}",
                                                                                       "x: 1.0")
    path = write_study(failed.replace("name: fake", "name: only_failed"))
    run_study(load_study(path), progress=False)                        # its one trial fails: nothing trained
    run_study(load_study(path, {"budget.n_trials": 2, "budget.epochs": 2}), progress=False)
    assert "budget.epochs" not in capsys.readouterr().err


def test_trials_over_an_architecture_budget_tightened_on_resume_are_warned_of(write_study, capsys):
    """With budget.max_flops lowered on resume, a trial completed over it stayed the best and was exported."""
    path = write_study(TINY_CLASSIFY)
    first = run_study(load_study(path, {"budget.n_trials": 1, "space.model.width": 8}), progress=False).study
    flops = first.trials[0].user_attrs["metrics"]["flops"]
    capsys.readouterr()
    run_study(load_study(path, {"budget.n_trials": 2, "space.model.width": 4, "budget.max_flops": 0.9 * flops}),
              progress=False)
    err = capsys.readouterr().err
    assert "has 1 completed trial(s) over this run's architecture budget (e.g. trial 0, over budget: flops " \
        f"{flops:.4g} > max_flops {0.9 * flops:.4g})" in err and "export a trial within the budget with --trial N" in err
    run_study(load_study(path, {"budget.n_trials": 3, "space.model.width": 4}), progress=False)
    assert "architecture budget" not in capsys.readouterr().err


def test_resuming_with_another_fixed_setting_is_warned_about_naming_it(write_study, capsys):
    """A fixed setting is no parameter: trials that ran with another value would be ranked alike, unseen."""
    path = callable_study(write_study, n=2)
    run_study(load_study(path), progress=False)
    run_study(load_study(path, {"budget.n_trials": 3}), progress=False)
    assert "space.sleep" not in capsys.readouterr().err
    run_study(load_study(path, {"budget.n_trials": 4, "space.sleep": 0.001}), progress=False)
    err = capsys.readouterr().err
    assert ("has trials that ran with space.sleep 0.0 (3 trials); this run's trials use 0.001, and all are ranked "
            "together") in err and "Fix: set space.sleep back to 0.0 " in err


def test_fixing_a_searched_parameter_on_resume_says_to_leave_it_searched(write_study, capsys):
    path = callable_study(write_study, n=2)
    run_study(load_study(path), progress=False)
    capsys.readouterr()
    run_study(load_study(path, {"budget.n_trials": 3, "space.x": 0.5}), progress=False)
    err = capsys.readouterr().err
    assert "study 'fake' searched space.x in earlier trials (2 values, e.g. " in err
    assert "this run fixes it at 0.5" in err and "Fix: leave space.x searched (drop the --set or fixed value)" in err
    assert "back to" not in err


def test_a_fixed_setting_earlier_trials_ran_at_its_default_is_compared_with_that_default(write_study, capsys):
    path = write_study(TINY_CLASSIFY.replace("n_trials: 2", "n_trials: 1"))
    run_study(load_study(path), progress=False)
    run_study(load_study(path, {"budget.n_trials": 2, "space.optim.momentum": 0.5,
                                "space.optim.weight_decay": 1.0e-4}), progress=False)
    err = capsys.readouterr().err   # unchanged: the default written out; momentum: no effect under adamw
    assert "ran with space" not in err, err
    run_study(load_study(path, {"budget.n_trials": 3, "space.optim.weight_decay": 0.01,
                                "space.train.batch_size": 64}), progress=False)
    err = capsys.readouterr().err
    assert "has trials that ran with space.optim.weight_decay 0.0001 (2 trials); this run's trials use 0.01" in err
    assert "has trials that ran with space.train.batch_size 128 (2 trials); this run's trials use 64" in err


def test_resuming_with_an_edited_space_goes_on_when_optuna_can_and_says_which_parameter_when_not(write_study):
    path = callable_study(write_study, n=2)
    run_study(load_study(path), progress=False)
    wider = run_study(load_study(path, {"budget.n_trials": 3, "space.x": {"float": [-5, 5]}}), progress=False)
    assert states(wider.study) == {"COMPLETE": 3}   # a float range may change; Optuna keeps its kind only
    with pytest.raises(ConfigError) as info:
        run_study(load_study(path, {"budget.n_trials": 4, "space.x": {"choice": [-1, 1]}}), progress=False)
    message = str(info.value)
    assert "space.x:" in message and "a float in [-3.0, 3.0]" in message and "a choice of [-1, 1]" in message
    assert "new name" in message
    reloaded = optuna.load_study(study_name="fake", storage=f"sqlite:///{path.parent / 'run' / 'study.db'}")
    assert states(reloaded) == {"COMPLETE": 3}   # refused before any trial ran


def test_resuming_on_another_objective_or_other_data_is_refused_but_data_may_move(write_study, tmp_path):
    path = callable_study(write_study, n=2)
    run_study(load_study(path), progress=False)
    for override, key, said in (
            ({"objective": {"metric": "x_abs", "direction": "minimize"}}, "objective",
             "objectives [['loss', 'minimize']], not [['x_abs', 'minimize']]"),
            ({"objective": {"metric": "loss", "direction": "maximize"}}, "objective",
             "optimises ['minimize'], but the study file asks for ['maximize']"),
            ({"data.size": 64}, "data", "scored with data.size 28, not 64; their values would be ranked")):
        with pytest.raises(ConfigError) as info:
            run_study(load_study(path, {"budget.n_trials": 3, **override}), progress=False)
        assert info.value.key == key and said in str(info.value)
    moved = tmp_path / "moved_data"
    shutil.copytree(load_study(path).config.data.root, moved)
    resumed = run_study(load_study(path, {"budget.n_trials": 3, "data.root": str(moved)}), progress=False).study
    assert states(resumed) == {"COMPLETE": 3}


def test_a_setting_added_later_compares_with_the_value_older_records_had():
    """A folder study recorded before `fit` existed stretched its images: resuming it with pad is a change."""
    from searchlab.engine.resume import _comparable

    recorded = {"source": "folder", "path": "/x", "image_size": 28}
    assert _comparable("data", recorded, {**recorded, "fit": "stretch"})[0] == {**recorded, "fit": "stretch"}
    now = {**recorded, "fit": "stretch", "bit_depth": None}
    assert _comparable("data", recorded, now)[0] == now != _comparable("data", recorded, {**now, "bit_depth": 12})[1]
    before, now = _comparable("data", recorded, {**recorded, "fit": "pad"})
    assert before != now and before["fit"] == "stretch"


def test_a_second_run_of_a_running_folder_is_told_it_joins_the_first(write_study, tmp_path, capsys):
    from searchlab.engine.run import run_lock

    path = callable_study(write_study, n=2)
    run_study(load_study(path, {"budget.n_trials": 1}), progress=False)
    assert "joins it" not in capsys.readouterr().err   # alone
    with run_lock(tmp_path / "run"):   # as another `searchlab run` of the folder holds it
        run_study(load_study(path), progress=False)
    assert f"note: another `searchlab run` of {tmp_path / 'run'} is running: this one joins it as more " \
           "workers" in capsys.readouterr().err


def test_resuming_counts_the_trials_of_each_epochs_setting(write_study, capsys):
    path = write_study(TINY_CLASSIFY)   # 2 trials of 2 epochs
    run_study(load_study(path), progress=False)
    run_study(load_study(path, {"budget.n_trials": 3, "budget.epochs": 1}), progress=False)
    capsys.readouterr()
    run_study(load_study(path, {"budget.n_trials": 4}), progress=False)   # back to 2: most trials had 2
    err = capsys.readouterr().err
    assert "has trials trained for epochs 2 (2 trials), 1 (1 trial); this run's train 2" in err
    assert "Fix: keep budget.epochs=2 to resume like for like" in err


@pytest.mark.filterwarnings("error::RuntimeWarning")   # Optuna's "Inconsistent parameter values" beside the reason
def test_a_queued_config_outside_a_narrowed_space_fails_with_the_reason_instead_of_running(write_study):
    """A retry queued before the space was narrowed ran outside it (and could become the study's best)."""
    from searchlab.engine.storage import retry_callback

    path = callable_study(write_study, n=1)
    ostudy = run_study(load_study(path), progress=False).study
    dist = {"x": optuna.distributions.FloatDistribution(-3, 3)}
    lost = ostudy.ask(dist)
    ostudy.tell(lost, state=optuna.trial.TrialState.FAIL)
    retry_callback()(ostudy, ostudy.trials[lost.number])   # queued with its x, as a dead worker's config is
    queued_x = ostudy.trials[lost.number].params["x"]
    narrow = path.read_text().replace("x: {float: [-3, 3]}", "x: {float: [5, 6]}")   # excludes any queued x
    ran = run_study(load_study(write_study(narrow), {"budget.n_trials": 3}), progress=False).study
    retry = [t for t in ran.trials if t.user_attrs.get("retry_of") == lost.number]
    assert len(retry) == 1 and retry[0].state.name == "FAIL"
    assert f"this queued config has x={queued_x!r}, outside the space's a float in [5.0, 6.0]" in \
        retry[0].user_attrs["error"]
    assert all(5 <= t.params["x"] <= 6 for t in ran.trials if t.state.name == "COMPLETE" and t.number > lost.number)


def test_a_multilabel_run_split_at_random_before_the_key_resumes_with_it_and_exports_as_it_ran(write_study, tmp_path):
    """Runs from before data.multilabel_split drew multi-label splits at random; the default is now stratified.
    Such a run must export with its own test split, and resuming names the key to write, not 'files moved'."""
    from test_csv_data import write_csv
    from test_data import COLORS, png

    from searchlab.errors import ExportError
    from searchlab.export.exporter import export_run

    labels = [[1, 0], [0, 1], [1, 1], [0, 0]] * 10
    rows = [[png(tmp_path / "i" / f"{n}.png", COLORS["ab"[n % 2]]).relative_to(tmp_path).as_posix(), *lab]
            for n, lab in enumerate(labels)]
    csv_path = write_csv(tmp_path / "m.csv", ["path", "x", "y"], rows)
    text = ("name: ml\nspace:\n  model: {kind: cnn, depth: 1, width: {choice: [4, 5]}}\nstrategy: random\npruner: none\n"
            f"budget: {{n_trials: 1, epochs: 1}}\ndata: {{source: csv, path: '{csv_path}', label_columns: [x, y], "
            "image_size: 8, val_fraction: 0.25, test_fraction: 0.25SPLIT_BY}\n")
    old_style = text.replace("SPLIT_BY", ", multilabel_split: random")
    ostudy = run_study(load_study(write_study(old_style)), progress=False).study
    record = ostudy.user_attrs["searchlab"]
    del record["data"]["multilabel_split"]   # as a run before the key recorded it
    ostudy.set_user_attr("searchlab", {**record, "data_defaults": [k for k in record["data_defaults"]
                                                                   if k != "multilabel_split"]})
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=10)
    assert config["test_size"] == 10   # its own random test split: another would be refused as moved files
    with pytest.raises(ConfigError, match="multi-label splits drawn by a searchlab before data.multilabel_split: "
                                          "at random") as info:
        run_study(load_study(write_study(text.replace("SPLIT_BY", "")), {"budget.n_trials": 2}), progress=False)
    assert info.value.key == "data.multilabel_split" and "write multilabel_split: random" in str(info.value)
    resumed = run_study(load_study(write_study(old_style), {"budget.n_trials": 2}), progress=False).study
    assert states(resumed) == {"COMPLETE": 2}
    # patients (group_column) were dealt by another rule then: an export names that, not "other files"
    grouped = write_csv(tmp_path / "g.csv", ["path", "x", "y", "patient"], [[*row, f"P{n // 2}"]
                                                                          for n, row in enumerate(rows)])
    text = text.replace(str(csv_path), str(grouped)).replace("name: ml", "name: mlg").replace(
        "label_columns: [x, y]", "label_columns: [x, y], group_column: patient")
    ostudy = run_study(load_study(write_study(text.replace("SPLIT_BY", "")), {"run_dir": str(tmp_path / "g")}),
                       progress=False).study
    record = ostudy.user_attrs["searchlab"]
    del record["data"]["multilabel_split"]
    record["data_files"]["splits"]["val"]["members"] = "0" * 32   # as the earlier rule dealt them
    ostudy.set_user_attr("searchlab", record)
    with pytest.raises(ExportError, match=r"its multi-label patients \(data.group_column\) were dealt to splits by a "
                                          "searchlab before data.multilabel_split"):
        export_run(tmp_path / "g", tmp_path / "best_g", bootstrap=10)


def test_a_run_that_read_exif_turned_files_as_stored_is_neither_resumed_nor_exported_upright(write_study, tmp_path):
    """Runs before decoder 2 trained on camera JPEGs as stored (sideways); this searchlab reads them upright.
    Resuming ranked new trials on upright images with old ones on turned images, and an export scored and
    recorded upright reading for networks trained sideways."""
    from PIL import Image

    from searchlab.data.orientation import turned_since
    from searchlab.errors import ExportError
    from searchlab.export.exporter import export_run

    exif = Image.Exif()
    exif[0x0112] = 6
    for cls, shade in (("a", 40), ("b", 210)):
        for i in range(10):
            (tmp_path / "set" / cls).mkdir(parents=True, exist_ok=True)
            Image.new("L", (12, 8), shade).save(tmp_path / "set" / cls / f"{i}.jpg", exif=exif if i == 3 else b"")
    text = ("name: turned\nspace:\n  model: {kind: cnn, depth: 1, width: {choice: [4, 5]}}\nstrategy: random\n"
            f"pruner: none\nbudget: {{n_trials: 1, epochs: 1}}\ndata: {{source: folder, path: '{tmp_path / 'set'}', "
            "image_size: 8, val_fraction: 0.2, test_fraction: 0.2}\n")
    ostudy = run_study(load_study(write_study(text)), progress=False).study
    record = ostudy.user_attrs["searchlab"]
    assert record["decoder"] == 2
    export_run(tmp_path / "run", tmp_path / "best", bootstrap=10)   # a run of this searchlab: nothing refused
    ostudy.set_user_attr("searchlab", {k: v for k, v in record.items() if k != "decoder"})   # as before decoder 2
    with pytest.raises(ExportError, match=r"2 image file\(s\) of its train/val/test split\(s\) carry an EXIF "
                                          r"orientation \(.*3\.jpg.*\), which the searchlab that ran its trials "
                                          "ignored"):
        export_run(tmp_path / "run", tmp_path / "best2", bootstrap=10)
    with pytest.raises(ConfigError, match=r"has trials scored on images read otherwise: \d image file\(s\) of "
                                          r"its train/val split") as info:
        run_study(load_study(write_study(text), {"budget.n_trials": 2}), progress=False)
    assert info.value.key == "data.path"
    for cls in ("a", "b"):   # the same run without turned files: as before
        Image.new("L", (12, 8), 40).save(tmp_path / "set" / cls / "3.jpg")
    assert turned_since({}, load_study(write_study(text)).config.data, 0, tmp_path, ("train", "val", "test")) is None


def test_a_resume_with_another_strategy_or_its_args_says_so(write_study, capsys):
    """Evolution's population_size changed on a resume was taken without a word (zen_nas's stage said so)."""
    path = callable_study(write_study, n=2)
    run_study(load_study(path), progress=False)
    capsys.readouterr()
    run_study(load_study(path, {"budget.n_trials": 3, "strategy": "tpe"}), progress=False)
    assert "note: study 'fake' ran its trials with strategy random; this run searches with tpe, going on from " \
           "the trials in the study" in capsys.readouterr().err
    run_study(load_study(path, {"budget.n_trials": 4, "strategy": "tpe"}), progress=False)
    assert "ran its trials with strategy" not in capsys.readouterr().err   # the same as the latest run's
