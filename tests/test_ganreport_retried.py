"""What `searchlab report` said of a GAN study stopped (SIGTERM) mid-run and resumed (an audit): its header counted
"19 trials (12 complete, 3 fail, 4 pruned)" but it listed no failure, the failed attempts' configs having run again
(status said "trial 8: interrupted (SIGTERM); its config re-ran as trial 11"), and its pruned trials were said to be
in an over_budget column that a GAN study's `searchlab trials` has not. Studies are built with Optuna directly, with
the user and system attrs an interrupted-and-resumed run leaves (engine/recovery.py, engine/storage.py RetryLost)."""
from __future__ import annotations

import html
import re
from pathlib import Path

import optuna
from optuna.trial import TrialState, create_trial

from searchlab.engine.rundir import OpenRun
from test_report_audit_fixes import GAN_RECORD, _gan_trial, _run

STOPPED = "interrupted (SIGTERM)"   # signals.interruption_message of a trial stopped by a SIGTERM


def _gan_run(tmp_path: Path) -> OpenRun:
    tmp_path.mkdir(exist_ok=True)
    return _run(tmp_path, ["minimize"], GAN_RECORD)


def _stopped(**attrs) -> optuna.trial.FrozenTrial:
    """A trial a SIGTERM stopped mid-run: FAIL, its error said by the stop's signal (`attrs`: a retry's)."""
    user_attrs = {"error": STOPPED, "ran_with": {"seed": 7, "study_seed": 0, "torch_threads": 2},
                  **attrs.get("user_attrs", {})}
    return create_trial(state=TrialState.FAIL, user_attrs=user_attrs, system_attrs=attrs.get("system_attrs", {}))


def _retry_attrs(of: int, history: list[int] | None = None) -> dict:
    """The attrs RetryLost gives the trial that runs an interrupted trial's config again."""
    history = history or [of]
    return {"user_attrs": {"retry_of": of}, "system_attrs": {"failed_trial": history[0], "retry_history": history}}


def _add_retry(study: optuna.Study, of: int, value: float | None, history: list[int] | None = None) -> None:
    attrs = _retry_attrs(of, history)
    if value is None:   # still queued, as a resume leaves it before it runs
        study.add_trial(create_trial(state=TrialState.WAITING, **attrs))
        return
    user_attrs = _gan_trial(value, **attrs["user_attrs"]).user_attrs
    study.add_trial(create_trial(value=value, user_attrs=user_attrs, system_attrs=attrs["system_attrs"]))


def _stopped_and_resumed(tmp_path: Path) -> OpenRun:
    """The audit's study: 19 trials (12 complete, 3 fail, 4 pruned); trials 8, 9 and 10 stopped by a SIGTERM, and
    their configs re-ran as 11, 12 and 13 when the study was run again."""
    run = _gan_run(tmp_path)
    for k in range(8):
        run.study.add_trial(_gan_trial(60.0 - k))
    for _ in range(3):
        run.study.add_trial(_stopped())
    for of in (8, 9, 10):
        _add_retry(run.study, of, 45.0 + of)
    for evaluations, medfid in ((2, 88.1), (2, 91.7), (3, 79.4), (2, 95.0)):
        run.study.add_trial(create_trial(state=TrialState.PRUNED, value=medfid, user_attrs={
            "pruned": f"pruned by the pruner after {evaluations} evaluation(s), at medfid={medfid:.4f}"}))
    run.study.add_trial(_gan_trial(41.0))
    return run


def _text(page: str) -> str:
    """The page's text with its tags (and the inlined plotly.js) left out, its spaces folded."""
    body = page.split("<body>", 1)[1]
    return " ".join(html.unescape(re.sub(r"<script>.*?</script>|<[^>]+>", " ", body, flags=re.S)).split())


