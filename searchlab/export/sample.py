"""`searchlab sample EXPORT --out DIR`: a generator export's images written as PNG files, marked synthetic.

Synthetic medical images must never be taken for acquired ones: every file is named synthetic_*.png, carries
a PNG text chunk (MARK_KEY: the export and its weights' SHA-256) that a renamed copy keeps, and
DIR/synthetic.json records each draw (the generator's export folder, weights' SHA-256, family, trial, MedFID,
why its trial was marked suspect if it was; the seed; images per class; the files), before its images are written
(`complete` false until they all are, so a killed draw's files are on record; one that fails removes them). A
class-conditional generator's images go to one sub-folder per class (DIR/<class>/), the layout of a folder data
set; an unconditional one's to DIR itself. The images are the export's `model.sample_class(G, n, class, seed)`
(gan_sampling.py, in every generator export's model.py, so a user redraws them without searchlab): a random stream
per seed and class, not `sample_images(seed=S)`'s.
"""
from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from searchlab.augment.synthetic import medfid_features_said
from searchlab.data.common import IMAGE_EXTENSIONS
from searchlab.data.given_splits import SPLITS
from searchlab.data.synthetic_files import MARK_KEY, RECORD, not_synthetic, synthetic_name
from searchlab.errors import ExportError, a_few
from searchlab.export.damaged import UNLOADABLE, unloadable
from searchlab.export.predict import SAME_EXPORT, export_folder_config
from searchlab.export.provenance import file_digest


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
    _refuse_empty_out(out)
    export_dir, out = Path(export_dir), Path(out)
    generator, config = _generator(export_dir)   # first: its class names tell a data set's class folders
    forms = _class_forms(generator)
    _refuse_out(out, forms=forms)
    _refuse_inside_a_drawn_class_folder(out)   # --out only: a draw's own class folder may be a symlink
    wanted = _wanted_classes(generator, classes, export_dir)
    seed = secrets.randbelow(2**31) if seed is None else seed
    files = {name: [_file(out, name, index, seed, i) for i in range(n)] for name, index in wanted.items()}
    _refuse_shared_folders(files)
    _refuse_class_folders_elsewhere(files, out, forms)
    _refuse_taken([path for paths in files.values() for path in paths], out, seed)
    earlier = _earlier_draws(out)
    draw = Draw(out, seed, {name: n for name in wanted}, config.get("suspect"))
    about = {**_about(draw, export_dir, config), "files": _relative(files, out)}
    mark = _mark(about)
    new_folders = [folder for folder in dict.fromkeys([out, *(paths[0].parent for paths in files.values())])
                   if not folder.exists()]
    out.mkdir(parents=True, exist_ok=True)
    _record(out, [*earlier, {**about, "complete": False}])   # before any image: a killed draw's are on record
    try:
        for name, index in wanted.items():
            _write_class(generator, index, files[name], seed, mark)
    except BaseException:   # a failed or interrupted draw takes back what it wrote, leaving no unrecorded images
        _undo(files, new_folders, out, earlier)
        raise
    _record(out, [*earlier, {**about, "complete": True}])
    return draw


