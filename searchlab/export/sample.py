"""`searchlab sample EXPORT --out DIR`: a generator export's images written as PNG files, marked synthetic.

Synthetic medical images must never be taken for acquired ones: every file is named synthetic_*.png, and
DIR/synthetic.json records each draw (the generator's export folder, weights' SHA-256, family, trial, MedFID,
why its trial was marked suspect if it was; the seed; images per class), before its images are written
(`complete` false until they all are, so a killed draw's files are on record; one that fails removes them). A
class-conditional generator's images go to one sub-folder per class (DIR/<class>/), the layout of a folder data
set; an unconditional one's to DIR itself. The images are as the export's `model.sample_images` gives them (uint8,
its size and channels), from a random stream per seed and class (_class_stream), not `sample_images(seed=S)`'s.
"""
from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from searchlab.data.synthetic_files import RECORD, synthetic_name
from searchlab.errors import ExportError, a_few
from searchlab.export.damaged import UNLOADABLE, unloadable
from searchlab.export.predict import SAME_EXPORT, export_folder_config
from searchlab.export.provenance import file_digest

BATCH = 256   # images generated at a time: memory stays bounded for large draws


@dataclass(frozen=True)
class Draw:
    """What one `searchlab sample` wrote: images per class ('' for an unconditional generator), the seed."""

    out: Path
    seed: int
    counts: dict[str, int]
    suspect: str | None = None   # why the generator's trial was marked suspect, if it was

    def said(self) -> str:
        total = sum(self.counts.values())
        per_class = ", ".join(f"{n} {name}" for name, n in self.counts.items() if name)
        return (f"wrote {total} synthetic images{f' ({per_class})' if per_class else ''} to {self.out}, seed "
                f"{self.seed} (--seed {self.seed} draws the same images again); recorded in {self.out / RECORD}")


def write_samples(export_dir: str | Path, out: str | Path, n: int, classes: list[str] | None = None,
                  seed: int | None = None) -> Draw:
    """Write `n` images per class asked for (all the generator's classes by default; `n` in all when it is
    unconditional) as PNG files under `out`, from a seed (a random one when None, reported)."""
    export_dir, out = Path(export_dir), Path(out)
    _refuse_out(out)
    generator, config = _generator(export_dir)
    wanted = _wanted_classes(generator, classes, export_dir)
    seed = secrets.randbelow(2**31) if seed is None else seed
    files = {name: [_file(out, name, seed, i) for i in range(n)] for name in wanted}
    _refuse_shared_folders(files)
    _refuse_taken([path for paths in files.values() for path in paths], out, seed)
    earlier = _earlier_draws(out)
    draw = Draw(out, seed, {name: n for name in wanted}, config.get("suspect"))
    about = _about(draw, export_dir, config)
    new_folders = [folder for folder in dict.fromkeys([out, *(paths[0].parent for paths in files.values())])
                   if not folder.exists()]
    out.mkdir(parents=True, exist_ok=True)
    _record(out, [*earlier, {**about, "complete": False}])   # before any image: a killed draw's are on record
    try:
        for name, index in wanted.items():
            _write_class(generator, index, files[name], _class_stream(seed, index))
    except BaseException:   # a failed or interrupted draw takes back what it wrote, leaving no unrecorded images
        _undo(files, new_folders, out, earlier)
        raise
    _record(out, [*earlier, {**about, "complete": True}])
    return draw


