"""`searchlab compare RUN_A RUN_B ... [--out compare.html]`: best-so-far curves of several runs on one plot.

For judging strategies on the same task (random vs TPE vs evolution): each run's best value of the first
objective after each completed trial, by trial count or by search time: wall-clock seconds while any of the
run's trials was running, so the idle time between a run and its resumption does not count.
The runs must optimise the same first objective in the same direction. Runs of one setting with different
seeds are also pooled (searchlab.report.seed_pool): mean, spread and range over the seeds.
"""
from __future__ import annotations

import bisect
import html
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from optuna.trial import TrialState

from searchlab.engine.rundir import OpenRun, open_run
from searchlab.engine.setup_said import strategy_said
from searchlab.engine.trial_time import trial_end, trial_start
from searchlab.errors import SearchlabError
from searchlab.nas.stage import SPANS
from searchlab.report.page import Section, figure, page
from searchlab.report.seed_pool import SeedPool, carried_forward_said, pooled_figure, pooled_table, seed_pools
from searchlab.whole_file import out_file, write_whole


@dataclass
class Curve:
    label: str
    trials: list[int]          # 1, 2, ... completed trials
    seconds: list[float]       # search time: wall-clock seconds while some trial ran (see _busy_intervals)
    best: list[float]          # best so far after each


def best_so_far(run: OpenRun, label: str) -> Curve:
    study = run.study
    maximize = study.directions[0].name == "MAXIMIZE"
    complete = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.datetime_complete)
    stages = [tuple(span) for span in study.user_attrs.get(SPANS, [])]   # zen_nas / deepmad scoring, before trials
    busy_until = _busy_clock(_busy_intervals(study.get_trials(deepcopy=False), stages))
    curve, best = Curve(label, [], [], []), None
    for i, trial in enumerate(complete, start=1):
        value = trial.values[0]
        best = value if best is None else (max(best, value) if maximize else min(best, value))
        curve.trials.append(i)
        curve.seconds.append(busy_until(trial.datetime_complete.timestamp()))
        curve.best.append(best)
    return curve


def _busy_intervals(trials: list, stages: list[tuple[float, float]] = ()) -> list[tuple[float, float]]:
    """When any trial or strategy stage was running, as merged (start, end) seconds: a resumed run's idle days
    between sessions are left out, so a strategy run in two sessions is not drawn as slow as the gap, while
    a stage that scores architectures before the first trial counts as the search time it is. Trials still
    running (or left so) end at their start; one that died unseen, at its last sign of life (not at the
    later run that failed it)."""
    spans = sorted([(trial_start(t).timestamp(), (trial_end(t) or trial_start(t)).timestamp())
                    for t in trials if t.datetime_start] + list(stages))
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _busy_clock(busy: list[tuple[float, float]]) -> Callable[[float], float]:
    """The busy seconds before a moment, of the merged (sorted, disjoint) intervals, by bisection over their
    running total: summing them all for each completed trial took ~10 s per run at 5,000 trials of one worker
    (one interval each)."""
    starts, before = [start for start, _ in busy], [0.0]
    for start, end in busy:
        before.append(before[-1] + end - start)

    def until(moment: float) -> float:
        i = bisect.bisect_right(starts, moment)   # the intervals that started by then; all but the last ended
        return before[i - 1] + max(0.0, min(busy[i - 1][1], moment) - busy[i - 1][0]) if i else 0.0
    return until


def compare_runs(targets: list[str | Path], out: str | Path) -> tuple[Path, list[Curve], list[SeedPool]]:
    if len(targets) < 2:
        raise SearchlabError("compare needs at least two runs. Fix: searchlab compare runs/a runs/b ...")
    path = out_file(out, "compare.html")   # `--out pages/`: a folder; refused before the work if it cannot be
    runs = [open_run(t) for t in targets]
    refuse_a_run_twice(runs, targets)
    first = [_first_objective(r) for r in runs]
    if len(set(first)) > 1:
        listed = "; ".join(f"{t}: {m} ({d})" for t, (m, d) in zip(targets, first))
        raise SearchlabError(f"these runs optimise different first objectives ({listed}), so their best-so-far "
                             "curves cannot share an axis. Fix: compare runs of the same objective")
    curves = [best_so_far(r, _label(r, t, runs)) for r, t in zip(runs, targets)]
    metric, direction = first[0]
    sections = [figure(f"Best {metric} so far, by completed trials", _plot(curves, "trials", metric)),
                figure(f"Best {metric} so far, by search time", _plot(curves, "seconds", metric)),
                Section("Summary", summary_table(curves))]
    pools = seed_pools(runs, curves)
    if pools:
        sections += [figure(f"Best {metric} so far over seeds: mean, min to max ({carried_forward_said(pools)})",
                            pooled_figure(pools, metric)),
                     Section("Over seeds", pooled_table(pools))]
    intro = f"<p>{len(runs)} runs, first objective <b>{html.escape(metric)}</b> ({direction}).</p>"
    if other_objectives := objectives_difference(runs, targets, metric):
        print(f"warning: {other_objectives}", file=sys.stderr)
        intro += f"<p><b>Warning:</b> {html.escape(other_objectives)}</p>"
    if other_scale := feature_network_difference(runs, targets, metric):
        print(f"warning: {other_scale}", file=sys.stderr)
        intro += f"<p><b>Warning:</b> {html.escape(other_scale)}</p>"
    for note in filter(None, (data_difference(runs, targets), setup_difference(runs, targets))):
        print(f"note: {note}", file=sys.stderr)
        intro += f"<p><b>Note:</b> {html.escape(note)}</p>"
    text = page(f"searchlab compare: {metric}", intro, sections)
    # whole or not at all, as `report`: a failed compare leaves the earlier page; `--out /proc/self/fd/3 3>>f` appends
    write_whole(path, lambda part: part.write_text(text, encoding="utf-8"))
    return path, curves, pools


