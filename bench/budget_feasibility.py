"""Can a space meet an architecture budget? The pre-run check on the shipped NAS spaces, side by side.

    python bench/budget_feasibility.py [--random 400]

For the Zen-NAS and cells spaces at several FLOPs budgets, measured in this run:
- `probes`: the old check (the probe configs: every choice and both ends of every range, one at a time around
  random draws): the cheapest probed network's MFLOPs, and whether any fits;
- `descent`: searchlab's check now (space/sample.py cheapest_config: the probes, then a descent from the
  cheapest of them over each parameter's extremes): the MFLOPs of the network it stopped at, networks costed,
  seconds. The check stops at the first network within the budget, so when it fits this is that first fit,
  not the cheapest network the space holds; only when nothing fits is it the cheapest the descent reached;
- `random`: the cheapest of `--random` uniform random draws, as an independent estimate of what the space holds.
A budget that `probes` refuses while `random` or `descent` finds a network under it was refused wrongly before.
Reads only the data's shape (BreastMNIST 28x28); trains nothing.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import data_root, print_summary, print_table  # noqa: E402

SPACES = {"zen": ("breastmnist_zen_nas.yaml", (4.0e7, 1.5e7, 5.0e6, 2.0e6)),
          "cells": ("breastmnist_cells.yaml", (3.0e7, 4.0e6, 3.0e6))}


def cheapest_seen(study, random_draws: int) -> tuple[float, float]:
    """MFLOPs of the cheapest probe config and of the cheapest of `random_draws` uniform draws."""
    import optuna

    from searchlab.space import probe_configs, sample_config

    probed = min(mflops(study, c) for c in probe_configs(study.space, seed=0, limit=100))
    draws = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    return probed, min(mflops(study, sample_config(draws.ask(), study.space)) for _ in range(random_draws))


def mflops(study, config) -> float:
    from searchlab.tasks import get_task

    return get_task(study.config.task).candidate(study, config).costs["flops"] / 1e6


def descent(study, flops_limit: float) -> dict[str, float]:
    from searchlab.space import cheapest_config

    start = time.perf_counter()
    config, excess, costed = cheapest_config(study.space, lambda c: max(0.0, mflops(study, c) - flops_limit / 1e6),
                                             seed=0)
    return {"descent_stopped_at": mflops(study, config), "descent_fit": excess <= 0, "descent_costed": costed,
            "descent_seconds": time.perf_counter() - start}


def main() -> None:
    import os

    import optuna

    from searchlab.config.load import load_study

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=400)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.environ.setdefault("SEARCHLAB_DATA", data_root())
    rows, results = [], []
    for name, (study_file, budgets) in SPACES.items():
        study = load_study(ROOT / "studies" / study_file, {"budget.max_flops": None, "budget.max_params": None})
        probed, drawn = cheapest_seen(study, args.random)
        for limit in budgets:
            r = {"budget_mflops": limit / 1e6, "probes_cheapest": probed, "probes_fit": probed <= limit / 1e6,
                 **descent(study, limit), "random_cheapest": drawn}
            results.append({"space": name, **r})
            rows.append([name, r["budget_mflops"], f"{r['probes_cheapest']:.2f}", "yes" if r["probes_fit"] else "NO",
                         f"{r['descent_stopped_at']:.2f}", "yes" if r["descent_fit"] else "NO", r["descent_costed"],
                         f"{r['descent_seconds']:.1f}", f"{r['random_cheapest']:.2f}"])
    print_table(["space", "budget MFLOPs", "probes: cheapest", "fits", "descent: first fit (else least)", "fits",
                 "costed", "seconds", f"cheapest of {args.random} random"], rows)
    wrong = [r for r in results if not r["probes_fit"] and min(r["descent_stopped_at"], r["random_cheapest"])
             <= r["budget_mflops"]]
    still = [r for r in results if not r["descent_fit"] and r["random_cheapest"] <= r["budget_mflops"]]
    print(f"budgets the probes alone refused though the space meets them: {len(wrong)}; the descent: {len(still)}")
    print_summary({"bench": "budget_feasibility", "results": results, "wrongly_refused_by_probes": len(wrong),
                   "wrongly_refused_now": len(still)})


if __name__ == "__main__":
    main()
