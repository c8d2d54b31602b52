"""`searchlab trials RUN`: the study's trial table (params, metrics, states, timings) as CSV, Parquet or JSON.

One row per trial, in trial order. Columns: number, state, value (value_0, value_1, ... for several
objectives, named after their metrics), params.<name>, metrics.<name> (every metric the task returned),
duration_s, datetime_start, datetime_complete, and the readable user attrs a row needs on its own
(architecture, error, over_budget, pruned, cut_short, retry_of, device: where it trained), the trial's `seed`,
the study's `study_seed` it ran under and `torch_threads` (as it ran: what a rerun of it must match), and
`threshold`: the decision threshold the
threshold-bound metrics were scored at (per label, multi-label, as a JSON list; a cross-validated trial's is its
exported model's, chosen on val, while its metrics are the folds' mean, each fold at thresholds chosen on the other
folds: in its `cv_folds` user attribute), and `class_names` (a JSON
list: class k of the metrics.*_class_k columns); both lists are arrays in JSON output, JSON text in a CSV cell.
A PRUNED trial's value is that of the last epoch it reported (Optuna's rule), not a finished trial's. Read from the
Optuna study alone.
Parameters only some trials draw are blank where not drawn (whole numbers stay whole: pandas Int64); a trial
that ran a parameter as a fixed value (a choice a resume narrowed to one) has that value in its column, and a fixed
setting the trials did not all run at one value (changed between runs) has a config.<key> column.
A trial whose process died unseen, failed by a later run, has Optuna's stamp of that moment as its
datetime_complete, and as its duration_s the time until its last sign of life (engine/trial_time.py).
"""
from __future__ import annotations

import io
import json
import math
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pandas as pd
from optuna.distributions import FloatDistribution

from searchlab.csv_cells import spreadsheet_safe
from searchlab.engine.rundir import OpenRun
from searchlab.engine.storage import DESIGN_ATTRS
from searchlab.engine.trial_time import trial_seconds
from searchlab.errors import SearchlabError
from searchlab.output_reader import refuse_a_closed_stdout
from searchlab.space.params import on_step
from searchlab.space.sample import ABSENT, value_at
from searchlab.whole_file import not_a_file, write_whole

FORMATS = ("csv", "parquet", "json")
# cells that hold a list, as JSON text in a CSV or Parquet cell: JSON output carries them as arrays, not strings a
# reader must parse a second time
LIST_COLUMNS = ("threshold", "class_names")
# why a trial was pruned, stopped short or run again: a row read alone (a paper's table) must say it
TEXT_ATTRS = ("architecture", "over_budget", "error", "pruned", "cut_short", "retry_of", "suspect", "device")
# what a strategy's stage scored a queued design by, before it trained (zen_nas, deepmad): beside its trained
# metrics, so a proxy can be checked against them
STAGE_ATTRS = DESIGN_ATTRS
GROUPED = ("params.", "config.", "metrics.")   # column groups kept together, in this order, after the values
PLAIN = (bool, int, float, str)   # a setting a table cell holds as it is (a list of cells or policies: left out)


def trial_table(run: OpenRun) -> pd.DataFrame:
    study = run.study
    objectives = [m for m, _ in study.user_attrs.get("searchlab", {}).get("objectives", [])]
    trials = study.get_trials(deepcopy=False)
    rows = [_row(t, objectives, len(study.directions)) for t in trials]
    if not rows:   # its header all the same (a script reading it finds its columns), not an empty line
        return pd.DataFrame(columns=["number", "state", *_value_columns(objectives, len(study.directions)),
                                     "duration_s", "datetime_start", "datetime_complete"])
    _add_fixed_values(rows, [t.user_attrs.get("config") for t in trials])
    table = pd.DataFrame(rows)
    # A parameter only some trials draw (a cut-off, a one_of branch's) first appears in a later row: keep the
    # params and metrics together all the same, and whole numbers whole (a missing value would make them float).
    kinds = [[c for c in table.columns if c.startswith(prefix)] for prefix in GROUPED]
    rest = [c for c in table.columns if not c.startswith(GROUPED)]
    head = [c for c in rest if c in ("number", "state") or c.startswith("value")]
    table = table[head + [c for kind in kinds for c in kind] + [c for c in rest if c not in head]]
    for column in table.columns:   # a whole number stays whole (seed 4219681498, not 4219681498.0) in every column
        drawn = [row[column] for row in rows if row.get(column) is not None]
        if drawn and all(isinstance(v, int) and not isinstance(v, bool) for v in drawn):
            table[column] = table[column].astype("Int64")
    return table


