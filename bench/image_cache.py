"""Reading an image folder with and without the decoded-image cache, side by side in one run.

    python bench/image_cache.py [--images 2000] [--side 512] [--size 224]

Writes `--images` grayscale PNGs of `--side` x `--side` pixels (smooth shapes and noise, as X-ray exports
compress; 80/20 two classes) into a scratch folder, then loads the folder's train and val splits at
`--size` px: with the cache off (decoding on one thread, then on every core), a first load that fills the
cache, a load from it, and one of another seed's splits (rows of the files the first load cached, the rest
decoded) (the in-memory cache is cleared before each). The cached arrays must equal the decoded ones.
Beside them, what every run start also costs: the data fingerprint that tells a resume whether files changed,
digesting whole files (and, as before 2026-12-05, 8 KB at each end, which missed pixels edited inside a file).
Target: a cached load at least 10x faster than decoding.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from _common import print_summary, print_table, scratch_dir, verdict  # noqa: E402
from searchlab.data.common import decode_threads  # noqa: E402

TARGET = 10.0
# Every 5th image is a 'finding', and train, val and test each need one of each class (the folder's default
# 15% / 15% split): three findings, so 11 images. Fewer ended in a DataError traceback.
FEWEST_IMAGES = 11
EACH_SPLIT = " (every 5th image is of class 'finding', and train, val and test each need one)"


def at_least(least: int, why: str = "") -> Callable[[str], int]:
    """An argparse type: a whole number >= least, else a one-line usage error saying `why`."""
    def parse(text: str) -> int:
        value = int(text)
        if value < least:
            raise argparse.ArgumentTypeError(f"{value} is below {least}{why}")
        return value

    parse.__name__ = "int"   # argparse names the type in its "invalid int value" message
    return parse


def write_images(folder: Path, n: int, side: int) -> None:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:side, 0:side] / side
    for i in range(n):
        label = "finding" if i % 5 == 0 else "normal"
        cx, cy, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.3)
        body = 90 + 80 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / r ** 2)
        pixels = np.clip(body + rng.normal(0, 6, (side, side)), 0, 255).astype(np.uint8)
        (folder / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / label / f"{i:05d}.png")


def timed_load(folder: Path, size: int, cache: str, threads: int | None = None,
               seed: int = 0) -> tuple[float, dict[str, torch.Tensor]]:
    """Seconds to load train + val (`threads`: decode with that many instead of every core)."""
    import searchlab.data.common as common
    from searchlab.config.schema import FolderData
    from searchlab.data import clear_cache, load_dataset

    os.environ["SEARCHLAB_CACHE"] = cache
    clear_cache()
    every_core = common.decode_threads
    common.decode_threads = (lambda: threads) if threads else every_core
    try:
        start = time.perf_counter()
        data = load_dataset(FolderData(source="folder", path=folder, image_size=size), splits=("train", "val"),
                            seed=seed)
        return time.perf_counter() - start, {k: v.images for k, v in data.splits.items()}
    finally:
        common.decode_threads = every_core


def timed_fingerprint(folder: Path, size: int, whole: bool) -> float:
    """Seconds to fingerprint the folder's splits (whole-file digests, or the sampled ones used before)."""
    import searchlab.data.fingerprint as fingerprint
    from searchlab.config.schema import FolderData
    from searchlab.data import data_fingerprint

    whole_files = fingerprint.content_digest
    fingerprint.content_digest = whole_files if whole else fingerprint.sampled_digest
    try:
        start = time.perf_counter()
        data_fingerprint(FolderData(source="folder", path=folder, image_size=size))
        return time.perf_counter() - start
    finally:
        fingerprint.content_digest = whole_files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=at_least(FEWEST_IMAGES, EACH_SPLIT), default=2000,
                        help=f"PNGs to write (at least {FEWEST_IMAGES}: each split needs an image of each class)")
    parser.add_argument("--side", type=at_least(1), default=512)
    parser.add_argument("--size", type=at_least(1), default=224)
    args = parser.parse_args()
    with scratch_dir() as tmp:
        write_images(tmp / "images", args.images, args.side)
        serial, _ = timed_load(tmp / "images", args.size, "off", threads=1)
        off, decoded = timed_load(tmp / "images", args.size, "off")
        cold, _ = timed_load(tmp / "images", args.size, str(tmp / "cache"))
        warm, cached = timed_load(tmp / "images", args.size, str(tmp / "cache"))
        reseeded, _ = timed_load(tmp / "images", args.size, str(tmp / "cache"), seed=1)
        sampled, whole = (timed_fingerprint(tmp / "images", args.size, w) for w in (False, True))
        folder_mib = sum(p.stat().st_size for p in (tmp / "images").rglob("*.png")) / 2**20
        cache_mib = sum(p.stat().st_size for p in (tmp / "cache").rglob("*.npy")) / 2**20
    same = all(torch.equal(decoded[k], cached[k]) for k in decoded)
    read = sum(v.shape[0] for v in decoded.values())   # the test split stays unread
    cores = decode_threads()
    print(f"\n{read} of {args.images} PNGs ({args.side}x{args.side}; train + val) read at {args.size}x{args.size}")
    print_table(["load", "seconds", "images/s"],
                [["decoded, 1 thread (cache off)", serial, read / serial],
                 [f"decoded, {cores} threads (cache off)", off, read / off],
                 ["decoded, cache filled", cold, read / cold],
                 ["from the cache", warm, read / warm],
                 ["another seed's splits: cached rows, new files decoded", reseeded, read / reseeded],
                 [f"fingerprint, whole files ({folder_mib:.0f} MiB, all splits)", whole, args.images / whole],
                 ["fingerprint, 8 KB at each end (before)", sampled, args.images / sampled]])
    ratio = off / warm
    ok = ratio >= TARGET and same
    print(f"decoding on {cores} threads: {serial / off:.2f}x one thread's speed")
    print(f"cache: {cache_mib:.0f} MiB on disk; cached arrays equal decoded: {same}")
    print(f"fingerprint of whole files: {whole / off:.2f}x the time of decoding ({whole / sampled:.1f}x the "
          "sampled digests')")
    print(f"cached load {ratio:.0f}x faster than decoding; target >= {TARGET:g}x: {verdict(ok)}")
    print_summary({"bench": "image_cache", "images": args.images, "side": args.side, "size": args.size,
                   "threads": cores, "serial_s": round(serial, 3), "off_s": round(off, 3), "cold_s": round(cold, 3),
                   "warm_s": round(warm, 3), "reseeded_s": round(reseeded, 3), "fingerprint_whole_s": round(whole, 3),
                   "fingerprint_sampled_s": round(sampled, 3), "ratio": round(ratio, 1), "cache_mib": round(cache_mib, 1),
                   "equal": same, "pass": ok})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
