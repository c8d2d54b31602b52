"""An image folder: `path/<class>/*.png` (we split it) or `path/{train,val[,test]}/<class>/*.png` (yours).

File lists are sorted before the seeded split, so the same folder and seed always give the same splits
(the test split in particular must not move between the search and the final export).
"""
from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import numpy as np

from searchlab.config.schema import FolderData
from searchlab.data.common import (IMAGE_EXTENSIONS, SPLITS, load_splits, resolve_path,
                                   stratified_split)
from searchlab.data.recorded_split import read_as
from searchlab.data.synthetic_files import refuse_synthetic
from searchlab.data.types import Decoding, ImageDataset, SplitPlan
from searchlab.errors import DataError

Items = tuple[list[Path], list[int], list[str]]   # files, their class indices, their groups (see _groups)

# Folders that operating systems, archivers and NAS boxes put beside the user's own, never data (compared
# case-insensitively, as Windows names them): a zip made on a Mac holds __MACOSX/ (resource forks, ._* files),
# which was read as a class folder; a Synology NAS puts @eaDir/ (thumbnails of each image) in every folder,
# which were trained on as a patient sub-folder. Trash folders of Linux (.Trash-1000) are hidden already.
SYSTEM_FOLDERS = frozenset(name.casefold() for name in (
    "__MACOSX", "@eaDir", "#recycle", "$RECYCLE.BIN", "System Volume Information", "lost+found"))


def _skipped(name: str) -> bool:
    """A hidden or system folder (or a hidden file): never a class, patient or image."""
    return name.startswith(".") or name.casefold() in SYSTEM_FOLDERS


def nfc(name: str) -> str:
    """A folder name in Unicode NFC: macOS writes names decomposed (NFD: 'e' + combining accent), Linux and
    Windows composed, so a copy of one data set made on each holds 'bénin' under two spellings of one name."""
    return unicodedata.normalize("NFC", name)


def _subdirs(path: Path) -> list[Path]:
    """Sub-folders that may hold data, sorted (hidden and system ones such as .ipynb_checkpoints and __MACOSX
    are never classes)."""
    return sorted(p for p in path.iterdir() if p.is_dir() and not _skipped(p.name))


def _class_folders(folder: Path) -> dict[str, Path]:
    """The class folders under folder by their NFC name, sorted by it; DataError when two folders are one name
    spelt in NFC and NFD (copied in from two machines): which one's images were meant is not ours to guess."""
    found: dict[str, Path] = {}
    for sub in _subdirs(folder):
        name = nfc(sub.name)
        if name in found:
            raise DataError(f"{folder}: class folders {found[name]} and {sub} are one name, {name!r}, in two Unicode "
                            "spellings (composed, NFC, and decomposed, NFD, as macOS writes names), so they would "
                            "be one class read twice. Fix: move the images of one into the other and remove it")
        found[name] = sub
    return dict(sorted(found.items()))


def visible_files(folder: Path) -> list[Path]:
    """Files in folder and its sub-folders (one per patient or study is the usual clinical layout), sorted by
    path; hidden files and folders (.ipynb_checkpoints, .DS_Store) left out. A sub-folder linked in from
    elsewhere is followed (rglob skipped its images without a word), each real folder once. A link whose
    target is gone is listed too: left out, an image would vanish from the data set unsaid; listed, reading
    it names it."""
    found, seen = [], set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:   # a link back up the tree, or a folder linked in twice
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not _skipped(d)]   # .ipynb_checkpoints, a NAS's @eaDir thumbnails
        found += [Path(root) / name for name in names
                  if not name.startswith(".") and _file_or_broken_link(Path(root) / name)]
    return sorted(found)


def _file_or_broken_link(path: Path) -> bool:
    return path.is_file() or (path.is_symlink() and not path.exists())


def _images_in(folder: Path) -> list[Path]:
    """Image files in folder and its sub-folders, sorted by path; DataError if there are none."""
    files = [p for p in visible_files(folder) if p.suffix.lower() in IMAGE_EXTENSIONS]
    if not files:
        raise DataError(f"{folder}: class folder holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}). "
                        f"Fix: add images or remove the folder")
    return files


def _not_images(root: Path, layout: str) -> dict[str, int]:
    """Visible files in the class folders that are not read (DICOM, notes, ...), counted by extension: a
    user should see that they were left out rather than find out from a smaller data set."""
    parents = _subdirs(root) if layout == "classes" else [c for s in SPLITS if (root / s).is_dir()
                                                          for c in _subdirs(root / s)]
    counts: dict[str, int] = {}
    for folder in parents:
        for path in visible_files(folder):
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                extension = path.suffix.lower() or "(none)"
                counts[extension] = counts.get(extension, 0) + 1
    return dict(sorted(counts.items()))


