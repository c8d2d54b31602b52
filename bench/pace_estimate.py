"""The pre-run trial-time estimate (searchlab/tasks/pace.py) beside the trials' measured time, in one run.

    python bench/pace_estimate.py [--epochs 4]

For a few BreastMNIST configs (a small CNN, the breastmnist_search recipe under 3-fold CV, a ResNet-18 from
timm at 64 px, a CNN with RandAugment), each a 1-trial study with early stopping off (so every epoch runs):
the estimate `run` makes before the first trial (batches timed for ~2 s past their warm-up, times epochs,
runs and images), then the
trial's own wall time (Optuna's start to complete), and their ratio. The warning fires when the estimate
exceeds budget.timeout or trial_timeout, so what matters is that the ratio stays near 1 (within 2x).
Trains on train/val only; no test data.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import data_root, print_summary, print_table, scratch_dir, write_study  # noqa: E402

CASES = {
    "cnn 3x32, batch 32": {"model": {"kind": "cnn", "depth": 3, "width": 32}, "train": {"batch_size": 32}},
    "search recipe, 3-fold CV": {"model": {"kind": "cnn", "depth": 4, "width": 16, "input_scale": 2},
                                 "augment": {"policy": "flip_shift"},
                                 "train": {"batch_size": 32, "cv_folds": 3}},
    "timm resnet18 at 64 px": {"model": {"kind": "timm", "backbone": "resnet18", "input_size": 64},
                               "train": {"batch_size": 64}},
    "cnn 2x16 + randaugment": {"model": {"kind": "cnn", "depth": 2, "width": 16},
                               "augment": {"policy": "randaugment"}, "train": {"batch_size": 64}},
}


def measure(folder: Path, name: str, space: dict, epochs: int) -> tuple[float, float]:
    """(estimated seconds, measured seconds) of one trial of `space`."""
    from searchlab.config.load import load_study
    from searchlab.data import load_dataset
    from searchlab.engine.run import run_study
    from searchlab.tasks.classify import make_batches, model_spec_for, parse_trial_config
    from searchlab.tasks.pace import estimated_trial

    space = {**space, "train": {**space.get("train", {}), "early_stopping": None}}
    path = write_study(folder / f"{name}.yaml", {
        "name": name, "task": "classify", "space": space, "strategy": "random", "pruner": "none",
        "data": {"source": "medmnist", "name": "breastmnist", "root": data_root(), "download": False},
        "budget": {"n_trials": 1, "epochs": epochs}, "run_dir": str(folder / name)})
    study = load_study(path)
    spec = parse_trial_config(space, None)
    data = load_dataset(study.config.data, splits=("train", "val"), seed=0, base_dir=study.base_dir)
    estimate = estimated_trial(study, make_batches(data), spec, model_spec_for(spec, data))
    assert estimate is not None, name
    trial = run_study(study, progress=False).study.trials[0]
    assert trial.state.name == "COMPLETE", (name, trial.user_attrs.get("error"))
    return estimate.seconds, (trial.datetime_complete - trial.datetime_start).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    rows, ratios = [], {}
    with scratch_dir() as folder:
        for i, (case, space) in enumerate(CASES.items()):
            estimated, measured = measure(folder, f"case{i}", space, args.epochs)
            ratios[case] = estimated / measured
            rows.append([case, f"{estimated:.1f}", f"{measured:.1f}", f"{ratios[case]:.2f}"])
    print(f"BreastMNIST, one trial of {args.epochs} epochs per config (early stopping off), local worker")
    print_table(["config", "estimated s", "measured s", "estimate / measured"], rows)
    print_summary({"bench": "pace_estimate", "epochs": args.epochs, "ratio_estimate_to_measured": ratios,
                   "all_within_2x": all(0.5 <= r <= 2.0 for r in ratios.values())})


if __name__ == "__main__":
    main()
