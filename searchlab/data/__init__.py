"""Data loaders: turn a data config into an in-memory ImageDataset holding only the splits asked for
(searchlab/data/loading.py).

Names are imported on first use (PEP 562), so a light module of this package (the image cache behind
`searchlab cache`, which only lists files) does not import torch and every loader first.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from searchlab.data.loading import (check_test_images, clear_cache, data_advice, data_fingerprint,
                                        describe_data, load_dataset, medmnist_file, plan_files,
                                        with_positive_class)
    from searchlab.data.types import ImageDataset, ImageSplit, TaskKind

__all__ = ["ImageDataset", "ImageSplit", "TaskKind", "check_test_images", "clear_cache", "data_advice",
           "data_fingerprint", "describe_data", "load_dataset", "medmnist_file", "plan_files", "with_positive_class"]
_TYPES = {"ImageDataset", "ImageSplit", "TaskKind"}   # the rest live in loading.py


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    home = "types" if name in _TYPES else "loading"
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
