"""Images a generative model made (`searchlab sample`), found among a data set's files, which must be acquired
images: validated or tested on, they would grade a model on a generator's output; in a folder searchlab splits,
or under cross-validation, they would be dealt to held-out images. `augment.synthetic` is how a generator's
images join the training split (and only it).

Known by their record (synthetic.json, which `searchlab sample` writes in its --out folder, above the class
folders) in the image's folder or the one above it, or by `searchlab sample`'s file names, which stay on
images copied without their record.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from searchlab.errors import DataError

RECORD = "synthetic.json"
SYNTHETIC_NAME = re.compile(r"^synthetic_s\d+_\d+\.png$")


def synthetic_name(seed: int, index: int) -> str:
    """The file name `searchlab sample` gives its `index`-th image of a draw with `seed`."""
    return f"synthetic_s{seed}_{index:05d}.png"


def synthetic_among(files: Sequence[Path]) -> list[Path]:
    """Those of `files` a generative model made, in their order."""
    records: dict[Path, Path | None] = {}

    def record_of(folder: Path) -> Path | None:
        if folder not in records:
            records[folder] = next((f / RECORD for f in (folder, folder.parent) if (f / RECORD).is_file()), None)
        return records[folder]

    return [path for path in files if SYNTHETIC_NAME.match(path.name) or record_of(path.parent) is not None]


def refuse_synthetic(where: Path, files: dict[str, list[Path]], remove: str = "move them out of data.path") -> None:
    """DataError naming the synthetic images among the splits' files, if any."""
    found = {split: synthetic_among(paths) for split, paths in files.items()}
    found = {split: paths for split, paths in found.items() if paths}
    if not found:
        return
    every = [path for paths in found.values() for path in paths]
    counts = ", ".join(f"{len(paths)} in {split}" for split, paths in found.items())
    shown = ", ".join(str(path) for path in every[:3]) + (", ..." if len(every) > 3 else "")
    raise DataError(f"{where}: {len(every)} image(s) ({counts}) were made by a generative model (`searchlab "
                    f"sample`'s synthetic_* file names, or its {RECORD} beside them): {shown}. A data set's images "
                    "are validated, tested and cross-validated on as acquired ones, so a generator's would grade "
                    f"the models on its own output. Fix: {remove}, and add a generator's images to "
                    f"the training split with augment.synthetic{_named_export(every)} and synthetic_per_class "
                    "(they never reach validation or test)")


def _named_export(files: list[Path]) -> str:
    """': <the export(s) they were drawn from>' when a record beside them names one."""
    for path in files:
        for folder in (path.parent, path.parent.parent):
            if exports := drawn_from(folder):
                return f": {' or '.join(exports)}"
    return ""


def drawn_from(folder: Path) -> list[str]:
    """The generator exports the draws recorded in `folder`'s synthetic.json came from (none: no record)."""
    try:
        draws = json.loads((folder / RECORD).read_text())["draws"]
        return list(dict.fromkeys(str(draw["export"]) for draw in draws))
    except (OSError, ValueError, KeyError, TypeError):
        return []
