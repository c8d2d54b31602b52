"""What an audit of `searchlab report` and `searchlab compare` pages found: a seed pool's mean curve that ended at
one seed's value, runs of other objectives (or one run twice) compared unsaid, pruned trials never explained, a
figure heading that named test-time augmentation no export used, metrics not said to be validation scores of
which positive class, and a long study name overflowing the heading. Callable studies (tests/fake_tasks.py) or
studies built with Optuna directly: no training."""
from __future__ import annotations

import json
import re
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import SearchlabError
from searchlab.report.compare import Curve, compare_runs
from searchlab.report.seed_pool import SeedPool, mean_curve
from test_report_audit_fixes import _html_text, _run
from test_run import callable_study


def _callable_run(write_study, tmp_path: Path, name: str, n: int, extra: str = "", fn: str = "quadratic") -> Path:
    text = callable_study(write_study, fn=fn, n=n).read_text().replace("name: fake", f"name: {name}")
    text = text.replace(str(tmp_path / "run"), str(tmp_path / name)) + extra
    run_study(load_study(write_study(text, name=f"{name}.yaml")), progress=False)
    return tmp_path / name


def _text(page: str) -> str:
    return " ".join(_html_text(page).split())


# ---------------------------------------------------------------- 1. seed pools of runs of other lengths
def test_a_seed_pools_mean_curve_carries_a_shorter_runs_final_best_forward():
    """Averaged over the runs that reached n only, the last point was one seed's value, labelled mean."""
    pool = SeedPool("x", [0, 1], [Curve("a", [1, 2, 3], [1, 2, 3], [0.5, 0.7, 0.9]), Curve("b", [1], [1], [0.6])])
    assert mean_curve(pool) == ([1, 2, 3], [pytest.approx(0.55), pytest.approx(0.65), pytest.approx(0.75)],
                                [0.5, 0.6, 0.6], [0.6, 0.7, 0.9])


def test_compares_pooled_curve_ends_at_the_tables_mean_best_and_says_each_runs_trials(write_study, tmp_path):
    """One budget, but the seeds' failures leave each run its own count of completed trials."""
    runs = [_callable_run(write_study, tmp_path, f"seed{seed}", 12, f"seed: {seed}\n", fn="fails_when_positive")
            for seed in (0, 1, 2)]
    path, curves, pools = compare_runs(runs, tmp_path / "compare.html")
    counts = [len(c.best) for c in curves]
    assert len(set(counts)) > 1, counts   # the case: runs of other lengths
    _, means, lows, highs = mean_curve(pools[0])
    average, _, low, high = pools[0].spread()
    assert len(means) == max(counts) and (means[-1], lows[-1], highs[-1]) == (pytest.approx(average), low, high)
    text = _text(path.read_text())
    assert f"completed trials per run (random, seeds 0, 1, 2: {', '.join(map(str, counts))})" in text
    assert "carried forward to the longest run's length" in text


# ---------------------------------------------------------------- 2. other objectives; one run twice
def test_compare_warns_when_a_multi_objective_run_is_beside_a_single_objective_one(write_study, tmp_path, capsys):
    single = _callable_run(write_study, tmp_path, "single", 2)
    both = ("objective: [{metric: loss, direction: minimize}, {metric: x_abs, direction: minimize}]\n")
    text = callable_study(write_study, n=2).read_text().replace("name: fake", "name: multi")
    text = re.sub(r"objective: \{metric: loss, direction: minimize\}\n", both, text)
    run_study(load_study(write_study(text.replace(str(tmp_path / "run"), str(tmp_path / "multi")),
                                     name="multi.yaml")), progress=False)
    path, _, _ = compare_runs([single, tmp_path / "multi"], tmp_path / "compare.html")
    page = _text(path.read_text())
    assert (f"Warning: these runs optimise different objectives ({single}: loss (minimize); {tmp_path / 'multi'}: "
            "loss (minimize), x_abs (minimize)); only the first, loss, is compared") in page
    assert "one end of its Pareto front, traded against its other objectives" in page
    assert "warning: these runs optimise different objectives" in capsys.readouterr().err


def test_compare_refuses_one_run_folder_given_twice(write_study, tmp_path, capsys):
    from searchlab.cli import main

    run = _callable_run(write_study, tmp_path, "once", 2)
    with pytest.raises(SearchlabError, match=rf"run folder {re.escape(str(run.resolve()))} is given twice"):
        compare_runs([run, Path(str(run) + "/")], tmp_path / "compare.html")
    assert main(["compare", str(run), str(run / ".." / "once"), "--out", str(tmp_path / "c.html")]) == 2
    assert "is given twice" in capsys.readouterr().err
    assert not (tmp_path / "c.html").exists()