def _row(trial: Any, objectives: list[str], n_values: int) -> dict[str, Any]:
    row: dict[str, Any] = {"number": trial.number, "state": trial.state.name}
    row.update(zip(_value_columns(objectives, n_values), trial.values or [None] * n_values))
    row.update({f"params.{k}": _as_written(v, trial.distributions.get(k)) for k, v in trial.params.items()})
    metrics = trial.user_attrs.get("metrics", {})
    row.update({f"metrics.{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
    row["duration_s"] = trial_seconds(trial)   # a trial that died unseen: until its last sign of life
    row["datetime_start"], row["datetime_complete"] = trial.datetime_start, trial.datetime_complete
    row.update({k: trial.user_attrs[k] for k in STAGE_ATTRS + TEXT_ATTRS if k in trial.user_attrs})
    ran_with = trial.user_attrs.get("ran_with") or {}   # what a rerun of this trial alone must match
    row.update({key: ran_with[key] for key in ("seed", "study_seed", "torch_threads") if key in ran_with})
    if names := trial.user_attrs.get("class_names"):   # what recall_class_4 is of: a row read alone says it
        row["class_names"] = json.dumps(names)
    threshold = trial.user_attrs.get("threshold")   # what sensitivity, f1... were scored at
    if threshold is not None and trial.user_attrs.get("task_kind") != "multiclass":   # argmax there: none
        row["threshold"] = json.dumps(threshold) if isinstance(threshold, list) else threshold
    return row


def _add_fixed_values(rows: list[dict[str, Any]], configs: list[Any]) -> None:
    """What each trial ran with where its params do not say it. A parameter a resume fixed (`{choice: [8, 16]}`
    narrowed to `{choice: [8]}`) is no Optuna parameter of the later trials: their params.model.width cell was
    blank, though they ran 8. And a fixed setting changed between runs (`train: {epochs: 2}` then 3) had no column
    at all: it gets a config.<key> column, only when the trials did not all run one value (a table of every fixed
    setting would bury the searched ones). Only trials whose config is stored (one with fixed values) say these."""
    if not any(isinstance(config, dict) for config in configs):
        return
    configs = [config if isinstance(config, dict) else {} for config in configs]
    searched = {column for row in rows for column in row if column.startswith("params.")}
    covered: set[tuple[str, ...]] = set()
    for row, config in zip(rows, configs):
        drawn = [column.removeprefix("params.") for column in row if column.startswith("params.")]
        for column in searched:
            path = _config_path(column.removeprefix("params.").split("."), config, drawn)
            if path is not None:
                covered.add(path)
                row.setdefault(column, value_at(config, path))
    leaves = [dict(_scalar_leaves(config, ())) for config in configs]
    for path in sorted(set().union(*leaves) - covered):
        values = [leaf.get(path, ABSENT) for leaf in leaves]
        if len({repr(value) for value in values}) > 1:   # repr: True and 1 are two values here
            for row, value in zip(rows, values):
                if value is not ABSENT:
                    row["config." + ".".join(path)] = value


def _config_path(parts: list[str], config: dict[str, Any], drawn: list[str]) -> tuple[str, ...] | None:
    """Where a parameter's value sits in a trial's config: its name less the one_of labels on the way
    (params.model.cnn.width is config model.width when the trial took the cnn option: it drew another parameter
    named model.cnn.*); None when the trial has no plain value there, or it cannot be told that the trial took
    that option (a config value that only happens to equal an option's name, `norm: timm`, proves nothing)."""
    node: Any = config
    path: list[str] = []
    for at, part in enumerate(parts):
        if not isinstance(node, dict):
            return None
        if part in node:
            node = node[part]
            path.append(part)
        elif not any(name.startswith(".".join(parts[:at + 1]) + ".") for name in drawn):
            return None
    return tuple(path) if isinstance(node, PLAIN) else None


def _scalar_leaves(config: dict[str, Any], at: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    for key, value in config.items():
        if isinstance(value, dict):
            yield from _scalar_leaves(value, at + (key,))
        elif isinstance(value, PLAIN):
            yield at + (key,), value


def _as_written(value: Any, distribution: Any) -> Any:
    """A stepped float's value without Optuna's rounding noise (0.3, not 0.30000000000000004)."""
    return on_step(value) if isinstance(distribution, FloatDistribution) and distribution.step else value


def _value_columns(objectives: list[str], n_values: int) -> list[str]:
    if n_values == 1:
        return ["value"]
    names = objectives if len(objectives) == n_values else [str(i) for i in range(n_values)]
    return [f"value_{name}" for name in names]


def per_class_named(columns: list[str], names: list[str]) -> dict[str, str]:
    """metrics.recall_class_4 -> 'metrics.recall_class_4 (malignant)', for the columns of classes `names` holds."""
    named = {}
    for column in columns:
        found = re.fullmatch(r"metrics\..+_class_(\d+)", column)
        if found and int(found[1]) < len(names):
            named[column] = f"{column} ({names[int(found[1])]})"
    return named


OTHER_TABLE_FORMATS = ("xlsx", "xlsm", "xls", "ods", "feather", "h5", "hdf5", "pkl", "pickle")


def table_format(fmt: str | None, out: Path | None) -> str:
    """--format, else the --out file's extension (.parquet, .json), else csv; a file named for one format but
    asked to hold another is refused (a reader would fail on it, or worse, misread it)."""
    suffix = out.suffix.lower().lstrip(".") if out is not None else ""
    if suffix in OTHER_TABLE_FORMATS:   # CSV under an .xlsx name: Excel refuses to open it
        raise SearchlabError(f"--out {out}: searchlab writes {', '.join(FORMATS)}, not .{suffix}. Fix: --out with "
                             ".csv (spreadsheets open it), .parquet or .json")
    named = suffix if suffix in FORMATS else None
    if fmt is not None and named is not None and fmt != named:
        raise SearchlabError(f"--out {out} is named for {named} but --format is {fmt}: the file would hold {fmt} "
                             f"under a .{named} name. Fix: --out with .{fmt}, or --format {named} (or leave "
                             "--format out: the extension chooses)")
    return fmt or named or "csv"


def write_table(table: pd.DataFrame, fmt: str | None, out: Path | None) -> None:
    fmt = table_format(fmt, out)
    if fmt not in FORMATS:
        raise SearchlabError(f"unknown --format {fmt!r}. Fix: one of {', '.join(FORMATS)}")
    if fmt == "parquet" and out is None:
        raise SearchlabError("parquet is binary: give --out FILE.parquet")
    if out is None:
        refuse_a_closed_stdout("the trial table")
    if fmt == "json":
        text = json.dumps([{k: _as_json(k, v) for k, v in row.items()} for row in table.to_dict(orient="records")],
                          indent=1)   # not pandas' to_json: it rounds floats to 10 decimals
        if out is None:
            print(text)
        else:
            write_whole(out, lambda part: part.write_text(text + "\n"))
    elif out is None:
        _spreadsheet_safe(table).to_csv(sys.stdout, index=False)
    elif fmt == "csv":
        write_whole(out, lambda part: _spreadsheet_safe(table).to_csv(part, index=False))
    else:
        write_whole(out, lambda part: write_parquet(table, part))


def _spreadsheet_safe(table: pd.DataFrame) -> pd.DataFrame:
    """The table's text cells (an error message, a categorical parameter, a class name a study's data gave) as a
    CSV holds them: one a spreadsheet would run as a formula quoted (csv_cells.py). Numbers, times as they are."""
    text = [column for column in table.columns   # pandas 3 holds all-text columns as `str`, not object
            if pd.api.types.is_object_dtype(table[column]) or pd.api.types.is_string_dtype(table[column])]
    return table.assign(**{column: table[column].map(spreadsheet_safe) for column in text}) if text else table


def write_parquet(table: pd.DataFrame, part: Path) -> None:
    """`table` as Parquet at `part` (`trials`' and `predict`'s). pyarrow seeks in the file it writes, which a
    named pipe cannot ("lseek failed"): for a pipe the table is made in memory, and its bytes written through."""
    if not not_a_file(part):
        table.to_parquet(part, index=False)
        return
    parquet = io.BytesIO()
    table.to_parquet(parquet, index=False)
    part.write_bytes(parquet.getvalue())


def _as_json(column: str, value: Any) -> Any:
    """A cell as JSON output holds it: a list column's JSON text as the array it encodes."""
    if column in LIST_COLUMNS and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:   # not a list searchlab wrote (a study's own attribute of that name): as it is
            return value
    return _plain(value)


def _plain(value: Any) -> Any:
    """A table cell as JSON: floats exactly (Python's repr round-trips), times in ISO 8601, missing as null."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value