def refuse_a_run_twice(runs: list[OpenRun], targets: list[str | Path]) -> None:
    """The same run folder given twice drew two identical curves, read as two runs that agreed."""
    seen: dict[Path, str | Path] = {}
    for run, target in zip(runs, targets):
        folder = Path(run.run_dir).resolve()
        if folder in seen:
            raise SearchlabError(f"run folder {folder} is given twice ({seen[folder]} and {target}), so it would be "
                                 "drawn as two identical curves. Fix: give each run once")
        seen[folder] = target


def objectives_difference(runs: list[OpenRun], targets: list[str | Path], metric: str) -> str | None:
    """Runs sharing the first objective but not the others (a multi-objective run beside a single-objective
    one): only the first is compared, and a multi-objective run's best of it is one end of its Pareto front,
    bought by giving up the other objectives, so its curve is not that of a search for the first alone."""
    lists = [[f"{m} ({d})" for m, d in (r.record.get("objectives") or [])] for r in runs]
    if len({tuple(each) for each in lists}) <= 1:
        return None
    listed = "; ".join(f"{t}: {', '.join(each) or 'not recorded'}" for t, each in zip(targets, lists))
    return (f"these runs optimise different objectives ({listed}); only the first, {metric}, is compared. A "
            f"multi-objective run's best {metric} is one end of its Pareto front, traded against its other "
            f"objectives, so its curve is not that of a search for {metric} alone")


def data_difference(runs: list[OpenRun], targets: list[str | Path]) -> str | None:
    """Runs on different data sets (or sizes) compare the data as well as the strategies: allowed (e.g. 28 vs
    64 px on purpose), but said, with the data settings that differ. Where the data lives (MedMNIST's root)
    does not count."""
    settings = [r.data_read for r in runs]
    keys = sorted({k for s in settings for k in s})
    differing = [k for k in keys if len({repr(s.get(k)) for s in settings}) > 1]
    if not differing:
        return _other_validation_images(runs, targets)
    listed = "; ".join(f"{t}: " + ", ".join(f"{k} {s.get(k, '(not set)')}" for k in differing)
                       for t, s in zip(targets, settings))
    return f"these runs read different data ({listed}), so their curves differ by data as well as by strategy"


def _other_validation_images(runs: list[OpenRun], targets: list[str | Path]) -> str | None:
    """The same folder or CSV set, split by other seeds (or its files changed): each run's validation values are
    on other images. Told by the splits' recorded file lists (none for MedMNIST: its splits are published)."""
    members = [((r.record.get("data_files") or {}).get("splits") or {}).get("val", {}).get("members") for r in runs]
    if None in members or len(set(members)) == 1:
        return None
    seeds = "; ".join(f"{t}: seed {r.record.get('seed')}" for r, t in zip(runs, targets))
    return (f"these runs' validation splits hold other images ({seeds}: a folder or CSV set is split by the seed, "
            "or its files changed), so their values are scored on other images: the curves differ by split as well "
            "as by search (a pool over seeds includes that spread)")


