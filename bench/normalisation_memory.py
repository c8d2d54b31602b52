"""Peak memory of a trial's per-channel mean/std over the training split, side by side in one run.

    python bench/normalisation_memory.py [--images 2000] [--size 256] [--channels 3]

Every classify trial (and every cross-validation fold) computes the mean and std its model carries from the
training images. Each way runs in a fresh process on the same random uint8 split: searchlab's (a histogram
counted a few images at a time) and the one used before 2026-12-05 (the whole split converted to float32 and
divided at once). Reported: each way's growth of peak RSS, in MiB and in multiples of the split's uint8 size,
and whether both give the same numbers. Target: searchlab's <= 0.5x the split (the float way takes ~8x).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import print_summary, print_table, verdict  # noqa: E402

TARGET = 0.5
MEASURE = """
import json, resource, sys, torch
from types import SimpleNamespace
from searchlab.tasks.train import normalisation

def whole_split_as_floats(split):
    x = split.images.to(torch.float32) / 255.0
    return {"mean": x.mean(dim=(0, 2, 3)).tolist(), "std": x.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist()}

n, channels, size, way = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
images = torch.randint(0, 256, (n, channels, size, size), generator=torch.Generator().manual_seed(0),
                       dtype=torch.uint8)
compute = normalisation if way == "searchlab" else whole_split_as_floats
compute(SimpleNamespace(images=images[:8]))   # torch's first-use allocations, not the split's
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
stats = compute(SimpleNamespace(images=images))
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
print(json.dumps({"grown": grown, "bytes": images.numel(), **stats}))
"""


def measure(way: str, args: argparse.Namespace) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, str(args.images), str(args.channels), str(args.size), way],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--channels", type=int, default=3)
    args = parser.parse_args()
    ours, floats = measure("searchlab", args), measure("floats", args)
    split_mib = ours["bytes"] / 2**20
    print(f"\ntraining split: {args.images} images, {args.channels} x {args.size} x {args.size} uint8 "
          f"({split_mib:.0f} MiB)")
    rows = [[name, r["grown"] / 2**20, r["grown"] / r["bytes"]] for name, r in
            (("histogram, a few images at a time (searchlab)", ours), ("whole split as float32 (before)", floats))]
    print_table(["mean/std computed as", "peak RSS growth MiB", "x split"], rows)
    same = all(abs(a - b) < 1e-5 for key in ("mean", "std") for a, b in zip(ours[key], floats[key]))
    ratio = ours["grown"] / ours["bytes"]
    ok = ratio <= TARGET and same
    print(f"same mean and std (to 1e-5): {same}; searchlab's growth {ratio:.2f}x the split, target <= {TARGET}x: "
          f"{verdict(ok)}")
    print_summary({"bench": "normalisation_memory", "images": args.images, "size": args.size,
                   "channels": args.channels, "split_mib": round(split_mib, 1),
                   "searchlab_x": round(ratio, 3), "floats_x": round(floats["grown"] / floats["bytes"], 3),
                   "same": same, "pass": ok})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
