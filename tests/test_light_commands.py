"""Commands that only read a study (`status`, `trials`) answer without importing torch or medmnist: importing
them took ~3 s of a 3.6 s `status`, which users run over and over while a search goes on."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from searchlab.config.load import load_study
from searchlab.engine.run import run_study

from test_run import TINY_CLASSIFY

REPO = Path(__file__).resolve().parents[1]

# a finder first on the meta path that refuses torch and medmnist (and their sub-modules), then the CLI
WITHOUT_TORCH = r"""
import importlib.abc, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "medmnist", "timm"):
            raise ImportError(f"{name} was imported")
sys.meta_path.insert(0, Refuse())
from searchlab.cli import main
sys.exit(main(["--debug"] + sys.argv[1:]))
"""


def _without_torch(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", WITHOUT_TORCH, *args], env=env, capture_output=True, text=True)


def test_status_and_trials_of_a_classify_run_import_no_torch(write_study, tmp_path):
    run_study(load_study(write_study(TINY_CLASSIFY)), progress=False)
    status = _without_torch("status", str(tmp_path / "run"))
    assert status.returncode == 0, status.stderr
    assert "2 complete" in status.stdout and "search:" in status.stdout and "trial " in status.stdout
    trials = _without_torch("trials", str(tmp_path / "run"), "--format", "csv")
    assert trials.returncode == 0, trials.stderr
    assert len(trials.stdout.strip().splitlines()) == 3   # header and the two trials


def test_the_refusing_finder_does_catch_a_torch_import():
    """The check above can fail: the same process refuses a command that needs torch."""
    proc = subprocess.run([sys.executable, "-c", WITHOUT_TORCH.replace("from searchlab.cli import main",
                                                                       "import torch.nn")],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    assert proc.returncode != 0 and "ImportError: torch was imported" in proc.stderr
