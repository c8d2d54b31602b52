"""What the weights lineage's whole-file digests cost beside the sampled ones they replaced (trained_on.json).

    python bench/lineage_digest.py [--repeats 5]

BreastMNIST's 624 train+val images written as PNG files at 28 px and at 224 px (upscaled), then each file set
digested as export/trained_on.py does (the SHA-256 of each whole file) and as records before 2026-12-06 did
(size and the first and last 8 KB), side by side, warm page cache, best of --repeats. Also counts how many files
the sampled digest takes for another file in a set of uncompressed BMPs with alike black borders (the false
leak alarm that made the lineage compare whole files): the whole-file digest must take none.
Exit code 0 when the whole-file digest tells every BMP apart and costs under 50 ms per 1,000 files at 28 px.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import data_root, print_summary, print_table, scratch_dir, verdict  # noqa: E402

from searchlab.data.fingerprint import content_digest, sampled_digest  # noqa: E402

BUDGET_MS_PER_1000 = 50.0


def write_pngs(folder: Path, images: np.ndarray, size: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"{i}.png"
        Image.fromarray(image).resize((size, size), Image.BILINEAR).save(path)
        paths.append(path)
    return paths


def write_bordered_bmps(folder: Path, n: int, seed: int) -> list[Path]:
    """256x256 uncompressed BMPs, black 40-px bands top and bottom (over 8 KB each), random in between."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        image = np.zeros((256, 256), dtype=np.uint8)
        image[40:-40] = rng.integers(0, 256, size=(176, 256), dtype=np.uint8)
        path = folder / f"{i}.bmp"
        Image.fromarray(image).save(path)
        paths.append(path)
    return paths


def best_ms(digest, paths: list[Path], repeats: int) -> float:
    took = []
    for _ in range(repeats):
        start = time.perf_counter()
        for path in paths:
            digest(path)
        took.append(time.perf_counter() - start)
    return 1000 * min(took)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with np.load(Path(data_root()) / "breastmnist.npz") as npz:
        images = np.concatenate([npz["train_images"], npz["val_images"]])
    rows, summary = [], {}
    with scratch_dir() as tmp:
        for size in (28, 224):
            paths = write_pngs(tmp / f"png{size}", images, size)
            whole, sampled = (best_ms(d, paths, args.repeats) for d in (content_digest, sampled_digest))
            rows.append([f"{len(paths)} PNGs at {size} px", round(sampled, 1), round(whole, 1),
                         round(whole / sampled, 2)])
            summary[f"ms_per_1000_whole_{size}px"] = round(1000 * whole / len(paths), 1)
            summary[f"ms_per_1000_sampled_{size}px"] = round(1000 * sampled / len(paths), 1)
        bmps = write_bordered_bmps(tmp / "bmp", 50, seed=0)
        taken = {name: len(bmps) - len({d(p) for p in bmps}) for name, d in
                 (("sampled", sampled_digest), ("whole", content_digest))}
    print_table(["files", "sampled ms", "whole-file ms", "whole / sampled"], rows)
    print(f"50 bordered BMPs taken for another file: sampled digest {taken['sampled']}, whole-file {taken['whole']}")
    ok = taken["whole"] == 0 and summary["ms_per_1000_whole_28px"] < BUDGET_MS_PER_1000
    print(f"whole-file digest tells every BMP apart and costs under {BUDGET_MS_PER_1000:.0f} ms per 1,000 "
          f"28-px files: {verdict(ok)}")
    print_summary({**summary, "bmps_confused_sampled": taken["sampled"], "bmps_confused_whole": taken["whole"]})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
