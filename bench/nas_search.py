"""NAS strategies on BreastMNIST with the same budget: zen_nas, deepmad and evolution beside random search.

    python bench/nas_search.py [--minutes 10] [--epochs 10] [--seed 0] [--out DIR]

Each strategy searches spaces/zen.yaml (with optim.yaml) under the NAS studies' architecture budget (40 MFLOPs,
300k params) for the same wall-clock budget (budget.timeout, its training-free stage included), training each
trial for `--epochs` epochs and selecting on validation AUC; the best trial is exported and scored once on the
test split (95% bootstrap CIs). Two strategies run at a time, each pinned to its own core with one worker and
one torch thread: zen_nas beside random, then deepmad beside evolution (~2 x the budget, plus exports).
Reported per strategy: trials (completed), best validation AUC, the winner's FLOPs and params, test AUC and
ACC with CIs, wall time (search, then the export's test scoring). Nothing selects on the test split.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from _common import data_root, print_summary, print_table, start, with_ci, write_study  # noqa: E402

BUDGET = {"max_flops": 4.0e7, "max_params": 3.0e5}
STRATEGIES = {"zen_nas": {"candidates": 500, "top_k": 5}, "random": {}, "deepmad": {"top_k": 3},
              "evolution": {"population_size": 8, "sample_size": 3}}
PAIRS = (("zen_nas", "random"), ("deepmad", "evolution"))


def study_path(out: Path, name: str, seconds: int, epochs: int, seed: int) -> Path:
    return write_study(out / f"{name}.yaml", {
        "name": f"nas_{name}", "task": "classify", "objective": "auc", "pruner": "median", "seed": seed,
        "strategy": {"name": name, "args": STRATEGIES[name]},
        "data": {"source": "medmnist", "name": "breastmnist", "root": data_root(), "download": False},
        "space": {"include": "optim.yaml", "model": {"include": "zen.yaml"}, "train": {"batch_size": 64}},
        "budget": {"n_trials": 1000, "epochs": epochs, "timeout": seconds, **BUDGET},
        "executor": {"kind": "local", "workers": 1, "threads_per_worker": 1},
        "export": {"after_run": True}, "run_dir": str(out / name)})


def read_result(out: Path, name: str, wall: float, code: int) -> dict:
    import optuna

    exported = out / name / "best" / "config.json"
    if code != 0 or not exported.is_file():
        return {"strategy": name, "error": f"exit {code}, no export; see {out / name}.log"}
    study = optuna.load_study(study_name=f"nas_{name}", storage=f"sqlite:///{out / name / 'study.db'}")
    best = study.best_trial
    config = json.loads(exported.read_text())
    test, ci = config["test_metrics"], config["test_metrics_ci95"]
    states = Counter(t.state.name.lower() for t in study.trials)
    return {"strategy": name, "seconds": round(wall), "trials": len(study.trials),
            "complete": states.get("complete", 0), "pruned": states.get("pruned", 0),
            "best_val_auc": round(best.value, 4), "flops": best.user_attrs["flops"],
            "params": best.user_attrs["params"], "architecture": best.user_attrs.get("architecture", ""),
            "test_auc": test["auc"], "test_auc_ci": ci["auc"], "test_acc": test["accuracy"],
            "test_acc_ci": ci["accuracy"]}


def run_pair(out: Path, pair: tuple[str, str], seconds: int, epochs: int, seed: int) -> list[dict]:
    jobs = []
    for core, name in enumerate(pair):
        cmd = [sys.executable, "-m", "searchlab.cli", "run", str(study_path(out, name, seconds, epochs, seed)),
               "--no-progress"]
        jobs.append((name, start(cmd, core, out / f"{name}.log")))
    ended: dict[str, float] = {}
    while len(ended) < len(jobs):     # each strategy's own wall time, not the slower one's
        for name, (proc, _) in jobs:
            if name not in ended and proc.poll() is not None:
                ended[name] = time.time()
        time.sleep(1)
    results = []
    for name, (proc, started) in jobs:
        results.append(read_result(out, name, ended[name] - started, proc.returncode))
        print(f"  {json.dumps(results[-1])}", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="search budget per strategy")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = (args.out or Path(f"/tmp/searchlab-bench-nas-search-{time.strftime('%Y%m%d-%H%M%S')}")).resolve()
    out.mkdir(parents=True, exist_ok=True)
    seconds = round(args.minutes * 60)
    results = [r for pair in PAIRS for r in run_pair(out, pair, seconds, args.epochs, args.seed)]
    rows = [[r["strategy"], f"{r['seconds']} s", f"{r['trials']} ({r['complete']} complete, {r['pruned']} pruned)",
             f"{r['best_val_auc']:.3f}", f"{r['flops'] / 1e6:.1f} M", f"{r['params'] / 1e3:.0f} k",
             with_ci(r["test_auc"], r["test_auc_ci"]), with_ci(r["test_acc"], r["test_acc_ci"])]
            for r in results if "error" not in r]
    print(f"\nNAS strategies on BreastMNIST, {seconds} s search each (stage included), {args.epochs} epochs per "
          f"trial, budget 40 MFLOPs / 300k params, one core each, seed {args.seed}")
    print_table(["strategy", "wall", "trials", "best val AUC", "FLOPs", "params", "test AUC [95% CI]",
                 "test ACC [95% CI]"], rows)
    for r in results:
        print(f"{r['strategy']}: {r.get('architecture') or r.get('error')}")
    print_summary({"bench": "nas_search", "budget_s": seconds, "epochs": args.epochs, "seed": args.seed,
                   "results": results})
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
