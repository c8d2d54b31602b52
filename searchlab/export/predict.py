"""`searchlab predict EXPORT IMAGES... [--out F.csv]`: an export's probabilities and labels for image files.

The files are decoded by the export's own preprocessing (`load_images`: size, channels, fit), the network is
rebuilt by searchlab's copy of the export's code from config.json and weights.safetensors (no code from the
export folder runs), and predictions are made as `model.predict_proba` / `model.predict` would: with the
export's test-time augmentation, ensemble averaging and decision threshold(s).
"""
from __future__ import annotations

import csv
import io
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

import torch

from searchlab.csv_cells import spreadsheet_safe
from searchlab.data.common import (IMAGE_EXTENSIONS, DecodeProgress, bit_depth_advice, decode_threads, first_lines,
                                   unreadable_reason)
from searchlab.data.folder_source import visible_files
from searchlab.data.synthetic_files import RECORD, synthetic_among
from searchlab.errors import ExportError, refuse_folder
from searchlab.export.damaged import UNLOADABLE, unloadable
from searchlab.export.input_range import unlike_training
from searchlab.models import standalone
from searchlab.models.image_files import read_input_file
from searchlab.output_reader import refuse_a_closed_stdout
from searchlab.whole_file import write_whole

SAME_EXPORT = "export the run again, or copy all of one export's files together"
CHUNK = 256   # images decoded and predicted at a time: memory stays bounded for large folders


def predict_files(export_dir: str | Path, inputs: Sequence[str | Path], out: TextIO) -> int:
    """Write one CSV row per image file (folders are walked, sorted); returns the number of rows."""
    # as `trials`: a \r\n ended each row's last cell in awk and cut
    return predict_rows(export_dir, inputs, csv.writer(out, lineterminator="\n"), safe=spreadsheet_safe)


def predict_rows(export_dir: str | Path, inputs: Sequence[str | Path], writer: Any,
                 safe: Callable[[str], str] = str) -> int:
    """The header, then one row per image file, given to `writer.writerow` (a csv writer, or RowsKept for
    Parquet); returns the number of image files. `safe`: what the text cells (path, predicted) are written as
    (a CSV's `=cmd().png` quoted, so a spreadsheet does not run it: csv_cells.py)."""
    config = _classifier_config(Path(export_dir))
    files = image_files(inputs)
    _say_what_the_files_are(files, config)
    net = _model(Path(export_dir), config)
    names = config["class_names"]
    header = ["path", *(f"p({name})" for name in names), "predicted"]
    unreadable: list[ExportError] = []
    progress = DecodeProgress(len(files), cached=False, doing="predict: read and scored")
    # Pillow releases the GIL while it decodes: threads read a chunk on every core, as training's loader does
    with ThreadPoolExecutor(max_workers=decode_threads()) as pool:
        for start in range(0, len(files), CHUNK):
            chunk = files[start:start + CHUNK]
            read = list(pool.map(lambda path: _read_or_error(path, config), chunk))
            unreadable += _predicted_rows(net, config, chunk, read, writer, header if start == 0 else None,
                                          write=not unreadable, safe=safe)
            progress.decoded(start + len(chunk))
    if unreadable:
        lines = first_lines([str(e).split(". Fix:")[0] for e in unreadable])
        raise ExportError(f"{len(unreadable)} of {len(files)} image files cannot be read:{lines}\nFix: replace or "
                          "remove these files; no predictions were written")
    return len(files)


