"""Tiny finished runs for module-scoped fixtures (which cannot use the function-scoped write_study)."""
from __future__ import annotations

from pathlib import Path


def run_on_breastmnist(folder: Path, text: str, root: Path) -> Path:
    """Run the study `text` in `folder` on the real BreastMNIST (for module-scoped fixtures, which cannot use
    write_study); returns its run folder, folder/run."""
    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study

    path = folder / "study.yaml"
    path.write_text(text + f"data: {{source: medmnist, name: breastmnist, root: '{root}', download: false}}\n"
                    f"run_dir: '{folder / 'run'}'\n")
    run_study(load_study(path), progress=False)
    return folder / "run"
