"""`searchlab report RUN [--out report.html]`: one self-contained HTML file about a run.

Optimisation history, Pareto front (several objectives), parallel coordinates, parameter importances,
per-epoch curves, the best trial's ROC curve and confusion matrix on validation data, GAN sample grids, and
a sortable table of the top trials. A study without completed trials gets a report saying so.
"""
from __future__ import annotations

import html
import json
from collections.abc import Collection
from pathlib import Path

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from searchlab.engine.run_history import latest_start_warnings
from searchlab.engine.rundir import OpenRun, open_run
from searchlab.errors import shown_url
from searchlab.report.best_model import model_sections, one_class_warning, sample_grids, thresholds_said
from searchlab.report.figures import study_sections
from searchlab.report.page import Section, note, page
from searchlab.summary import best_trials, state_counts
from searchlab.summary_front import (failures_by_reason, feature_network_said, front_by_first_objective,
                                     pruned_by_reason, retried_failures, retry_said)
from searchlab.trials_table import per_class_named, trial_table
from searchlab.whole_file import out_file, refuse_file_as_folder, write_whole

TOP_TRIALS = 20


def write_report(target: str | Path, out: str | Path | None = None, top: int = TOP_TRIALS,
                 trust_spaces: Collection[str] = (), command: str | None = None) -> Path:
    """`trust_spaces`: the NNI model spaces ("module:Class") the user names (--trust-space); the best trial's
    ROC curve and confusion matrix need its network built, and one built from another space is left out, the
    page saying why and the command (`command`, as the user ran it, with --trust-space) that draws it."""
    run = open_run(target)
    path = out_file(out, "report.html") if out is not None else run.run_dir / "report.html"   # --out reports/
    refuse_file_as_folder(path)   # said before the plots are drawn, as a folder that cannot be made is
    path.parent.mkdir(parents=True, exist_ok=True)
    # drawn before the file is touched: a plot that fails leaves the old report
    text = report_html(run, top, trust_spaces, command)
    write_whole(path, lambda part: part.write_text(text, encoding="utf-8"))   # whole or not at all
    return path


def report_html(run: OpenRun, top: int = TOP_TRIALS, trust_spaces: Collection[str] = (),
                command: str | None = None) -> str:
    study = run.study
    objectives = [f"{m} ({d})" for m, d in run.record.get("objectives", [])]
    ranked = best_trials(study)
    intro = (f"<p>Study <b>{html.escape(study.study_name)}</b> in "
             f"<code>{html.escape(shown_url(run.storage_url))}</code>: "
             f"{len(study.get_trials(deepcopy=False))} trials ({html.escape(state_counts(study))}). "
             f"Objectives: {html.escape(', '.join(objectives) or 'not recorded')}.</p>" + scored_on_said(study))
    names = [m for m, _ in run.record.get("objectives", [])]
    measured = feature_network_said(study)   # a GAN's MedFID read as a published FID
    sections = [note("What the scores are measured with", measured)] if measured else []
    sections += start_warnings_section(study) + failures_section(study) + pruned_section(study)
    if not ranked:
        why = _held_columns(study.get_trials(deepcopy=False), ("error", "pruned", "over_budget"))
        named = f"{', '.join(why[:-1])} and {why[-1]} columns say" if len(why) > 1 else f"{''.join(why)} column says"
        sections.append(note("No completed trials", "this study has no completed trial yet, so there is nothing to "
                             "plot; run it (searchlab run) or look at the trials below"
                             + (f" (their {named} why)" if why else "")))
    else:   # a one-class model said beside the run's warnings, not only in its confusion matrix far below
        sections += one_class_warning(run, ranked[0], trust_spaces) + study_sections(study, names)
        front = len(ranked) if len(study.directions) > 1 else 0
        sections += model_sections(run, ranked[0], front, trust_spaces, command)
        sections += sample_grids(run, study, ranked[:4], names)
    sections.append(top_table(run, ranked, top))
    return page(f"searchlab report: {study.study_name}", intro, sections)


