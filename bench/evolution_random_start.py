"""Evolution's random start under an architecture budget: trials drawn over it, before vs now, side by side.

    python bench/evolution_random_start.py [--asks 12] [--seed 0]

For the shipped Zen-NAS and cells spaces at a tight FLOPs budget, the first `--asks` trials of an evolution
study (all in its random start: the population is larger) are asked of the sampler two ways in this run:
- `before`: the random start as it was, plain random draws (mutations were already kept within the budgets);
- `now`: the random start takes a config the budget check drew within the budgets (samplers/budget.py
  random_fitting: the first of up to 20 draws that fits, looked for during about 5 s; after two searches that
  found none it stops looking, as fewer than 1 in 20 draws fits).
Each asked config is costed as its trial would be, and told PRUNED when over the budget (as the task prunes it,
untrained, counting in budget.n_trials) or COMPLETE with a placeholder value; nothing trains. Prints, per space
and way, the trials over the budget and the sampler's seconds per ask.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import data_root, print_summary, print_table  # noqa: E402

# budgets where some random draws fit and most do not (the shipped cells study's 30 MFLOPs; Zen at 15)
SPACES = {"zen": ("breastmnist_zen_nas.yaml", 1.5e7), "cells": ("breastmnist_cells.yaml", 3.0e7)}


def ask_random_start(study, asks: int, seed: int, checked: bool) -> dict[str, float]:
    """Ask `asks` trials of an evolution sampler still in its random start; how many were over the budget."""
    import optuna

    from searchlab.samplers.budget import budget_check
    from searchlab.samplers.evolution import RegularizedEvolutionSampler
    from searchlab.tasks import get_task, sample_trial_config
    from searchlab.tasks.costs import over_budget

    task = get_task(study.config.task)
    sampler = RegularizedEvolutionSampler(population_size=asks + 1, sample_size=2, seed=seed,
                                          feasible=budget_check(study) if checked else None)
    trials = optuna.create_study(direction="maximize", sampler=sampler)
    over, asking = 0, 0.0
    for _ in range(asks):
        start = time.perf_counter()
        trial = trials.ask()
        config = sample_trial_config(trial, study)
        asking += time.perf_counter() - start
        broken = over_budget(task.candidate(study, config).costs, study.config.budget)
        over += broken is not None
        if broken:
            trials.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            trials.tell(trial, 0.5)
    return {"over_budget": over, "asks": asks, "seconds_per_ask": asking / asks}


def main() -> None:
    import os

    import optuna

    from searchlab.config.load import load_study

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asks", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.environ.setdefault("SEARCHLAB_DATA", data_root())
    rows, results = [], []
    for name, (study_file, limit) in SPACES.items():
        study = load_study(ROOT / "studies" / study_file, {"budget.max_flops": limit, "budget.max_params": None})
        before = ask_random_start(study, args.asks, args.seed, checked=False)
        now = ask_random_start(study, args.asks, args.seed, checked=True)
        results.append({"space": name, "max_mflops": limit / 1e6, "before": before, "now": now})
        for way, r in (("before", before), ("now", now)):
            rows.append([name, limit / 1e6, way, f"{r['over_budget']} of {r['asks']}", f"{r['seconds_per_ask']:.2f}"])
    print_table(["space", "max MFLOPs", "random start", "trials over the budget", "sampler s per ask"], rows)
    print_summary({"bench": "evolution_random_start", "results": results})


if __name__ == "__main__":
    main()
