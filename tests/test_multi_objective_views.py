"""What `run`, `status`, `export` and `report` say about Pareto fronts, thresholds and the architecture budget:
gaps a user met reading them (an over-budget trial logged as "pruned: -", a front shown in trial-number order as
"the best 3", a hidden threshold of 0.5, an export over a lowered budget said nothing, a 4-objective report
without its Pareto section). Studies are built with Optuna directly, with the user attrs searchlab writes."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from searchlab.config.load import load_study
from searchlab.config.schema import ExportConfig
from searchlab.engine.rundir import OpenRun
from searchlab.errors import ConfigError, ExportError

OVER = "over budget: flops 1.478e+08 > max_flops 3e+07"
AUC_FLOPS = [["auc", "maximize"], ["flops", "minimize"]]


def _over_budget(flops: float = 1.478e8, limit: str = "max_flops 3e+07") -> optuna.trial.FrozenTrial:
    """A trial pruned before training for its costs, as tasks/costs.py check_budget leaves it."""
    name = limit.split()[0].removeprefix("max_")
    return create_trial(state=TrialState.PRUNED, user_attrs={"over_budget": f"over budget: {name} {flops:.4g} > "
                                                                            f"{limit}"})


def _sqlite_run(tmp_path: Path, directions: list[str], objectives: list | None = None) -> OpenRun:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="s", directions=directions)
    if objectives:
        study.set_user_attr("searchlab", {"objectives": objectives})
    return OpenRun(tmp_path, study, f"sqlite:///{tmp_path / 'study.db'}", tmp_path / "artifacts")


def _run_summary(ostudy: optuna.Study, capsys, objectives: tuple = ()) -> str:
    from searchlab.summary import print_run_summary

    study = SimpleNamespace(config=SimpleNamespace(name="s", budget=SimpleNamespace(n_trials=len(ostudy.trials)),
                                                   export=ExportConfig()),
                            run_dir=Path("runs/s"), storage_url="sqlite:///runs/s/study.db", objectives=objectives)
    result = SimpleNamespace(study=ostudy, seconds=1.0, interrupted=False, trials_before=0,
                             trials_finished=len(ostudy.trials))
    print_run_summary(study, result, exported=None)
    return capsys.readouterr().out


# ---------------------------------------------------------------- 1. over the architecture budget
def test_the_progress_line_of_a_trial_over_the_budget_says_why(capsys):
    """It said `trial 0 pruned: - [1/5 ...]`: read as the pruner's doing, or a trial that failed to report."""
    from searchlab.engine.progress import Progress

    study = optuna.create_study()
    progress = Progress(study, total=5)
    assert progress.as_lines   # pytest's stderr is no terminal: one line per trial, as in a log
    study.add_trial(_over_budget())
    study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={"pruned": "pruned by the pruner after 2 "
                                                                                "epoch(s), at auc=0.6000"}))
    study.add_trial(create_trial(value=0.75))
    for trial in study.trials:
        progress.callback(study, trial)
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(f"trial 0 pruned ({OVER}) [1/5, ")
    assert lines[1].startswith("trial 1 pruned: - [2/5, ")   # the pruner's prunes read as before
    assert lines[2].startswith("trial 2 complete: 0.7500 [3/5, ") and "best: 0.7500 (trial 2)" in lines[2]



def test_the_progress_line_of_several_objectives_counts_the_pareto_front(capsys):
    """It said `best: -` for the whole of a multi-objective run, as if nothing had completed."""
    from searchlab.engine.progress import Progress

    study = optuna.create_study(directions=["maximize", "minimize"])
    progress = Progress(study, total=5)
    for values in ([0.8, 3e6], [0.7, 4e6], [0.9, 5e6]):   # the second is dominated by the first
        study.add_trial(create_trial(values=values))
    for trial in study.trials:
        progress.callback(study, trial)
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("Pareto front: 1 of 1 complete]")
    assert lines[1].endswith("Pareto front: 1 of 2 complete]")
    assert lines[2].endswith("Pareto front: 2 of 3 complete]")

