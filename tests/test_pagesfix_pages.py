"""What an audit of the report and compare pages in headless Chromium found: importance bars labelled with their
neighbours' names, a 40-axis parallel-coordinates plot, a seed band the mean line ran outside of, a "Share
chart" button that uploads to Plotly Cloud, a page shrunk on a phone, a bagged trial's pooled AUC unexplained,
`--out folder/` written as a file, a lone unlabelled compare curve, and a one-class model the report kept quiet
about. Studies built with Optuna directly or callable studies (tests/fake_tasks.py); one tiny bagged run."""
from __future__ import annotations

import html
import re
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from browser import chromium, console_errors
from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.report.page import figure, page
from test_report_audit import _callable_run
from test_report_audit_fixes import _html_text, _run


def _many_parameter_study(parameters: int = 40, trials: int = 30) -> optuna.Study:
    """p0 alone decides the value; the other parameters are noise."""
    def objective(trial: optuna.Trial) -> float:
        values = [trial.suggest_float(f"p{i:02d}", 0, 1) for i in range(parameters)]
        return values[0]

    optuna.logging.set_verbosity(optuna.logging.WARNING)   # 30 lines of 40 parameters each, unread
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=trials)
    return study


def _opened(driver, path: Path) -> None:
    """The page loaded with the network blocked (it must open offline), once every plot is drawn."""
    from selenium.webdriver.common.by import By

    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*"]})
    driver.get(path.as_uri())
    deadline = time.time() + 30
    while time.time() < deadline:
        divs = driver.find_elements(By.CSS_SELECTOR, "div.plotly-graph-div")
        if all(d.find_elements(By.CSS_SELECTOR, ".main-svg") for d in divs):
            return
        time.sleep(0.2)
    raise AssertionError("the plots were not drawn")


# ---------------------------------------------------------------- 1. importance labels, parallel coordinates
def test_every_importance_bar_has_its_own_label(tmp_path):
    """At plotly's fixed 450 px, 40 bars got 20 tick labels: the top bar read as its neighbour's."""
    from searchlab.report.figures import importance_figure

    fig = importance_figure(_many_parameter_study(), "auc")
    bars = len(fig.data[0].y)
    assert bars == 40 and fig.layout.height >= 20 * bars
    path = tmp_path / "importance.html"
    path.write_text(page("importances", "", [figure("importances", fig)]))
    with chromium() as driver:
        _opened(driver, path)
        labels = driver.execute_script("return [...document.querySelectorAll('.yaxislayer-above .ytick text')]"
                                       ".map(t => t.textContent)")
        assert sorted(labels) == sorted(fig.data[0].y)   # each bar's own name, none skipped
        assert console_errors(driver) == []


def test_a_parallel_coordinates_plot_of_many_parameters_shows_the_most_important_and_says_so():
    from searchlab.report.figures import MAX_AXES, parallel_section

    section = parallel_section(_many_parameter_study(), "auc")
    assert _axes(section.body) == MAX_AXES + 1   # the objective's and each parameter's
    assert f"({MAX_AXES} of 40 parameters, the most important by PED-ANOVA" in section.title
    assert "p00" in section.title.split(": ", 2)[2].split(", ")[0]   # the one that decides the value comes first
    few = parallel_section(_many_parameter_study(parameters=3, trials=5), "auc")
    assert few.title == "Parallel coordinates: auc" and _axes(few.body) == 4   # all, unsaid


def _axes(body: str) -> int:
    """Optuna draws each trial as a line over the axes at x = 0, 1, ...: the axes of the first one."""
    return len(re.search(r'"x":\[([0-9,]+)\]', body)[1].split(","))


# ---------------------------------------------------------------- 2. the seed band holds the mean line
def _polygon_as_drawn(trace) -> list[tuple[float, float]]:
    """The band's outline as plotly draws it: an "hv" shape steps each segment across, then up or down."""
    points = list(zip(trace.x, trace.y))
    if trace.line.shape != "hv":
        return points
    drawn = [points[0]]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        drawn += [(x1, y0), (x1, y1)]
    return drawn


