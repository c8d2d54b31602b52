"""Augmentation throughput: images per second of each policy on random uint8 batches, torch with 2 threads.

    python bench/augment_throughput.py [--seconds 0.6] [--threads 2]

Batches of 64 images, 1x28x28 (MedMNIST) and 3x64x64. Each row is one `build_augmentation` callable (uint8 in,
float32 in [0, 1] plus targets out), warmed up, then timed over three windows; the best window is reported
(other processes on a shared machine only ever slow a window down; rounds interleave the cases).
"rel." is throughput / that of "none" (uint8 -> float only), at the same size.
The mixup / cutmix rows use policy "none" with every batch mixed, so they show the cost of mixing alone.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import get_args

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]   # searchlab, and _common from this folder

import torch  # noqa: E402

from _common import print_summary, print_table  # noqa: E402
from searchlab.augment import AugmentSpec, BatchAugment, SubPolicy, build_augmentation  # noqa: E402
from searchlab.augment.spec import PolicyName  # noqa: E402

BATCH = 64
SHAPES = {28: 1, 64: 3}            # size -> channels
WARMUP_SECONDS = 0.2
WINDOWS = 3
# A typical searched policy: one geometric, one colour and one blur step, as a search would propose.
SEARCHED = {"a": SubPolicy(op="rotate", prob=0.7, magnitude=5), "b": SubPolicy(op="contrast", prob=0.5, magnitude=6),
            "c": SubPolicy(op="gaussian_blur", prob=0.3, magnitude=4)}


def cases() -> dict[str, AugmentSpec]:
    rows = {policy: AugmentSpec(policy=policy, sub_policies=SEARCHED if policy == "searched" else {})
            for policy in get_args(PolicyName)}
    rows.update({f"none + {mix}": AugmentSpec(mix=mix, mix_prob=1.0) for mix in ("mixup", "cutmix")})
    return rows


def batch(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randint(0, 256, (BATCH, SHAPES[size], size, size), dtype=torch.uint8), torch.randint(0, 2, (BATCH,))


def window(augment: BatchAugment, x: torch.Tensor, y: torch.Tensor, seconds: float) -> float:
    """Images per second over one window of at least `seconds` (and at least one call)."""
    calls, start = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - start < seconds:
        augment(x, y)
        calls += 1
    return calls * x.shape[0] / (time.perf_counter() - start)


def measure(seconds: float) -> dict[str, dict[int, float]]:
    """Best window per (case, size). Rounds are interleaved over the cases, so a burst of load from another
    process lands on one window of several cases rather than on every window of one case."""
    jobs = [(name, size, build_augmentation(spec, "binary", 2), *batch(size))
            for name, spec in cases().items() for size in SHAPES]
    for _name, _size, augment, x, y in jobs:
        window(augment, x, y, WARMUP_SECONDS)
    rates = {name: {size: 0.0 for size in SHAPES} for name, *_ in jobs}
    for _ in range(WINDOWS):
        for name, size, augment, x, y in jobs:
            rates[name][size] = max(rates[name][size], window(augment, x, y, seconds / WINDOWS))
    return rates


def relative(rate: float, base: float) -> str:
    return f"{rate / base:.2g}"   # two significant digits: the slow policies are thousandths of "none"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.6, help="timed seconds per policy and size")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (a 2-core laptop: 2)")
    args = parser.parse_args()
    if args.threads < 1:   # torch.set_num_threads refuses it with a RuntimeError traceback
        parser.error(f"argument --threads: {args.threads} is below 1 (torch needs at least one thread)")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rates = measure(args.seconds)
    base = rates["none"]
    print(f"images/s, batches of {BATCH}; torch threads {args.threads}; load average {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores")
    print_table(["policy", "img/s 1x28x28", "img/s 3x64x64", "rel. 28", "rel. 64"],
                [[name, round(r[28]), round(r[64]), relative(r[28], base[28]), relative(r[64], base[64])]
                 for name, r in rates.items()])
    print_summary({"bench": "augment_throughput", "threads": args.threads,
                   "images_per_second": {name: {str(s): round(v) for s, v in r.items()} for name, r in rates.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