def _loose_images(root: Path, layout: str) -> int:
    """Images beside the class folders (in the top folder, or in a split folder): in no class, so read by no
    split; counted so that the user sees them left out."""
    folders = [root] + ([root / s for s in SPLITS if (root / s).is_dir()] if layout == "splits" else [])
    return sum(1 for folder in folders for p in folder.iterdir()
               if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _class_names(folder: Path, written: Path | None = None) -> tuple[str, ...]:
    """Sorted class sub-folder names (in NFC); at least two are needed to classify anything. `written`: data.path
    as the study wrote it, for a fix that names the folder one level down."""
    classes = tuple(_class_folders(folder))
    if not classes:
        raise DataError(f"{folder}: no class folders found. "
                        f"Fix: put images in one sub-folder per class (e.g. {folder}/benign/*.png)")
    if len(classes) < 2:
        deeper = _one_level_down(folder / classes[0], written) if written is not None else None
        raise DataError(deeper or f"{folder}: found only one class folder ({classes[0]!r}); at least 2 are needed. "
                        f"Fix: add a sub-folder per class (a GAN of one class's images: train a "
                        "class-conditional GAN on all the classes, then add its images of the minority only with "
                        "augment.synthetic_classes: minority)")
    return classes


def _one_level_down(only: Path, written: Path) -> str | None:
    """A data set copied in one folder too deep (data.path/dataset/<class folders>, an unzipped archive's own
    folder) read as one class: said as such when the one folder holds no image itself but split folders or
    several folders of images."""
    if any(p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS for p in only.iterdir()):
        return None   # images of its own: a class folder
    subs = _subdirs(only)
    splits = [p.name for p in subs if p.name in SPLITS]
    held = splits or [p.name for p in subs if any(f.suffix.lower() in IMAGE_EXTENSIONS for f in visible_files(p))]
    if "train" not in splits and len(held) < 2:
        return None
    what = "split folders" if splits else "folders of images"
    return (f"{only.parent}: found only one class folder ({only.name!r}), and it holds no image itself but "
            f"{len(held)} {what} ({', '.join(map(repr, held[:5]))}{', ...' if len(held) > 5 else ''}): the data set "
            f"looks one folder deeper than data.path. Fix: data.path: {(written / only.name).as_posix()} (if those "
            "are the classes; if they are patients of one class, add a sub-folder per class beside it)")


def _collect(folder: Path, classes: tuple[str, ...]) -> Items:
    """All images under folder/<class>/, labelled by the class's index in `classes`."""
    files: list[Path] = []
    labels: list[int] = []
    patients: list[str | None] = []
    for name, sub in _class_folders(folder).items():   # by NFC name: a val/ copied on a Mac names them in NFD
        if name not in classes:
            raise DataError(f"{sub}: class {name!r} is not among the train classes {list(classes)}. "
                            f"Fix: use the same class folders in every split")
        found = _images_in(sub)
        files += found
        labels += [classes.index(name)] * len(found)
        patients += [_patient(path, sub) for path in found]
    return files, labels, _groups(folder, classes, files, labels, patients)


def _patient(path: Path, class_folder: Path) -> str | None:
    """The sub-folder of a class folder holding the image (one per patient or study), or None for a loose image;
    its name in NFC, so that benign/josé and malignant/josé, one spelt composed and one decomposed (copied from
    two machines), are one patient."""
    parts = path.relative_to(class_folder).parts
    return nfc(parts[0]) if len(parts) > 1 else None


def _groups(folder: Path, classes: tuple[str, ...], files: list[Path], labels: list[int],
            patients: list[str | None]) -> list[str]:
    """The images that must stay in one split: a patient's (splitting them between training and test would
    leak the patient), or a loose image on its own. Sub-folders of one name under several class folders
    (benign/p07, malignant/p07) are one patient with findings of several classes, kept together as a CSV's
    group_column would; other patients are named by their class folder, as before that rule."""
    classes_of: dict[str, set[int]] = {}
    for patient, label in zip(patients, labels):
        if patient is not None:
            classes_of.setdefault(patient, set()).add(label)
    return [str(path) if patient is None else
            str(folder / patient) if len(classes_of[patient]) > 1 else str(folder / classes[label] / patient)
            for path, label, patient in zip(files, labels, patients)]


def _take(items: Items, idx: np.ndarray) -> Items:
    files, labels, groups = items
    return [files[i] for i in idx], [labels[i] for i in idx], [groups[i] for i in idx]


def _plan(cfg: FolderData, root: Path, seed: int) -> tuple[tuple[str, ...], dict[str, Items], str, dict[str, float]]:
    """Decide which files go to which split (no image is decoded here); also the splits carved out of the
    others' images and the share each was asked to have."""
    cased = [p.name for p in _subdirs(root) if p.name.lower() in SPLITS and p.name not in SPLITS]
    if cased:   # Train/, Val/: else read as classes named Train and Val (a model of which split an image is in)
        lower = [s for s in SPLITS if s in {p.name for p in _subdirs(root)}]
        read_as = (f"beside {'/'.join(lower)}/ no split would read them" if lower else
                   f"they would be read as class folders, classes {', '.join(map(repr, cased))}")
        raise DataError(f"{root}: has {', '.join(f'{name}/' for name in cased)} folder(s), but split folders are "
                        f"found only under lower-case names, train/, val/, test/ ({read_as}). Fix: rename them "
                        f"to {', '.join(f'{name.lower()}/' for name in cased)}")
    present = [s for s in SPLITS if (root / s).is_dir()]
    if present and "train" not in present:
        raise DataError(f"{root}: has {'/'.join(present)} folder(s) but no train folder. "
                        f"Fix: add {root}/train/<class>/ or use one sub-folder per class")
    if not present:                                   # path/<class>/...: split it ourselves
        classes = _class_names(root, cfg.path)
        items = _collect(root, classes)
        fractions = {"val": cfg.val_fraction, "test": cfg.test_fraction}
        idx = stratified_split(items[1], fractions, seed, str(root), classes, groups=items[2], folder=True)
        return classes, {s: _take(items, i) for s, i in idx.items()}, "classes", fractions

    stray = [p.name for p in _subdirs(root) if p.name not in SPLITS]
    if stray:   # read as the splits layout, these would be left out without a word
        raise DataError(f"{root}: has {'/'.join(present)} split folder(s) and also {', '.join(stray)} beside them, "
                        "which no split would read. Fix: move class folders under train/ (and val/, test/), or "
                        "use one sub-folder per class with no split folders (searchlab then splits them)")
    classes = _class_names(root / "train")
    plan = {s: _collect(root / s, classes) for s in present}
    carve = {"val": cfg.val_fraction} if "val" not in plan else {}   # out of train, stratified
    if "test" not in plan and "test_fraction" in cfg.model_fields_set and cfg.test_fraction > 0:
        carve["test"] = cfg.test_fraction
    if carve:
        idx = stratified_split(plan["train"][1], carve, seed, str(root / "train"), classes, groups=plan["train"][2],
                               folder=True)
        plan.update({split: _take(plan["train"], idx[split]) for split in carve})
        plan["train"] = _take(plan["train"], idx["train"])
    return classes, plan, "splits", carve


def plan_folder(cfg: FolderData, seed: int = 0, base_dir: Path | None = None) -> SplitPlan:
    """The folder's files per split and their labels (listed and split, nothing decoded)."""
    root = resolve_path(cfg.path, base_dir)
    if root.is_file():
        raise DataError(f"{root}: is a file, not a folder (data.path of source: folder). Fix: give the folder "
                        "that holds one sub-folder per class; for a CSV listing images use source: csv")
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found (data.path). Fix: check the path; relative paths "
                        f"are resolved against the study file's folder")
    classes, plan, layout, carved = _plan(cfg, root, seed)
    refuse_synthetic(root, {s: files for s, (files, _, _) in plan.items()})
    return SplitPlan(source=root, root=root, classes=classes, kind="binary" if len(classes) == 2 else "multiclass",
                     files={s: files for s, (files, _, _) in plan.items()},
                     labels={s: np.asarray(labels, dtype=np.int64) for s, (_, labels, _) in plan.items()},
                     layout=layout, skipped=_not_images(root, layout), loose_images=_loose_images(root, layout),
                     groups=_shared_groups({s: groups for s, (_, _, groups) in plan.items()}), carved=carved)