def _say_what_the_files_are(files: list[Path], config: dict[str, Any]) -> None:
    """Warnings about files this export may not read as its training images were, and a note on generated ones."""
    if odd := [path for path in files if not _utf8(str(path))]:   # csv and pandas readers stop at their bytes
        print(f"warning: {len(odd)} file name(s) are not UTF-8 (e.g. {ascii(str(odd[0]))}); their paths are "
              "written as the bytes they are, so the CSV is not all UTF-8. Read it with pandas.read_csv(F, "
              "encoding_errors='surrogateescape', dtype={'path': object}) or open(F, encoding='utf-8', "
              "errors='surrogateescape'), which keep the names as Python names those files (os.fsencode gives "
              "their bytes), or rename the files", file=sys.stderr)
    advice = bit_depth_advice(files, config["input"].get("bit_depth"))
    if advice:   # the export decodes as its training data was decoded; these files may need otherwise
        print(f"warning: {advice} (in the study file, then run and export again: this export decodes files as "
              "its training images were)", file=sys.stderr)
    for unlike in unlike_training(files, config):   # far from the training files' sizes, grey or colour
        print(f"warning: {unlike}", file=sys.stderr)
    if synthetic := synthetic_among(files):   # what a classifier makes of a GAN's images: a fair question, if said
        print(f"note: {len(synthetic)} of the {len(files)} images were made by a generative model (`searchlab "
              f"sample`'s file names or its {RECORD} beside them), e.g. {synthetic[0]}: their predictions say "
              "nothing about acquired images", file=sys.stderr)


def _predicted_rows(net: torch.nn.Module, config: dict[str, Any], chunk: list[Path],
                    read: list[torch.Tensor | ExportError], writer: Any, header: list[str] | None,
                    write: bool, safe: Callable[[str], str]) -> list[ExportError]:
    """One chunk's rows written (with the header, for the first chunk), or its unreadable files returned: once
    one is found, reading goes on to name every one at once, and nothing more is predicted or written."""
    unreadable = [r for r in read if isinstance(r, ExportError)]
    if unreadable or not write:
        return unreadable
    probs = standalone.predict_proba(net, config, torch.stack(read))   # type: ignore[arg-type]
    labels = standalone.labels_of(probs, config)   # predict() would run the network a second time
    if header is not None:   # once the first chunk was read: an unreadable file there leaves no half table
        writer.writerow(header)
    names = config["class_names"]
    for path, p, label in zip(chunk, probs, labels):
        predicted = _label_text(label, names, config["task"])
        writer.writerow([safe(str(path)), *_per_class(p, config["task"]), safe(predicted)])
    return []


def _model(export_dir: Path, config: dict[str, Any]) -> torch.nn.Module:
    try:
        net = standalone.build_export_model(config)
        net.load_state_dict(standalone.read_safetensors(export_dir / "weights.safetensors",
                                                        config.get("weights_sha256")))
    except standalone.WeightsNotDescribed as exc:   # already one line with its own fix (model.save keeps them)
        raise ExportError(str(exc)) from None
    except UNLOADABLE as exc:
        raise ExportError(f"{unloadable(export_dir, exc)}. Fix: {SAME_EXPORT}") from None
    return net.eval()


# the keys of config.json that reading, scoring and labelling files use
PREDICT_NEEDS = ("model", "preprocessing", "task", "class_names")


def export_folder_config(export_dir: Path, use: str = "searchlab predict {} IMAGES...",
                         wants: str = "classifier") -> dict[str, Any]:
    """An export folder's config.json, or an ExportError saying what the folder is instead (a run folder, not
    an export, a config.json that is not JSON). `use`: the command the fix shows, the export in place of {};
    `wants`: the kind of export it takes (classifier or generator), which a run folder's fix names."""
    path = export_dir / "config.json"
    if not export_dir.exists():
        raise ExportError(f"{export_dir} does not exist. Fix: give the folder `searchlab export RUN --out DIR` wrote")
    if not path.is_file() and (export_dir / "searchlab.json").is_file():
        raise ExportError(run_folder_fix(export_dir, use, wants))
    if not path.is_file():
        raise ExportError(f"{export_dir} is not a searchlab export (no config.json). Fix: give the folder "
                          "`searchlab export RUN --out DIR` wrote")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ExportError(f"{unloadable(export_dir, exc)}. Fix: {SAME_EXPORT}") from None