def setup_difference(runs: list[OpenRun], targets: list[str | Path]) -> str | None:
    """Runs meant to compare strategies that also trained for other epochs or searched another space: said,
    with the epochs of each, as the data are."""
    aspects = {"budget.epochs": lambda r: r.record.get("epochs"),
               "the space searched": lambda r: r.search.get("space_searched"),
               "the settings held fixed": lambda r: r.search.get("space_fixed"),
               # which networks a run could find at all: a max_flops twice another's is a larger space
               "the architecture budget (budget.max_params, max_flops, max_depth)": _architecture_budget}
    values = {name: [get(r) for r in runs] for name, get in aspects.items()}
    # None: not recorded (a run made by a searchlab before its record kept them), which is no difference
    differing = [name for name, seen in values.items()
                 if len({json.dumps(v, sort_keys=True, default=str) for v in seen if v is not None}) > 1]
    partly = [seen for seen in values.values() if None in seen and any(v is not None for v in seen)]
    unknown = [t for i, t in enumerate(targets) if any(seen[i] is None for seen in partly)]
    said = (f" ({', '.join(map(str, unknown))}: recorded by an earlier searchlab that kept no budget.epochs or space "
            "searched, so those are not compared)") if unknown else ""
    if not differing:
        return f"these runs' epochs and spaces cannot all be compared{said}" if said else None
    epochs = (" (budget.epochs: " + "; ".join(f"{t}: {r.record.get('epochs')}" for r, t in zip(runs, targets)
                                              if r.record.get("epochs") is not None) + ")"
              if "budget.epochs" in differing else "")
    return (f"these runs differ in {', '.join(differing)}{epochs}{said}, not only in strategy, so their curves "
            "compare those too. Fix: run each strategy on one study file, changing only strategy (and run_dir)")


def _architecture_budget(run: OpenRun) -> dict[str, Any] | None:
    """A run's budget.max_* as recorded (none set: {}), or None when its record kept no budget."""
    budget = run.search.get("budget")
    return None if budget is None else {k: v for k, v in budget.items() if k in ARCHITECTURE_LIMITS}


ARCHITECTURE_LIMITS = ("max_params", "max_flops", "max_depth")


def feature_network_difference(runs: list[OpenRun], targets: list[str | Path], metric: str) -> str | None:
    """GAN runs whose trials were scored in different MedFID feature networks (each run folder trains its own
    unless given one): MedFID, KID, precision ... are distances in that network's feature space, so one
    generator scored 24.1 in one run and 5.0 in another. Told by the trials' `medfid_features` digests; a
    cost (train_seconds) is measured alike in every run."""
    if metric == "train_seconds":
        return None
    digests = [sorted({t.user_attrs["medfid_features"] for t in r.study.get_trials(deepcopy=False)
                       if t.user_attrs.get("medfid_features")}) for r in runs]
    if len({tuple(d) for d in digests if d}) <= 1:
        return None
    listed = "; ".join(f"{t}: {', '.join(d) or 'none recorded'}" for t, d in zip(targets, digests))
    return (f"these runs' GAN trials were scored with different MedFID feature networks ({listed}), so their "
            f"{metric} values are measured in different feature spaces and their curves are not on one scale. "
            "Fix: score the runs with one network: copy one run's medfid_features/ folder into the other run "
            "folder before running it, or name one classifier export as task.features in both studies")


def _first_objective(run: OpenRun) -> tuple[str, str]:
    objectives = run.record.get("objectives") or [["value", run.study.directions[0].name.lower()]]
    return objectives[0][0], objectives[0][1]


def _label(run: OpenRun, target: str | Path, runs: list[OpenRun]) -> str:
    """The study name, or the run directory when several runs share a study name; with its strategy."""
    names = [r.study.study_name for r in runs]
    name = run.study.study_name if names.count(run.study.study_name) == 1 else str(target)
    strategy = run.search.get("strategy")
    return f"{name} [{strategy_said(strategy)}]" if strategy else name


def _plot(curves: list[Curve], axis: str, metric: str) -> go.Figure:
    fig = go.Figure()
    for c in curves:
        name = c.label if c.best else f"{c.label}: no completed trial, nothing drawn"
        fig.add_trace(go.Scatter(x=getattr(c, axis), y=c.best, mode="lines+markers", line_shape="hv", name=name))
    title = "completed trials" if axis == "trials" else "seconds of search (idle gaps left out)"
    # plotly hides the legend of a lone drawn curve: beside a run that completed nothing, it was unlabelled
    fig.update_layout(xaxis_title=title, yaxis_title=f"best {metric}", height=450, showlegend=True)
    empty = [c.label for c in curves if not c.best]
    if empty:   # a trace without points may get no legend entry: said on the plot too
        fig.add_annotation(text=html.escape("no completed trial, nothing drawn: " + "; ".join(empty)), showarrow=False,
                           xref="paper", yref="paper", x=0, y=1, xanchor="left", yanchor="bottom")
    return fig


def summary_table(curves: list[Curve]) -> str:
    rows = "".join(f"<tr><td>{html.escape(c.label)}</td><td>{len(c.trials)}</td>"
                   f"<td>{c.best[-1]:.4f}</td><td>{c.seconds[-1]:.0f}</td></tr>" if c.best else
                   f"<tr><td>{html.escape(c.label)}</td><td>0</td><td></td><td></td></tr>" for c in curves)
    return ('<table class="sortable"><thead><tr><th>run</th><th>completed trials</th><th>best</th>'
            f"<th>seconds</th></tr></thead><tbody>{rows}</tbody></table>")
