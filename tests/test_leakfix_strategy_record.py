"""The recorded strategy names itself always: dumped without defaults, TPE with args was recorded as args alone,
so `status` said "search: None" and a resume with other args said "preset None"; a user's preset changed from
random to tpe was said as "preset mine" -> "preset mine", the change unnamed. Records written before (no name)
still read as the tpe they ran."""
from __future__ import annotations

import optuna

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.engine.setup_said import describe_setup
from test_run import callable_study


def resumed(path, capsys, n_trials, strategy=None):
    capsys.readouterr()
    overrides = {"budget.n_trials": n_trials, **({"strategy": strategy} if strategy is not None else {})}
    study = run_study(load_study(path, overrides), progress=False).study
    return study, capsys.readouterr().err


def test_tpe_with_args_is_recorded_and_said_by_its_name(write_study, capsys):
    path = callable_study(write_study, n=2)
    study, _ = resumed(path, capsys, 2, {"name": "tpe", "args": {"n_startup_trials": 3}})
    setup = study.user_attrs["searchlab"]["search"]
    assert setup["strategy"] == {"name": "tpe", "args": {"n_startup_trials": 3}}
    assert describe_setup(setup).startswith("search:    tpe, "), describe_setup(setup)
    _, err = resumed(path, capsys, 3, {"name": "tpe", "args": {"n_startup_trials": 4}})
    assert "ran its trials with strategy tpe, args {'n_startup_trials': 3}; this run searches with tpe, args " \
           "{'n_startup_trials': 4}" in err, err
    assert "None" not in err


def test_a_preset_whose_contents_changed_names_the_change(write_study, tmp_path, capsys):
    (tmp_path / "mine.yaml").write_text("name: random\n")
    path = callable_study(write_study, n=2)
    resumed(path, capsys, 2, {"preset": "mine"})
    (tmp_path / "mine.yaml").write_text("name: tpe\n")
    _, err = resumed(path, capsys, 3, {"preset": "mine"})
    assert "preset mine: random -> tpe; this run searches with tpe" in err, err
    _, err = resumed(path, capsys, 4, {"preset": "mine"})
    assert "note: study" not in err, err   # the same as the latest run's


def test_a_record_written_before_the_name_was_kept_reads_as_tpe(write_study, tmp_path, capsys):
    path = callable_study(write_study, n=2)
    strategy = {"name": "tpe", "args": {"n_startup_trials": 3}}
    study, _ = resumed(path, capsys, 2, strategy)
    record = study.user_attrs["searchlab"]
    old = {**record, "search": {**record["search"], "strategy": {"args": {"n_startup_trials": 3}}}}
    stored = optuna.load_study(study_name=study.study_name, storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    stored.set_user_attr("searchlab", old)   # as a searchlab before this one recorded it
    assert describe_setup(old["search"]).startswith("search:    tpe, ")
    _, err = resumed(path, capsys, 3, strategy)
    assert "note: study" not in err, err   # the same strategy: nothing to say


def test_an_older_record_naming_no_strategy_pools_with_a_newer_one_naming_tpe():
    """compare's seed pools keyed runs by the strategy as recorded: an older tpe run with args (recorded with no
    name) and a newer one of the same settings, under another seed, were not pooled."""
    from types import SimpleNamespace

    from searchlab.report.seed_pool import setting_key

    def run(strategy, seed):
        return SimpleNamespace(search={"strategy": strategy, "seed": seed, "pruner": {"name": "none"}},
                               data_read={"source": "medmnist"}, record={"epochs": 3})

    older, newer = run({"args": {"n_startup_trials": 3}}, 0), run({"name": "tpe", "args": {"n_startup_trials": 3}}, 1)
    assert setting_key(older) == setting_key(newer)
    assert setting_key(run({"name": "random"}, 2)) != setting_key(newer)
