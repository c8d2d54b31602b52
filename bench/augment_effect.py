"""What augmentation does to real images: black images per policy, and whether magnitude 1 of each op does anything.

    python bench/augment_effect.py [--root ../shared/data] [--repeats 4]

On BreastMNIST's 546 training images (28 px; none of them black):
1. each policy applied `--repeats` times: how many images come out all black (their labels kept: noise in
   training), beside torchvision's own TrivialAugmentWide, whose shifts of up to 32 px searchlab caps at 45% of
   the side; `searched` as each op alone at magnitude 10 on every image (its steps are the study's own);
2. each searched op with a magnitude at magnitude 1, applied to every image: the share of images it changes and
   the mean absolute change in grey levels, beside the same op at the plain linear scale (max * m / 10) that
   posterize and gaussian_blur used before they got a least strength.
Prints both tables and a JSON summary line with the same numbers. No target: it reports what each op does.
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

from _common import print_summary, print_table  # noqa: E402
from searchlab.augment import OPS, AugmentSpec, build_augmentation  # noqa: E402
from searchlab.augment.ops import BILINEAR, MAX_MAGNITUDE  # noqa: E402
from searchlab.augment.policies import per_image  # noqa: E402
from searchlab.augment.spec import OpName, PolicyName, SubPolicy  # noqa: E402


def black(images: torch.Tensor) -> int:
    return int((images.flatten(1).amax(1) == 0).sum())


def blackouts(x: torch.Tensor, repeats: int) -> dict[str, int]:
    """Images that came out all black over `repeats` passes, per policy and for torchvision's TrivialAugmentWide."""
    counts = {}
    for name, spec in policies().items():
        augment = build_augmentation(spec, "binary", 2)
        counts[name] = sum(black(augment(x, torch.zeros(len(x), dtype=torch.long))[0]) for _ in range(repeats))
    torchvision_ta = per_image(v2.TrivialAugmentWide(interpolation=BILINEAR))
    counts["torchvision TrivialAugmentWide"] = sum(black(torchvision_ta(x)) for _ in range(repeats))
    return counts


def policies() -> dict[str, AugmentSpec]:
    """Every policy; `searched` has no steps of its own, so each op alone at its strongest (magnitude 10, on every
    image): the worst any searched step can do."""
    named = {name: AugmentSpec(policy=name) for name in get_args(PolicyName) if name != "searched"}
    steps = {f"searched: {op} at {MAX_MAGNITUDE}": {"s": SubPolicy(op=op, prob=1.0, magnitude=MAX_MAGNITUDE)}
             for op in get_args(OpName)}
    return {**named, **{name: AugmentSpec(policy="searched", sub_policies=step) for name, step in steps.items()}}


def magnitude_one(x: torch.Tensor) -> dict[str, dict[str, float]]:
    """Per searched op with a magnitude: what magnitude 1 changes now, and at the plain linear scale."""
    effects = {}
    for name, op in OPS.items():
        if not op.max_strength:
            continue
        now, linear = op.fn(x, op.strength(1)), op.fn(x, op.max_strength / MAX_MAGNITUDE)
        (changed, change), (linear_changed, linear_change) = _changed(now, x), _changed(linear, x)
        effects[name] = {"changed": changed, "mean_abs_change": change, "linear_changed": linear_changed,
                         "linear_mean_abs_change": linear_change}
    return effects


def _changed(out: torch.Tensor, x: torch.Tensor) -> tuple[float, float]:
    """Share of images with any pixel changed, and the mean absolute change in grey levels."""
    share = (out != x).flatten(1).any(1).float().mean().item()
    return round(share, 2), round((out.float() - x.float()).abs().mean().item(), 2)


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
    augmented = args.repeats * len(x)   # images put through each policy in all
    black_counts, effects = blackouts(x, args.repeats), magnitude_one(x)
    print(f"Images that came out all black ({args.repeats} passes):")
    print_table(["policy", "black images", "%"],
                [[name, count, f"{100 * count / augmented:.2f}"] for name, count in black_counts.items()])
    print("\nMagnitude 1 of each searched op, on every image (signed ops: the positive side):")
    print_table(["op", "changed", "mean |change|", "linear m/10: changed", "mean |change|"],
                [[name, *(f"{v:.2f}" for v in e.values())] for name, e in effects.items()])
    print_summary({"bench": "augment_effect", "images": len(x), "repeats": args.repeats,
                   "black_images": black_counts,
                   "black_pct": {name: round(100 * count / augmented, 2) for name, count in black_counts.items()},
                   "magnitude_one": effects})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