def _band_at(polygon: list[tuple[float, float]], x: float) -> tuple[float, float]:
    """(lowest, highest) y where the closed outline crosses the vertical line at x."""
    crossings = []
    for (x0, y0), (x1, y1) in zip(polygon, polygon[1:] + polygon[:1]):
        if min(x0, x1) <= x <= max(x0, x1) and x0 != x1:
            crossings.append(y0 + (y1 - y0) * (x - x0) / (x1 - x0))
    return min(crossings), max(crossings)


def test_the_seed_band_runs_from_the_min_to_the_max_over_seeds_at_each_trial():
    """The band was closed with a reversed path drawn "hv": its lower edge stepped one trial late, and the mean
    line fell outside its own min-max band."""
    from searchlab.report.compare import Curve
    from searchlab.report.seed_pool import SeedPool, mean_curve, pooled_figure

    pool = SeedPool("tpe, seeds 0, 1", [0, 1], [Curve("a", [1, 2, 3, 4], [1, 2, 3, 4], [0.9, 0.5, 0.5, 0.2]),
                                                Curve("b", [1, 2, 3, 4], [1, 2, 3, 4], [0.8, 0.8, 0.3, 0.3])])
    xs, means, lows, highs = mean_curve(pool)
    band = _polygon_as_drawn(pooled_figure([pool], "loss").data[1])
    for n, low, high, average in zip(xs[:-1], lows, highs, means):
        at = n + 0.5   # between trial n and the next, where the "hv" mean line holds its value of trial n
        assert _band_at(band, at) == (pytest.approx(low), pytest.approx(high)), n
        assert low <= average <= high


# ---------------------------------------------------------------- 3. no upload button; 4. a phone's screen
def test_no_plot_offers_to_upload_its_data_to_plotly_cloud(tmp_path):
    import plotly.graph_objects as go

    path = tmp_path / "page.html"
    path.write_text(page("p", "", [figure("a plot", go.Figure(go.Scatter(x=[1, 2], y=[3, 4])))]))
    with chromium() as driver:
        _opened(driver, path)
        titles = driver.execute_script("return [...document.querySelectorAll('.modebar-btn')]"
                                       ".map(b => b.getAttribute('data-title'))")
        assert titles and "Download plot as a PNG" in titles   # the mode bar is there, without the upload
        assert not [t for t in titles if "Share" in t or "Cloud" in t or "Edit" in t], titles
        assert not driver.execute_script("return document.querySelector('a.js-plot-link-container')")


def test_a_report_is_readable_on_a_400_px_phone(write_study, tmp_path):
    """Without a viewport tag a phone lays the page out 980 px wide and shrinks it, text and all, to 400."""
    from searchlab.report.build import write_report

    run = _callable_run(write_study, tmp_path, "phone", 3)
    path = write_report(run, tmp_path / "report.html")
    with chromium() as driver:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 400, "height": 800, "deviceScaleFactor": 2, "mobile": True})
        _opened(driver, path)
        width, scale, text = driver.execute_script(
            "return [window.innerWidth, visualViewport.scale, getComputedStyle(document.querySelector('p')).fontSize]")
        assert (width, scale, text) == (400, 1, "16px")


# ---------------------------------------------------------------- 5. a bagged trial's pooled AUC
BAG = """
name: bagged
task: classify
space:
  model: {kind: cnn, depth: 1, width: 4, convs_per_stage: 1}
  optim: {lr: 3.0e-3}
  train: {batch_size: 128, cv_folds: 2, cv_model: bag, checkpoint: last}
strategy: random
pruner: none
budget: {n_trials: 1, epochs: 1}
seed: 5
"""


def test_a_bagged_trials_roc_says_its_auc_is_pooled_out_of_fold_and_its_value_a_mean_over_folds(write_study,
                                                                                                 tmp_path):
    from searchlab.engine.rundir import open_run
    from searchlab.report.best_model import model_sections

    run_study(load_study(write_study(BAG)), progress=False)
    run = open_run(tmp_path / "run")
    roc = model_sections(run, run.study.best_trial)[0]
    assert roc.title.startswith("ROC out of fold (train+val)")
    assert "pooled out-of-fold AUC 0." in roc.body   # the legend's
    said = html.unescape(roc.body)
    assert ("The AUC in the legend is of all the out-of-fold predictions pooled" in said
            and "the trial's value is the mean of its per-fold AUCs" in said)