def split_folders_of_patients(plan: SplitPlan) -> dict[str, set[str]]:
    """Your own train/val/test folders: each patient sub-folder name, and the split folders it is found in."""
    folders_of: dict[str, set[str]] = {}
    for files in plan.files.values():
        for path in files:
            parts = path.relative_to(plan.root).parts   # split folder, class, patient, ..., file
            if len(parts) > 3:   # the name in NFC: a test/ copied on a Mac spells it decomposed
                folders_of.setdefault(nfc(parts[2]), set()).add(parts[0])
    return folders_of


def patients_in_two_split_folders(plan: SplitPlan, shown: int = 5) -> str | None:
    """Your own train/val/test folders holding patient sub-folders of one name (train/a/p3 and test/b/p3): if
    a name is one patient, the test split holds a patient that trials trained on. Said, not refused: names
    such as 'scan1' may repeat without being one patient."""
    if plan.layout != "splits":
        return None
    folders_of = split_folders_of_patients(plan)
    shared = sorted(name for name, folders in folders_of.items() if len(folders) > 1)
    if not shared:
        return None
    named = ", ".join(f"{name} ({'/'.join(s for s in SPLITS if s in folders_of[name])})" for name in shared[:shown])
    return (f"{plan.root}: {len(shared)} patient sub-folder name(s) in more than one split folder: {named}"
            + (f" and {len(shared) - shown} more" if len(shared) > shown else "") + ". If a name is one patient, "
            "images of a patient that trials trained on are validated or tested on (a leak). Fix: move each "
            "patient's folders into one split folder, or remove the split folders and let searchlab split "
            "(each patient then stays in one split)")


