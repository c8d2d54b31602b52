"""Peak memory of per-trial work over the whole training split, measured in a fresh process."""
from __future__ import annotations

import subprocess
import sys

MEASURE = """
import resource, torch
from types import SimpleNamespace
from searchlab.tasks.train import normalisation
images = torch.randint(0, 256, (2000, 3, 128, 128), dtype=torch.uint8)   # 98 MB as uint8
split = SimpleNamespace(images=images)
normalisation(SimpleNamespace(images=images[:64]))   # torch's own first-use allocations, not the split's
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
stats = normalisation(split)
grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(grown * 1024 / images.numel(), stats["mean"][0])
"""


def test_the_training_splits_normalisation_needs_a_fraction_of_the_split_in_memory_not_8x():
    """Mean and std came from the whole split converted to float32 and divided at once: +8x its uint8 size
    at the peak of every trial and fold (3,000 RGB images at 256 px: 4.6 GB)."""
    out = subprocess.run([sys.executable, "-c", MEASURE], capture_output=True, text=True, timeout=300, check=True)
    grown_per_byte, mean = map(float, out.stdout.split())
    assert grown_per_byte < 0.5 and 0.49 < mean < 0.51
