"""Training speed of train.precision and train.channels_last, side by side in one run.

    python bench/training_speed.py [--epochs 2] [--rounds 3]

Trains studies/breastmnist_search.yaml's first recipe (4-stage 16-wide plain CNN at input_scale 2, batch 32,
flips and shifts) on the BreastMNIST train split (546 images) with one torch thread, in each mode: fp32,
channels_last, bf16, bf16 + channels_last. Modes take turns for --rounds rounds (so drift of the machine's
speed hits all alike); each prints its training images/s (the train loop's own clock: no validation) and the
ratio to fp32, and the last validation AUC as a sanity check (2 epochs: far from trained).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from statistics import median

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import data_root, print_summary, print_table  # noqa: E402

MODES = {"fp32": {}, "channels_last": {"channels_last": True}, "bf16": {"precision": "bf16"},
         "bf16 + channels_last": {"precision": "bf16", "channels_last": True}}
RECIPE = {"model": {"kind": "cnn", "depth": 4, "width": 16, "kernel": 3, "input_scale": 2, "dropout": 0.2},
          "optim": {"lr": 1e-3, "weight_decay": 1e-4}, "augment": {"policy": "flip_shift"},
          "train": {"batch_size": 32, "label_smoothing": 0.05, "checkpoint": "last"}}


def train_once(train_options: dict, epochs: int) -> tuple[float, float]:
    """(training images per second, last validation AUC) of one training from seed 0."""
    from searchlab.config.schema import MedMNISTData
    from searchlab.data import load_dataset
    from searchlab.models.standalone import build_model
    from searchlab.tasks.classify import make_batches, model_spec_for, parse_trial_config
    from searchlab.tasks.train import make_recipe, train

    spec = parse_trial_config({**RECIPE, "train": {**RECIPE["train"], **train_options}}, None)
    data = load_dataset(MedMNISTData(source="medmnist", name="breastmnist", root=data_root(), download=False),
                        splits=("train", "val"), seed=0)
    batches = make_batches(data)
    torch.manual_seed(0)
    model = build_model(model_spec_for(spec, data))
    result = train(model, batches, make_recipe(batches, spec.augment, spec.imbalance, spec.train), spec.optim,
                   spec.train, epochs, 0, ("auc", "maximize"), lambda epoch, metrics: None)
    return result.images_seen / result.train_seconds, result.metrics["auc"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    speeds: dict[str, list[float]] = {mode: [] for mode in MODES}
    aucs: dict[str, float] = {}
    for _ in range(args.rounds):
        for mode, options in MODES.items():
            speed, aucs[mode] = train_once(options, args.epochs)
            speeds[mode].append(speed)
    base = median(speeds["fp32"])
    print(f"BreastMNIST train split, {args.epochs} epochs x {args.rounds} rounds per mode, 1 thread, "
          f"CPU bf16 support: {'avx512_bf16' in Path('/proc/cpuinfo').read_text()}")
    print_table(["mode", "images/s (median)", "vs fp32", "val AUC"],
                [[m, f"{median(s):.0f}", f"{median(s) / base:.2f}x", f"{aucs[m]:.3f}"] for m, s in speeds.items()])
    print_summary({"bench": "training_speed", "images_per_second": {m: median(s) for m, s in speeds.items()},
                   "ratio_vs_fp32": {m: median(s) / base for m, s in speeds.items()}})


if __name__ == "__main__":
    main()
