"""The software whose versions decide a run's numbers, recorded by the search (study record) and by each
export (config.json made_with): the two may differ when a run is exported later or elsewhere."""
from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

import searchlab

PACKAGES = ("optuna", "numpy", "scikit-learn", "torchvision", "timm", "medmnist", "Pillow")


def software_versions() -> dict[str, str]:
    found = {"searchlab": searchlab.__version__, "torch": torch.__version__, "python": platform.python_version()}
    if commit := source_commit():
        found["searchlab_commit"] = commit
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue   # optional (timm, medmnist): not installed, so not used
    return found


def source_commit() -> str | None:
    """The git commit of an editable install's checkout, "+changes" when files differ from it: the version
    number alone names every commit since it was last raised. None for a wheel install or without git."""
    root = Path(searchlab.__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        changed = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                                 capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+changes" if changed else "")