# ---------------------------------------------------------------- 3. pruned trials by reason
def test_the_report_lists_pruned_trials_by_reason(tmp_path):
    from searchlab.report.build import report_html

    run = _run(tmp_path, ["maximize"], {"objectives": [["auc", "maximize"]]})
    run.study.add_trial(create_trial(value=0.8))
    for epochs, auc in ((3, 0.7123), (5, 0.6410)):
        run.study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={
            "pruned": f"pruned by the pruner after {epochs} epoch(s), at auc={auc}"}))
    run.study.add_trial(create_trial(state=TrialState.PRUNED, user_attrs={
        "over_budget": "over budget: flops 1.5e+08 > max_flops 3e+07"}))
    run.study.add_trial(create_trial(state=TrialState.PRUNED))
    page = report_html(run)
    assert "Pruned trials: 4, by reason" in page
    text = _text(page)
    assert "2 pruned by the pruner after 3 epoch(s), at auc=0.7123 (their numbers differ) 1, 2" in text
    assert "1 over budget: flops 1.5e+08 > max_flops 3e+07 3" in text
    assert "1 no reason stored 4" in text


# ---------------------------------------------------------------- 4. the figures' heading beside an export
def _export_folder(tmp_path: Path, config: dict) -> Path:
    folder = tmp_path / "best"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"format": "searchlab-classifier-1", **config}))
    return folder


def test_the_figures_of_one_trial_beside_an_export_of_another_say_only_that(tmp_path):
    from searchlab.report.best_model import _unlike_the_export

    folder = _export_folder(tmp_path, {"trial": {"number": 2, "study": "s"}, "tta": "none"})
    said = _unlike_the_export(folder, create_trial(value=0.9))
    assert said == f", the study's best trial; the export in {folder} is trial 2 of study 's', not drawn here"
    assert "augmentation" not in said and "alone" not in said
    assert _unlike_the_export(folder, create_trial(value=0.9), front=3) == (
        f"; the export in {folder} is trial 2 of study 's', not drawn here")


def test_the_figures_of_the_exported_trial_with_tta_say_only_the_tta(tmp_path):
    from searchlab.report.best_model import _unlike_the_export

    folder = _export_folder(tmp_path, {"trial": {"number": 0, "study": "s"}, "tta": "flip"})
    trial = create_trial(value=0.9)
    trial.number = 0
    said = _unlike_the_export(folder, trial)
    assert said == f" without test-time augmentation (the export in {folder} is this trial with test-time " \
                   "augmentation 'flip')"


def test_the_figures_beside_an_ensemble_export_say_alone_and_the_ensemble(tmp_path):
    from searchlab.report.best_model import _unlike_the_export

    folder = _export_folder(tmp_path, {"trials": [{"number": 0, "study": "s"}, {"number": 3, "study": "s"}]})
    assert _unlike_the_export(folder, create_trial(value=0.9)) == (
        f" alone, the study's best trial; the export in {folder} is the ensemble of trials 0, 3 of study 's', not "
        "drawn here")


# ---------------------------------------------------------------- 5. validation scores, of which class
def test_the_report_says_its_metrics_are_validation_scores_of_the_positive_class(tmp_path):
    from searchlab.report.build import report_html

    run = _run(tmp_path, ["maximize"], {"objectives": [["sensitivity", "maximize"]]})
    run.study.add_trial(create_trial(value=0.9649, user_attrs={
        "task_kind": "binary", "class_names": ["malignant", "normal, benign"], "cv_folds": 5}))
    text = _text(report_html(run))
    assert ("scored on the validation split (cross-validated trials: the mean over their folds), never on test"
            in text)
    # precision, recall and F1 are macro averages (metrics.py): said as about class 1, they were quoted as its own
    assert ("Positive class: normal, benign (class 1): sensitivity and average precision are about it, specificity "
            "about malignant; precision, recall and F1 average both classes (metrics.py); data.positive_class "
            "chooses it.") in text


def test_a_callable_studys_report_says_nothing_of_validation_or_classes(tmp_path):
    from searchlab.report.build import report_html

    run = _run(tmp_path, ["minimize"], {"objectives": [["loss", "minimize"]]})
    run.study.add_trial(create_trial(value=0.1))
    text = _text(report_html(run))
    assert "validation split" not in text and "Positive class" not in text


# ---------------------------------------------------------------- 6. long names; traced trials counted
def test_a_long_study_name_wraps_in_the_heading():
    from searchlab.report.page import page

    assert "h1,code{overflow-wrap:anywhere}" in page("x" * 110, "", [])


def test_the_intermediate_values_heading_counts_the_completed_trials_drawn():
    from searchlab.report.figures import drawn_said, traced_trials

    reported = [create_trial(value=float(i), intermediate_values={0: float(i)}) for i in range(71)]
    reported += [create_trial(state=TrialState.PRUNED, intermediate_values={0: 1.0}) for _ in range(379)]
    for number, trial in enumerate(reported):
        trial.number = number
    drawn = traced_trials(reported, optuna.study.StudyDirection.MAXIMIZE)
    said = drawn_said(drawn, reported)
    assert said.startswith("; 400 of 450 trials: all 71 completed and an even spread of the rest by number")
    assert "100 best" not in said