def scored_on_said(study: optuna.Study) -> str:
    """What a classifier study's values and metric columns are of: validation scores (a mean over folds or
    repeats), and for two classes which one is positive. A clinical reader took a sensitivity of 0.9649 as
    malignancy's when it was the recall of BreastMNIST's class 1, "normal, benign"."""
    trials = [t for t in study.get_trials(deepcopy=False) if "task_kind" in t.user_attrs]
    if not trials:   # a GAN's or a callable task's own scores
        return ""
    means = [how for attr, how in (("cv_folds", "cross-validated trials: the mean over their folds"),
                                   ("repeats", "repeated trials: the mean over their repeats"))
             if any(attr in t.user_attrs for t in trials)]
    said = ("Values and metrics (the objectives, the metrics.* columns) are scored on the validation split"
            + (f" ({'; '.join(means)})" if means else "") + ", never on test (searchlab export scores that).")
    latest = trials[-1]
    names = latest.user_attrs.get("class_names") or []
    if latest.user_attrs["task_kind"] == "binary" and len(names) == 2:
        said += (f" Positive class: <b>{html.escape(str(names[1]))}</b> (class 1): sensitivity and average "
                 f"precision are about it, specificity about {html.escape(str(names[0]))}; precision, recall and "
                 "F1 average both classes (metrics.py); data.positive_class chooses it.")
    if latest.user_attrs["task_kind"] == "multilabel":   # a reader took an exact-match 0.56 for a per-label one
        said += (" Multi-label: accuracy is <b>exact match</b> (an image counts as right only when every one of its "
                 "labels is), hamming_loss the share of wrong label decisions; " + _thresholds_said(trials))
    return f"<p>{said}</p>"


def _thresholds_said(trials: list[optuna.trial.FrozenTrial]) -> str:
    """Which per-label thresholds a multi-label trial's threshold-bound metrics are at. A cross-validated trial's
    are each fold's, at thresholds chosen on the other folds: the page said they were at its threshold column (its
    exported model's, chosen on the validation split), which a label never on there leaves at 0.5."""
    folds = [t for t in trials if "cv_folds" in t.user_attrs]
    on_val = ("the threshold-bound metrics are at each trial's per-label thresholds (the threshold column, by "
              "label)")
    crossed = ("their threshold-bound metrics are means over folds, each fold scored at per-label thresholds "
               "chosen on the other folds' held-out images (in the trial's cv_folds user attribute, fold by fold), "
               "and their AUC per label is a mean over folds of train+val too, so a label never on in the "
               "validation split can still have one; their threshold column is the exported model's, chosen on the "
               "validation split (cv_model: bag, out of fold), not the thresholds their metrics are at")
    if not folds:
        return on_val + "."
    if len(folds) == len(trials):
        return f"the trials are cross-validated: {crossed}."
    return f"{on_val}, except in the cross-validated trials (those with metrics.cv_folds_done): {crossed}."


def latest_task_kind(study: optuna.Study) -> str | None:
    """binary, multiclass or multilabel: the task kind the latest classifier trial recorded (none: no classifier)."""
    kinds = [t.user_attrs["task_kind"] for t in study.get_trials(deepcopy=False) if "task_kind" in t.user_attrs]
    return kinds[-1] if kinds else None


EXAMPLE_TRIALS = 10   # trial numbers listed per failure reason


def start_warnings_section(study: optuna.Study) -> list[Section]:
    """The warnings the latest run started with (test images its weights learned, a validation split too small to
    select on...): they qualify every score on the page, and a reader of the page never saw the terminal."""
    latest = latest_start_warnings(study)
    if latest is None or not latest[1]:
        return []
    started, warnings = latest
    items = "".join(f"<li>{html.escape(text)}</li>" for text in warnings)
    return [Section(f"Warnings: {len(warnings)} when the latest run started ({started})", f"<ul>{items}</ul>")]