def _classifier_config(export_dir: Path) -> dict[str, Any]:
    config = export_folder_config(export_dir)
    if "generator" in config:
        raise ExportError(f"{export_dir} holds a generator, which classifies nothing. Fix: write its images with "
                          f"`searchlab sample {export_dir} --out DIR` (or model.load_generator, model.sample_images)")
    if "input" not in config:
        from searchlab.augment.synthetic import medfid_features_said   # here: it imports this module

        if medfid := medfid_features_said(export_dir, config):
            raise ExportError(f"{medfid[0]}, not a classifier export. Fix: to classify images, give the export of a "
                              "classify study's run (searchlab export RUN --out DIR)")
        raise ExportError(f"{export_dir}/config.json has no 'input' (image size and channels): an export by an "
                          "older searchlab. Fix: export the run again")
    needs = PREDICT_NEEDS + (() if config.get("task") == "multiclass" else ("threshold",))
    missing = [key for key in needs if key not in config]
    if missing:   # a hand-edited config.json: named here, not as a KeyError halfway through the files
        raise ExportError(f"{export_dir}/config.json has no {', '.join(map(repr, missing))}, which predicting "
                          f"needs. Fix: {SAME_EXPORT}")
    if _uses_nni(config["model"]):
        raise ExportError(f"{export_dir} holds an NNI model, whose code is your module. Fix: load it with the "
                          "export's model.py (model.load, model.load_images, model.predict)")
    if not (export_dir / "model.py").is_file():   # predict runs searchlab's own copy of it, so it still works
        print(f"warning: {export_dir} has no model.py, so it no longer loads with torch alone (predict uses "
              f"searchlab's copy). Fix: export the run again, or copy model.py back from another export of this "
              "searchlab version", file=sys.stderr)
    return config


# Folders a run keeps beside its exports that look like one (config.json, weights.safetensors) but are not a
# model of the study's trials: the MedFID feature network a GAN run trains for itself (gan/features.py CACHE_DIR)
HELPER_FOLDERS = ("medfid_features",)


def run_folder_fix(run_dir: Path, use: str, wants: str = "classifier") -> str:
    """A run folder given for an export of the kind `wants` (classifier or generator): the export of that kind in
    it (best/, as export.after_run writes it, first), else the command that makes one, or that the run is of the
    other kind (a classify study's run has no generator to draw from, a generate study's none to predict with)."""
    said = f"{run_dir} is a run folder (it holds searchlab.json), not an export"
    exports = _exports_in(run_dir)
    fitting = [path for path, kind in exports.items() if kind == wants]
    if fitting:
        return (f"{said}. Fix: give its export, {use.format(fitting[0])}"
                + (f" (exports in it: {', '.join(p.name for p in fitting)})" if len(fitting) > 1 else ""))
    run_kind = next(iter(exports.values()), None) or _run_kind(run_dir)
    if run_kind is not None and run_kind != wants:
        tool = use.split(' {}')[0].rstrip(':')   # "augment.synthetic: {}" is said "augment.synthetic draws..."
        return (f"{said}, and {_study_of_kind(run_kind)}'s run: {tool} {_what_takes(wants)}. Fix: "
                f"export {_study_of_kind(wants)}'s run (searchlab export RUN --out DIR) and give that folder"
                + (f"; {run_dir}'s own export, {next(iter(exports))}, is a {run_kind}" if exports else ""))
    front = _front_of_several_objectives(run_dir)
    if front:   # `searchlab export RUN` alone is refused there: no single best
        return (f"{said}, and holds no export; its study has {front[0]} objectives, so there is no single best "
                f"{wants}. Fix: export one of its Pareto front (trials {', '.join(map(str, front[1]))}), searchlab "
                f"export {run_dir} --trial {front[1][0]} --out {run_dir / 'best'}, then {use.format(run_dir / 'best')}")
    return (f"{said}, and holds no export. Fix: export it first, searchlab export {run_dir} --out "
            f"{run_dir / 'best'}, then {use.format(run_dir / 'best')}")


