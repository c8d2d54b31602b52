"""How many of a search's trials repeat a config it already ran, per strategy, on a small discrete space.

    python bench/repeated_configs.py [--trials 40] [--seeds 10]

A space of four 3-way choices (81 configs) and a smooth score (their sum), the shape of a small architecture
space where one config costs minutes: each strategy (Optuna's random and TPE samplers and searchlab's
evolution, population 10, tournament 3) runs `--trials` trials for each seed. Printed per strategy: distinct
configs among the trials (mean, min, max over the seeds), their share, and the best score found. Random search
repeats by chance; evolution draws a mutation again while it repeats a config the study has (NNI's dedup).
Seconds, no training.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import print_summary, print_table  # noqa: E402

from searchlab.samplers.evolution import RegularizedEvolutionSampler  # noqa: E402

CHOICES, DIALS = (0, 1, 2), 4


def dials(trial: optuna.Trial) -> float:
    return float(sum(trial.suggest_categorical(f"d{i}", CHOICES) for i in range(DIALS)))


SAMPLERS = {
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=10, multivariate=True),
    "evolution": lambda seed: RegularizedEvolutionSampler(population_size=10, sample_size=3, seed=seed),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(f"{len(CHOICES) ** DIALS} configs, {args.trials} trials, seeds 0-{args.seeds - 1}")
    rows, summary = [], {}
    for name, make in SAMPLERS.items():
        distinct, best = [], []
        for seed in range(args.seeds):
            study = optuna.create_study(direction="maximize", sampler=make(seed))
            study.optimize(dials, n_trials=args.trials)
            distinct.append(len({tuple(sorted(t.params.items())) for t in study.trials}))
            best.append(study.best_value)
        mean = sum(distinct) / len(distinct)
        rows.append([name, mean, f"{min(distinct)}-{max(distinct)}", mean / args.trials, sum(best) / len(best)])
        summary[name] = {"distinct_mean": mean, "distinct_share": mean / args.trials}
    print_table(["strategy", "distinct configs", "min-max", "share", "best found (mean)"], rows)
    print_summary({"bench": "repeated_configs", "trials": args.trials, "seeds": args.seeds, **summary})

if __name__ == "__main__":
    main()