def test_status_and_the_run_summary_say_how_many_pruned_trials_were_over_the_budget(tmp_path, capsys):
    """"1 complete, 11 pruned" read as a search that went well: 11 configs never trained."""
    from searchlab.summary import print_status

    run = _sqlite_run(tmp_path, ["maximize"])
    run.study.add_trial(create_trial(value=0.8))
    for flops in (1.478e8, 9e7, 5e7, 4e7):
        run.study.add_trial(_over_budget(flops))
    run.study.add_trial(_over_budget(2e6, "max_params 1e+06"))
    run.study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={"pruned": "pruned by the pruner"}))
    print_status(run, 3)
    out = capsys.readouterr().out
    counts, said = out.splitlines()[:2]
    assert counts.endswith("1 complete, 6 pruned")
    reason = OVER.removeprefix("over budget: ")
    assert said.startswith("  (5 of the 6 pruned trials were over the architecture budget, so never trained; most "
                           f"often over budget.max_flops (4 of them, e.g. trial 1: {reason})")
    assert "Fix: loosen budget.max_flops or narrow the space" in said
    assert f"`searchlab trials {tmp_path}` shows each one's reason in its over_budget column" in said
    out = _run_summary(run.study, capsys)
    assert "5 of the 6 pruned trials were over the architecture budget" in out
    assert "  trial 0: value 0.8000" in out


def test_a_study_with_no_trial_over_the_budget_says_nothing_of_it(tmp_path, capsys):
    from searchlab.summary import print_status

    run = _sqlite_run(tmp_path, ["maximize"])
    run.study.add_trial(create_trial(value=0.8))
    run.study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={"pruned": "pruned by the pruner"}))
    print_status(run, 3)
    assert "architecture budget" not in capsys.readouterr().out


# ---------------------------------------------------------------- 2. the Pareto front as a front
def _front_in_reverse(study: optuna.Study) -> None:
    """Three trials, all on the front, numbered in the reverse of their auc order; one dominated."""
    for values in ([0.70, 1e5], [0.80, 2e5], [0.90, 3e5], [0.60, 4e5]):
        study.add_trial(create_trial(values=values))


def test_status_says_it_shows_part_of_the_pareto_front_and_sorts_it_by_the_first_objective(tmp_path, capsys):
    """`status --top 1` showed trial 0 of a 3-trial front with no heading: one trial read as "the best"."""
    from searchlab.summary import print_status

    run = _sqlite_run(tmp_path, ["maximize", "minimize"], AUC_FLOPS)
    _front_in_reverse(run.study)
    print_status(run, 1)
    out = capsys.readouterr().out
    assert (f"Pareto front: 1 of its 3 trial(s) shown, by auc (the first objective), best first; all: searchlab "
            f"status {tmp_path} --top 3\n  trial 2: value 0.9000, 300000.0000") in out
    assert "trial 0:" not in out and "trial 3:" not in out
    print_status(run, 5)
    out = capsys.readouterr().out
    assert "Pareto front: 3 of its 3 trial(s) shown, by auc (the first objective), best first\n" in out
    assert out.index("trial 2: value") < out.index("trial 1: value") < out.index("trial 0: value")


def test_the_run_summary_lists_the_front_by_its_first_objective_and_says_so(capsys):
    """It said "(the best 3 of 4 of the Pareto front shown)" of the first 3 by trial number."""
    study = optuna.create_study(directions=["maximize", "minimize"])
    for values in ([0.6, 1.0], [0.7, 2.0], [0.8, 3.0], [0.9, 4.0]):
        study.add_trial(create_trial(values=values))
    out = _run_summary(study, capsys, objectives=(("auc", "maximize"), ("flops", "minimize")))
    assert "Pareto front: 3 of its 4 trial(s) shown, by auc (the first objective), best first\n  trial 3: " in out
    assert out.index("trial 3: value") < out.index("trial 2: value") < out.index("trial 1: value")
    assert "trial 0: value" not in out
    assert "(N: a trial of the Pareto front, e.g. 3)" in out


def test_a_single_objective_status_has_no_front_heading(tmp_path, capsys):
    from searchlab.summary import print_status

    run = _sqlite_run(tmp_path, ["maximize"])
    run.study.add_trial(create_trial(value=0.8))
    print_status(run, 3)
    assert "Pareto" not in capsys.readouterr().out


