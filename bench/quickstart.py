"""The quickstart as a user runs it: wall time and results beside the published and plain-Optuna yardsticks.

    python bench/quickstart.py [--keep]

Runs `searchlab run studies/quickstart.yaml` in a subprocess (into a scratch run directory), then reads the
study (best validation AUC, trials by state) and the exported best/config.json (test AUC/ACC with 95% CIs).
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

from _common import DEFAULT_DATA, print_summary, print_table, scratch_dir, verdict  # noqa: E402

TARGET_S = 300
YARDSTICK = ROOT.parent / "shared" / "baselines" / "optuna_breast.result-2026-11-22.json"
YARDSTICK_BUDGET_S = 1800   # its README: "One run of 1,800 s on this 2-core machine"
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


def with_ci(value: float | None, ci: list[float] | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


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
    yard = json.loads(YARDSTICK.read_text())

    states = ", ".join(f"{n} {s.lower()}" for s, n in sorted(ours["states"].items()))
    print("\nQuickstart (studies/quickstart.yaml) vs yardsticks on BreastMNIST test (156 images)")
    print_table(
        ["method", "budget", "trials", "best val AUC", "test AUC [95% CI]", "test ACC [95% CI]"],
        [["searchlab quickstart (this run)", f"{wall:.0f} s wall", f"{ours['trials']} ({states})",
          f"{ours['best_val_auc']:.3f}", with_ci(ours["test_auc"], ours["test_auc_ci"]),
          with_ci(ours["test_acc"], ours["test_acc_ci"])],
         [f"plain Optuna TPE ({YARDSTICK.name})", f"{YARDSTICK_BUDGET_S} s (ran {yard['seconds']} s)",
          f"{yard['trials']} ({yard['complete']} complete)", f"{yard['best_val_auc']:.3f}",
          with_ci(yard["test_auc"], yard["test_auc_ci"]), with_ci(yard["test_acc"], yard["test_acc_ci"])],
         [f"{PUBLISHED['name']} (published)", "-", "-", "-", with_ci(PUBLISHED["test_auc"]),
          with_ci(PUBLISHED["test_acc"])]])
    ok = wall <= TARGET_S
    print(f"wall time {wall:.0f} s; target <= {TARGET_S} s: {verdict(ok)}")
    print_summary({"bench": "quickstart", "wall_s": round(wall, 1), "target_s": TARGET_S, "pass": ok, **ours,
                   "yardstick": {k: yard[k] for k in ("seconds", "trials", "test_auc", "test_acc")},
                   "yardstick_budget_s": YARDSTICK_BUDGET_S, "published": PUBLISHED})
    return 0


if __name__ == "__main__":
    sys.exit(main())
