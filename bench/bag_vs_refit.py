"""Why studies/breastmnist_search.yaml keeps each trial's bag of fold models (train.cv_model: bag) rather than
models retrained on all the labelled images: nested cross-validation over BreastMNIST train+val only (the test
split is never read), in plain torch.

    python bench/bag_vs_refit.py [--models 5]

The 624 train+val images are split into recipe_cv.py's 5 outer folds. On each, the other 499 images train, side
by side on one core each:
  bag:   --models inner-fold models, each on (models-1)/models of the 499 (a trial's bag: 399 images each with 5)
  refit: --models models with other seeds, each on all 499 images (what retraining on all the data would give)
and each group's averaged flip-TTA probabilities score the held-out fold. Both use recipe_cv.py's first recipe
(40 epochs, width 16, input scale 2, per-image flip_shift, AdamW, cosine, last epoch kept). Prints each
group's out-of-fold AUC and accuracy at p > 0.5. ~40 and ~50 minutes on this machine's two cores.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from multiprocessing import Pool
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH)]
from _common import print_summary, print_table  # noqa: E402

RECIPE_ARGS = ["40", "16", "shift", "1", "2", "5", "fp32"]   # the study's first recipe


def recipe_cv() -> ModuleType:
    """bench/recipe_cv.py, which reads its recipe from the command line when imported."""
    sys.argv = ["recipe_cv.py", *RECIPE_ARGS]
    return importlib.import_module("recipe_cv")


def out_of_fold(mode: str, models: int) -> np.ndarray:
    """(models, images) held-out probabilities of one group, one torch thread."""
    recipe = recipe_cv()
    torch.set_num_threads(1)
    images, labels = recipe.train_val()
    outer = recipe.outer_folds(len(labels), 5)
    probs = np.zeros((models, len(labels)))
    for o, held in enumerate(outer):
        train = np.concatenate([f for i, f in enumerate(outer) if i != o])
        inner = np.array_split(np.random.default_rng(1 + o).permutation(train), models)
        for k in range(models):
            fit_on = np.concatenate([f for i, f in enumerate(inner) if i != k]) if mode == "bag" else train
            probs[k, held] = recipe.fit_and_score(images, labels, fit_on, held, 1000 * o + k)["flip"]
        print(f"{mode}: outer fold {o + 1} of {len(outer)} done", file=sys.stderr, flush=True)
    return probs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=5)
    args = parser.parse_args()
    modes = ["bag", "refit"]
    with Pool(len(modes)) as pool:
        results = pool.starmap(out_of_fold, [(mode, args.models) for mode in modes])
    labels = recipe_cv().train_val()[1]
    scores = {mode: score(labels, probs.mean(0)) for mode, probs in zip(modes, results)}
    print(f"BreastMNIST train+val, 5 outer folds, {args.models}-model averages, flip TTA")
    print_table(["models", "images each", "out-of-fold AUC", "accuracy at p > 0.5"],
                [[mode, f"{499 * (args.models - 1) // args.models if mode == 'bag' else 499}",
                  f"{auc:.4f}", f"{acc:.3f}"] for mode, (auc, acc) in scores.items()])
    print_summary({"bench": "bag_vs_refit", "models": args.models,
                   "out_of_fold": {mode: {"auc": auc, "accuracy": acc} for mode, (auc, acc) in scores.items()},
                   "auc_ratio_refit_vs_bag": scores["refit"][0] / scores["bag"][0]})


def score(labels: np.ndarray, probs: np.ndarray) -> tuple[float, float]:
    return float(roc_auc_score(labels, probs)), float(((probs > 0.5) == labels).mean())


if __name__ == "__main__":
    main()
