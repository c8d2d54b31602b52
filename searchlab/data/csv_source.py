"""A CSV listing image files and their labels: one label column (binary/multi-class) or several 0/1
columns (multi-label), with an optional train/val/test split column.

Errors name the CSV, the row (spreadsheet numbering: the header is row 1) and the column, because a
user fixing a 5,000-row sheet needs to know exactly where to look.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from searchlab.config.schema import CsvData
from searchlab.data.common import (SPLITS, first_lines, label_stratified_split, load_splits, random_split,
                                   resolve_path, stratified_split)
from searchlab.data.given_splits import csv_delimiter
from searchlab.data.grouping import spanning_split
from searchlab.data.recorded_split import read_as
from searchlab.data.synthetic_files import refuse_synthetic
from searchlab.data.types import Decoding, ImageDataset, SplitPlan, TaskKind
from searchlab.errors import DataError
from searchlab.suggest import did_you_mean


@dataclass
class _Table:
    """The parsed CSV: one entry per data row."""

    files: list[Path]
    raw_labels: list[list[str]]     # label column values as written
    split_values: list[str | None]
    rows: list[int]                 # spreadsheet row number of each entry
    groups: list[str] = field(default_factory=list)   # group_column's values (a patient id), when it is set
    split_written: list[str] = field(default_factory=list)   # split_column's values as written, for messages


def _read(cfg: CsvData, csv_path: Path) -> _Table:
    """Parse the CSV, checking columns and that every image file exists (cheap; nothing is decoded)."""
    if csv_path.is_dir():
        raise DataError(_a_folder_said(csv_path))
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: CSV file not found (data.path). Fix: check the path; relative paths "
                        f"are resolved against the study file's folder")
    table = _Table([], [], [], [])
    try:
        _parse(cfg, csv_path, table)
    except UnicodeDecodeError as exc:
        utf16 = csv_path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
        kind = ("UTF-16 text (Excel's 'Unicode Text')" if utf16
                else "not UTF-8 text (e.g. Excel's 'CSV' in a Windows code page)")
        raise DataError(f"{csv_path}: the file is {kind}: byte {exc.object[exc.start]:#04x} at position {exc.start} "
                        "cannot be read as UTF-8. Fix: save it as 'CSV UTF-8' (Excel: Save As, CSV UTF-8 (Comma "
                        "delimited))") from None
    if not table.files:
        raise DataError(f"{csv_path}: the CSV has a header but no rows. Fix: add one row per image")
    _check_files_exist(csv_path, cfg.image_column, table)
    _check_each_image_once(csv_path, cfg, table)
    return table


def _a_folder_said(folder: Path, shown: int = 3) -> str:
    """data.path of a CSV set naming a folder: the CSV files in it to name instead, and source: folder for a
    folder of class folders ("CSV file not found" was said of a path that exists)."""
    sheets = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in (".csv", ".tsv"))
    named = "name the CSV file listing the images"
    if sheets:
        named = f"name the CSV file inside it, e.g. path: {folder / sheets[0]}"
    if len(sheets) > 1:
        named += f" (it holds {', '.join(sheets[:shown])}{' and more' if len(sheets) > shown else ''})"
    return (f"{folder}: is a folder, not a CSV file (data.path of source: csv). Fix: {named}; for a folder of "
            "one sub-folder per class (or train/, val/, test/), use source: folder")


def _parse(cfg: CsvData, csv_path: Path, table: _Table) -> None:
    """Rows into `table`: every empty cell named at once; rows with no value at all (a sheet's trailing blank
    rows) skipped."""
    with csv_path.open(newline="", encoding="utf-8-sig") as fh:   # utf-8-sig: Excel writes a BOM
        reader = csv.DictReader(fh, delimiter=csv_delimiter(fh.readline()))
        fh.seek(0)
        found = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = found
        wanted = [cfg.image_column, *cfg.label_columns, *(c for c in (cfg.split_column, cfg.group_column) if c)]
        _check_columns_named_once(csv_path, wanted, found)
        missing = [c for c in wanted if c not in found]
        if missing:
            close = [f"{c!r}: {hint}" for c in missing if (hint := did_you_mean(c, found))]
            comma = [c for c in missing if "," in c]   # --set data.label_columns=a,b is one column named "a,b"
            raise DataError(f"{csv_path}: column(s) {missing} not found; the CSV has {found}"
                            + (f" ({'; '.join(close)})" if close else "") + ". Fix: set data.image_column / "
                            "data.label_columns / data.split_column / data.group_column"
                            + (" (a list on the command line: --set 'data.label_columns=[a, b]')" if comma else ""))
        empty: list[str] = []   # every empty cell at once: a sheet is fixed in one pass

        def cell(row: dict[str, str | None], column: str, n: int) -> str:
            value = (row.get(column) or "").strip()
            if not value:
                empty.append(f"row {n}, column {column!r}")
            return value

        for n, row in enumerate(reader, start=2):
            if not any(isinstance(v, str) and v.strip() for v in row.values()):
                continue
            table.rows.append(n)
            table.files.append(resolve_path(Path(cell(row, cfg.image_column, n)), csv_path.parent))
            table.raw_labels.append([cell(row, c, n) for c in cfg.label_columns])
            if cfg.split_column:   # matched in any case; quoted in errors as the sheet writes it
                table.split_written.append(cell(row, cfg.split_column, n))
            table.split_values.append(table.split_written[-1].lower() if cfg.split_column else None)
            if cfg.group_column:
                table.groups.append(cell(row, cfg.group_column, n))
    if empty:
        raise DataError(f"{csv_path}: {len(empty)} empty cell(s):{first_lines(empty)}\nFix: fill them in or drop "
                        "the rows")


def _check_columns_named_once(csv_path: Path, wanted: list[str], found: list[str]) -> None:
    """A column the study reads must be the only one of its name: the CSV reader keeps the last of two, so a
    label would be read from another column without a word."""
    twice = {c: [i + 1 for i, name in enumerate(found) if name == c] for c in dict.fromkeys(wanted)}
    twice = {c: at for c, at in twice.items() if len(at) > 1}
    if twice:
        named = "; ".join(f"{c!r} is the header of columns {', '.join(map(str, at))}" for c, at in twice.items())
        raise DataError(f"{csv_path}: {named}, and a column the study reads must have a header of its own. Fix: "
                        "rename all but one of them")


def _check_each_image_once(csv_path: Path, cfg: CsvData, table: _Table, shown: int = 10) -> None:
    """An image listed twice is either in two splits (the test split would score images the model trained
    on) or counted twice in one (its class weighted double, maybe with two labels): refuse both."""
    rows_of: dict[Path, list[int]] = {}
    for n, path in zip(table.rows, table.files):
        rows_of.setdefault(path.resolve(), []).append(n)
    repeated = [(path, rows) for path, rows in rows_of.items() if len(rows) > 1]
    if not repeated:
        return
    split_of = dict(zip(table.rows, table.split_values))

    def where(rows: list[int]) -> str:
        return ", ".join(f"{n}" + (f" ({split_of[n]})" if cfg.split_column else "") for n in rows)
    listed = first_lines([f"{path}: rows {where(rows)}" for path, rows in repeated], shown)
    crossing = sum(len({split_of[n] for n in rows}) > 1 for _, rows in repeated) if cfg.split_column else 0
    leak = (f"; {crossing} of them in more than one split, so the model would be scored on images it trained on"
            if crossing else "")
    raise DataError(f"{csv_path}: column {cfg.image_column!r}: {len(repeated)} image file(s) listed in more than "
                    f"one row{leak}:{listed}\nFix: list each image once (to oversample a rare class, "
                    "use space.imbalance.sampler: balanced or loss: weighted_ce instead of repeating rows)")


def _check_files_exist(csv_path: Path, column: str, table: _Table, shown: int = 10) -> None:
    """Every listed image file must exist; all missing ones are named at once (a sheet is fixed in one pass)."""
    missing = [(n, path) for n, path in zip(table.rows, table.files) if not path.is_file()]
    if not missing:
        return
    folders = [path for _, path in missing if path.is_dir()]   # "not found" sent the user after a path that is there
    listed = first_lines([f"row {n}: {path}" + (" (a folder, not an image file)" if path.is_dir() else "")
                          for n, path in missing], shown)
    fix = f"image paths are relative to the CSV's folder ({csv_path.parent})"
    if any("\\" in str(path) for _, path in missing):   # a sheet written on Windows
        fix = "write the paths with / between folders: this sheet uses Windows' \\, which is part of a file name here"
    said = [f"{len(folders)} row(s) name a folder, not an image file"] if folders else []
    said += [f"{len(missing) - len(folders)} image file(s) not found"] if len(folders) < len(missing) else []
    fixes = [_folder_fix(folders[0])] if folders else []
    fixes += [fix] if len(folders) < len(missing) else []
    raise DataError(f"{csv_path}: column {column!r}: {', and '.join(said)}:{listed}\nFix: {'; '.join(fixes)}")


def _folder_fix(folder: Path) -> str:
    return (f"give each row one image file (a row per image in a folder, e.g. {(folder / 'img1.png').as_posix()}); "
            "for a folder holding one sub-folder per class, use source: folder")


def _check_consistent_spelling(csv_path: Path, column: str, raw: list[str], what: str = "label",
                               would: str = "make them different classes") -> None:
    """'Benign' and 'benign' would be two classes (and 'p0099' and 'P0099' two patients, split apart): a typo
    in a sheet must not silently add a class or a patient."""
    spellings: dict[str, set[str]] = {}
    for value in raw:
        spellings.setdefault(" ".join(value.lower().split()), set()).add(value)
    clashes = [sorted(values) for values in spellings.values() if len(values) > 1]
    if clashes:
        shown = "; ".join(" vs ".join(repr(v) for v in c) for c in clashes[:10])
        more = f"; and {len(clashes) - 10} more" if len(clashes) > 10 else ""
        raise DataError(f"{csv_path}: column {column!r} writes {len(clashes)} {what}(s) in several ways "
                        f"({shown}{more}), which would {would}. Fix: write each {what} the same way")


def _single_label(raw: list[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Distinct values are the classes, sorted numerically when they are all whole numbers (a spreadsheet's
    `1.0` is the class `1`, not another one)."""
    try:
        ints = [_whole_number(v) for v in raw]
        values = sorted(set(ints))
        return np.asarray([values.index(v) for v in ints], dtype=np.int64), tuple(str(v) for v in values)
    except ValueError:
        values_s = sorted(set(raw))
        return np.asarray([values_s.index(v) for v in raw], dtype=np.int64), tuple(values_s)