def _exports_in(run_dir: Path) -> dict[Path, str]:
    """The exports in a run folder, best/ first, each 'generator' or 'classifier' (by its config.json)."""
    found = {}
    for path in sorted(run_dir.iterdir(), key=lambda p: (p.name != "best", p.name)):
        if path.is_dir() and path.name not in HELPER_FOLDERS and (kind := _export_kind(path)):
            found[path] = kind
    return found


def _export_kind(folder: Path) -> str | None:
    """'generator' (its config.json has a "generator" key), 'classifier', or None: no readable config.json."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return None if not isinstance(config, dict) else "generator" if "generator" in config else "classifier"


def _run_kind(run_dir: Path) -> str | None:
    """'generator' or 'classifier' for a run that holds no export: a GAN run's MedFID network says so, else the
    task the run recorded in its study, read from a storage file only (a database server, perhaps unreachable,
    would keep an error message waiting); None when it cannot be told."""
    if (run_dir / HELPER_FOLDERS[0]).is_dir():
        return "generator"
    run = _run_from_a_file(run_dir)
    if run is None:
        return None
    task = (run.record.get("task") if isinstance(run.record, dict) else None) or {}
    kind = task.get("kind", "classify") if isinstance(task, dict) else task   # a study made by hand: its name
    return {"generate": "generator", "classify": "classifier"}.get(kind)


def _front_of_several_objectives(run_dir: Path) -> tuple[int, list[int]] | None:
    """(objectives, the Pareto front's trial numbers) of a run of several objectives, else None."""
    run = _run_from_a_file(run_dir)
    try:
        directions = len(run.study.directions) if run is not None else 1
        front = sorted(t.number for t in run.study.best_trials) if directions > 1 else []
    except Exception:   # noqa: BLE001 (only on the way to an error message)
        return None
    return (directions, front) if front else None


def _run_from_a_file(run_dir: Path) -> Any:
    """The run's study when its storage is a file (a database server, perhaps unreachable, would keep an error
    message waiting); None when it cannot be read: the message then leaves out what it would have said."""
    try:
        from searchlab.engine.rundir import MANIFEST, open_run

        storage = str(json.loads((run_dir / MANIFEST).read_text())["storage"])
        return open_run(run_dir) if storage.startswith(("sqlite:///", "journal://")) else None
    except Exception:   # noqa: BLE001 (any failure to read a run's record)
        return None


def _study_of_kind(kind: str) -> str:
    return "a generate (GAN) study" if kind == "generator" else "a classifier study"


def _what_takes(wants: str) -> str:
    return "draws images from a generator export" if wants == "generator" else "classifies with a classifier export"


def _uses_nni(spec: dict[str, Any]) -> bool:
    return spec.get("architecture") == "nni" or any(_uses_nni(m) for m in spec.get("members", []))


def image_files(inputs: Sequence[str | Path]) -> list[Path]:
    """The files named, and the image files in the folders named (sorted; hidden files ignored, other files
    counted in a warning, as training's data line counts them)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            visible = visible_files(item)
            found = [p for p in visible if p.suffix.lower() in IMAGE_EXTENSIONS]
            if not found:
                raise ExportError(f"{item}: no image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) in it or below")
            others = Counter(p.suffix.lower() or "(none)" for p in visible
                             if p.suffix.lower() not in IMAGE_EXTENSIONS)
            if others:
                print(f"warning: {item}: left out {sum(others.values())} file(s) that are not images ("
                      + ", ".join(f"{ext} {n}" for ext, n in sorted(others.items())) + ")", file=sys.stderr)
            files += found
        elif item.is_file():
            files.append(item)
        else:
            raise ExportError(f"{item}: no such file or folder. Fix: give image files or folders of them")
    return files


def _read_or_error(path: Path, config: dict[str, Any]) -> torch.Tensor | ExportError:
    try:
        return read_input_file(path, config)
    except Exception as exc:   # Pillow raises many kinds; the file is what the user can act on
        return ExportError(f"{path}: cannot read image ({unreadable_reason(path, exc)}). Fix: replace or remove "
                           "the file")   # an empty file as a data set's is said: not "cannot identify image file"


def _per_class(p: torch.Tensor, task: str) -> Iterator[str]:
    values = [1.0 - float(p), float(p)] if task == "binary" else [float(v) for v in p]
    return (f"{v:.6f}" for v in values)


def _label_text(label: torch.Tensor, names: list[str], task: str) -> str:
    if task == "multilabel":
        return ";".join(name for name, on in zip(names, label.tolist()) if on)
    return names[int(label)]


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:   # a name's undecodable bytes, kept by Python as lone surrogates
        return False
    return True


def write_predictions(export_dir: str, inputs: Sequence[str], out: str | None) -> int:
    """To standard output, or to `out` whole: written beside it and moved into place when every file was read."""
    if out is None:   # whole or nothing, as --out: an unreadable file found after 256 rows left them printed
        refuse_a_closed_stdout("the predictions")   # before the work: it would be thrown away
        table = io.StringIO()
        rows = predict_files(export_dir, inputs, table)
        sys.stdout.write(table.getvalue())
        return rows
    refuse_folder(out, "predictions.csv", what="CSV file")
    suffix = Path(out).suffix.lower()
    if suffix in (".json", ".jsonl", ".xlsx", ".tsv"):   # CSV rows under another format's name misled readers
        raise ExportError(f"--out {out}: predict writes CSV or Parquet, chosen by the file's extension, not "
                             f"{suffix}. Fix: name a .csv file (or .parquet)")
    if suffix == ".parquet":   # by its extension, as `trials --out`: CSV under it misled readers
        return _write_parquet_predictions(export_dir, inputs, Path(out))
    rows = 0

    def write(part: Path) -> None:
        nonlocal rows
        # file names that are not UTF-8 (Latin-1 from a Windows share) are written back as the bytes they are,
        # as on the terminal: strict UTF-8 ended the command in a UnicodeEncodeError
        with part.open("w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
            rows = predict_files(export_dir, inputs, fh)

    # as `trials --out`: a hidden partial file of this process's own (two predicts into one --out each moved a
    # whole file; a shared `out.partial` mixed their rows), and a pipe or a device written to, never replaced
    write_whole(Path(out), write)
    return rows


def _write_parquet_predictions(export_dir: str, inputs: Sequence[str], out: Path) -> int:
    """The CSV's columns as Parquet (p(class) as floats), written whole as the CSV is."""
    from searchlab.trials_table import write_parquet   # (optuna's import: for this format only)

    kept = RowsKept()
    rows = predict_rows(export_dir, inputs, kept)
    table = kept.table(out)
    write_whole(out, lambda part: write_parquet(table, part))
    return rows


class RowsKept:
    """Rows as a csv writer takes them, kept for a table: the header first."""

    def __init__(self) -> None:
        self.rows: list[list[str]] = []

    def writerow(self, row: list[str]) -> None:
        self.rows.append(row)

    def table(self, out: Path) -> Any:
        import pandas as pd

        header, *rows = self.rows or [["path", "predicted"]]
        if odd := [row[0] for row in rows if not _utf8(row[0])]:   # Parquet's strings are UTF-8, always
            raise ExportError(f"--out {out}: {len(odd)} file name(s) are not UTF-8 (e.g. {ascii(odd[0])}), and "
                              "Parquet holds only UTF-8 text. Fix: --out with .csv (names kept as their bytes), or "
                              "rename the files")
        table = pd.DataFrame(rows, columns=header, dtype=object)
        probabilities = [column for column in header if column.startswith("p(")]
        return table.astype({column: "float64" for column in probabilities})
