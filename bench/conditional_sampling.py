"""Does asking only for settings that have an effect (define-by-run sampling) help TPE on a conditional space?

    python bench/conditional_sampling.py [--seeds 50] [--trials 80]

The space is the classifier space of studies/breastmnist_transfer.yaml in small: transfer strategy x cut-off
x layer decay, augmentation policy x its magnitudes x mixing, optimiser x momentum, focal loss x gamma. The
objective is synthetic (no training, so many seeds fit in seconds) and follows the code's own rules: a
setting adds to the score only where the classify task would use it (e.g. no augmentation reaches frozen
features), plus evaluation noise. Each seed runs searchlab's TPE twice side by side on the same objective:
every parameter sampled (the old way) vs only those with an effect (`classify_setting_used`). Printed: the
mean best score after 20/40/.../--trials trials over the seeds, how many parameters a trial asks for, and
how many trials repeat an already tried effective config (a wasted trial: the task would run it alike).
Target: define-by-run finds configs as good as sampling every parameter, within noise: the paired
difference of the best at --trials (same seeds) is above -2 standard errors; and it asks for fewer parameters.
"""
from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import numpy as np  # noqa: E402
import optuna  # noqa: E402

from _common import print_summary, print_table, verdict  # noqa: E402
from searchlab.config.yamlsrc import parse_yaml  # noqa: E402
from searchlab.space import compile_space, sample_config  # noqa: E402
from searchlab.strategy import STRATEGIES  # noqa: E402
from searchlab.tasks.classify_usage import classify_setting_used  # noqa: E402

SPACE = """
space:
  model:
    kind: cnn
    weights: runs/pretrained
    transfer: {choice: [features, cutoff, full]}
    cutoff: {int: [1, 4]}
    layer_decay: {float: [0.3, 1.0]}
  optim:
    name: {choice: [adamw, sgd]}
    lr: {float: [1.0e-4, 1.0e-1], log: true}
    momentum: {float: [0.5, 0.99]}
  augment:
    policy: {choice: [none, randaugment, flip_rotate, affine]}
    randaugment_n: {int: [1, 3]}
    randaugment_m: {int: [3, 15]}
    rotate_degrees: {float: [0.0, 45.0]}
    affine_scale: {float: [0.0, 0.4]}
    affine_translate: {float: [0.0, 0.3]}
    mix: {choice: [none, mixup]}
    mix_alpha: {float: [0.2, 2.0]}
  imbalance:
    loss: {choice: [ce, focal]}
    focal_gamma: {float: [0.5, 3.0]}
"""
NOISE = 0.004   # about the spread of a small validation split's AUC between seeds


def bump(value: float, best: float, width: float) -> float:
    """1 at `best`, falling off smoothly: how much a well-set magnitude adds."""
    return math.exp(-((value - best) / width) ** 2)


def true_score(config: dict) -> float:
    """A synthetic validation AUC without noise: each setting counts only where the classify task reads it."""
    model, optim, augment, imbalance = config["model"], config["optim"], config["augment"], config["imbalance"]
    value = {"features": 0.80, "cutoff": 0.84, "full": 0.83}[model["transfer"]]
    if model["transfer"] == "cutoff":
        value += 0.02 * bump(model["cutoff"], 2, 1.0)
    if model["transfer"] == "full":
        value += 0.03 * bump(model["layer_decay"], 0.65, 0.15)
    value += 0.03 * bump(math.log10(optim["lr"]), -2.7 if optim["name"] == "adamw" else -1.7, 0.5)
    if optim["name"] == "sgd":
        value += 0.02 * bump(optim["momentum"], 0.9, 0.05) - 0.01
    if model["transfer"] != "features":
        policy = augment["policy"]
        if policy == "randaugment":
            value += 0.02 * bump(augment["randaugment_m"], 9, 3) * bump(augment["randaugment_n"], 2, 1)
        elif policy == "flip_rotate":
            value += 0.015 * bump(augment["rotate_degrees"], 15, 8)
        elif policy == "affine":
            value += 0.025 * bump(augment["affine_scale"], 0.15, 0.08) * bump(augment["affine_translate"], 0.1, 0.06)
        if augment["mix"] == "mixup":
            value += 0.01 * bump(augment["mix_alpha"], 0.4, 0.3) - 0.004
    if imbalance["loss"] == "focal":
        value += 0.008 * bump(imbalance["focal_gamma"], 2.0, 0.7)
    return value


