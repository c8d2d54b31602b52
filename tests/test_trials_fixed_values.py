"""`searchlab trials`: what a trial ran with where its params do not say it (a choice a resume fixed, a fixed
setting changed between runs), checked on real runs of one study resumed with its space changed."""
from __future__ import annotations

import io

import pandas as pd

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.trials_table import trial_table
from test_run import CALLABLE


def _run(write_study, n: int, width: str, sleep: float):
    text = CALLABLE.format(fn="quadratic", n=n, sleep=sleep).replace("  sleep:", f"  width: {width}\n  sleep:")
    return run_study(load_study(write_study(text)), progress=False).study


def test_a_choice_fixed_by_a_resume_and_a_changed_setting_are_in_the_table(write_study, tmp_path):
    _run(write_study, 2, "{choice: [8, 16]}", 0.0)
    _run(write_study, 4, "{choice: [8]}", 0.001)   # resumed: width fixed at 8, sleep changed
    from searchlab.engine.rundir import open_run

    table = trial_table(open_run(tmp_path / "run"))
    ran = [w for w in table["params.width"]]
    assert ran[2:] == [8, 8] and all(w in (8, 16) for w in ran[:2])   # the resumed trials were blank
    assert list(table["config.sleep"]) == [0.0, 0.0, 0.001, 0.001]
    assert "config.x" not in table and "config.width" not in table   # searched: params.* alone says them
    csv = pd.read_csv(io.StringIO(table.to_csv(index=False)))
    assert list(csv.columns).index("config.sleep") < list(csv.columns).index("metrics.loss")


def test_a_setting_every_trial_ran_at_one_value_gets_no_column(write_study, tmp_path):
    _run(write_study, 2, "{choice: [8, 16]}", 0.0)
    _run(write_study, 3, "{choice: [8, 16]}", 0.0)
    from searchlab.engine.rundir import open_run

    table = trial_table(open_run(tmp_path / "run"))
    assert not [c for c in table.columns if c.startswith("config.")] and table["params.width"].notna().all()


def test_a_branch_parameter_is_found_under_the_option_the_trial_took_and_only_there():
    from searchlab.trials_table import _config_path

    took_cnn = {"model": {"kind": "cnn", "norm": "timm", "width": 8, "stages": [1, 2]}}
    drawn = ["model.cnn.depth"]
    assert _config_path(["model", "cnn", "width"], took_cnn, drawn) == ("model", "width")
    assert _config_path(["model", "timm", "width"], took_cnn, drawn) is None   # the option it did not take
    assert _config_path(["model", "cnn", "width"], took_cnn, []) is None   # nothing drawn says it took cnn
    assert _config_path(["model", "stages"], took_cnn, drawn) is None   # a list: no cell of its own