def test_a_resumed_studys_report_lists_its_interrupted_attempts_as_status_says_them(tmp_path, capsys):
    from searchlab.report.build import report_html
    from searchlab.summary import print_status

    run = _stopped_and_resumed(tmp_path)
    text = _text(report_html(run))
    assert "19 trials (12 complete, 3 fail, 4 pruned)" in text
    assert "Failed trials whose configs ran again: 3" in text
    for failed, retry in ((8, 11), (9, 12), (10, 13)):
        assert f"trial {failed}: interrupted (SIGTERM); its config re-ran as trial {retry}" in text
    assert "Failed trials:" not in text.replace("Failed trials whose", "")   # no failed config: no reasons table
    # status's own words for one such trial, said beside its counts
    one = _gan_run(tmp_path / "one")
    one.study.add_trial(_stopped())
    _add_retry(one.study, 0, 50.0)
    print_status(one, 1)
    said = capsys.readouterr().out.splitlines()[0].split("1 fail (", 1)[1].removesuffix(")")
    assert said == "trial 0: interrupted (SIGTERM); its config re-ran as trial 1"
    assert said in _text(report_html(one))


def test_a_retry_queued_or_itself_interrupted_is_said_as_status_says_it(tmp_path):
    """A config stopped twice (trial 1, its retry 2) and queued again (3), beside a config that failed of its
    own (trial 0): the reasons table keeps the failed config, and the attempts run again are listed after it."""
    from searchlab.report.build import report_html

    run = _gan_run(tmp_path)
    run.study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"error": "diverged: loss became nan"}))
    run.study.add_trial(_stopped())
    run.study.add_trial(_stopped(**_retry_attrs(1)))   # trial 1's retry, stopped in its turn
    _add_retry(run.study, 2, None, history=[1, 2])
    page = report_html(run)
    text = _text(page)
    assert "Failed trials: 1, by reason" in text and "1 diverged: loss became nan 0" in text
    assert "Failed trials whose configs ran again: 2" in text
    assert "trial 1: interrupted (SIGTERM); its config re-ran as trial 2" in text
    assert "trial 2: interrupted (SIGTERM); its config is queued to run again as trial 3" in text
    assert page.index("Failed trials: 1") < page.index("Failed trials whose configs ran again")


def test_many_retried_attempts_are_listed_up_to_a_cap(tmp_path):
    from searchlab.report import build

    run = _gan_run(tmp_path)
    stopped = build.RETRIES_LISTED + 3
    for _ in range(stopped):
        run.study.add_trial(_stopped())
    for of in range(stopped):
        _add_retry(run.study, of, 50.0)
    text = _text(build.report_html(run))
    assert f"Failed trials whose configs ran again: {stopped}" in text
    assert f"trial {build.RETRIES_LISTED - 1}: interrupted" in text and f"trial {build.RETRIES_LISTED}: " not in text
    assert "... and 3 more (searchlab trials lists them all)" in text


def test_a_gan_reports_pruned_title_names_only_the_columns_its_trials_table_has(tmp_path):
    from searchlab.report.build import report_html
    from searchlab.trials_table import trial_table

    run = _stopped_and_resumed(tmp_path)
    columns = set(trial_table(run).columns)
    assert "pruned" in columns and "over_budget" not in columns   # what a GAN study's table has
    text = _text(report_html(run))
    assert "Pruned trials: 4, by reason (each one's in the pruned column of searchlab trials)" in text
    assert "over_budget" not in text


def test_a_gan_study_with_no_completed_trial_names_only_its_tables_columns(tmp_path):
    from searchlab.report.build import report_html

    run = _gan_run(tmp_path)
    run.study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"error": "diverged: loss became nan"}))
    run.study.add_trial(create_trial(state=TrialState.PRUNED, value=90.0, user_attrs={
        "pruned": "pruned by the pruner after 2 evaluation(s), at medfid=90.0000"}))
    text = _text(report_html(run))
    assert "look at the trials below (their error and pruned columns say why)" in text
    assert "over_budget" not in text