def failures_section(study: optuna.Study) -> list[Section]:
    """The failed trials' reasons, each with its count and some trial numbers, whether or not a trial completed:
    said only when none had, a run of 1 complete and 6 failed (trial_timeout) trials read as "7 trials (1
    complete, 6 fail)". Counted as `status` counts them: configs, an attempt a retry took over left out (and listed
    after them, by retried_section)."""
    grouped = failures_by_reason(study)
    retried = retried_section(study)   # attempts whose config ran again: no failed config of their own
    if not grouped:
        return retried
    attempts = len(study.get_trials(deepcopy=False, states=(TrialState.FAIL,)))
    failed = sum(len(numbers) for _, numbers in grouped)
    left_out = (f"; {attempts - failed} more failed attempt(s) were run again as retries, listed below"
                if attempts > failed else "")
    title = f"Failed trials: {failed}, by reason (each one's in the error column of searchlab trials{left_out})"
    return [Section(title, _reasons_table(grouped))] + retried


RETRIES_LISTED = 20   # failed attempts listed one by one; a preempted cluster job can leave hundreds


def retried_section(study: optuna.Study) -> list[Section]:
    """The failed attempts whose configs ran again (a Ctrl-C or SIGTERM, then a resume), each said as `status` says
    it: after a stop and a resume the page read "19 trials (12 complete, 3 fail, 4 pruned)" and listed no failure,
    the by-reason table counting configs, whose outcome is their retry's."""
    attempts = retried_failures(study)
    if not attempts:
        return []
    items = "".join(f"<li>{html.escape(retry_said(failed, retry))}</li>"
                    for failed, retry in attempts[:RETRIES_LISTED])
    if len(attempts) > RETRIES_LISTED:
        items += f"<li>... and {len(attempts) - RETRIES_LISTED} more (searchlab trials lists them all)</li>"
    title = (f"Failed trials whose configs ran again: {len(attempts)} (each one's in the error column of searchlab "
             "trials, and its retry's retry_of column names it)")
    return [Section(title, f"<ul>{items}</ul>")]


def pruned_section(study: optuna.Study) -> list[Section]:
    """The pruned trials' reasons (over the architecture budget, stopped by the pruner ...), grouped as the
    failures are: "854 trials (71 complete, 404 fail, 379 pruned)" said nothing of why 379 stopped."""
    grouped = pruned_by_reason(study)
    if not grouped:
        return []
    pruned = sum(len(numbers) for _, numbers in grouped)
    columns = _held_columns(study.get_trials(deepcopy=False, states=(TrialState.PRUNED,)), ("over_budget", "pruned"))
    title = f"Pruned trials: {pruned}, by reason" + (f" (each one's in the {' or '.join(columns)} column of "
                                                     "searchlab trials)" if columns else "")
    return [Section(title, _reasons_table(grouped))]


def _held_columns(trials: list[FrozenTrial], attrs: tuple[str, ...]) -> list[str]:
    """Those of `attrs` that are columns of `searchlab trials` and hold these trials' reasons: the table has a
    column for a user attr only when some trial holds it (trials_table.py TEXT_ATTRS), and a GAN study's has no
    over_budget column, which the page named all the same."""
    return [attr for attr in attrs if any(attr in t.user_attrs for t in trials)]