def patient_names_in_several_classes(plan: SplitPlan, shown: int = 5) -> str | None:
    """Patient sub-folders of one name under several class folders (benign/p000, malignant/p000), each name
    read as ONE patient kept in one split: right for a patient with findings of several classes, but patients
    numbered per class were fused unsaid (160 sub-folders of 6 classes read as 89 patients, each malignant one
    fused with patients of five other classes). Said always; a few names in a line, many with their count."""
    if plan.layout not in ("classes", "splits"):
        return None   # a CSV's patients are its group_column's ids, which may hold several classes by design
    classes_of: dict[tuple[str, str], set[str]] = {}   # (split folder or "", name) -> its classes
    for split, files in plan.files.items():
        for path, label in zip(files, plan.labels[split]):
            parts = path.relative_to(plan.root).parts   # [split folder,] class, patient, ..., file
            at = 2 if plan.layout == "splits" else 1
            if len(parts) > at + 1:   # the name in NFC, as _patient reads it
                where = parts[0] if plan.layout == "splits" else ""
                classes_of.setdefault((where, nfc(parts[at])), set()).add(plan.classes[int(label)])
    shared = sorted((key for key, classes in classes_of.items() if len(classes) > 1),
                    key=lambda key: (-len(classes_of[key]), key))
    if not shared:
        return None
    folders, patients = sum(len(c) for c in classes_of.values()), len(classes_of)
    named = ["/".join(part for part in key if part) for key in shared]   # train/p07 in your own split folders
    first, other = sorted(classes_of[shared[0]])[:2]
    prefix = (f"prefix the folder names with the class ({first}/{first}_{shared[0][1]}, "
              f"{other}/{other}_{shared[0][1]}) or name them by real patient ids")
    if len(shared) <= shown:
        listed = ", ".join(f"{name} ({', '.join(sorted(classes_of[key]))})" for name, key in zip(named, shared))
        return (f"{plan.root}: {len(shared)} patient sub-folder name(s) under more than one class folder, each read "
                f"as ONE patient kept in one split: {listed}. If each is one patient with findings of several "
                f"classes, nothing to do. Fix: if they are different patients, {prefix}")
    listed = ", ".join(f"{name} is in {len(classes_of[key])} classes" for name, key in zip(named[:3], shared))
    return (f"{plan.root}: {len(shared)} of {patients} patient sub-folder names are under more than one class folder "
            f"({listed}, and {len(shared) - 3} more), and each name is read as ONE patient kept in one split: "
            f"{folders} sub-folders read as {patients} patients. Fix: if these are different patients (numbered per "
            f"class), {prefix}; if they are the same patients, nothing to do")


def _shared_groups(groups: dict[str, list[str]]) -> dict[str, list[str]]:
    """The groups, when some images share one (patient sub-folders); else none: every image stands alone."""
    every = [g for split in groups.values() for g in split]
    return groups if len(set(every)) < len(every) else {}


def load_folder(cfg: FolderData, splits: tuple[str, ...], seed: int = 0,
                base_dir: Path | None = None) -> ImageDataset:
    """Load the requested splits of an image folder (see the module docstring for the two layouts)."""
    plan = plan_folder(cfg, seed, base_dir)
    root = plan.root
    for split in splits:
        if not plan.files.get(split):
            raise DataError(f"{root}: the {split!r} split is empty (layout: {plan.layout}). Fix: add "
                            + (f"{root}/{split}/<class>/ images" if plan.layout == "splits"
                               else f"images or set data.{split}_fraction > 0"))
    loaded = load_splits(plan, splits, Decoding.of(cfg))
    return ImageDataset(
        splits=loaded, class_names=plan.classes, kind=plan.kind,
        description=f"image folder {root} ({cfg.image_size}x{cfg.image_size}, {cfg.channels} channel(s))",
        extra={"source": "folder", "path": str(root), "layout": plan.layout, **read_as(plan, splits)},
    )
