"""searchlab report / compare / dashboard, looked at in a real headless Chromium (tests/browser.py)."""
from __future__ import annotations

import html
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from browser import chromium, console_errors
from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ExportError, SearchlabError
from searchlab.export.exporter import export_run
from searchlab.report.build import write_report
from searchlab.report.compare import compare_runs
from searchlab.report.figures import importance_figure
from searchlab.report.seed_pool import pooled_figure
from test_run import TINY_CLASSIFY, callable_study

MULTI = TINY_CLASSIFY.replace("name: tiny", "name: tiny_mo").replace("n_trials: 2", "n_trials: 4") + \
    "objective: [auc, flops]\n"


def _rendered_plots(driver, page: str) -> tuple[int, int]:
    """(plot divs, plot divs that plotly drew an SVG in) once the page has loaded, with the network blocked:
    a report opens offline (plotly.js is inlined)."""
    from selenium.webdriver.common.by import By

    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*"]})
    driver.get(page)
    deadline = time.time() + 30
    while True:
        divs = driver.find_elements(By.CSS_SELECTOR, "div.plotly-graph-div")
        drawn = [d for d in divs if d.find_elements(By.CSS_SELECTOR, ".main-svg")]
        if len(drawn) == len(divs) or time.time() > deadline:
            return len(divs), len(drawn)
        time.sleep(0.2)


def test_the_report_of_a_run_draws_every_plot_offline_and_says_when_the_export_is_an_ensemble(write_study,
                                                                                            tmp_path):
    from selenium.webdriver.common.by import By

    run_study(load_study(write_study(TINY_CLASSIFY)), progress=False)
    path = write_report(tmp_path / "run", tmp_path / "report.html")
    text = path.read_text()
    titles = ["Optimisation history: auc", "Parallel coordinates: auc", "Parameter importances for auc",
              "Intermediate auc values", "ROC on validation", "Confusion matrix on validation", "Top 2 trials"]
    assert all(title in text for title in titles), [t for t in titles if t not in text]
    assert "only 2 completed trials: a rough guide, as the best 10% is 1 trial(s)" in text
    # before the browser, which skips the rest on a machine without one (report.html is written already)
    _check_the_best_trials_figures_say_when_the_export_is_an_ensemble_with_tta(tmp_path)
    with chromium() as driver:
        divs, drawn = _rendered_plots(driver, path.as_uri())
        rows = driver.find_elements(By.CSS_SELECTOR, "table.sortable tbody tr")
        driver.save_screenshot(str(tmp_path / "report.png"))
        assert divs == drawn == 6 and len(rows) == 2
        assert console_errors(driver) == []


def test_a_multi_objective_study_gets_its_pareto_front_drawn_and_any_member_exported(write_study, tmp_path):
    result = run_study(load_study(write_study(MULTI)), progress=False)
    front = result.study.best_trials
    path = write_report(tmp_path / "run", tmp_path / "mo.html")
    assert "Pareto front: auc vs flops" in path.read_text()
    # the model drawn is one of the front's, said so (its title read as if it were the best)
    assert f"ROC on validation: trial {front[0].number}, one of the {len(front)} trials of the Pareto front" in \
        path.read_text()
    with chromium() as driver:
        divs, drawn = _rendered_plots(driver, path.as_uri())
        driver.save_screenshot(str(tmp_path / "pareto.png"))
        assert divs == drawn and divs >= 4 and console_errors(driver) == []
    config = export_run(tmp_path / "run", tmp_path / "member", trial_number=front[-1].number, bootstrap=100)
    assert config["trial"]["number"] == front[-1].number and (tmp_path / "member" / "weights.safetensors").is_file()
    with pytest.raises(ExportError, match="no single best trial. Fix: pick one of the Pareto front with --trial N"):
        export_run(tmp_path / "run", tmp_path / "nobest")


def test_importances_of_a_maximised_first_objective_name_what_its_best_trials_share():
    # x lifts the maximised objective; y only sinks a tenth of the trials far below. The best trials are those
    # with a high x: x matters for them, and the study with that metric alone says the same.
    def metric(t: optuna.Trial) -> float:
        return t.suggest_float("x", 0, 1) - 5 * (t.suggest_float("y", 0, 1) < 0.1)

    def studied(directions: list[str], objective) -> optuna.Study:
        study = optuna.create_study(directions=directions, sampler=optuna.samplers.RandomSampler(seed=0))
        study.optimize(objective, n_trials=40)
        return study

    bars = importance_figure(studied(["maximize", "minimize"], lambda t: (metric(t), 0.0)), "auc").data[0]
    alone = importance_figure(studied(["maximize"], metric), "auc").data[0]
    shown = dict(zip(bars.y, bars.x))
    assert shown["x"] > 0.5 > shown["y"]
    assert shown == pytest.approx(dict(zip(alone.y, alone.x)))