def _reasons_table(grouped: list[tuple[str, list[int]]]) -> str:
    """One row per reason: how many trials gave it, the reason, and some of their numbers."""
    rows = "".join(f"<tr><td>{len(numbers)}</td><td style=\"text-align:left\">{html.escape(reason)}</td><td>"
                   + ", ".join(map(str, numbers[:EXAMPLE_TRIALS])) + (", ..." if len(numbers) > EXAMPLE_TRIALS else "")
                   + "</td></tr>" for reason, numbers in grouped)
    return (f'<table class="sortable"><thead><tr><th>trials</th><th>reason</th><th>trial numbers</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def top_table(run: OpenRun, ranked: list, top: int) -> Section:
    """The best `top` trials (all trials when none completed), one row each, sortable in the page. With several
    objectives, the Pareto front first, then the other completed trials (cut short or suspect ones among them,
    which a front-only table left out): "Top 1 trials" of a 3-trial study at --top 20 hid two."""
    table = trial_table(run)
    if table.empty:
        return note("Trials", "no trials")
    study = run.study
    if ranked and len(study.directions) > 1:
        front = front_by_first_objective(study, ranked)
        on_front = {t.number for t in front}
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        listed = front + [t for t in front_by_first_objective(study, complete) if t.number not in on_front]
        table = _in_order(table, listed[:top])
        table.insert(2, "on_front", table["number"].map(lambda n: "yes" if n in on_front else "no"))
        first = (run.record.get("objectives") or [["the first objective"]])[0][0]
        part = (f"the {len(front)} of the Pareto front first (on_front), then the other completed trials, each part"
                if len(front) < len(table) else f"of the {len(front)} of the Pareto front (on_front)")
        title = f"Top {len(table)} trials: {part} by {first} (click a column to sort)"
    elif ranked:
        table = _in_order(table, ranked[:top])
        title = f"Top {len(table)} trials (click a column to sort)"
    else:
        title = "All trials (click a column to sort)"
    shown = table.drop(columns=[c for c in ("datetime_start", "datetime_complete", "class_names") if c in table])
    named = table["class_names"].dropna() if "class_names" in table else ()
    if len(named):   # recall_class_4 said as the class it is of, from the latest trial's names
        shown = shown.rename(columns=per_class_named(list(shown.columns), json.loads(named.iloc[-1])))
    shown = thresholds_by_label(shown, table)
    if latest_task_kind(study) == "multilabel":   # the same name as single-label accuracy, another measure
        shown = shown.rename(columns={"metrics.accuracy": "metrics.accuracy (exact match)"})
    # na_rep covers float NaN only: a failed trial's value (None) and a parameter it did not draw (pandas' NA,
    # in integer columns) printed "None" and "<NA>"
    shown = shown.astype(object).where(shown.notna(), "")
    body = shown.to_html(index=False, classes="sortable", border=0, float_format=lambda v: f"{v:.4g}", na_rep="")
    return Section(title, f'<div style="overflow-x:auto">{body}</div>')   # wide tables scroll, not the page


def thresholds_by_label(shown: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
    """Per-label thresholds said by label ('mass=0.506 calc=0.433 rare=0.535', as `status` says them), just before
    the metrics scored at them: a raw list of floats in the last column said nothing of which label each was."""
    if "threshold" not in shown:
        return shown
    names = table["class_names"] if "class_names" in table else pd.Series(None, index=table.index)
    shown = shown.copy()
    shown["threshold"] = [_by_label(cell, listed) for cell, listed in zip(shown["threshold"], names)]
    metrics = [c for c in shown.columns if str(c).startswith("metrics.")]
    columns = [c for c in shown.columns if c != "threshold"]
    at = columns.index(metrics[0]) if metrics else len(columns)
    return shown[columns[:at] + ["threshold"] + columns[at:]]


def _by_label(cell: object, listed: object) -> object:
    """A threshold cell: a JSON list (multi-label) named by the row's class names; a single one as it is."""
    if not isinstance(cell, str):
        return cell
    thresholds = json.loads(cell)
    names = json.loads(listed) if isinstance(listed, str) else []
    if len(names) != len(thresholds):   # names not recorded: by label number, as the metrics columns are
        names = [str(j) for j in range(len(thresholds))]
    return thresholds_said(thresholds, names).removeprefix("thresholds ")


def _in_order(table: pd.DataFrame, trials: list) -> pd.DataFrame:
    """The rows of these trials, in their order."""
    order = {t.number: i for i, t in enumerate(trials)}
    return table[table["number"].isin(order)].sort_values("number", key=lambda s: s.map(order)).copy()
