"""Feature extraction: epochs on cached backbone features vs recomputing the frozen backbone every epoch.

    python bench/transfer_features.py [--backbone resnet18] [--input-size 64] [--epochs 10]

Both runs freeze the same backbone and train the same new head on BreastMNIST train (546 images), with the
same seed; only the caching differs (transfer: features vs transfer: cutoff with every block frozen). The
"pretrained" weights are a random init saved to a file (no download here); the timing does not depend on them.
Target: cached >= 10x faster per epoch.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from _common import data_root, print_summary, print_table, scratch_dir, verdict  # noqa: E402

TARGET = 10.0


def epoch_seconds(backbone: str, input_size: int, epochs: int, transfer: str, weights: Path) -> tuple[float, float]:
    """(training seconds per epoch, wall seconds per epoch including validation and any feature caching)."""
    from searchlab.augment import AugmentSpec
    from searchlab.config.schema import MedMNISTData
    from searchlab.data import load_dataset
    from searchlab.imbalance import ImbalanceSpec
    from searchlab.models.timm_backbone import TimmClassifier
    from searchlab.tasks.classify import make_batches
    from searchlab.tasks.classify_config import OptimSpec, TimmSpec, TrainSpec
    from searchlab.tasks.train import make_recipe, train
    from searchlab.tasks.transfer import apply_transfer

    batches = make_batches(load_dataset(MedMNISTData(name="breastmnist", root=Path(data_root()))))
    torch.manual_seed(0)
    net = TimmClassifier(1, 2, backbone, input_size=input_size)
    n_blocks = len(net.parameter_blocks())
    spec = TimmSpec(kind="timm", backbone=backbone, input_size=input_size, weights=str(weights), transfer=transfer,
                    cutoff=n_blocks)
    groups = apply_transfer(net, spec, ROOT)
    recipe = make_recipe(batches, AugmentSpec(), ImbalanceSpec(), TrainSpec())
    start = time.perf_counter()
    result = train(net, batches, recipe, OptimSpec(), TrainSpec(batch_size=64, early_stopping=None), epochs, 0,
                   ("auc", "maximize"), lambda *a: None, groups=groups, cached_features=transfer == "features")
    total = time.perf_counter() - start
    return result.train_seconds / result.epochs_trained, total / result.epochs_trained


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="resnet18")
    parser.add_argument("--input-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(2)
    from searchlab.models.timm_backbone import TimmClassifier

    with scratch_dir() as tmp:
        weights = tmp / "backbone.safetensors"
        save_file(TimmClassifier(1, 2, args.backbone).state_dict(), str(weights))
        recompute = epoch_seconds(args.backbone, args.input_size, args.epochs, "cutoff", weights)
        cached = epoch_seconds(args.backbone, args.input_size, args.epochs, "features", weights)
    ratio, wall_ratio = recompute[0] / cached[0], recompute[1] / cached[1]
    ok = ratio >= TARGET
    print(f"\nFrozen {args.backbone} at {args.input_size}px, head-only training on BreastMNIST train (546 images), "
          f"{args.epochs} epochs each. Training epoch = the epoch's optimisation; wall = everything per epoch "
          "(validation, and for cached features computing them once, spread over the epochs)")
    print_table(["mode", "train s/epoch", "ratio", f"target >= {TARGET:g}x", "wall s/epoch", "wall ratio"],
                [["recompute backbone every epoch (cutoff = all blocks)", round(recompute[0], 4), 1.0, "",
                  round(recompute[1], 3), 1.0],
                 ["cached features (transfer: features)", round(cached[0], 4), round(ratio, 1), verdict(ok),
                  round(cached[1], 3), round(wall_ratio, 1)]])
    print_summary({"bench": "transfer_features", "backbone": args.backbone, "input_size": args.input_size,
                   "epochs": args.epochs, "train_s_per_epoch": {"recompute": recompute[0], "cached": cached[0]},
                   "wall_s_per_epoch": {"recompute": recompute[1], "cached": cached[1]},
                   "ratio": round(ratio, 1), "wall_ratio": round(wall_ratio, 1), "pass": ok})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
