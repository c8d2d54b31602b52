"""`searchlab report RUN [--out report.html]`: one self-contained HTML file about a run.

Optimisation history, Pareto front (several objectives), parallel coordinates, parameter importances,
per-epoch curves, the best trial's ROC curve and confusion matrix on validation data, GAN sample grids, and
a sortable table of the top trials. A study without completed trials gets a report saying so.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from searchlab.engine.rundir import OpenRun, open_run
from searchlab.errors import shown_url
from searchlab.report.best_model import model_sections, sample_grids
from searchlab.report.figures import study_sections
from searchlab.report.page import Section, note, page
from searchlab.summary import best_trials, state_counts
from searchlab.trials_table import per_class_named, trial_table
from searchlab.whole_file import refuse_file_as_folder, write_whole

TOP_TRIALS = 20


def write_report(target: str | Path, out: str | Path | None = None, top: int = TOP_TRIALS) -> Path:
    run = open_run(target)
    path = Path(out) if out is not None else run.run_dir / "report.html"
    refuse_file_as_folder(path)   # said before the plots are drawn, as a folder that cannot be made is
    path.parent.mkdir(parents=True, exist_ok=True)
    text = report_html(run, top)   # drawn before the file is touched: a plot that fails leaves the old report
    write_whole(path, lambda part: part.write_text(text, encoding="utf-8"))   # whole or not at all
    return path


def report_html(run: OpenRun, top: int = TOP_TRIALS) -> str:
    study = run.study
    objectives = [f"{m} ({d})" for m, d in run.record.get("objectives", [])]
    ranked = best_trials(study)
    intro = (f"<p>Study <b>{html.escape(study.study_name)}</b> in <code>{html.escape(shown_url(run.storage_url))}</code>: "
             f"{len(study.get_trials(deepcopy=False))} trials ({html.escape(state_counts(study))}). "
             f"Objectives: {html.escape(', '.join(objectives) or 'not recorded')}.</p>")
    if not ranked:
        sections = [note("No completed trials", "this study has no completed trial yet, so there is nothing to "
                         "plot; run it (searchlab run) or look at the failures below")]
    else:
        sections = study_sections(study, [m for m, _ in run.record.get("objectives", [])])
        front = len(ranked) if len(study.directions) > 1 else 0
        sections += model_sections(run, ranked[0], front) + sample_grids(run, study, ranked[:4])
    sections.append(top_table(run, ranked, top))
    return page(f"searchlab report: {study.study_name}", intro, sections)


def top_table(run: OpenRun, ranked: list, top: int) -> Section:
    """The best `top` trials (all trials when none completed), one row each, sortable in the page."""
    table = trial_table(run)
    if table.empty:
        return note("Trials", "no trials")
    if ranked:
        order = {t.number: i for i, t in enumerate(ranked[:top])}
        table = table[table["number"].isin(order)].sort_values("number", key=lambda s: s.map(order))
        title = f"Top {len(table)} trials (click a column to sort)"
    else:
        title = "All trials (click a column to sort)"
    shown = table.drop(columns=[c for c in ("datetime_start", "datetime_complete", "class_names") if c in table])
    named = table["class_names"].dropna() if "class_names" in table else ()
    if len(named):   # recall_class_4 said as the class it is of, from the latest trial's names
        shown = shown.rename(columns=per_class_named(list(shown.columns), json.loads(named.iloc[-1])))
    # na_rep covers float NaN only: a failed trial's value (None) and a parameter it did not draw (pandas' NA,
    # in integer columns) printed "None" and "<NA>"
    shown = shown.astype(object).where(shown.notna(), "")
    body = shown.to_html(index=False, classes="sortable", border=0, float_format=lambda v: f"{v:.4g}", na_rep="")
    return Section(title, f'<div style="overflow-x:auto">{body}</div>')   # wide tables scroll, not the page
