"""What `report`, `status` and a run's progress lines left unsaid about failed, cut-short and GAN trials (an audit
of GAN users, classify studies alike): failures listed only when none completed, a multi-objective top table of
the front alone, MedFID never said to be measured in the study's own feature network, bare sample grids, and
trials the timeout cut short said only when among the best. Studies are built with Optuna directly, with the
user attrs searchlab writes."""
from __future__ import annotations

import html
import re
from pathlib import Path

import optuna
from optuna.trial import TrialState, create_trial

from searchlab.engine.rundir import OpenRun

TIMEOUT = ("exceeded budget.trial_timeout=60 s: its worker process was killed (a hang, or a trial slower than "
           "the limit)")
GAN_CUT = "stopped by budget.timeout at iteration 122 of 300"
SUSPECT = "copies training images: 40% of its samples are near-copies of one"
GAN_RECORD = {"objectives": [["medfid", "minimize"]], "task": {"kind": "generate", "features": None}}


def _run(tmp_path: Path, directions: list[str], record: dict) -> OpenRun:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=url, study_name="s", directions=directions)
    study.set_user_attr("searchlab", record)
    (tmp_path / "artifacts").mkdir(exist_ok=True)
    return OpenRun(tmp_path, study, url, tmp_path / "artifacts")


def _gan_trial(value: float, **attrs) -> optuna.trial.FrozenTrial:
    generator = {"family": "dcgan", "image_size": 28, "channels": 1, "class_names": ["benign", "malignant"],
                 "args": {"latent": 64, "width": 32, "n_classes": 2}}
    return create_trial(value=value, user_attrs={"generator": generator, "medfid_features": "ab12",
                                                 "metrics": {"medfid": value}, **attrs})


def _html_text(html_page: str) -> str:
    """The page's text with its tags (and the inlined plotly.js) left out."""
    body = html_page.split("<body>", 1)[1]
    return html.unescape(re.sub(r"<script>.*?</script>|<[^>]+>", " ", body, flags=re.S))


# ---------------------------------------------------------------- 1. failures listed when some completed
def test_the_report_lists_failed_trials_by_reason_though_a_trial_completed(tmp_path):
    """With 1 complete and 6 failed (trial_timeout) trials the report said only "7 trials (1 complete, 6 fail)":
    the reasons were listed only when no trial completed."""
    from searchlab.report.build import report_html

    run = _run(tmp_path, ["maximize"], {"objectives": [["auc", "maximize"]]})
    run.study.add_trial(create_trial(value=0.8))
    for _ in range(5):
        run.study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"error": TIMEOUT}))
    run.study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"error": "diverged: loss became nan"}))
    page = report_html(run)
    assert "Failed trials: 6, by reason" in page
    text = " ".join(_html_text(page).split())
    assert f"5 {TIMEOUT} 1, 2, 3, 4, 5" in text
    assert "1 diverged: loss became nan 6" in text


def test_failure_reasons_that_differ_only_in_their_numbers_are_one_row(tmp_path):
    """Three out-of-memory failures ("Tried to allocate 548 / 715 / 602 MiB") were three rows of 1."""
    from searchlab.report.build import report_html

    run = _run(tmp_path, ["maximize"], {"objectives": [["auc", "maximize"]]})
    for mib in (548, 715, 602):
        run.study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={
            "error": f"OutOfMemoryError: CUDA out of memory. Tried to allocate {mib}.00 MiB"}))
    run.study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"error": "ValueError: bad width"}))
    text = " ".join(_html_text(report_html(run)).split())
    assert ("3 OutOfMemoryError: CUDA out of memory. Tried to allocate 548.00 MiB (their numbers differ) 0, 1, 2"
            in text)
    assert "1 ValueError: bad width 3" in text


def test_the_reports_failures_leave_out_attempts_run_again_as_retries(tmp_path):
    from searchlab.report.build import report_html

    run = _run(tmp_path, ["maximize"], {"objectives": [["auc", "maximize"]]})
    run.study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"error": "interrupted"}))
    run.study.add_trial(create_trial(value=0.8, user_attrs={"retry_of": 0}))
    run.study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"error": TIMEOUT}))
    page = report_html(run)
    assert ("Failed trials: 1, by reason (each one&#x27;s in the error column of searchlab trials; 1 more failed "
            "attempt(s) were run again as retries, listed below)") in page
    assert ">interrupted<" not in page.split("Failed trials", 1)[1].split("</table>", 1)[0]


# ---------------------------------------------------------------- 2. the top table beyond the front
def test_a_multi_objective_top_table_lists_the_front_then_the_other_completed_trials(tmp_path):
    """With 3 completed trials it said "Top 1 trials" at --top 20: the dominated (here cut short) trials were
    nowhere in the report."""
    from searchlab.report.build import report_html

    run = _run(tmp_path, ["maximize", "minimize"], {"objectives": [["auc", "maximize"], ["flops", "minimize"]]})
    run.study.add_trial(create_trial(values=[0.7, 3e5]))
    run.study.add_trial(create_trial(values=[0.9, 1e5]))   # dominates both others
    run.study.add_trial(create_trial(values=[0.8, 2e5], user_attrs={"cut_short": "stopped by budget.timeout after "
                                                                               "3 of 10 epochs"}))
    page = report_html(run, top=20)
    assert "Top 3 trials: the 1 of the Pareto front first (on_front), then the other completed trials" in page
    table = page[page.index("Top 3 trials"):]
    assert "<th>on_front</th>" in table
    rows = re.findall(r"<tr>\s*<td>(\d+)</td>\s*<td>COMPLETE</td>\s*<td>(yes|no)</td>", table)
    assert rows == [("1", "yes"), ("2", "no"), ("0", "no")]
    assert "stopped by budget.timeout after 3 of 10 epochs" in table
    assert "Top 1 trials: of the 1 of the Pareto front (on_front) by auc" in report_html(run, top=1)