# ---------------------------------------------------------------- 6. --out folder/
def test_an_out_ending_in_a_separator_is_a_folder_for_report_and_compare(write_study, tmp_path, capsys):
    from searchlab.cli import main

    runs = [_callable_run(write_study, tmp_path, name, 2) for name in ("a", "b")]
    assert main(["report", str(runs[0]), "--out", f"{tmp_path / 'pages'}/"]) == 0
    assert (tmp_path / "pages" / "report.html").is_file()
    assert f"report: {tmp_path / 'pages' / 'report.html'}" in capsys.readouterr().out   # said where
    assert main(["compare", *map(str, runs), "--out", f"{tmp_path / 'cmp'}/"]) == 0
    assert (tmp_path / "cmp" / "compare.html").is_file()
    assert f"plot: {tmp_path / 'cmp' / 'compare.html'}" in capsys.readouterr().out
    (tmp_path / "there").mkdir()   # a folder that exists: written into too (it was refused as "a folder")
    assert main(["report", str(runs[1]), "--out", f"{tmp_path / 'there'}/"]) == 0
    assert (tmp_path / "there" / "report.html").is_file()
    assert main(["report", str(runs[1]), "--out", str(tmp_path / "there")]) == 2   # no slash: a file was meant
    assert "is a folder" in capsys.readouterr().err
    # a folder two levels down is made, as for a file (--out no/such/report.html) and export's and sample's --out
    assert main(["report", str(runs[0]), "--out", f"{tmp_path / 'no' / 'such'}/"]) == 0
    assert (tmp_path / "no" / "such" / "report.html").is_file()
    (tmp_path / "afile").write_text("keep")
    assert main(["compare", *map(str, runs), "--out", f"{tmp_path / 'afile'}/"]) == 2
    assert "is a file" in capsys.readouterr().err and (tmp_path / "afile").read_text() == "keep"


# ---------------------------------------------------------------- 7. a run without completed trials in compare
def test_compare_labels_its_curves_and_names_a_run_that_completed_no_trial(write_study, tmp_path):
    from searchlab.report.compare import _plot, compare_runs

    done = _callable_run(write_study, tmp_path, "done", 3)
    failed = _callable_run(write_study, tmp_path, "failed", 2, fn="nan_objective")
    path, curves, _ = compare_runs([done, failed], tmp_path / "compare.html")
    fig = _plot(curves, "trials", "loss")
    assert fig.layout.showlegend is True   # plotly hides the legend of a lone drawn curve
    assert "no completed trial, nothing drawn: failed" in fig.layout.annotations[0].text
    with chromium() as driver:
        _opened(driver, path)
        legends = driver.execute_script("return [...document.querySelectorAll('.legend')].map(l => l.textContent)")
        assert len(legends) == 2 and all("done" in text for text in legends), legends
        assert "no completed trial, nothing drawn: failed" in driver.find_element("tag name", "body").text


# ---------------------------------------------------------------- 8. one class predicted on validation
def _classifier_trial(value: float, sensitivity: float, specificity: float, confusion: list) -> object:
    return create_trial(value=value, user_attrs={
        "task_kind": "binary", "class_names": ["malignant", "normal, benign"], "threshold": 0.5,
        "model_spec": {"architecture": "cnn", "args": {}}, "preprocessing": {}, "config": {}, "ran_with": {"seed": 1},
        "metrics": {"auc": value, "sensitivity": sensitivity, "specificity": specificity}, "confusion": confusion})


def test_the_report_warns_when_the_best_trial_labels_every_validation_image_one_class(tmp_path):
    from searchlab.report.build import report_html

    run = _run(tmp_path, ["maximize"], {"objectives": [["auc", "maximize"]], "seed": 1})
    run.study.add_trial(_classifier_trial(0.60, 0.5, 0.7, [[15, 6], [28, 29]]))
    assert "predicts one class" not in report_html(run)
    run.study.add_trial(_classifier_trial(0.63, 0.0, 1.0, [[21, 0], [57, 0]]))
    text = " ".join(_html_text(report_html(run)).split())
    assert ("Warning: trial 1, drawn below, predicts one class on validation At its threshold (0.5) this model "
            "labels every validation image 'malignant' (sensitivity 0, specificity 1). Fix: train longer") in text
    assert run.study.best_trial.number == 1 and TrialState.COMPLETE == run.study.best_trial.state

