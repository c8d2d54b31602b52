"""The evolution sampler's own time per ask as a study grows: trials read once vs re-read on every ask.

    python bench/evolution_ask_time.py [--trials 6000] [--block 1000]

zen_nas runs its evolution over thousands of in-memory trials (candidates, their twins and the draws over
budget), and `strategy: evolution` over a long study's trials. A trivial objective over four parameters (two
categorical, one int, one float), so what is timed is the sampler: `incremental` is the sampler as shipped
(finished trials read once, samplers/evolution.py _History); `rescan` is the same sampler made to read every
trial again on each ask, as it did before. Both draw the same trials (checked). Printed: seconds per block of
asks. Target: the incremental sampler's last block within 3x its first (the rescan grows with the study).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import print_summary, print_table  # noqa: E402
from searchlab.samplers.evolution import RegularizedEvolutionSampler, _History  # noqa: E402


class RescanningSampler(RegularizedEvolutionSampler):
    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._history = _History()   # forget what was read: every trial is read again
        super().before_trial(study, trial)


def search(sampler: RegularizedEvolutionSampler, trials: int, block: int) -> tuple[list[float], list[dict]]:
    study = optuna.create_study(direction="maximize", sampler=sampler)
    times, params, started = [], [], time.perf_counter()
    for i in range(trials):
        trial = study.ask()
        a, b = trial.suggest_categorical("a", list(range(8))), trial.suggest_categorical("b", list(range(8)))
        value = a + b + trial.suggest_int("c", 1, 64) / 10 + trial.suggest_float("d", 0, 1)
        study.tell(trial, value)
        params.append(trial.params)
        if (i + 1) % block == 0:
            times.append(time.perf_counter() - started)
            started = time.perf_counter()
    return times, params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6000)
    parser.add_argument("--block", type=int, default=1000)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    incremental, drawn = search(RegularizedEvolutionSampler(64, 16, seed=0), args.trials, args.block)
    rescan, drawn_again = search(RescanningSampler(64, 16, seed=0), args.trials, args.block)
    rows = [[f"{(i + 1) * args.block}", f"{a:.2f}", f"{b:.2f}", f"{b / a:.1f}"]
            for i, (a, b) in enumerate(zip(incremental, rescan))]
    print(f"{args.trials} asks, seconds per block of {args.block} (trivial objective: the sampler's own time)")
    print_table(["trials so far", "incremental s", "rescan s", "rescan / incremental"], rows)
    growth = incremental[-1] / incremental[0]
    summary = {"incremental_total_s": round(sum(incremental), 2), "rescan_total_s": round(sum(rescan), 2),
               "speedup": round(sum(rescan) / sum(incremental), 1), "incremental_growth": round(growth, 2),
               "same_trials": drawn == drawn_again}
    summary["verdict"] = "PASS" if growth <= 3 and summary["same_trials"] else "FAIL"
    print_summary(summary)
    sys.exit(0 if summary["verdict"] == "PASS" else 1)


if __name__ == "__main__":
    main()