def _whole_number(value: str) -> int:
    number = float(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


def _multi_label(csv_path: Path, table: _Table, columns: tuple[str, ...]) -> np.ndarray:
    """Each label column must hold 0/1 (1.0/0.0 too, as spreadsheets often write them)."""
    out = np.zeros((len(table.rows), len(columns)), dtype=np.float32)
    bad = []   # every cell at once: a sheet is fixed in one pass
    for i, (n, values) in enumerate(zip(table.rows, table.raw_labels)):
        for j, (column, value) in enumerate(zip(columns, values)):
            try:
                number = float(value)
            except ValueError:
                number = -1.0
            if number not in (0.0, 1.0):
                bad.append(f"row {n}, column {column!r}: {value!r}")
            out[i, j] = number
    if bad:
        raise DataError(f"{csv_path}: multi-label columns hold 0 or 1; {len(bad)} cell(s) do not:{first_lines(bad)}"
                        "\nFix: write 1 if the label applies, else 0")
    for j, column in enumerate(columns):
        if out[:, j].min() == out[:, j].max():
            raise DataError(f"{csv_path}: column {column!r} is {int(out[0, j])} in every row: a label that never "
                            "changes cannot be learned or scored (its AUC is undefined). Fix: drop it from "
                            "data.label_columns, or check the column")
    return out


def _assign(cfg: CsvData, csv_path: Path, table: _Table, labels: np.ndarray, seed: int,
            classes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Row indices per split: from the split column, else a seeded stratified split (per label's positives,
    multi-label, unless multilabel_split: random); with group_column, a group's rows all in one split."""
    where = str(csv_path)

    def split(idx: np.ndarray, fractions: dict[str, float]) -> dict[str, np.ndarray]:
        groups = [table.groups[i] for i in idx] if table.groups else None
        if labels.ndim == 2 and groups is not None and len(set(groups)) < len(groups):
            # whole patients, stratified per label, whatever multilabel_split says (random would part a patient's
            # rows): loading.random_split_of_patients warns when random is so set aside
            parts = spanning_split(labels[idx], fractions, seed, where, classes, groups)
        elif labels.ndim == 2 and cfg.multilabel_split == "random":
            parts = random_split(len(idx), fractions, seed, where)
        elif labels.ndim == 2:
            parts = label_stratified_split(labels[idx], fractions, seed, where)
        else:
            parts = stratified_split(labels[idx], fractions, seed, where, classes, groups=groups)
        return {k: idx[v] for k, v in parts.items()}

    if cfg.split_column is None:
        return split(np.arange(len(labels)), {"val": cfg.val_fraction, "test": cfg.test_fraction})
    _check_split_values(csv_path, cfg.split_column, table)
    if table.groups:
        _check_groups_in_one_split(csv_path, cfg, table)
    values = np.asarray(table.split_values)
    out = {s: np.flatnonzero(values == s) for s in SPLITS}
    if len(out["val"]) == 0 and len(out["train"]) > 0:      # like the folder: carve val out of train
        carved = split(out["train"], {"val": cfg.val_fraction})
        out["train"], out["val"] = carved["train"], carved["val"]
    return out


# other names for a split seen in sheets: 'validation' is not close enough to 'val' for difflib to suggest it
SPLIT_SYNONYMS = {"validation": "val", "valid": "val", "dev": "val", "development": "val", "tune": "val",
                  "training": "train", "trn": "train", "testing": "test", "holdout": "test", "hold-out": "test",
                  "hold_out": "test", "heldout": "test", "held-out": "test"}
ROWS_NAMED = 5   # rows listed per unknown split value


def _check_split_values(csv_path: Path, column: str, table: _Table) -> None:
    """Every unknown split value at once, each with its rows and the split it likely means: a sheet with
    'validation' and 'holdout' was refused at its first bad row only, fixed one value per run."""
    rows_of: dict[str, list[int]] = {}
    for n, value, written in zip(table.rows, table.split_values, table.split_written):
        if value not in SPLITS:   # each spelling its own entry: 'Holdout' is quoted as the file has it
            rows_of.setdefault(written, []).append(n)
    if not rows_of:
        return
    said = "; ".join(f"{value!r} in {_rows_said(rows)}{_split_meant(value.lower())}"
                     for value, rows in rows_of.items())
    bad = sum(map(len, rows_of.values()))
    raise DataError(f"{csv_path}: column {column!r} (data.split_column) holds {bad} row(s) of an unknown split: "
                    f"{said}. Fix: mark each row one of {', '.join(SPLITS)} (case and surrounding spaces are "
                    "ignored)")


def _rows_said(rows: list[int]) -> str:
    listed = ", ".join(map(str, rows[:ROWS_NAMED])) + (f" and {len(rows) - ROWS_NAMED} more" if len(rows) >
                                                         ROWS_NAMED else "")
    return f"row{'s' * (len(rows) > 1)} {listed}"


def _split_meant(value: str) -> str:
    meant = SPLIT_SYNONYMS.get(value.strip())
    hint = f"did you mean {meant}?" if meant else did_you_mean(value, SPLITS)
    return f" ({hint})" if hint else ""


def _drawn_shares(cfg: CsvData, table: _Table) -> dict[str, float]:
    """The splits searchlab drew (not given in split_column) and the share asked of each."""
    if cfg.split_column is None:
        return {"val": cfg.val_fraction, "test": cfg.test_fraction}
    return {} if "val" in table.split_values else {"val": cfg.val_fraction}


def _check_groups_in_one_split(csv_path: Path, cfg: CsvData, table: _Table) -> None:
    """A patient's rows marked for two splits would be trained on and scored at once: refuse, naming them."""
    rows_of: dict[str, list[tuple[int, str | None]]] = {}
    for n, group, split in zip(table.rows, table.groups, table.split_values):
        rows_of.setdefault(group, []).append((n, split))
    crossing = [(g, rows) for g, rows in rows_of.items() if len({s for _, s in rows}) > 1]
    if crossing:
        listed = first_lines([f"{g!r}: " + ", ".join(f"row {n} ({s})" for n, s in rows) for g, rows in crossing])
        raise DataError(f"{csv_path}: {len(crossing)} group(s) of column {cfg.group_column!r} have rows in more than "
                        f"one split of column {cfg.split_column!r}, so a patient would be trained on and scored "
                        f"at once:{listed}\nFix: give all rows of a group the same split")


def plan_csv(cfg: CsvData, seed: int = 0, base_dir: Path | None = None) -> SplitPlan:
    """The CSV's image files per split and their labels (read and checked, nothing decoded)."""
    csv_path = resolve_path(cfg.path, base_dir)
    table = _read(cfg, csv_path)
    kind: TaskKind
    if table.groups:
        _check_consistent_spelling(csv_path, str(cfg.group_column), table.groups, "patient id",
                                   "make them different patients, whose images could sit in two splits")
    if len(cfg.label_columns) == 1:
        _check_consistent_spelling(csv_path, cfg.label_columns[0], [v[0] for v in table.raw_labels])
        labels, classes = _single_label([v[0] for v in table.raw_labels])
        if len(classes) < 2:
            raise DataError(f"{csv_path}: column {cfg.label_columns[0]!r} holds only {list(classes)}; "
                            f"at least 2 classes are needed. Fix: check data.label_columns")
        kind = "binary" if len(classes) == 2 else "multiclass"
    else:
        labels, classes, kind = _multi_label(csv_path, table, cfg.label_columns), cfg.label_columns, "multilabel"
    idx = _assign(cfg, csv_path, table, labels, seed, classes)
    refuse_synthetic(csv_path, {s: [table.files[i] for i in rows] for s, rows in idx.items()},
                     "drop their rows from the CSV")
    shared = len(set(table.groups)) < len(table.groups)   # else every row stands alone, as without the column
    return SplitPlan(source=csv_path, root=csv_path.parent, classes=tuple(classes), kind=kind,
                     files={s: [table.files[i] for i in rows] for s, rows in idx.items()},
                     labels={s: labels[rows] for s, rows in idx.items()},
                     groups={s: [table.groups[i] for i in rows] for s, rows in idx.items()} if shared else {},
                     carved=_drawn_shares(cfg, table))


def load_csv(cfg: CsvData, splits: tuple[str, ...], seed: int = 0, base_dir: Path | None = None) -> ImageDataset:
    """Load the requested splits of a CSV-described image set (see the module docstring)."""
    plan = plan_csv(cfg, seed, base_dir)
    csv_path = plan.source
    for s in splits:
        if len(plan.files[s]) == 0:
            raise DataError(f"{csv_path}: the {s!r} split has no rows. Fix: "
                            + (f"mark some rows {s!r} in column {cfg.split_column!r}" if cfg.split_column
                               else f"set data.{s}_fraction > 0"))
    loaded = load_splits(plan, splits, Decoding.of(cfg))
    return ImageDataset(
        splits=loaded, class_names=plan.classes, kind=plan.kind,
        description=f"CSV {csv_path} ({cfg.image_size}x{cfg.image_size}, {cfg.channels} channel(s))",
        extra={"source": "csv", "path": str(csv_path), **read_as(plan, splits)},
    )