# ---------------------------------------------------------------- 3. a threshold of 0.5 is a threshold
def _scored(kind: str, threshold, rule: str | None = None) -> optuna.trial.FrozenTrial:
    config = {"imbalance": {"threshold": rule}} if rule else {}
    return create_trial(value=0.8, params={}, distributions={}, user_attrs={
        "metrics": {"auc": 0.8, "sensitivity": 0.7}, "task_kind": kind, "threshold": threshold,
        "class_names": ["a", "b"], "config_with_defaults": config})


def test_status_shows_a_threshold_of_0_5_for_trials_whose_metrics_are_at_it():
    """README: status shows the threshold; a fixed 0.5 was left out, so sensitivity stood without one."""
    from searchlab.trial_said import describe_trial

    assert "sensitivity=0.7, threshold=0.5 (fixed)" in describe_trial(None, _scored("binary", 0.5, "fixed"))
    assert "threshold=0.5 (fixed)" in describe_trial(None, _scored("binary", 0.5))   # the default rule
    assert "threshold=0.5 (chosen on val by youden)" in describe_trial(None, _scored("binary", 0.5, "youden"))
    assert ", threshold 0.5 for every label (fixed)" in describe_trial(None, _scored("multilabel", [0.5, 0.5]))
    assert "threshold" not in describe_trial(None, _scored("multiclass", 0.5))   # the argmax decides
    assert ", threshold=0.31" in describe_trial(None, _scored("binary", 0.31, "youden"))   # as before


# ---------------------------------------------------------------- 5. top_k with several objectives
def test_an_ensemble_export_of_a_multi_objective_study_is_refused_at_load(write_study):
    """It loaded, and only the run's end said "export skipped: this study has 2 objectives"."""
    text = ("name: m\nobjective: [auc, flops]\nexport: {after_run: true, top_k: 2}\n"
            "space:\n  optim: {lr: {float: [1.0e-3, 1.0e-2], log: true}}\n")
    with pytest.raises(ConfigError) as info:
        load_study(write_study(text))
    err = info.value
    assert (err.key, err.line, err.got) == ("export.top_k", 3, 2)
    assert "this study has 2 (auc, flops): its best trials are a Pareto front" in err.rule
    assert "searchlab export RUN --trial N" in err.fix and "\n" not in str(err)
    load_study(write_study(text.replace("top_k: 2", "top_k: 1")))
    load_study(write_study(text.replace("[auc, flops]", "auc")))


# ---------------------------------------------------------------- 6. exporting a trial pruned over the budget
def test_exporting_a_trial_pruned_over_the_budget_quotes_why_and_offers_the_front():
    """It said "trial 0 is PRUNED; ... or leave out --trial for the best", which a multi-objective study refuses."""
    from searchlab.export.picking import pick_trial

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(_over_budget())
    for values in ([0.7, 1e5], [0.9, 3e5], [0.6, 4e5]):
        study.add_trial(create_trial(values=values))
    with pytest.raises(ExportError) as info:
        pick_trial(study, 0)
    said = str(info.value)
    assert said.startswith(f"trial 0 is PRUNED ({OVER}); only COMPLETE trials can be exported. Fix: pick a trial "
                           "of the Pareto front with --trial N (front: 1, 2;")
    assert "leave out --trial" not in said
    with pytest.raises(ExportError, match=r"does not exist .* \(front: 1, 2;") as info:
        pick_trial(study, 9)
    assert "leave out --trial" not in str(info.value)

    single = optuna.create_study()
    single.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={"pruned": "pruned by the pruner after 1 "
                                                                                 "epoch(s), at auc=0.5000"}))
    single.add_trial(create_trial(value=0.8))
    with pytest.raises(ExportError, match=r"^trial 0 is PRUNED \(pruned by the pruner after 1 epoch\(s\), at "
                                          r"auc=0.5000\); .* or leave out --trial for the best$"):
        pick_trial(single, 0)


def test_exporting_when_no_multi_objective_trial_completed_says_so():
    from searchlab.export.picking import pick_trial

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.add_trial(_over_budget())
    with pytest.raises(ExportError, match="no trial of this study completed yet") as info:
        pick_trial(study, 0)
    assert "front:" not in str(info.value)


