"""Data loaders: turn a data config into an in-memory ImageDataset holding only the splits asked for.

Trial workers call `load_dataset` once per trial, so results are cached per process. Treat the returned
tensors as read-only: they are shared by every caller with the same arguments.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from searchlab.config.schema import CsvData, FolderData, MedMNISTData
from searchlab.data.common import (UNREADABLE_IMAGE, UnreadableImages, bit_depth_advice, check_splits,
                                   decode_threads, resolve_path, unreadable_reason)
from searchlab.data.class_typos import misspelt_class_warning
from searchlab.data.colour import colour_dropped_warning
from searchlab.data.csv_source import load_csv, plan_csv
from searchlab.data.duplicates import duplicate_warning
from searchlab.data.fingerprint import describe_plan, fingerprint, sampled_digest
from searchlab.data.formats import mixed_formats_warning
from searchlab.data.folder_source import (load_folder, patient_names_in_several_classes,
                                         patients_in_two_split_folders, plan_folder)
from searchlab.data.medmnist_source import default_root, load_medmnist, medmnist_kind, npz_path
from searchlab.data.types import ImageDataset, SplitPlan
from searchlab.errors import ConfigError, DataError

DataConfig = MedMNISTData | FolderData | CsvData


def _resolved(cfg: DataConfig, base_dir: Path | None) -> DataConfig:
    """Make every path absolute (and pin the medmnist root, which may come from $SEARCHLAB_DATA).

    Done before the cache lookup so the cache key is the data actually read: a changed environment
    variable or working directory cannot return a stale data set.
    """
    if isinstance(cfg, MedMNISTData):
        return cfg.model_copy(update={"root": default_root(base_dir, cfg.root).absolute()})
    return cfg.model_copy(update={"path": resolve_path(cfg.path, base_dir).absolute()})


@functools.lru_cache(maxsize=8)
def _load_cached(cfg: DataConfig, splits: tuple[str, ...], seed: int) -> ImageDataset:
    if isinstance(cfg, MedMNISTData):
        data = load_medmnist(cfg, splits)
    elif isinstance(cfg, FolderData):
        data = load_folder(cfg, splits, seed)
    elif isinstance(cfg, CsvData):
        data = load_csv(cfg, splits, seed)
    else:
        raise TypeError(f"unsupported data config {type(cfg).__name__}")
    return data if cfg.positive_class is None else with_positive_class(data, cfg.positive_class)


def with_positive_class(data: ImageDataset, positive: str | int) -> ImageDataset:
    """A two-class set with `positive` as class 1 (what sensitivity and a binary model's probability are
    about): labels flipped and names swapped when it was class 0."""
    names = data.class_names
    if data.kind != "binary":
        raise ConfigError(f"only two-class sets have a positive class; this one is {data.kind} ({', '.join(names)})",
                          key="data.positive_class", got=positive, fix="remove data.positive_class")
    index = positive_index(names, positive)
    if index == 1:
        return data
    flipped = {name: replace(split, labels=1 - split.labels) for name, split in data.splits.items()}
    # the data's own order, for exports: a label read from the data file means the other class here
    return replace(data, splits=flipped, class_names=(names[1], names[0]), extra={**data.extra,
                                                                                 "source_class_names": names})


def positive_index(names: tuple[str, ...], positive: str | int) -> int:
    """The index data.positive_class names: a string is a class name, a whole number an index (as per-class
    objectives such as f1_class_1 are). Classes named by numbers (a CSV's labels 1 and 2) make a whole number
    read two ways; the index reading picked the other class without a word, so that is refused."""
    if not isinstance(positive, int):
        if positive in names:
            return names.index(positive)
        raise ConfigError(f"not a class of this data set, whose classes are {list(names)} (or their index 0, 1)",
                          key="data.positive_class", got=positive, fix="name one of them")
    named = names.index(str(positive)) if str(positive) in names else None
    if positive in (0, 1) and named not in (None, positive):
        raise ConfigError(
            f"{positive} reads two ways here: the class at index {positive} (named {names[positive]!r}) or the class "
            f"named {str(positive)!r} (at index {named}); classes: {_numbered(names)}", key="data.positive_class",
            got=positive, fix=f"for the class named {str(positive)!r} write positive_class: \"{positive}\" (quoted, a "
            f"name: --set 'data.positive_class=\"{positive}\"') or its index {named}; for the class at index "
            f"{positive} write positive_class: \"{names[positive]}\"")
    if positive not in (0, 1):
        named_fix = (f"write positive_class: \"{positive}\" (quoted: a whole number is an index) for the class "
                     f"named {str(positive)!r}" if named is not None else "name one of them")
        raise ConfigError(f"not a class of this data set, whose classes are {list(names)} (or their index 0, 1)",
                          key="data.positive_class", got=positive, fix=named_fix)
    return positive


def _numbered(names: tuple[str, ...]) -> str:
    return ", ".join(f"{i} = {name!r}" for i, name in enumerate(names))


def load_dataset(cfg: DataConfig, splits: tuple[str, ...] = ("train", "val"), seed: int = 0,
                 base_dir: Path | None = None) -> ImageDataset:
    """Load `splits` of the data set `cfg` describes (dispatching on cfg.source).

    seed drives the stratified split of folders/CSVs without explicit splits; base_dir (the study file's
    folder) anchors relative paths. The test split is read only when it is in `splits`.
    Raises DataError for anything the user can fix (missing/corrupt files, bad labels, too few images).
    """
    base = Path(base_dir) if base_dir is not None else None
    seed = 0 if isinstance(cfg, MedMNISTData) else int(seed)   # fixed official splits: one cache entry
    return _load_cached(_resolved(cfg, base), check_splits(splits), seed)


@functools.lru_cache(maxsize=8)
def data_kind(cfg: DataConfig, seed: int = 0, base_dir: Path | None = None) -> str:
    """binary, multiclass or multilabel, from the data's description (a folder's class folders, a CSV's
    labels, MedMNIST's metadata), without decoding an image: what trials sample by, once per process."""
    if isinstance(cfg, MedMNISTData):
        return medmnist_kind(cfg.name)
    plan = plan_files(cfg, seed, base_dir)
    assert plan is not None   # a folder or CSV set
    return plan.kind


def plan_files(cfg: DataConfig, seed: int = 0, base_dir: Path | None = None) -> SplitPlan | None:
    """Which file goes to which split with which label, as `load_dataset` would split a folder or CSV set
    (nothing decoded); None for MedMNIST. Raises DataError as loading would (a missing folder, a bad row)."""
    base = Path(base_dir) if base_dir is not None else None
    if isinstance(cfg, FolderData):
        return plan_folder(cfg, int(seed), base)
    if isinstance(cfg, CsvData):
        return plan_csv(cfg, int(seed), base)
    return None


def files_by_split(cfg: DataConfig | None, seed: int, base_dir: Path | None,
                   splits: Sequence[str]) -> dict[str, list[Path]]:
    """The files of each of these splits of a folder or CSV set, planned once (empty lists for MedMNIST, or
    no data section)."""
    plan = plan_files(cfg, seed, base_dir) if cfg is not None else None
    return {split: [] if plan is None else list(plan.files.get(split, [])) for split in splits}


def data_fingerprint(cfg: DataConfig, seed: int = 0, base_dir: Path | None = None) -> dict | None:
    """What a folder or CSV set holds per split (data/fingerprint.py); None for MedMNIST."""
    plan = plan_files(cfg, seed, base_dir)
    return None if plan is None else fingerprint(plan)


def medmnist_file(cfg: DataConfig, base_dir: Path | None = None) -> dict | None:
    """Which MedMNIST file a run reads: its name, size and a digest of its first and last 8 KB (a zip's tail
    holds every array's CRC, so any changed array changes it; reading GBs of MedMNIST+ whole would cost a run's
    start). None for folder and CSV sets (their fingerprint covers them) and for a file not downloaded yet."""
    path = medmnist_path(cfg, base_dir)
    if path is None or not path.is_file():
        return None
    return {"file": path.name, "bytes": path.stat().st_size, "digest": sampled_digest(path).hex()}


def medmnist_path(cfg: DataConfig, base_dir: Path | None = None) -> Path | None:
    """Where a MedMNIST set's file is read from (whether or not it is there yet); None for other sources."""
    if not isinstance(cfg, MedMNISTData):
        return None
    root = default_root(Path(base_dir) if base_dir is not None else None, cfg.root)
    return npz_path(root, cfg.name, cfg.size)


def describe_data(cfg: DataConfig, seed: int = 0, base_dir: Path | None = None) -> str:
    """One line on the data a run reads (a folder or CSV set: images per split and class, files left out)."""
    if isinstance(cfg, MedMNISTData):
        root = default_root(Path(base_dir) if base_dir is not None else None, cfg.root)
        return f"MedMNIST {cfg.name} at {cfg.size} px, from {root}"
    plan = plan_files(cfg, seed, base_dir)
    assert plan is not None   # a folder or CSV set
    return plan_said(cfg, plan)


def plan_said(cfg: DataConfig, plan: SplitPlan) -> str:
    """describe_data's line of a folder or CSV set already listed."""
    return ("image folder " if isinstance(cfg, FolderData) else "CSV ") + describe_plan(plan)


def data_advice(cfg: DataConfig, seed: int = 0, base_dir: Path | None = None) -> list[str]:
    """Warnings about a folder or CSV set, when a run starts: how its training images will be decoded (e.g.
    12-bit data read as 16-bit, judged from their raw values, whatever the image cache holds; colour images
    read as grey), and files that are copies of one another (data/duplicates.py)."""
    if isinstance(cfg, MedMNISTData):
        return []   # an official release, read as published
    plan = plan_files(cfg, seed, base_dir)
    assert plan is not None   # a folder or CSV set
    found = [bit_depth_advice(plan.files.get("train", []), cfg.bit_depth), duplicate_warning(plan),
             carved_share_warning(plan), mixed_formats_warning(plan), patients_in_two_split_folders(plan),
             colour_dropped_warning(plan, cfg.channels), misspelt_classes(plan, cfg), class_missing_from_test(plan),
             patient_names_in_several_classes(plan), random_split_of_patients(plan, cfg),
             multilabel_split_of_one_label(plan, cfg)]
    return [text for text in found if text]


def random_split_of_patients(plan: SplitPlan, cfg: CsvData | FolderData) -> str | None:
    """multilabel_split: random draws rows at random (as searchlab did before the key); with a group_column
    whose patients have several rows, a random draw would part them, so their splits are dealt as when
    stratified: said, as the key would otherwise be silently ignored."""
    if not (isinstance(cfg, CsvData) and cfg.multilabel_split == "random" and cfg.group_column
            and plan.kind == "multilabel" and plan.carved):
        return None
    # the rows the draw dealt: all of them, or a split column's train rows (val carved out of them)
    patients = [group for split in ("train", *plan.carved) for group in plan.groups.get(split, [])]
    if len(set(patients)) == len(patients):   # one row per patient: rows are drawn at random, as asked
        return None
    return (f"{plan.source}: data.multilabel_split: random is not used with data.group_column "
            f"{cfg.group_column!r} (patients with several rows): whole patients are dealt to the splits "
            "stratified per label, as with multilabel_split: stratified, since a random draw of rows would part a "
            "patient's rows between splits. Fix: remove multilabel_split from data (the splits stay the same), or "
            "remove group_column to draw rows at random")


def multilabel_split_of_one_label(plan: SplitPlan, cfg: CsvData | FolderData) -> str | None:
    """multilabel_split: random written for a CSV of one label column: its rows are split stratified per class
    whatever the key says, which was silently ignored."""
    if not (isinstance(cfg, CsvData) and "multilabel_split" in cfg.model_fields_set
            and cfg.multilabel_split == "random" and plan.kind != "multilabel"):
        return None
    return (f"{plan.source}: data.multilabel_split: random is for multi-label CSVs (several 0/1 label_columns); "
            f"this one is {plan.kind} ({', '.join(map(repr, cfg.label_columns))}), so its rows are split stratified "
            "per class whatever it says. Fix: remove multilabel_split from data (the splits stay the same), or "
            "list the 0/1 label columns in data.label_columns")


def class_missing_from_test(plan: SplitPlan) -> str | None:
    """A class (multi-label: a label) with no test image, said when the run starts: it was said only by the
    export, after the search, with the test metrics it leaves undefined."""
    if not plan.files.get("test"):
        return None
    missing = [j for j, n in enumerate(_images_per_class(plan, "test")) if n == 0]
    if not missing:
        return None
    what, whats = ("label", "labels") if plan.kind == "multilabel" else ("class", "classes")
    return (f"the test split has no image of {what if len(missing) == 1 else whats} "
            f"{', '.join(repr(plan.classes[j]) for j in missing)} ({len(missing)} of {len(plan.classes)}): "
            f"{_metrics_without(plan.kind, missing)}. Fix: put some of its images (whole patients) in the test "
            f"split of {plan.source}")


def _metrics_without(kind: str, missing: list[int]) -> str:
    """What the test metrics (metrics.compute_metrics) become without a class's (label's) images: the macro AUC
    needs every column both on and off, so it is undefined; the other means count or skip the class."""
    f1s = ", ".join(f"f1_class_{j}" for j in missing)
    f1 = (f"{f1s} is 0 if the model predicts it for any test image (then counted in the macro f1 and precision), "
          "else undefined and left out of them")
    if kind == "binary":
        lost = "sensitivity and average_precision" if 1 in missing else "specificity"
        return (f"the test auc and {lost} will be undefined (null); balanced accuracy is the other class's recall "
                f"alone; {f1}")
    per_class = ", ".join(f"auc_class_{j}, recall_class_{j}" for j in missing)
    if kind == "multilabel":
        return (f"the test auc and average_precision (means over all labels) will be undefined (null), so there "
                f"is no test AUC, and so will {per_class}; balanced accuracy averages over the labels with test "
                f"images both on and off, leaving it out (it has no sensitivity); accuracy and hamming_loss still "
                f"count it; {f1}")
    return (f"the test auc (macro over all classes) will be undefined (null), and so will {per_class}; balanced "
            f"accuracy and recall average over the classes present, leaving it out; {f1}")


def misspelt_classes(plan: SplitPlan, cfg: CsvData | FolderData) -> str | None:
    """A class a few images strong, a letter or two from a large one (`nromal` beside `normal`): a typo."""
    if plan.kind == "multilabel":   # label columns are named by the user in the study, not read from rows
        return None
    labels = np.concatenate([np.asarray(plan.labels[s], dtype=np.int64) for s in plan.labels])
    fix = (f"correct those rows' {cfg.label_columns[0]!r} in {plan.source}" if isinstance(cfg, CsvData)
           else f"move its images into the folder of the class they belong to under {plan.source}")
    return misspelt_class_warning(plan.classes, labels, str(plan.source), fix)


def carved_share_warning(plan: SplitPlan, tolerance: float = 0.05, min_class_images: int = 20) -> str | None:
    """Splits drawn out of patients kept whole can miss their asked share by far (one large patient is a
    whole split's worth of images), of all images or of one class's (a patient holding half of a class's
    images leaves a validation split with none or half of them): said, with the shares they got. A class
    of fewer than `min_class_images` is left out: a few images cannot match a share closely anyway."""
    if not plan.groups or not plan.carved:
        return None
    pool = sum(len(plan.files.get(s, [])) for s in ("train", *plan.carved))
    got = [_share_missed(s, s, len(plan.files.get(s, [])), pool, asked, tolerance)
           for s, asked in plan.carved.items()]
    counts = {s: _images_per_class(plan, s) for s in ("train", *plan.carved)}
    class_pool = sum(counts.values())
    for s, asked in plan.carved.items():
        got += [_share_missed(s, f"{s} of class '{name}'", int(counts[s][c]), int(class_pool[c]), asked, tolerance)
                for c, name in enumerate(plan.classes) if class_pool[c] >= min_class_images]
    missed = [text for text in got if text]
    if not missed:
        return None
    return (f"data: patients are kept whole (sub-folders, or data.group_column), so the drawn splits missed their "
            f"shares: {', '.join(missed)}. Fix: nothing, if that is acceptable; else other fractions, another "
            "seed, or splits you give yourself (train/, val/, test/ folders, or data.split_column)")


def _share_missed(split: str, what: str, count: int, pool: int, asked: float, tolerance: float) -> str | None:
    share = count / pool if pool else 0.0
    return f"{what} {count} of {pool} images ({share:.0%}, {split}_fraction {asked})" \
        if abs(share - asked) > tolerance else None


def _images_per_class(plan: SplitPlan, split: str) -> np.ndarray:
    """Images of each class in `split` (multi-label: each label's positives)."""
    labels = plan.labels.get(split, np.zeros(0, dtype=np.int64))
    if labels.ndim == 2:
        return labels.sum(axis=0).astype(np.int64) if len(labels) else np.zeros(len(plan.classes), np.int64)
    return np.bincount(labels.astype(np.int64), minlength=len(plan.classes))


def check_test_images(cfg: DataConfig, seed: int = 0, base_dir: Path | None = None,
                      found: UnreadableImages | None = None) -> None:
    """The test split is decoded only at export; a broken file found then could not be removed (that would
    move the splits). So each test file's integrity is checked when a run starts (Pillow's verify: read,
    not decoded into pixels, never used by the search). `found`: the train/val files already found
    unreadable, named in the same message, so a folder is fixed in one pass."""
    plan = plan_files(cfg, seed, base_dir)
    files = plan.files.get("test", []) if plan is not None else []
    with ThreadPoolExecutor(max_workers=decode_threads()) as pool:
        problems = [e for e in pool.map(_verify, files) if e is not None]
    if found is not None:
        raise UnreadableImages(found.errors + problems, found.total + len(files),
                               what="image files (train, val and test)") from None
    if problems:
        raise UnreadableImages(problems, len(files), what="test image files (read only at export)",
                               fix="replace or remove them before searching: once trials have run, removing "
                                   "files moves the splits and is refused")


def _verify(path: Path) -> DataError | None:
    try:
        with Image.open(path) as img:
            img.verify()
    except UNREADABLE_IMAGE as exc:
        return DataError(f"{path}: cannot read image ({unreadable_reason(path, exc)})")
    return None


def clear_cache() -> None:
    """Forget cached data sets and kinds: each run and export starts so (a notebook's second run, after image
    files changed, trained on the first run's decoded copy while its header counted the new files), and tests."""
    _load_cached.cache_clear()
    data_kind.cache_clear()
