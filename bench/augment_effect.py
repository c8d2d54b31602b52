"""What augmentation does to real images: black images per policy, and whether magnitude 1 of each op does anything.

    python bench/augment_effect.py [--root ../shared/data] [--repeats 4]

On BreastMNIST's 546 training images (28 px; none of them black):
1. each policy applied `--repeats` times: how many images come out all black (their labels kept: noise in
   training), beside torchvision's own TrivialAugmentWide, whose shifts of up to 32 px searchlab caps at 45% of
   the side;
2. each searched op with a magnitude at magnitude 1, applied to every image: the share of images it changes and
   the mean absolute change in grey levels, beside the same op at the plain linear scale (max * m / 10) that
   posterize and gaussian_blur used before they got a least strength.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import get_args

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]   # searchlab, and _common from this folder

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchvision.transforms import v2  # noqa: E402

from _common import print_table  # noqa: E402
from searchlab.augment import OPS, AugmentSpec, build_augmentation  # noqa: E402
from searchlab.augment.ops import BILINEAR, MAX_MAGNITUDE  # noqa: E402
from searchlab.augment.policies import per_image  # noqa: E402
from searchlab.augment.spec import PolicyName  # noqa: E402


def black(images: torch.Tensor) -> int:
    return int((images.flatten(1).amax(1) == 0).sum())


def blackouts(x: torch.Tensor, repeats: int) -> list[list[object]]:
    rows = []
    policies = [p for p in get_args(PolicyName) if p != "searched"]
    for name in policies:
        augment = build_augmentation(AugmentSpec(policy=name), "binary", 2)
        count = sum(black(augment(x, torch.zeros(len(x), dtype=torch.long))[0]) for _ in range(repeats))
        rows.append([name, count, f"{100 * count / (repeats * len(x)):.2f}"])
    torchvision_ta = per_image(v2.TrivialAugmentWide(interpolation=BILINEAR))
    count = sum(black(torchvision_ta(x)) for _ in range(repeats))
    rows.append(["torchvision TrivialAugmentWide", count, f"{100 * count / (repeats * len(x)):.2f}"])
    return rows


def magnitude_one(x: torch.Tensor) -> list[list[object]]:
    rows = []
    for name, op in OPS.items():
        if not op.max_strength:
            continue
        now, linear = op.fn(x, op.strength(1)), op.fn(x, op.max_strength / MAX_MAGNITUDE)
        rows.append([name, *_changed(now, x), *_changed(linear, x)])
    return rows


def _changed(out: torch.Tensor, x: torch.Tensor) -> tuple[str, str]:
    share = (out != x).flatten(1).any(1).float().mean().item()
    return f"{share:.2f}", f"{(out.float() - x.float()).abs().mean().item():.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    images = np.load(args.root / "breastmnist.npz")["train_images"]
    x = torch.from_numpy(images)[:, None]
    print(f"BreastMNIST train: {len(x)} images, {black(x)} black before augmentation\n")
    print(f"Images that came out all black ({args.repeats} passes):")
    print_table(["policy", "black images", "%"], blackouts(x, args.repeats))
    print("\nMagnitude 1 of each searched op, on every image (signed ops: the positive side):")
    print_table(["op", "changed", "mean |change|", "linear m/10: changed", "mean |change|"], magnitude_one(x))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
