"""Memory over a long run: resident memory after 10 vs after 100 small classify trials in one process.

    python bench/memory.py [--trials 100]

A tiny plain-CNN classify study on BreastMNIST (1 epoch, random, no pruning) runs through searchlab's own
worker loop; an on_trial callback reads RSS (psutil) and peak RSS (ru_maxrss) after every trial.
Target: no growth beyond noise, i.e. RSS growth from trial 10 to the last <= 30 MiB or <= 5 %.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from _common import (data_root, maxrss_mib, print_summary, print_table, rss_mib, scratch_dir,  # noqa: E402
                     verdict, write_study)

TARGET_MIB, TARGET_PCT = 30.0, 5.0


def study_file(trials: int, tmp: Path) -> Path:
    return write_study(tmp / "study.yaml", {
        "name": "memory",
        "data": {"source": "medmnist", "name": "breastmnist", "root": data_root()},
        "task": "classify",
        "space": {"model": {"kind": "cnn", "depth": {"int": [1, 2]}, "width": {"choice": [8, 16]}},
                  "train": {"batch_size": 128}},
        "objective": "auc",
        "strategy": "random",
        "pruner": "none",
        "budget": {"n_trials": trials, "epochs": 1},
        "seed": 0,
        "run_dir": str(tmp / "run"),
    })


def run(trials: int) -> tuple[float, list[dict]]:
    """RSS before the first trial, and one sample per finished trial."""
    from searchlab.config.load import load_study
    from searchlab.engine.run import create_or_load
    from searchlab.engine.worker import run_worker

    samples: list[dict] = []

    def on_trial(_study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        samples.append({"trial": len(samples) + 1, "state": trial.state.name, "rss": rss_mib(),
                        "maxrss": maxrss_mib(), "t": time.perf_counter()})

    with scratch_dir() as tmp:
        study = load_study(study_file(trials, tmp))
        create_or_load(study)
        before = rss_mib()
        samples.append({"trial": 0, "state": "-", "rss": before, "maxrss": maxrss_mib(), "t": time.perf_counter()})
        run_worker(study, 0, None, on_trial=on_trial)
    return before, samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import searchlab.engine.worker  # noqa: F401  (torch etc. loaded before the first reading)

    _, samples = run(args.trials)
    last = len(samples) - 1
    first = min(10, last)
    marks = sorted({0, first, last // 2, last})
    failed = sum(s["state"] == TrialState.FAIL.name for s in samples)
    growth = samples[last]["rss"] - samples[first]["rss"]
    pct = 100 * growth / samples[first]["rss"]
    ok = failed == 0 and (growth <= TARGET_MIB or pct <= TARGET_PCT)
    seconds = (samples[last]["t"] - samples[0]["t"]) / max(last, 1)

    print(f"\nResident memory over {last} classify trials (tiny CNN, BreastMNIST, 1 epoch; {failed} failed; "
          f"{seconds:.2f} s/trial)")
    rows = [[("before trial 1" if m == 0 else f"after trial {m}"), f"{samples[m]['rss']:.1f}",
             f"{samples[m]['maxrss']:.1f}"] for m in marks]
    peak_growth = samples[last]["maxrss"] - samples[first]["maxrss"]
    rows.append([f"growth {first} -> {last}", f"{growth:+.1f} ({pct:+.1f}%)", f"{peak_growth:+.1f}"])
    print_table(["point", "RSS MiB (psutil)", "peak RSS MiB (ru_maxrss)"], rows)
    print(f"target: growth <= {TARGET_MIB:.0f} MiB or <= {TARGET_PCT:.0f}%: {verdict(ok)}")
    print_summary({"bench": "memory", "trials": last, "failed": failed, "pass": ok,
                   "rss_mib": {str(m): round(samples[m]["rss"], 1) for m in marks},
                   "maxrss_mib": {str(m): round(samples[m]["maxrss"], 1) for m in marks},
                   "growth_mib": round(growth, 1), "growth_pct": round(pct, 2),
                   "seconds_per_trial": round(seconds, 2)})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
