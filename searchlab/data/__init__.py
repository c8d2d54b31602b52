"""Data loaders: turn a data config into an in-memory ImageDataset holding only the splits asked for.

Trial workers call `load_dataset` once per trial, so results are cached per process. Treat the returned
tensors as read-only: they are shared by every caller with the same arguments.
"""
from __future__ import annotations

import functools
from pathlib import Path

from searchlab.config.schema import CsvData, FolderData, MedMNISTData
from searchlab.data.common import check_splits, resolve_path
from searchlab.data.csv_source import load_csv, plan_csv
from searchlab.data.fingerprint import fingerprint
from searchlab.data.folder_source import load_folder, plan_folder
from searchlab.data.medmnist_source import default_root, load_medmnist
from searchlab.data.types import ImageDataset, ImageSplit, TaskKind

__all__ = ["ImageDataset", "ImageSplit", "TaskKind", "clear_cache", "data_fingerprint", "load_dataset"]

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
        return load_medmnist(cfg, splits)
    if isinstance(cfg, FolderData):
        return load_folder(cfg, splits, seed)
    if isinstance(cfg, CsvData):
        return load_csv(cfg, splits, seed)
    raise TypeError(f"unsupported data config {type(cfg).__name__}")


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


def data_fingerprint(cfg: DataConfig, seed: int = 0, base_dir: Path | None = None) -> dict | None:
    """What a folder or CSV set holds per split (data/fingerprint.py), listed as `load_dataset` would split
    it; None for MedMNIST. Raises DataError as loading would (a missing folder, a bad CSV row)."""
    base = Path(base_dir) if base_dir is not None else None
    if isinstance(cfg, FolderData):
        return fingerprint(plan_folder(cfg, int(seed), base))
    if isinstance(cfg, CsvData):
        return fingerprint(plan_csv(cfg, int(seed), base))
    return None


def clear_cache() -> None:
    """Forget cached data sets (tests, or a long-lived process whose files changed)."""
    _load_cached.cache_clear()