def _generator(export_dir: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    from searchlab.models.gan_sampling import load_generator

    if "generator" not in export_folder_config(export_dir, "searchlab sample {} --out DIR"):
        raise ExportError(f"{export_dir} holds a classifier, which generates no images. Fix: give a generator's "
                          "export (`searchlab export` of a generate study's run, e.g. studies/breastmnist_gan.yaml)")
    try:
        return load_generator(export_dir)
    except UNLOADABLE as exc:
        raise ExportError(f"{unloadable(export_dir, exc)}. Fix: {SAME_EXPORT}") from None


def _wanted_classes(generator: torch.nn.Module, classes: list[str] | None, export_dir: Path) -> dict[str, int | None]:
    """{class name: index} to draw ({'': None} for an unconditional generator); --class values by name or index."""
    n_classes = int(getattr(generator, "n_classes", 0))
    names = list(generator.class_names) or [str(i) for i in range(n_classes)]
    if n_classes == 0:
        if classes:
            raise ExportError(f"--class {classes[0]}: the generator in {export_dir} is unconditional, so it cannot "
                              "be asked for a class. Fix: drop --class, or export a class-conditional GAN trial "
                              "(run the GAN study with --set space.gan.conditional=true)")
        return {"": None}
    wanted: dict[str, int | None] = {}
    for value in classes or names:
        index = names.index(value) if value in names else int(value) if value.isdigit() else -1
        if not 0 <= index < n_classes:
            raise ExportError(f"--class {value!r} is not a class of the generator in {export_dir}. Fix: one of "
                              f"{names} (or its index 0..{n_classes - 1})")
        wanted[names[index]] = index
    return wanted


def _file(out: Path, name: str, seed: int, i: int) -> Path:
    folder = out / re.sub(r"[^\w.-]+", "_", name) if name else out   # a class name as one folder name
    return folder / synthetic_name(seed, i)


def _refuse_out(out: Path) -> None:
    """A file, or a searchlab export or run folder: images written there would be mixed with its files (a later
    export refused the folder as an earlier export with files added to it)."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} is a file, not a folder; nothing was written. Fix: name a new folder, or "
                          "one that earlier draws wrote to")
    holds = next((name for name in ("config.json", "searchlab.json") if (out / name).is_file()), None)
    if holds:
        what = "an export" if holds == "config.json" else "a run folder"
        raise ExportError(f"--out {out} is {what} (it holds {holds}); nothing was written. Fix: name a folder of "
                          "its own for the images")


def _refuse_shared_folders(files: dict[str, list[Path]]) -> None:
    """Class names that differ only in characters a folder name cannot hold would write into one folder."""
    folders: dict[Path, str] = {}
    for name, paths in files.items():
        if paths and (other := folders.setdefault(paths[0].parent, name)) != name:
            raise ExportError(f"the classes {other!r} and {name!r} would both be written to {paths[0].parent}; "
                              "nothing was written. Fix: draw them one at a time (--class), each to its own --out")


def _refuse_taken(paths: list[Path], out: Path, seed: int) -> None:
    """A draw never replaces images: an earlier draw's files may already be in use (a data set, a review)."""
    taken = [path for path in paths if path.exists()]
    if taken:
        raise ExportError(f"{out} already holds {len(taken)} of the files this draw would write ({a_few(taken, 2)}: "
                          f"an earlier draw with seed {seed}); nothing was written. Fix: another --out, or another "
                          "--seed")


def _class_stream(seed: int, index: int | None) -> torch.Generator:
    """One random stream per (seed, class): a class's images do not depend on which other classes are drawn,
    and no two seeds share a stream (seed + index would make seed 1's class 0 seed 0's class 1)."""
    state = np.random.SeedSequence([seed] if index is None else [seed, index]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state) >> 1)   # torch takes seeds below 2**63


def _write_class(generator: torch.nn.Module, index: int | None, files: list[Path], stream: torch.Generator) -> None:
    from searchlab.models.gan_sampling import as_uint8

    if files:
        files[0].parent.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(files), BATCH):
        chunk = files[start:start + BATCH]
        labels = None if index is None else torch.full((len(chunk),), index, dtype=torch.long)
        for path, image in zip(chunk, as_uint8(generator.sample(len(chunk), labels, generator=stream))):
            pixels = image.numpy()
            Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)).save(path)


def _earlier_draws(out: Path) -> list[dict[str, Any]]:
    """The draws synthetic.json already records (read before writing, so a damaged record stops the draw)."""
    path = out / RECORD
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text())["draws"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ExportError(f"{path} is not a record searchlab sample wrote ({type(exc).__name__}: {exc}); nothing "
                          "was written. Fix: another --out, or move that file away") from None


def _about(draw: Draw, export_dir: Path, config: dict[str, Any]) -> dict[str, Any]:
    """One draw's entry in the record. The weights' SHA-256 is of the file the images came from (an export
    without one in its config.json still names its weights)."""
    spec, metrics = config["generator"], config.get("metrics", {})
    return {"export": str(export_dir.resolve()), "weights_sha256": file_digest(export_dir / "weights.safetensors"),
            "family": spec.get("family"), "study": config.get("study"),
            "trial": (config.get("trial") or {}).get("number"), "medfid": metrics.get("medfid"),
            "suspect": config.get("suspect"), "seed": draw.seed, "images": draw.counts}


def _record(out: Path, draws: list[dict[str, Any]]) -> None:
    """Written beside and moved into place: a killed write leaves the previous record, never half of one."""
    record = {"synthetic": True, "note": "images made by a generative model, not acquired from patients",
              "draws": draws}
    part = out / f".{RECORD}.part"
    part.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(part, out / RECORD)


def _undo(files: dict[str, list[Path]], new_folders: list[Path], out: Path, earlier: list[dict[str, Any]]) -> None:
    """Remove the images a failed draw wrote (none of them were there before it: _refuse_taken), the folders it
    made, and its entry in the record."""
    for path in (path for paths in files.values() for path in paths):
        if path.is_file():
            path.unlink()
    if earlier:
        _record(out, earlier)
    elif (out / RECORD).is_file():
        (out / RECORD).unlink()
    for folder in reversed(new_folders):   # class folders before `out`
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
