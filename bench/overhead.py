"""Engine overhead: a trivial objective through searchlab vs through plain Optuna, same sampler and seed.

    python bench/overhead.py [--trials 300] [--profile]

Each measurement uses a fresh SQLite file. Order: plain, searchlab, plain, searchlab (per sampler); the
faster of each pair is reported. searchlab's time runs from load_study to the end of run_study (what a user
pays); the load_study part is also shown alone. Imports are done once beforehand and are not timed.
Target: searchlab / plain <= 1.2 per trial.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]   # searchlab, and this folder for "overhead:objective"

import optuna  # noqa: E402

from _common import data_root, print_summary, print_table, scratch_dir, verdict, write_study  # noqa: E402

TARGET = 1.2
SEED = 0
SPACE = {"x": {"float": [-10, 10]}, "y": {"int": [0, 10]}, "c": {"choice": ["a", "b", "c"]}}
# The arguments searchlab/strategy.py gives TPE (over Optuna's defaults).
TPE_ARGS = dict(n_startup_trials=10, multivariate=True, group=True, constant_liar=True)


def objective(config: dict, ctx: object) -> dict[str, float]:
    """The trivial task both sides run."""
    return {"loss": (config["x"] - 2) ** 2 + config["y"]}


def plain_objective(trial: optuna.Trial) -> float:
    config = {"x": trial.suggest_float("x", -10, 10), "y": trial.suggest_int("y", 0, 10),
              "c": trial.suggest_categorical("c", ["a", "b", "c"])}
    return objective(config, None)["loss"]


def make_sampler(kind: str) -> optuna.samplers.BaseSampler:
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=SEED, **TPE_ARGS)


def run_plain(kind: str, trials: int, tmp: Path) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    study = optuna.create_study(storage=f"sqlite:///{tmp / 'plain.db'}", sampler=make_sampler(kind))
    study.optimize(plain_objective, n_trials=trials)
    return time.perf_counter() - start, [t.params for t in study.trials]


def searchlab_study_file(kind: str, trials: int, tmp: Path) -> Path:
    return write_study(tmp / "study.yaml", {
        "name": f"overhead-{kind}",
        "data": {"source": "medmnist", "name": "breastmnist", "root": data_root()},   # validated, not read
        "task": {"kind": "callable", "function": "overhead:objective"},
        "space": SPACE,
        "objective": {"metric": "loss", "direction": "minimize"},
        "strategy": kind,
        "pruner": "none",
        "budget": {"n_trials": trials},
        "executor": {"workers": 1},
        "seed": SEED,
        "run_dir": str(tmp / "run"),
    })


def run_searchlab(kind: str, trials: int, tmp: Path) -> tuple[float, float, list[dict]]:
    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study

    path = searchlab_study_file(kind, trials, tmp)
    start = time.perf_counter()
    study = load_study(path)
    loaded = time.perf_counter()
    result = run_study(study, progress=False)
    end = time.perf_counter()
    return end - start, loaded - start, [t.params for t in result.study.trials]


def measure(kind: str, trials: int) -> dict:
    plain, searchlab, load, same = [], [], [], True
    for _ in range(2):   # alternate: plain, searchlab, plain, searchlab
        with scratch_dir() as tmp:
            seconds, plain_params = run_plain(kind, trials, tmp)
            plain.append(seconds)
        with scratch_dir() as tmp:
            seconds, load_seconds, sl_params = run_searchlab(kind, trials, tmp)
            searchlab.append(seconds)
            load.append(load_seconds)
        same = same and plain_params == sl_params
    best = searchlab.index(min(searchlab))
    plain_ms, sl_ms = min(plain) * 1000 / trials, searchlab[best] * 1000 / trials
    return {"plain_ms_per_trial": round(plain_ms, 3), "searchlab_ms_per_trial": round(sl_ms, 3),
            "searchlab_load_ms": round(load[best] * 1000, 1), "ratio": round(sl_ms / plain_ms, 3),
            "same_params": same, "runs_s": {"plain": [round(s, 2) for s in plain],
                                            "searchlab": [round(s, 2) for s in searchlab]}}


def profile(kind: str, trials: int) -> None:
    """cProfile one searchlab run; the top functions by own time and by cumulative time go to stderr."""
    import cProfile
    import pstats

    with scratch_dir() as tmp:
        prof = cProfile.Profile()
        prof.runcall(run_searchlab, kind, trials, tmp)
    for key in ("tottime", "cumulative"):
        print(f"\n--- searchlab {kind}, {trials} trials, top 25 by {key} ---", file=sys.stderr)
        pstats.Stats(prof, stream=sys.stderr).sort_stats(key).print_stats(25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="also cProfile one searchlab run per sampler")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)   # per-trial INFO lines would dominate both sides

    start = time.perf_counter()
    import searchlab.engine.run  # noqa: F401  (torch, pydantic ...: paid once per process, not timed below)
    import_s = time.perf_counter() - start

    results = {kind: measure(kind, args.trials) for kind in ("random", "tpe")}
    if args.profile:
        for kind in results:
            profile(kind, args.trials)

    print(f"\nEngine overhead, {args.trials} trials of a trivial objective, workers 1, pruner none, seed {SEED} "
          f"(faster of 2 alternating runs each; searchlab import {import_s:.1f} s once, not included)")
    print_table(
        ["sampler", "plain ms/trial", "searchlab ms/trial", "searchlab load_study ms", "ratio",
         "same params", f"target <= {TARGET}"],
        [[kind, r["plain_ms_per_trial"], r["searchlab_ms_per_trial"], r["searchlab_load_ms"],
          f"{r['ratio']:.2f}", "yes" if r["same_params"] else "NO", verdict(r["ratio"] <= TARGET)]
         for kind, r in results.items()])
    ok = all(r["ratio"] <= TARGET for r in results.values())
    print_summary({"bench": "overhead", "trials": args.trials, "target_ratio": TARGET, "pass": ok,
                   "searchlab_import_s": round(import_s, 2), **results})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
