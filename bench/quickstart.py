"""The quickstart as a user runs it: wall time and test metrics, beside the published MedMNIST v2 result.

    python bench/quickstart.py [--keep]

Runs `searchlab run studies/quickstart.yaml` in a subprocess (into a scratch run directory), then reads the
study (best validation AUC, trials by state) and the exported best/config.json (test AUC/ACC with 95% CIs).
The published ResNet-18 row is quoted from the MedMNIST v2 paper, not run here. No plain-Optuna row: the
stored yardstick result (../shared/baselines) ran on another day with a 1,800 s budget, six times the
quickstart's, so no row or ratio beside this run would be a fair comparison; bench/breastmnist_30min.py runs
searchlab and the yardstick side by side with the same budget and cores.
Target: wall time <= 300 s.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import optuna  # noqa: E402

from _common import DEFAULT_DATA, print_summary, print_table, scratch_dir, verdict, with_ci  # noqa: E402

TARGET_S = 300
PUBLISHED = {"name": "ResNet-18 (28), MedMNIST v2", "test_auc": 0.901, "test_acc": 0.863}


def run_quickstart(run_dir: Path) -> tuple[float, subprocess.CompletedProcess]:
    env = dict(os.environ)
    env.setdefault("SEARCHLAB_DATA", DEFAULT_DATA)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "searchlab.cli", "run", "studies/quickstart.yaml", "--no-progress",
           "--set", f"run_dir={run_dir}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, proc


def read_run(run_dir: Path) -> dict:
    study = optuna.load_study(study_name="quickstart", storage=f"sqlite:///{run_dir / 'study.db'}")
    states = Counter(t.state.name for t in study.trials)
    config = json.loads((run_dir / "best" / "config.json").read_text())
    test, ci = config["test_metrics"], config["test_metrics_ci95"]
    return {"trials": len(study.trials), "states": dict(states), "best_trial": study.best_trial.number,
            "best_val_auc": study.best_value, "test_auc": test["auc"], "test_auc_ci": ci["auc"],
            "test_acc": test["accuracy"], "test_acc_ci": ci["accuracy"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the scratch run directory")
    args = parser.parse_args()

    with scratch_dir(keep=args.keep) as run_dir:
        wall, proc = run_quickstart(run_dir)
        sys.stderr.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            print(f"searchlab run exited {proc.returncode} after {wall:.0f} s")
            print_summary({"bench": "quickstart", "wall_s": round(wall, 1), "exit_code": proc.returncode,
                           "pass": False})
            return 1
        ours = read_run(run_dir)

    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(ours["states"].items()))
    print("\nQuickstart (studies/quickstart.yaml) on BreastMNIST test (156 images), beside the published result")
    print_table(
        ["method", "budget", "trials", "best val AUC", "test AUC [95% CI]", "test ACC [95% CI]"],
        [["searchlab quickstart (this run)", f"{wall:.0f} s wall", f"{ours['trials']} ({states})",
          f"{ours['best_val_auc']:.3f}", with_ci(ours["test_auc"], ours["test_auc_ci"]),
          with_ci(ours["test_acc"], ours["test_acc_ci"])],
         [f"{PUBLISHED['name']} (published, not run here)", "-", "-", "-", with_ci(PUBLISHED["test_auc"]),
          with_ci(PUBLISHED["test_acc"])]])
    ok = wall <= TARGET_S
    print(f"wall time {wall:.0f} s; target <= {TARGET_S} s: {verdict(ok)}")
    print_summary({"bench": "quickstart", "wall_s": round(wall, 1), "target_s": TARGET_S, "pass": ok, **ours,
                   "published": PUBLISHED})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