def test_a_study_without_completed_trials_gets_a_report_saying_so(write_study, tmp_path):
    run_study(load_study(callable_study(write_study, fn="nan_objective", n=2)), progress=False)
    text = write_report(tmp_path / "run").read_text()
    assert "No completed trials" in text and "All trials" in text and text.count("FAIL") >= 2
    assert "<td>None</td>" not in text and "&lt;NA&gt;" not in text   # a failed trial's value: an empty cell


def test_a_folder_without_a_run_is_named_with_what_it_holds(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(SearchlabError, match=r"holds no searchlab run .*found: notes.txt"):
        write_report(tmp_path)
    # a run stopped before it recorded its setup leaves study.db alone: "pass the directory searchlab run printed"
    # named the very folder
    (tmp_path / "study.db").write_bytes(b"")
    with pytest.raises(SearchlabError, match=r"holds a study database but no searchlab.json: a searchlab run stopped "
                                             r".* Fix: run the study again"):
        write_report(tmp_path)


def test_compare_draws_best_so_far_curves_of_several_runs(write_study, tmp_path):
    runs = []
    for strategy in ("random", "tpe"):
        text = callable_study(write_study, n=6).read_text().replace("strategy: random", f"strategy: {strategy}")
        text = text.replace("name: fake", f"name: fake_{strategy}").replace(str(tmp_path / "run"), str(tmp_path / strategy))
        run_study(load_study(write_study(text, name=f"{strategy}.yaml")), progress=False)
        runs.append(tmp_path / strategy)
    path, curves, pools = compare_runs(runs, tmp_path / "compare.html")
    assert pools == []                                                          # one seed each: nothing pooled
    assert [c.label for c in curves] == ["fake_random [random]", "fake_tpe [tpe]"]   # which curve is which strategy
    for curve, run in zip(curves, runs):
        name = curve.label.split(" ")[0]
        values = [t.value for t in optuna.load_study(study_name=name, storage=f"sqlite:///{run / 'study.db'}").trials]
        assert len(curve.best) == 6 and curve.best[-1] == min(values)
        assert all(a >= b for a, b in zip(curve.best, curve.best[1:]))           # minimising: never worse
    with chromium() as driver:
        divs, drawn = _rendered_plots(driver, path.as_uri())
        assert divs == drawn == 2 and console_errors(driver) == []


def test_compare_pools_the_seeds_of_each_strategy(write_study, tmp_path, capsys):
    runs = []
    for strategy, seed in [("random", 0), ("tpe", 0), ("random", 1), ("tpe", 1), ("tpe", 2)]:
        name = f"{strategy}{seed}"
        text = callable_study(write_study, n=5).read_text().replace("strategy: random", f"strategy: {strategy}")
        text = text.replace("name: fake", f"name: {name}").replace(str(tmp_path / "run"), str(tmp_path / name))
        run_study(load_study(write_study(text + f"seed: {seed}\n", name=f"{name}.yaml")), progress=False)
        runs.append(tmp_path / name)
    path, curves, pools = compare_runs(runs, tmp_path / "compare.html")
    assert [p.label for p in pools] == ["random, seeds 0, 1", "tpe, seeds 0, 1, 2"]
    tpe = pools[1]
    finals = [curves[i].best[-1] for i in (1, 3, 4)]
    assert tpe.finals() == finals and tpe.said().startswith(f"tpe, seeds 0, 1, 2: best {sum(finals) / 3:.4f} +- ")
    assert f"({min(finals):.4f} to {max(finals):.4f}) over 3 seeds, 5.0 completed trials on average" in tpe.said()
    text = path.read_text()
    assert "Best loss so far over seeds" in text and "Over seeds" in text
    with chromium() as driver:
        divs, drawn = _rendered_plots(driver, path.as_uri())
        assert divs == drawn == 3
        _each_column_of_the_second_table_sorts_by_itself(driver)
        assert console_errors(driver) == []
    figure = pooled_figure(pools, "loss")
    lines, bands = figure.data[0::2], figure.data[1::2]
    assert [b.line.color for b in bands] == [line.line.color for line in lines]   # each band its own line's
    assert lines[0].line.color != lines[1].line.color
    other = runs[4].with_name("tpe2e")                  # another epochs setting is not pooled with the others
    text = (tmp_path / "tpe2.yaml").read_text().replace("n_trials: 5", "n_trials: 5, epochs: 3")
    run_study(load_study(write_study(text.replace(str(runs[4]), str(other)), name="e.yaml")), progress=False)
    _, _, pools = compare_runs(runs[1::2] + [other], tmp_path / "c2.html")
    assert [p.label for p in pools] == ["tpe, seeds 0, 1"]


def _each_column_of_the_second_table_sorts_by_itself(driver):
    """The page's headers were numbered across its tables: the second table sorted by another column, or threw."""
    from selenium.webdriver.common.by import By

    table = driver.find_elements(By.CSS_SELECTOR, "table.sortable")[1]
    for col, header in enumerate(table.find_elements(By.CSS_SELECTOR, "th")):
        header.click()
        rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        cells = [r.find_elements(By.CSS_SELECTOR, "td")[col].text for r in rows]
        keys = [float(m[0]) if (m := re.match(r"-?\d+(\.\d+)?", c)) else c for c in cells]   # as parseFloat
        assert keys == sorted(keys), (header.text, cells)


def test_mean_curve_of_seeds_carries_a_shorter_runs_final_best_forward():
    """A run's best so far stays after it ends: averaging only the runs that reached each count ended the curve
    at the longest run's own best, labelled the mean."""
    from searchlab.report.compare import Curve
    from searchlab.report.seed_pool import SeedPool, mean_curve

    pool = SeedPool("x", [0, 1], [Curve("a", [1, 2, 3], [1, 2, 3], [0.5, 0.7, 0.9]), Curve("b", [1], [1], [0.6])])
    assert mean_curve(pool) == ([1, 2, 3], [pytest.approx(0.55), pytest.approx(0.65), pytest.approx(0.75)],
                                [0.5, 0.6, 0.6], [0.6, 0.7, 0.9])


def test_compare_refuses_runs_of_different_objectives(write_study, tmp_path):
    run_study(load_study(callable_study(write_study, n=1)), progress=False)
    other = TINY_CLASSIFY.replace("n_trials: 2", "n_trials: 1").replace(str(tmp_path / "run"), str(tmp_path / "c"))
    run_study(load_study(write_study(other + f"\nrun_dir: '{tmp_path / 'c'}'\n", name="c.yaml")), progress=False)
    with pytest.raises(SearchlabError, match=r"different first objectives .*loss \(minimize\).*auc \(maximize\)"):
        compare_runs([tmp_path / "run", tmp_path / "c"], tmp_path / "x.html")


def test_compare_says_when_runs_read_different_data(write_study, tmp_path, capsys):
    runs = []
    for size in (28, 64):
        text = callable_study(write_study, n=1).read_text().replace(str(tmp_path / "run"), str(tmp_path / f"s{size}"))
        text = text.replace("size: 28", f"size: {size}") if "size: 28" in text else text.replace(
            "download: false}", f"download: false, size: {size}}}")
        run_study(load_study(write_study(text.replace("name: fake", f"name: fake{size}"), name=f"s{size}.yaml")),
                  progress=False)
        runs.append(tmp_path / f"s{size}")
    path, _, _ = compare_runs(runs, tmp_path / "compare.html")
    note = capsys.readouterr().err
    assert note.startswith(f"note: these runs read different data ({runs[0]}: size 28; {runs[1]}: size 64), "
                           "so")   # only the settings that differ
    assert "differ by data as well as by strategy" in path.read_text()


def test_compare_says_when_runs_trained_for_other_epochs_or_searched_other_spaces(write_study, tmp_path, capsys):
    runs = []
    for epochs in (1, 2):
        text = callable_study(write_study, n=1).read_text().replace(str(tmp_path / "run"), str(tmp_path / f"e{epochs}"))
        text = text.replace("budget: {n_trials: 1}", f"budget: {{n_trials: 1, epochs: {epochs}}}")
        run_study(load_study(write_study(text.replace("name: fake", f"name: fake{epochs}"), name=f"e{epochs}.yaml")),
                  progress=False)
        runs.append(tmp_path / f"e{epochs}")
    compare_runs(runs, tmp_path / "compare.html")
    assert f"differ in budget.epochs (budget.epochs: {runs[0]}: 1; {runs[1]}: 2), not only in strategy" in \
        capsys.readouterr().err
    with pytest.raises(SearchlabError, match="is given twice"):   # one run twice: refused, not drawn as two
        compare_runs([runs[0], runs[0]], tmp_path / "same.html")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_dashboard_port_is_probed_by_binding_and_a_host_it_cannot_listen_on_is_named(capsys):
    from searchlab.dashboard import free_port

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", _free_port()))
        busy.listen()
        port = busy.getsockname()[1]
        assert free_port("127.0.0.1", port) != port and f"port {port} is in use" in capsys.readouterr().out
    with pytest.raises(SearchlabError, match=r"--host 192.0.2.1: not an address of this machine, so the dashboard "
                                             r"cannot listen on it. Fix: --host 127.0.0.1"):
        free_port("192.0.2.1", 8080)   # TEST-NET-1: never a local address; a connect probe would say "in use"
    with pytest.raises(SearchlabError, match=r"--host 'no-such-host.invalid': not a name or address this machine "
                                             r"can resolve"):
        free_port("no-such-host.invalid", 8080)


def test_a_restarted_dashboard_gets_its_port_back_while_old_connections_wait_out_time_wait(capsys):
    """The probe bound without SO_REUSEADDR: a port a stopped dashboard had served pages on was 'in use'."""
    from searchlab.dashboard import free_port

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            served, _ = server.accept()
            served.close()   # the server's side closes first, so its port waits in TIME_WAIT
            client.recv(1)
    assert free_port("127.0.0.1", port) == port and "in use" not in capsys.readouterr().out


def test_the_last_port_busy_is_an_error_not_a_traceback():
    from searchlab.dashboard import free_port

    with socket.socket() as busy:
        try:
            busy.bind(("127.0.0.1", 65535))
        except OSError:
            pytest.skip("port 65535 is taken on this machine")
        busy.listen()
        with pytest.raises(SearchlabError, match=r"ports 65535\.\.65535 on 127\.0\.0\.1 are all in use"):
            free_port("127.0.0.1", 65535)


def test_the_dashboard_address_brackets_an_ipv6_host():
    from searchlab.dashboard import url

    assert url("127.0.0.1", 8080) == "http://127.0.0.1:8080/" and url("::1", 8096) == "http://[::1]:8096/"


def test_the_dashboard_shows_the_study_and_its_trials_in_chromium_on_loopback(write_study, tmp_path):
    from selenium.webdriver.common.by import By

    run_study(load_study(callable_study(write_study, n=3)), progress=False)
    busy = socket.socket()
    busy.bind(("127.0.0.1", _free_port()))
    busy.listen()
    port = busy.getsockname()[1]
    log = tmp_path / "dashboard.log"
    server = subprocess.Popen([sys.executable, "-c", "import sys; from searchlab.cli import main; sys.exit(main())",
                               "dashboard", str(tmp_path / "run"), "--port", str(port)],
                              stdout=log.open("w"), stderr=subprocess.STDOUT)
    try:
        served = _wait_for_listening(log, seconds=60)
        assert f"port {port} is in use" in log.read_text() and served.startswith("http://127.0.0.1:")
        with chromium() as driver:
            driver.get(served.rstrip("/") + "/dashboard/studies/1/trials")
            _wait_for_text(driver, "3 Trials")
            body = driver.find_element(By.TAG_NAME, "body").text
            driver.save_screenshot(str(tmp_path / "dashboard.png"))
            assert "fake" in body and "3 Trials" in body
            assert console_errors(driver) == []
    finally:
        server.terminate()
        server.wait(timeout=30)
        busy.close()


def _wait_for_listening(log: Path, seconds: float) -> str:
    deadline = time.time() + seconds
    while time.time() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("optuna-dashboard for") and " at " in line:
                url = line.split(" at ")[1].split()[0]
                host, port = url.removeprefix("http://").rstrip("/").split(":")
                try:
                    socket.create_connection((host, int(port)), timeout=1).close()
                    return url
                except OSError:
                    pass
        time.sleep(0.2)
    raise AssertionError(f"the dashboard did not start: {log.read_text()}")


def _wait_for_text(driver, text: str, seconds: float = 30) -> None:
    from selenium.webdriver.common.by import By

    deadline = time.time() + seconds
    while text not in driver.find_element(By.TAG_NAME, "body").text:
        assert time.time() < deadline, f"'{text}' never appeared"
        time.sleep(0.2)



def test_what_optuna_warns_while_drawing_a_plot_is_said_under_it_not_on_the_terminal(capsys):
    import warnings

    import plotly.graph_objects as go

    from searchlab.report.figures import _plot

    def draw():
        warnings.warn("Trial 3 is omitted in visualization because its objective value is inf or nan.", UserWarning)
        return go.Figure()

    section = _plot("Optimisation history: auc", draw)
    assert "Trial 3 is omitted in visualization" in section.body and 'class="note"' in section.body
    assert capsys.readouterr().err == ""
    assert "not drawn: no" in _plot("x", lambda: (_ for _ in ()).throw(ValueError("no"))).body


def test_compare_search_time_leaves_out_the_gap_before_a_resumed_run():
    """Two trials, a five-minute pause, two more: the curve's seconds count the 8 s of trials, not the pause
    (a resumed random search was drawn 50 times slower than TPE)."""
    from datetime import datetime, timedelta
    from types import SimpleNamespace

    from optuna.trial import create_trial

    from searchlab.report.compare import best_so_far

    study = optuna.create_study(direction="maximize")
    t0 = datetime(2026, 1, 1)
    for start, seconds, value in ((0, 2, 0.6), (1, 2, 0.7), (300, 2, 0.65), (303, 3, 0.8)):   # 0-3, 300-302, 303-306
        trial = create_trial(value=value)
        trial.datetime_start, trial.datetime_complete = t0 + timedelta(seconds=start), \
            t0 + timedelta(seconds=start + seconds)
        study.add_trial(trial)
    curve = best_so_far(SimpleNamespace(study=study), "r")
    assert curve.seconds == pytest.approx([2, 3, 5, 8]) and curve.best == [0.6, 0.7, 0.7, 0.8]
    stage = (t0 - timedelta(seconds=60)).timestamp(), (t0 - timedelta(seconds=10)).timestamp()
    study.set_user_attr("searchlab:stage_spans", [list(stage)])   # zen_nas scored for 50 s before trial 0
    staged = best_so_far(SimpleNamespace(study=study), "r")
    assert staged.seconds == pytest.approx([52, 53, 55, 58])


def _check_the_best_trials_figures_say_when_the_export_is_an_ensemble_with_tta(tmp_path):
    """The report drew the best trial alone under a title read as the exported model's (an ensemble, TTA).
    On the run of the offline report's test (one run serves both), after that report was drawn."""
    from searchlab.engine.rundir import open_run
    from searchlab.report.build import report_html

    export_run(tmp_path / "run", tmp_path / "run" / "best", bootstrap=100, top_k=2, tta="flip")
    best = open_run(tmp_path / "run").study.best_trial.number
    text = report_html(open_run(tmp_path / "run"))
    assert (f"ROC on validation: trial {best} alone, the study's best trial; the export in "
            f"{tmp_path / 'run' / 'best'} is the ensemble of trials ") in html.unescape(text)
    assert "with test-time augmentation 'flip', not drawn here" in html.unescape(text)
    export_run(tmp_path / "run", tmp_path / "run" / "best", bootstrap=100)   # the best trial as drawn: nothing said
    assert "the export in" not in report_html(open_run(tmp_path / "run"))


def test_a_dashboard_on_a_public_address_warns_it_has_no_login(write_study, monkeypatch, capsys, tmp_path):
    import optuna_dashboard

    from searchlab.dashboard import serve

    run_study(load_study(callable_study(write_study, n=1)), progress=False)
    served = []
    monkeypatch.setattr(optuna_dashboard, "run_server", lambda storage, **kwargs: served.append(kwargs["host"]))
    serve(tmp_path / "run", host="127.0.0.1", port=_free_port())
    assert "warning" not in capsys.readouterr().err
    serve(tmp_path / "run", host="0.0.0.0", port=_free_port())
    assert "warning: --host 0.0.0.0: other machines that reach this one can open the dashboard, with no login" in \
        capsys.readouterr().err and served == ["127.0.0.1", "0.0.0.0"]
