"""The Ray executor's costs beside the local executor's, measured side by side in one run.

    python bench/ray_overhead.py [--trivial 40] [--breast 8] [--throughput 16]

1. Ray start-up: the first `executor: {kind: ray}` start of a Ray on this machine (ray.init, 127.0.0.1), with
   the imports of ray and ray.tune timed apart.
2. Per-trial overhead once Ray is up, on a trivial objective: each executor runs 1 trial and N trials (fresh
   study each); the fixed cost of a run is the 1-trial time, the per-trial cost the slope (T_N - T_1)/(N - 1).
   Ray minus local per trial is the overhead (target <= 0.5 s).
3. The same on 1-epoch BreastMNIST trials (a small CNN; one thread per trial on both sides, same sampler
   and seed, so both executors train the same configs).
4. Throughput scaling: trials/hour of whole runs of BreastMNIST trials (fixed costs included; wider CNNs and 3
   epochs, so training dominates) with 1 and 2 concurrent Ray trials (resources_per_trial cpu 1, one thread
   each) on this 2-core machine.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]   # searchlab, and this folder for "ray_overhead:trivial"

from _common import data_root, print_summary, print_table, scratch_dir, verdict, write_study  # noqa: E402

TARGET = 0.5   # seconds per trial over the local executor
WIDER = (3, (32, 48))   # epochs, CNN widths of the throughput trials: long enough that training dominates


def trivial(config: dict, ctx: object) -> dict[str, float]:
    return {"loss": (config["x"] - 2) ** 2}


def trivial_study(tmp: Path, name: str, executor: dict, n: int) -> Path:
    return write_study(tmp / f"{name}.yaml", {
        "name": name, "data": {"source": "medmnist", "name": "breastmnist", "root": data_root()},
        "task": {"kind": "callable", "function": "ray_overhead:trivial"}, "space": {"x": {"float": [-10, 10]}},
        "objective": {"metric": "loss", "direction": "minimize"}, "strategy": "random", "pruner": "none",
        "budget": {"n_trials": n}, "executor": executor, "run_dir": str(tmp / name)})


def breast_study(tmp: Path, name: str, executor: dict, n: int, epochs: int = 1, widths: tuple = (8, 16)) -> Path:
    return write_study(tmp / f"{name}.yaml", {
        "name": name, "data": {"source": "medmnist", "name": "breastmnist", "root": data_root(), "download": False},
        "task": "classify",
        "space": {"model": {"kind": "cnn", "depth": 2, "width": {"choice": list(widths)}, "convs_per_stage": 1},
                  "optim": {"lr": {"float": [1.0e-3, 1.0e-2], "log": True}}, "train": {"batch_size": 64}},
        "strategy": "random", "pruner": "none", "budget": {"n_trials": n, "epochs": epochs},
        "executor": {**executor, "threads_per_worker": 1}, "seed": 0, "run_dir": str(tmp / name)})


def timed_run(path: Path) -> float:
    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study

    start = time.perf_counter()
    result = run_study(load_study(path), progress=False)
    seconds = time.perf_counter() - start
    states = {t.state.name for t in result.study.get_trials(deepcopy=False)}
    assert states == {"COMPLETE"}, f"{path.name}: trial states {states}"
    return seconds


def measure_startup() -> dict[str, float]:
    start = time.perf_counter()
    import ray  # noqa: F401
    from ray import tune  # noqa: F401
    imported = time.perf_counter()
    from searchlab.engine.ray_cluster import start_ray

    start_ray(None)
    return {"import_ray_s": imported - start, "ray_start_s": time.perf_counter() - imported}


def per_trial(tmp: Path, make: Callable[..., Path], tag: str, n: int) -> dict[str, float]:
    """Fixed cost of a run (its 1-trial time) and cost per extra trial (slope to n trials), both executors."""
    ray_ex, local_ex = {"kind": "ray", "max_concurrent": 1}, {"kind": "local"}
    timed_run(make(tmp, f"{tag}_warmup", ray_ex, 2))   # Ray's first Tune run in this process, not counted
    t = {f"{kind}_{k}": timed_run(make(tmp, f"{tag}_{kind}{k}", ex, k))
         for kind, ex in (("local", local_ex), ("ray", ray_ex)) for k in (1, n)}
    slope = {kind: (t[f"{kind}_{n}"] - t[f"{kind}_1"]) / (n - 1) for kind in ("local", "ray")}
    return {"local_run_1_s": t["local_1"], "ray_run_1_s": t["ray_1"], "local_per_trial_s": slope["local"],
            "ray_per_trial_s": slope["ray"], "overhead_per_trial_s": slope["ray"] - slope["local"]}


def throughput(tmp: Path, n: int) -> dict[str, float]:
    """Whole runs of n trials, as a user sees them (fixed costs included), at 1 and 2 concurrent trials."""
    seconds = {c: timed_run(breast_study(tmp, f"breast_c{c}", {"kind": "ray", "max_concurrent": c}, n, *WIDER))
               for c in (1, 2)}
    return {f"trials_per_hour_{c}": n / s * 3600 for c, s in seconds.items()} | {f"run_{c}_s": s for c, s in seconds.items()}


def overhead_rows(name: str, m: dict[str, float], n: int) -> list[list[object]]:
    return [[f"{name}: one-trial run, s (fixed cost per run)", m["local_run_1_s"], m["ray_run_1_s"],
             m["ray_run_1_s"] - m["local_run_1_s"]],
            [f"{name}: per extra trial, s (slope to {n})", m["local_per_trial_s"], m["ray_per_trial_s"],
             m["overhead_per_trial_s"]]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trivial", type=int, default=40, help="trials of the trivial objective per run")
    parser.add_argument("--breast", type=int, default=8, help="1-epoch BreastMNIST trials for the overhead")
    parser.add_argument("--throughput", type=int, default=16, help="BreastMNIST trials per throughput run")
    args = parser.parse_args()
    os.environ.setdefault("SEARCHLAB_DATA", data_root())
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    startup = measure_startup()
    with scratch_dir() as tmp:
        triv = per_trial(tmp, trivial_study, "trivial", args.trivial)
        breast = per_trial(tmp, breast_study, "breast", args.breast)
        scaling = throughput(tmp, args.throughput)
    print(f"Ray start-up on this machine: {startup['ray_start_s']:.2f} s (importing ray + ray.tune before it: "
          f"{startup['import_ray_s']:.2f} s)\n")
    print_table(["seconds", "local", "ray", "ray - local"],
                overhead_rows("trivial objective", triv, args.trivial)
                + overhead_rows("BreastMNIST 1 epoch", breast, args.breast))
    print()
    print_table([f"{args.throughput} BreastMNIST trials ({WIDER[0]} epochs, widths {WIDER[1]}), 1 thread each",
                 "run s", "trials/hour"], [
        ["ray, 1 concurrent", scaling["run_1_s"], scaling["trials_per_hour_1"]],
        ["ray, 2 concurrent", scaling["run_2_s"], scaling["trials_per_hour_2"]]])
    ratio = scaling["trials_per_hour_2"] / scaling["trials_per_hour_1"]
    print(f"\n2 vs 1 concurrent trials: {ratio:.2f}x trials/hour")
    ok = max(triv["overhead_per_trial_s"], breast["overhead_per_trial_s"]) <= TARGET
    print(f"per-trial overhead <= {TARGET} s over local once Ray is up: {verdict(ok)}")
    print_summary({"bench": "ray_overhead", "startup": startup, "trivial": triv, "breastmnist_1_epoch": breast,
                   "throughput": scaling, "scaling_2_vs_1": ratio, "target_s": TARGET, "pass": ok})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
