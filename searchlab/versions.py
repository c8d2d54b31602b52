"""The software whose versions decide a run's numbers, recorded by the search (study record) and by each
export (config.json made_with): the two may differ when a run is exported later or elsewhere."""
from __future__ import annotations

import hashlib
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
    """The git commit of an editable install's checkout, and when files differ from it "+changes:" and a digest
    of the difference (tracked files' diff, and searchlab's own untracked files): two runs on one commit with
    other edits in between said the same "+changes", which pinned neither. The version number alone names every
    commit since it was last raised. None for a wheel install or without git."""
    root = Path(searchlab.__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        head = _git(root, "rev-parse", "HEAD").decode().strip()
        diff = _git(root, "diff", "HEAD", "--binary")
        untracked = _git(root, "ls-files", "--others", "--exclude-standard", "-z", "--", "searchlab").split(b"\0")
        new_files = sorted(name for name in untracked if name)
        if not diff and not new_files:
            return head
        digest = hashlib.sha256(diff)
        for name in new_files:   # a new module changes what runs as much as an edited one
            digest.update(name + b"\0" + (root / name.decode()).read_bytes())
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+changes:{digest.hexdigest()[:12]}"


def _git(root: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=10, check=True).stdout