# ---------------------------------------------------------------- 4. an export over the current budget
def test_over_budget_now_compares_the_recorded_costs_with_the_latest_runs_budget(capsys):
    from searchlab.export.export_notes import warn_about_export
    from searchlab.export.exporter import over_budget_now

    trial = create_trial(value=0.8, user_attrs={"metrics": {"auc": 0.8, "params": 18218.0, "flops": 2e5},
                                                "params": 18218.0})
    small = create_trial(value=0.7, user_attrs={"metrics": {"auc": 0.7, "params": 400.0, "flops": 1e4}})
    lowered = SimpleNamespace(search={"budget": {"n_trials": 5, "max_params": 5000}})
    assert over_budget_now(lowered, [trial]) == "params 1.822e+04 > max_params 5000"
    assert over_budget_now(lowered, [small]) is None
    trial.number, small.number = 3, 4
    assert over_budget_now(lowered, [small, trial]) == "trial 3: params 1.822e+04 > max_params 5000"
    assert over_budget_now(SimpleNamespace(search={"budget": {"n_trials": 5}}), [trial]) is None
    assert over_budget_now(SimpleNamespace(search={}), [trial]) is None   # a run recorded before the setup was

    config = {"task": "multiclass", "class_names": ["a", "b", "c"], "threshold": 0.5, "test_size": 40,
              "trial": {"number": 3}, "over_budget_now": "params 1.822e+04 > max_params 5000"}
    warn_about_export(config)
    err = capsys.readouterr().err
    assert ("warning: trial 3 is over the study's current architecture budget (params 1.822e+04 > max_params "
            "5000): trained under an earlier one") in err and "Fix: export a trial within the budget" in err
    warn_about_export({**config, "over_budget_now": None})
    assert "architecture budget" not in capsys.readouterr().err


def test_an_export_of_a_trial_over_a_budget_lowered_on_resume_records_it(write_study, tmp_path, capsys):
    """A resume lowered budget.max_flops; the export of a trial run under the old one recorded the new budget in
    config.json (search.budget) and said nothing."""
    from searchlab.engine.run import run_study
    from searchlab.export.exporter import export_run
    from test_run import TINY_CLASSIFY

    path = write_study(TINY_CLASSIFY.replace("epochs: 2", "epochs: 1"))
    result = run_study(load_study(path), progress=False)
    flops = {t.number: t.user_attrs["metrics"]["flops"] for t in result.study.trials}
    big = max(flops, key=flops.get)
    limit = (min(flops.values()) + flops[big]) / 2   # the smaller network fits it, the bigger one does not
    # a run that trains nothing keeps the earlier runs' record: this one runs a third trial under the new limit
    run_study(load_study(path, {"budget.max_flops": limit, "budget.n_trials": 3}), progress=False)
    assert "over this run's architecture budget" in capsys.readouterr().err   # the resume's own warning

    config = export_run(tmp_path / "run", tmp_path / "big", trial_number=big, bootstrap=100)
    assert config["search"]["budget"]["max_flops"] == limit
    assert config["over_budget_now"] == f"flops {flops[big]:.4g} > max_flops {limit:.4g}"
    assert json.loads((tmp_path / "big" / "config.json").read_text())["over_budget_now"] == \
        config["over_budget_now"]
    small = min(flops, key=flops.get)
    assert "over_budget_now" not in export_run(tmp_path / "run", tmp_path / "small", trial_number=small,
                                               bootstrap=100)


# ---------------------------------------------------------------- 7. a report of 4 objectives
def test_a_report_of_four_objectives_says_why_it_has_no_pareto_plot():
    """README promises a sentence for a plot that cannot be drawn; the Pareto section was simply missing."""
    from searchlab.report.figures import study_sections

    study = optuna.create_study(directions=["maximize", "minimize", "minimize", "minimize"])
    for i in range(4):
        study.add_trial(create_trial(values=[0.5 + i / 10, 4 - i, 1e5 * i, 3], params={}, distributions={}))
    sections = {s.title: s.body for s in study_sections(study, ["auc", "flops", "params", "depth"])}
    title = "Pareto front: auc, flops, params, depth"
    assert title in sections
    assert "not drawn: a Pareto plot is drawn for 2 or 3 objectives; this study has 4" in sections[title]
    two = optuna.create_study(directions=["maximize", "minimize"])
    two.add_trial(create_trial(values=[0.5, 1.0], params={}, distributions={}))
    titles = [s.title for s in study_sections(two, ["auc", "flops"])]
    assert "Pareto front: auc vs flops" in titles and not any("not drawn" in t for t in titles)
