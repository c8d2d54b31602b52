"""Bench scripts refuse bad arguments with a one-line argparse error (exit 2), not a traceback; augment_effect
counts black images of the searched policy too."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.mark.parametrize("script, args, said", [
    ("augment_throughput.py", ["--threads", "0"], "--threads: 0 is below 1"),
    ("image_cache.py", ["--images", "3", "--side", "16", "--size", "8"], "--images: 3 is below 11"),
    ("image_cache.py", ["--side", "0"], "--side: 0 is below 1"),
])
def test_a_bad_argument_is_a_usage_error(script, args, said):
    done = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr


def test_augment_effect_covers_the_searched_policy(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import augment_effect

    names = list(augment_effect.policies())
    assert "searched: rotate at 10" in names and "searched: gaussian_noise at 10" in names and "augmix" in names