def effective(config: dict) -> str:
    """The config as the task would run it: settings without effect left out (what two trials share)."""
    used = {}
    def walk(node: dict, path: tuple[str, ...]) -> None:
        for key, value in node.items():
            here = path + (key,)
            lookup = lambda p: _get(config, p)   # noqa: E731
            if not classify_setting_used(here, lookup):
                continue
            if isinstance(value, dict):
                walk(value, here)
            else:
                used[".".join(here)] = round(value, 2) if isinstance(value, float) else value
    walk(config, ())
    return repr(sorted(used.items()))


def _get(config: dict, path: tuple[str, ...]):
    node = config
    for part in path:
        node = node[part]
    return node


def run(space, seed: int, trials: int, rule) -> tuple[list[float], float, int]:
    """Best-so-far true score after each trial, mean parameters asked per trial, repeated effective configs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(direction="maximize", sampler=STRATEGIES.get("tpe")(seed))
    rng = np.random.default_rng(seed)
    best, curve, asked, seen, repeats = -1.0, [], 0, set(), 0
    for _ in range(trials):
        trial = study.ask()
        config = sample_config(trial, space, rule)
        asked += len(trial.params)
        key = effective(_filled(config))
        repeats += key in seen
        seen.add(key)
        value = true_score(_filled(config))
        study.tell(trial, value + rng.normal(0, NOISE))   # the search sees a noisy validation score
        best = max(best, value)                            # and is judged by the true one
        curve.append(best)
    return curve, asked / trials, repeats


def _filled(config: dict) -> dict:
    """Defaults for what define-by-run left out (what the task's schema would fill in)."""
    defaults = {"model": {"cutoff": 1, "layer_decay": 1.0}, "optim": {"momentum": 0.9},
                "augment": {"policy": "none", "randaugment_n": 2, "randaugment_m": 9, "rotate_degrees": 15.0,
                            "affine_scale": 0.15, "affine_translate": 0.1, "mix": "none", "mix_alpha": 0.4},
                "imbalance": {"focal_gamma": 2.0}}
    return {section: {**defaults.get(section, {}), **values} for section, values in config.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--trials", type=int, default=80)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space = compile_space(parse_yaml(SPACE, "bench.yaml"), ("space",))
    results = {}
    for name, rule in (("every parameter", None), ("define-by-run", classify_setting_used)):
        runs = [run(space, seed, args.trials, rule) for seed in range(args.seeds)]
        results[name] = (np.array([r[0] for r in runs]), np.mean([r[1] for r in runs]), np.mean([r[2] for r in runs]))
    checkpoints = [n for n in range(20, args.trials + 1, 20)]
    rows = [[name, f"{asked:.1f}", f"{repeats:.1f}", *(f"{curves[:, n - 1].mean():.4f}" for n in checkpoints)]
            for name, (curves, asked, repeats) in results.items()]
    print_table(["sampling", "params/trial", "repeats", *(f"best@{n}" for n in checkpoints)], rows)
    old_best, new_best = (results[name][0][:, -1] for name in ("every parameter", "define-by-run"))
    old, new = old_best.mean(), new_best.mean()
    difference = new_best - old_best                        # paired: the same seed's noise in both arms
    se = difference.std(ddof=1) / math.sqrt(len(difference))
    fewer = results["define-by-run"][1] < results["every parameter"][1]
    ok = difference.mean() > -2 * se and fewer
    print(f"mean best after {args.trials} trials over {args.seeds} seeds: define-by-run {new:.4f} vs every "
          f"parameter {old:.4f} (ratio {new / old:.4f}); paired difference {difference.mean():+.4f} +- {se:.4f} "
          f"(1 SE); target: above -2 SE, with fewer parameters per trial: {verdict(ok)}")
    print_summary({"bench": "conditional_sampling", "seeds": args.seeds, "trials": args.trials,
                   "best_every_parameter": round(old, 4), "best_define_by_run": round(new, 4),
                   "ratio": round(new / old, 4), "paired_difference": round(float(difference.mean()), 4),
                   "se": round(float(se), 4), "fewer_params": bool(fewer), "pass": bool(ok)})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
