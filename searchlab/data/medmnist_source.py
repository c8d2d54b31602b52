"""MedMNIST (2D) through the official `medmnist` package, so users get exactly the published splits.

We read `<root>/<flag>[_<size>].npz` with the package's own dataset classes (the same code path as a
user's download) and only touch the splits asked for: the test split is read only when requested.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import torch

from searchlab.config.schema import DATA_ROOT_ENV, MedMNISTData
from searchlab.data.common import one_line, resolve_path
from searchlab.data.types import ImageDataset, ImageSplit, TaskKind
from searchlab.errors import ConfigError, DataError
from searchlab.suggest import did_you_mean

def _package():   # noqa: ANN202 - the medmnist module
    """medmnist, imported when a MedMNIST set is used: importing it makes ~/.medmnist, which a study of one's own
    folder has no use for (and a read-only home turned into a warning on every run)."""
    import medmnist

    return medmnist


_KINDS: dict[str, TaskKind] = {
    "binary-class": "binary",
    "multi-class": "multiclass",
    "ordinal-regression": "multiclass",   # ordered classes; we train them as plain classes
    "multi-label, binary-class": "multilabel",
}


def valid_flags() -> list[str]:
    """The 2D MedMNIST flags (the 3D volumes need a different model family)."""
    return sorted(k for k in _package().INFO if not k.endswith("3d"))


def medmnist_kind(flag: str) -> TaskKind:
    """The task kind of a MedMNIST set by its flag (binary for an unknown one: loading refuses it by name)."""
    info = _package().INFO.get(flag)
    return _KINDS[info["task"]] if info else "binary"


def default_root(base_dir: Path | None = None, root: Path | None = None) -> Path:
    """cfg.root, else $SEARCHLAB_DATA, else medmnist's own default (~/.medmnist)."""
    if root is not None:
        return _a_folder(resolve_path(root, base_dir), "data.root")
    env = os.environ.get(DATA_ROOT_ENV)
    if env:
        return _a_folder(Path(env).expanduser(), f"${DATA_ROOT_ENV}")
    return Path(_package().info.DEFAULT_ROOT).expanduser()


def _a_folder(root: Path, named_by: str) -> Path:
    """MedMNIST's root is the folder holding <name>.npz: naming the file itself is the usual slip."""
    if root.is_file():
        raise ConfigError(f"{named_by} is the folder that holds the .npz file, not the file", key="data.root",
                          got=str(root), fix=f"{named_by}: {root.parent}")
    return root


def npz_path(root: Path, flag: str, size: int) -> Path:
    """The file medmnist reads: <flag>.npz for 28x28, <flag>_<size>.npz for MedMNIST+."""
    return root / (f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz")


def _missing_fix(path: Path, flag: str, size: int) -> str:
    url = _package().INFO[flag].get("url" if size == 28 else f"url_{size}", "the MedMNIST Zenodo record")
    return (f"Fix: put {path.name} in {path.parent} (download it from {url}) "
            f"or set data.root / {DATA_ROOT_ENV} to the folder that holds it")


def _download(cls: type, flag: str, size: int, root: Path, path: Path, split: str) -> object:
    """Fetch the file with medmnist's downloader; on failure say where we looked, why, and the fix."""
    existed = path.exists()   # never delete a file we did not create (e.g. a shared, read-only copy)
    made = [folder for folder in (root, *root.parents) if not folder.exists()]
    try:
        root.mkdir(parents=True, exist_ok=True)   # medmnist refuses a root that does not exist
        return cls(split=split, root=str(root), size=size, download=True)
    except Exception as exc:  # noqa: BLE001 - medmnist wraps every failure in a bare RuntimeError
        if not existed:
            path.unlink(missing_ok=True)          # a partial download would look like a corrupt file later
        for folder in made:                       # a mistyped data.root leaves no empty folders behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        reason = exc.__context__ if exc.__context__ is not None else exc
        raise DataError(f"{path}: MedMNIST file not found and the download failed ({one_line(reason)}). "
                        + _missing_fix(path, flag, size)) from exc


def _open(cls: type, size: int, root: Path, path: Path, split: str) -> object:
    """Open one split of an existing file; download=False because a re-saved copy fails medmnist's md5."""
    try:
        return cls(split=split, root=str(root), size=size, download=False)
    except Exception as exc:  # noqa: BLE001 - not a zip, truncated, missing '<split>_images', ...
        raise DataError(f"{path}: cannot read the {split!r} split ({one_line(exc)}). "
                        f"Fix: delete the file and download it again") from exc


def _to_split(obj: object, kind: TaskKind, path: Path, split: str) -> ImageSplit:
    """medmnist arrays -> uint8 (N, C, H, W) images and int64 (N,) / float32 (N, L) labels."""
    imgs, labels = np.asarray(obj.imgs), np.asarray(obj.labels)  # type: ignore[attr-defined]
    if imgs.dtype != np.uint8 or imgs.ndim not in (3, 4):
        raise DataError(f"{path}: {split}_images must be uint8 (N,H,W) or (N,H,W,C), "
                        f"got {imgs.dtype} {imgs.shape}. Fix: use an unmodified MedMNIST file")
    if labels.shape[0] != imgs.shape[0]:
        raise DataError(f"{path}: split {split!r} has {imgs.shape[0]} images but {labels.shape[0]} labels. "
                        f"Fix: use an unmodified MedMNIST file")
    images = imgs[:, None] if imgs.ndim == 3 else imgs.transpose(0, 3, 1, 2)
    if kind == "multilabel":
        label_tensor = torch.from_numpy(labels.reshape(len(labels), -1).astype(np.float32))
    else:
        label_tensor = torch.from_numpy(labels.reshape(len(labels)).astype(np.int64))
    return ImageSplit(images=torch.from_numpy(np.ascontiguousarray(images)), labels=label_tensor)


def load_medmnist(cfg: MedMNISTData, splits: tuple[str, ...], base_dir: Path | None = None) -> ImageDataset:
    """Load the requested splits of a MedMNIST 2D data set (see the module docstring)."""
    flag = cfg.name
    if flag not in valid_flags():
        close = did_you_mean(flag, valid_flags())
        raise ConfigError("not a 2D MedMNIST data set" + (f"; {close}" if close else ""), key="data.name",
                          got=flag, fix=f"name one of {', '.join(valid_flags())}")
    info = _package().INFO[flag]
    cls = getattr(_package(), info["python_class"])
    kind = _KINDS[info["task"]]
    root = default_root(base_dir, cfg.root)
    path = npz_path(root, flag, cfg.size)

    objects: dict[str, object] = {}
    if not path.is_file():
        if not cfg.download:
            raise DataError(f"{path}: MedMNIST file not found (data.download is false). "
                            + _missing_fix(path, flag, cfg.size))
        objects[splits[0]] = _download(cls, flag, cfg.size, root, path, splits[0])
    for split in splits:
        if split not in objects:
            objects[split] = _open(cls, cfg.size, root, path, split)

    loaded = {s: _to_split(objects[s], kind, path, s) for s in splits}
    names = tuple(info["label"][k] for k in sorted(info["label"], key=int))
    return ImageDataset(
        splits=loaded, class_names=names, kind=kind,
        description=f"medmnist {flag} ({cfg.size}x{cfg.size}) from {path}",
        extra={"source": "medmnist", "flag": flag, "size": cfg.size, "file": str(path), "task": info["task"]},
    )
