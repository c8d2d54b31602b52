"""Recording thousands of proxy-scored trials: one batch vs Optuna's add_trials, per storage, side by side.

    python bench/proxy_recording.py [--trials 2000]

The zen_nas strategy writes every candidate it scored into `<study>.zen_proxy` (searchlab/engine/bulk.py).
Prints ms per trial for SQLite (batch vs one by one), the journal file (one by one) and in-memory, and the
SQLite speed-up. Target: the batch makes SQLite at least 5x cheaper per trial than add_trials.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import optuna  # noqa: E402
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution  # noqa: E402

from _common import print_summary, print_table, scratch_dir, verdict  # noqa: E402
from searchlab.engine.bulk import bulk_add_trials  # noqa: E402
from searchlab.engine.storage import open_storage  # noqa: E402

TARGET = 5.0
DISTS = {f"model.blocks.b{i}.{k}": d for i in range(1, 6) for k, d in (
    ("type", CategoricalDistribution(["conv", "basic", "bottleneck", "inverted", "none"])),
    ("width", CategoricalDistribution([16, 32, 48, 64])), ("depth", IntDistribution(1, 3)),
    ("ratio", FloatDistribution(0.25, 4.0)))}


def proxy_trials(n: int) -> list[optuna.trial.FrozenTrial]:
    """Trials shaped like zen_nas candidates: 20 params, a score, costs and the architecture as user attrs."""
    out = []
    for i in range(n):
        params = {name: (d.choices[i % len(d.choices)] if isinstance(d, CategoricalDistribution)
                         else d.low + (i % 3) * (d.high - d.low) / 2) for name, d in DISTS.items()}
        out.append(optuna.trial.create_trial(params=params, distributions=DISTS, value=float(i % 97),
                                             user_attrs={"params": 1e5 + i, "flops": 2e7 + i, "depth": 20.0,
                                                         "architecture": f"ZenNet(stem 16 | candidate {i})"}))
    return out


def per_trial_ms(url: str | None, trials: list, bulk: bool) -> tuple[float, str]:
    storage = open_storage(url) if url else None
    study = optuna.create_study(storage=storage, direction="maximize", study_name=f"p{int(bulk)}")
    start = time.perf_counter()
    path = bulk_add_trials(study, trials) if bulk else (study.add_trials(trials) or "add_trials")
    seconds = time.perf_counter() - start
    assert len(study.trials) == len(trials)
    return 1000 * seconds / len(trials), path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    trials = proxy_trials(args.trials)
    slow_n = args.trials   # like for like: both paths record the same trials (one by one takes ~40 s at 2000)
    with scratch_dir() as tmp:
        rows = []
        sqlite_bulk, path = per_trial_ms(f"sqlite:///{tmp / 'bulk.db'}", trials, bulk=True)
        rows.append(["SQLite, batch (zen_nas)", args.trials, path, sqlite_bulk])
        sqlite_slow, _ = per_trial_ms(f"sqlite:///{tmp / 'slow.db'}", trials[:slow_n], bulk=False)
        rows.append(["SQLite, add_trials", slow_n, "one by one", sqlite_slow])
        journal, path = per_trial_ms(f"journal://{tmp / 'journal.log'}", trials, bulk=True)
        rows.append(["journal file (zen_nas)", args.trials, path, journal])
        memory, path = per_trial_ms(None, trials, bulk=True)
        rows.append(["in memory", args.trials, path, memory])
    print("\nRecording proxy trials (20 params + 4 user attrs each)")
    print_table(["storage", "trials", "path", "ms per trial"], rows)
    ratio = sqlite_slow / sqlite_bulk
    ok = ratio >= TARGET
    print(f"SQLite batch vs add_trials: {ratio:.1f}x cheaper per trial; target >= {TARGET}x: {verdict(ok)}")
    print(f"{args.trials} candidates recorded in {sqlite_bulk * args.trials / 1000:.1f} s (SQLite batch) vs "
          f"{sqlite_slow * args.trials / 1000:.1f} s one by one")
    print_summary({"bench": "proxy_recording", "trials": args.trials, "sqlite_batch_ms": round(sqlite_bulk, 3),
                   "sqlite_add_trials_ms": round(sqlite_slow, 3), "journal_ms": round(journal, 3),
                   "memory_ms": round(memory, 3), "ratio": round(ratio, 1), "target": TARGET, "pass": ok})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