def _generator(export_dir: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    from searchlab.models.gan_sampling import load_generator

    config = export_folder_config(export_dir, "searchlab sample {} --out DIR", wants="generator")
    if "generator" not in config and (medfid := medfid_features_said(export_dir, config)):
        raise ExportError(f"{medfid[0]} (it generates no images). Fix: {medfid[1]}")
    if "generator" not in config:
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
        index = _class_named(value, names, export_dir)
        wanted[names[index]] = index
    return wanted


def _class_named(value: str, names: list[str], export_dir: Path) -> int:
    """The class a --class value names, by the rule of the export's model.sample_class (gan_sampling.class_named:
    its exact name or index, its folder name, either in another case), so a redraw takes the same values."""
    from searchlab.models.gan_sampling import class_named

    try:
        return class_named(value, names, "--class", f"the generator in {export_dir}")
    except ValueError as exc:
        raise ExportError(str(exc)) from None


def _class_forms(generator: torch.nn.Module) -> frozenset[str]:
    """The generator's class names and their folder names, in lower case: folders so named are a data set's
    classes (benign/, malignant/), not the classes' folders of a draw's own --out."""
    names = list(getattr(generator, "class_names", None) or [])
    return frozenset(form.lower() for i, name in enumerate(names) for form in (name, _class_folder_name(name, i)))


def _file(out: Path, name: str, index: int | None, seed: int, i: int) -> Path:
    folder = out if index is None else out / _class_folder_name(name, index)
    return folder / synthetic_name(seed, i)


def _class_folder_name(name: str, index: int) -> str:
    """A class name as the one folder its images go to: the export's model.py's rule (gan_sampling.class_folder_name),
    which --class also takes (two names that become one folder are refused: _refuse_shared_folders). Why that rule:
    a name of dots alone or nothing ('..' from a CSV label) would write into --out or above it, and one with a
    leading dot would be a hidden folder, which data loading skips: the first is named class_<index>, the leading
    dots of the second become underscores; a class named as the draw's record (synthetic.json) is named by its
    index too (its folder and the record cannot share a name)."""
    from searchlab.models.gan_sampling import class_folder_name

    return class_folder_name(name, index)


OWN_FOLDER = "Fix: name a folder of its own for the images (e.g. synthetic/ beside the data folder, not in it)"
SEARCHED_DEPTH = 4   # folder levels below --out searched for images: split/class/patient/file of a data set
PATIENT_DEPTH = 1   # a class folder's images may be in its patients' sub-folders, as the loader reads them


def _refuse_empty_out(out: str | Path) -> None:
    """An empty --out (an unset $OUT in a script) is Path('.'): the draw would go into the current folder."""
    if not str(out).strip():
        raise ExportError(f"--out is empty ({str(out)!r}): a draw needs a folder named for it, and an empty value "
                          "(an unset variable in a script) would write into the current folder; nothing was "
                          "written. Fix: name a folder of its own, e.g. --out synthetic/")


def _refuse_out(out: Path, said: str = "", forms: frozenset[str] = frozenset()) -> None:
    """--out must be a folder of the draws' own (new, or earlier draws'): images written into a searchlab
    export or run folder would be mixed with its files (a later export refused the folder as an earlier export
    with files added to it), and into a data set they would be read as acquired images (a synthetic.json in a
    data folder once marked all of its 784 real images as synthetic). `said`: how messages name `out`; `forms`:
    the generator's class names and folder names (_class_forms)."""
    said = said or f"--out {out}"
    if out.exists() and not out.is_dir():
        raise ExportError(f"{said} is a file, not a folder; nothing was written. Fix: name a new folder, or "
                          "one that earlier draws wrote to")
    # under a file (afile/x): mkdir said "Not a directory" with exit 1, where trials/report/compare refuse it (2)
    if above := next((folder for folder in out.parents if folder.exists() and not folder.is_dir()), None):
        raise ExportError(f"{said}: {above} is a file, not a folder, so nothing can be written under it; nothing "
                          f"was written. Fix: name a folder elsewhere (e.g. --out {above.parent / out.name}), or "
                          f"move {above} away")
    holds = next((name for name in ("config.json", "searchlab.json") if (out / name).is_file()), None)
    if holds:
        what = "an export" if holds == "config.json" else "a run folder"
        raise ExportError(f"{said} is {what} (it holds {holds}); nothing was written. {OWN_FOLDER}")
    _refuse_inside_export_or_run(out, said)
    _refuse_data_folder(out, said, forms)


def _refuse_class_folders_elsewhere(files: dict[str, list[Path]], out: Path, forms: frozenset[str]) -> None:
    """A class folder under --out that is a symlink (fl/a -> ../../ds/a) puts that class's images where it leads:
    checked as --out is, before anything is written (a data set's class folder was drawn into)."""
    for name, paths in files.items():
        folder = paths[0].parent if paths else out
        if folder != out and os.path.islink(folder):
            said = f"--out {out}'s folder of class {name!r}, {folder},"
            _refuse_out(folder, said, forms)
            if not folder.exists():   # a link to nothing: mkdir said a bare "File exists" after the record
                raise ExportError(f"{said} is a symlink to {os.readlink(folder)}, which does not exist; nothing was "
                                  "written. Fix: make the folder it names, or remove the link")


def _refuse_inside_export_or_run(out: Path, said: str) -> None:
    """--out at any depth inside an export (config.json and weights.safetensors) or a run folder (searchlab.json)."""
    for folder in out.resolve().parents:
        holds = ("config.json", "weights.safetensors") if _is_export(folder) else \
            ("searchlab.json",) if (folder / "searchlab.json").is_file() else ()
        if holds:
            what = "an export" if len(holds) == 2 else "a run folder"
            raise ExportError(f"{said} is inside {folder}, {what} (it holds {' and '.join(holds)}): no draw "
                              f"is written into an export or a run folder; nothing was written. {OWN_FOLDER}")


def _refuse_inside_a_drawn_class_folder(out: Path) -> None:
    """--out in (or below) a class folder an earlier draw's record, in a folder above, lists: drawn there, one
    class's images went into another's folder (benign images under malignant/), recorded only in a nested record
    that a reader of the outer one never sees. Checked on the path given and where it leads through symlinks."""
    given, lands = Path(os.path.abspath(out)), Path(os.path.realpath(out))
    for inner in dict.fromkeys((given, lands)):
        for folder in inner.parents:
            top = inner.relative_to(folder).parts[0]
            if top in _drawn_class_folders(folder / RECORD):
                where = "is" if inner == folder / top else "is inside"
                raise ExportError(f"--out {out} {where} {folder / top}, a class folder of the draws "
                                  f"{folder / RECORD} records: a draw there puts each class's images in a folder of "
                                  f"their own under {top}/, so they would be read as {top}'s, recorded apart from "
                                  f"that record; nothing was written. Fix: --out {folder} (a draw there adds to each "
                                  "class's folder and to its record), or a new folder")


def _drawn_class_folders(record: Path) -> set[str]:
    """The class folders (first part of each file's path) the draws in `record` wrote to; none without one."""
    if not record.is_file():
        return set()
    try:
        draws = json.loads(record.read_text())["draws"]
        return {parts[0] for draw in draws for parts in (Path(name).parts for name in draw["files"]) if len(parts) > 1}
    except (OSError, ValueError, KeyError, TypeError):   # not a record a draw wrote: other checks say what it is
        return set()


def _is_export(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "weights.safetensors").is_file()


def _refuse_data_folder(out: Path, said: str, forms: frozenset[str]) -> None:
    """--out holding images no draw wrote (a data set, or a folder of them), or a class folder of a data set,
    or inside one (the loader reads a class folder's sub-folders as patients): the draw's images would join
    that data set. Checked where the files land, through symlinks, as well as on the path given."""
    if out.is_dir() and (found := _images_no_draw_wrote(_image_files(out, SEARCHED_DEPTH))):
        raise ExportError(f"{said} already holds image files that no `searchlab sample` draw wrote "
                          f"({a_few(found)}): its images and {RECORD} would make them part of a data set's "
                          f"folder; nothing was written. {OWN_FOLDER}")
    given = Path(os.path.abspath(out))
    # where the files land, as the OS walks the path given: abspath reads lnA/../a as ./a, the OS as lnA's target's
    # parent's a (resolving `given` instead let lnA/../a/new write into a data set's class folder)
    lands = Path(os.path.realpath(out))
    for folder in _out_and_folders_above(given, lands):
        if folder in (given, lands) or not folder.exists():   # a folder the draw fills or makes
            classes = _class_folders_beside(folder, forms, PATIENT_DEPTH)
        elif own := _class_images(folder, forms):   # above --out: a class folder only if it holds images itself
            classes = {**_class_folders_beside(folder, forms), folder: own}
        else:   # (two image folders beside it, e.g. in /tmp, do not make a folder of scratch files a class)
            continue
        if len(classes) >= 2:
            raise ExportError(_in_a_data_set(f"{said} {_is_or_is_inside(given, lands, folder)}", folder, classes))


def _in_a_data_set(said: str, folder: Path, classes: dict[Path, list[Path]]) -> str:
    """The refusal of a class folder of a data set: its class folders and an image of each (what made them
    classes), and a place outside the data set (the advice "beside the data folder" was followed already)."""
    shown = a_few([files[0].relative_to(folder.parent) for _, files in sorted(classes.items())])
    data = folder.parent.parent if folder.parent.name.lower() in SPLITS else folder.parent   # fd/train/: fd
    return (f"{said} a class folder of a data set: {folder.parent} holds the class folders "
            f"{a_few(sorted(c.name for c in classes))} of images that no `searchlab sample` draw wrote ({shown}), "
            f"so its images would be read as acquired ones; nothing was written. Fix: name a folder of its own for "
            f"the images, outside {data} (e.g. --out {data.parent / 'synthetic'})")


def _out_and_folders_above(given: Path, lands: Path) -> list[Path]:
    """--out as given and where its files land (symlinks resolved), and the folders above each, up to the
    last one below the home folder or the filesystem root: ~ and / hold Pictures/, Downloads/, tmp/, which are
    no data set's classes."""
    home = os.path.expanduser("~")
    stops = {Path(given.anchor), Path(os.path.abspath(home)), Path(home).resolve()}
    found: dict[Path, None] = {}
    for start in (given, lands):
        for folder in (start, *start.parents):
            if folder != start and (folder in stops or folder.parent in stops):   # --out itself is checked always
                break
            found[folder] = None
    return list(found)


def _is_or_is_inside(given: Path, lands: Path, folder: Path) -> str:
    if folder == given:
        return "is"
    return f"leads through a symlink to {folder}, which is" if folder == lands else f"is inside {folder},"


MIN_CLASS_IMAGES = 3   # images a folder not named as a class of the generator holds, to be taken for a class
# folder: one saved figure in each of two project folders (projA/loss_curve.png, projB/roc.png) made every --out
# below them "a class folder of a data set"; a data set's class folders hold hundreds


def _class_images(folder: Path, forms: frozenset[str], depth: int = 0) -> list[Path]:
    """Images in `folder` (or only in its sub-folders, `depth` levels) that no draw wrote, as a class folder holds them:
    one will do in a folder named as a class of the generator, or in patient sub-folders (told from a data set's
    class folders by their names: _holds_classes), else MIN_CLASS_IMAGES ([] when fewer)."""
    wanted = 1 if depth or folder.name.lower() in forms else MIN_CLASS_IMAGES
    files = _image_files(folder, depth) if not depth else (f for f in _image_files(folder, depth) if f.parent != folder)
    found = _images_no_draw_wrote(files, wanted)
    return found if len(found) >= wanted else []


def _class_folders_beside(out: Path, forms: frozenset[str], depth: int = 0) -> dict[Path, list[Path]]:
    """Sibling folders of `out` holding images that no draw wrote, as class folders do (with a few of them):
    directly, or (`depth`) only in patient sub-folders, each kind counted apart. Two or more of a kind, as a data
    set has, make `out` one of its classes; one alone (figures/ beside synthetic/) does not, nor one of each (a
    project's scans/ beside mydata/images/), unless `out` holds such images too (a folder above --out:
    _refuse_data_folder). Above --out, only images directly in folders count: scratch areas (/tmp) hold many
    folders of image folders. A folder whose sub-folders are classes (a data set: fdata/benign/) is no class."""
    parent = out.absolute().parent
    siblings = sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if parent.is_dir() else []
    others = [p for p in siblings if p.name != out.name]
    direct = {p: files for p in others if (files := _class_images(p, forms))}
    by_patient = {p: files for p in others if depth and p not in direct and (files := _class_images(p, forms, depth))}
    by_patient = {p: files for p, files in by_patient.items() if not _holds_classes(p, by_patient, forms)}
    return max(direct, by_patient, key=len)


def _holds_classes(folder: Path, beside: dict[Path, list[Path]], forms: frozenset[str]) -> bool:
    """A folder of image folders that is a data set (or a copy of one), not a class of patients: one of its
    sub-folders is named as a class of the generator, or named as one in another such folder beside it
    (fdata/benign/ and fdata2/benign/: a patient is in one class only). Split folders (train/, val/) beside each
    other hold the same class folders, and are what a new one (test/) would join: never passed over."""
    if folder.name.lower() in SPLITS:
        return False
    subs = {p.name.lower() for p in folder.iterdir() if p.is_dir()}
    others = {p.name.lower() for other in beside if other != folder for p in other.iterdir() if p.is_dir()}
    return bool(subs & (forms | others))


def _image_files(folder: Path, depth: int) -> Iterator[Path]:
    """Image files in `folder` and up to `depth` levels of its sub-folders (hidden ones left out), lazily."""
    for root, dirs, names in os.walk(folder):
        level = len(Path(root).relative_to(folder).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if level < depth else []
        yield from (Path(root) / name for name in sorted(names)
                    if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS)


def _images_no_draw_wrote(files: Iterator[Path], wanted: int = 3) -> list[Path]:
    """Up to `wanted` of `files` that are not known as synthetic (by name, record or mark): stops once found,
    so a large data folder is not read through."""
    return list(islice(not_synthetic(files), wanted))


def _refuse_shared_folders(files: dict[str, list[Path]]) -> None:
    """Class names that differ only in characters a folder name cannot hold would write into one folder."""
    folders: dict[Path, str] = {}
    for name, paths in files.items():
        if paths and (other := folders.setdefault(paths[0].parent, name)) != name:
            raise ExportError(f"the classes {other!r} and {name!r} would both be written to {paths[0].parent}; "
                              "nothing was written. Fix: draw them one at a time (--class), each to its own --out")
        if paths and paths[0].parent.exists() and not paths[0].parent.is_dir():   # said as a bare "File exists"
            raise ExportError(f"{paths[0].parent} is a file, where the images of class {name!r} go; nothing was "
                              "written. Fix: move that file away, or draw to another --out")


def _refuse_taken(paths: list[Path], out: Path, seed: int) -> None:
    """A draw never replaces images: an earlier draw's files may already be in use (a data set, a review)."""
    taken = [path for path in paths if path.exists()]
    if taken:
        raise ExportError(f"{out} already holds {len(taken)} of the files this draw would write ({a_few(taken, 2)}: "
                          f"an earlier draw with seed {seed}); nothing was written. Fix: another --out, or another "
                          "--seed")


def _class_stream(seed: int, index: int | None) -> torch.Generator:
    """One random stream per (seed, class): the export's model.py's own (gan_sampling.class_stream)."""
    from searchlab.models.gan_sampling import class_stream

    return class_stream(seed, index)


def _write_class(generator: torch.nn.Module, index: int | None, files: list[Path], seed: int, mark: PngInfo) -> None:
    """The class's images as the export's model.sample_class(generator, len(files), index, seed) gives them: one
    code for both, so a user's plain-PyTorch redraw cannot drift from these files."""
    from searchlab.models.gan_sampling import sample_class_batches

    if not files:
        return
    files[0].parent.mkdir(parents=True, exist_ok=True)
    images = (image for batch in sample_class_batches(generator, len(files), index, seed) for image in batch)
    for path, image in zip(files, images):
        pixels = image.numpy()
        Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)).save(path, pnginfo=mark)


def _relative(files: dict[str, list[Path]], out: Path) -> list[str]:
    """The draw's files as its record lists them: relative to `out`, so a moved or copied folder still matches."""
    return [path.relative_to(out).as_posix() for paths in files.values() for path in paths]


def _mark(about: dict[str, Any]) -> PngInfo:
    """The text chunk each image carries (before its pixels, so the data check reads it without decoding): a
    copy renamed and moved away from its record is still known as synthetic. JSON in ASCII, so a tEXt chunk."""
    info = PngInfo()
    info.add_text(MARK_KEY, json.dumps({"export": about["export"], "weights_sha256": about["weights_sha256"],
                                        "seed": about["seed"], "note": "made by a generative model"}))
    return info


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