# ---------------------------------------------------------------- 3. what MedFID is measured with
def test_a_gan_report_and_status_say_medfid_is_measured_in_the_studys_own_feature_network(tmp_path, capsys):
    """Neither said MedFID and KID are measured with a classifier of the study's own images, not Inception: its
    numbers were read as published FIDs."""
    from searchlab.report.build import report_html
    from searchlab.summary import print_status

    run = _run(tmp_path, ["minimize"], GAN_RECORD)
    run.study.add_trial(_gan_trial(40.0))
    text = " ".join(_html_text(report_html(run)).split())
    said = "not ImageNet's Inception: not comparable with published FID/KID values"
    assert "a small classifier trained on this study's own images" in text and said in text
    print_status(run, 3)
    lines = [line for line in capsys.readouterr().out.splitlines() if "feature space" in line]
    assert len(lines) == 1 and said in lines[0]


def test_a_classify_report_says_nothing_of_a_feature_network(tmp_path, capsys):
    from searchlab.report.build import report_html
    from searchlab.summary import print_status

    run = _run(tmp_path, ["maximize"], {"objectives": [["auc", "maximize"]]})
    run.study.add_trial(create_trial(value=0.8))
    assert "Inception" not in report_html(run)
    print_status(run, 3)
    assert "Inception" not in capsys.readouterr().out


# ---------------------------------------------------------------- 4. sample grids that say what they are
def test_a_sample_grid_is_captioned_and_a_conditional_ones_rows_named(tmp_path):
    """The caption said only "trial 2", and a conditional grid's rows had no class: the family, the score,
    a cut short or suspect trial and which row is which class were nowhere beside it."""
    from searchlab.report.build import report_html

    run = _run(tmp_path, ["minimize"], GAN_RECORD)
    (tmp_path / "artifacts" / "grid0").write_bytes(b"\x89PNG\r\n\x1a\n")   # inlined as it is, not decoded
    run.study.add_trial(_gan_trial(41.25, samples="grid0", cut_short=GAN_CUT, suspect=SUSPECT))
    page = report_html(run)
    grids = page[page.index("Generated samples of the best trials"):]
    caption = html.unescape(re.search(r"<figcaption>(.*?)</figcaption>", grids).group(1))
    assert caption == ("trial 0, dcgan: medfid 41.25; cut short by budget.timeout at iteration 122 of 300; "
                       f"suspect: {SUSPECT}")
    assert '<div class="rows"><div>benign</div><div>malignant</div></div><img class="grid"' in grids


def test_an_unconditional_grid_has_no_row_names():
    from searchlab.report.best_model import grid_rows

    trial = _gan_trial(40.0)
    trial.user_attrs["generator"]["args"]["n_classes"] = 0
    assert grid_rows(trial) == []


# ---------------------------------------------------------------- 5. cut-short trials counted and logged
def test_status_counts_the_trials_cut_short_by_the_timeout(tmp_path, capsys):
    """`status` said a trial was cut short only when it was among the best listed: 3 of 4 cut short read as
    4 trials trained alike."""
    from searchlab.summary import print_status

    run = _run(tmp_path, ["minimize"], GAN_RECORD)
    run.study.add_trial(_gan_trial(30.0))
    for value in (50.0, 60.0, 70.0):
        run.study.add_trial(_gan_trial(value, cut_short=GAN_CUT))
    print_status(run, 1)
    out = capsys.readouterr().out
    assert (f"  (3 of the 4 complete trials were cut short by budget.timeout, so trained less than the others, "
            f"e.g. trial 1: {GAN_CUT}; `searchlab trials {tmp_path}` shows each one's in its cut_short column)") in out
    assert "trial 1: value" not in out   # not among the best listed, counted all the same
    (tmp_path / "alone").mkdir()
    alone = _run(tmp_path / "alone", ["minimize"], GAN_RECORD)   # "1 of the 1 ... less than the others": none
    alone.study.add_trial(_gan_trial(50.0, cut_short=GAN_CUT))
    print_status(alone, 1)
    assert ("  (the 1 complete trial was cut short by budget.timeout, so trained less than its config asked, "
            f"e.g. trial 0: {GAN_CUT};") in capsys.readouterr().out


def test_the_progress_line_of_a_trial_cut_short_says_so(capsys):
    """It said `trial 3 complete: 52.1000 [...]` as of a trial that trained its 300 iterations."""
    from searchlab.engine.progress import Progress

    study = optuna.create_study()
    progress = Progress(study, total=3)
    study.add_trial(create_trial(value=52.1, user_attrs={"cut_short": GAN_CUT}))
    study.add_trial(create_trial(value=0.75, user_attrs={"cut_short": "stopped by budget.timeout after 3 of 10 "
                                                                      "epochs (kept its best, best_epoch 2, "
                                                                      "counted from 0)"}))
    study.add_trial(create_trial(value=0.5))
    for trial in study.trials:
        progress.callback(study, trial)
    progress.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("trial 0 complete (cut short by budget.timeout at iteration 122 of 300): 52.1000 [1/3")
    assert lines[1].startswith("trial 1 complete (cut short by budget.timeout after 3 of 10 epochs): 0.7500 [2/3")
    assert lines[2].startswith("trial 2 complete: 0.5000 [3/3")
