"""Disk kept by a timm study with and without `export.keep_checkpoints`, and what deleting costs per trial.

    python bench/checkpoint_retention.py [--trials 10] [--keep 3] [--ranked 1000]

Part 1 runs the same study twice side by side (ResNet-18 from timm, 1 epoch per trial on BreastMNIST, random
search, seed 0): every checkpoint kept vs the best `--keep`. It prints the artifact folder's size, wall
seconds per trial, and checks that the best trial's export still works with retention on.
Part 2 times retention passes (rank the completed trials, delete what fell out) on a real SQLite study of
`--ranked` completed trials, single- and two-objective, each with a checkpoint file: a process's first pass
and the pass after each later trial.
Targets: the kept folder at most (keep + 1) / trials of the full one's size; the pass after each trial, at
`--ranked` trials, under 5% of the cheapest trial measured in part 1.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import optuna  # noqa: E402

from _common import MiB, data_root, print_summary, print_table, scratch_dir, verdict, write_study  # noqa: E402

PASS_SHARE = 0.05


def study(name: str, run_dir: Path, trials: int, keep: int | None) -> dict:
    export = {"after_run": True, **({"keep_checkpoints": keep} if keep else {})}
    return {"name": name, "data": {"source": "medmnist", "name": "breastmnist", "root": data_root(),
                                   "download": False},
            "space": {"model": {"kind": "timm", "backbone": "resnet18", "input_size": 32},
                      "optim": {"lr": {"float": [1.0e-4, 1.0e-2], "log": True}},
                      "train": {"batch_size": 64}},
            "strategy": "random", "pruner": "none", "budget": {"n_trials": trials, "epochs": 1},
            "seed": 0, "run_dir": str(run_dir), "export": export}


def run(tmp: Path, name: str, trials: int, keep: int | None) -> dict:
    path = write_study(tmp / f"{name}.yaml", study(name, tmp / name, trials, keep))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "searchlab.cli", "run", str(path)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    artifacts = tmp / name / "artifacts"
    ostudy = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp / name / 'study.db'}")
    trial_seconds = [(t.datetime_complete - t.datetime_start).total_seconds() for t in ostudy.trials]
    return {"files": len(list(artifacts.iterdir())), "mib": sum(p.stat().st_size for p in artifacts.iterdir()) / MiB,
            "seconds_per_trial": seconds / trials, "cheapest_trial": min(trial_seconds),
            "best": ostudy.best_value, "exported": (tmp / name / "best" / "weights.safetensors").is_file()}


def pass_seconds(tmp: Path, ranked: int, directions: list[str]) -> tuple[float, float]:
    """(first, steady) seconds of a retention pass over `ranked` completed trials with small checkpoint files,
    on SQLite: the first pass of a process judges every trial and deletes all but the best; a steady pass,
    after one more trial finished, judges only those still kept and deletes at most one file."""
    from searchlab.engine.retention import CheckpointRetention
    from searchlab.engine.storage import ContainedArtifactStore

    folder = tmp / f"artifacts-{len(directions)}"
    folder.mkdir()
    ostudy = optuna.create_study(storage=f"sqlite:///{tmp / f'ranked-{len(directions)}.db'}",
                                 directions=directions)
    ostudy.add_trials([checkpointed_trial(folder, i, len(directions)) for i in range(ranked)])
    ostudy.get_trials(deepcopy=False)   # in a run the budget check has read them already
    retention = CheckpointRetention(10, ContainedArtifactStore(str(folder)))
    start = time.perf_counter()
    retention(ostudy, ostudy.trials[-1])
    first = time.perf_counter() - start
    ostudy.add_trial(checkpointed_trial(folder, ranked, len(directions)))
    ostudy.get_trials(deepcopy=False)
    start = time.perf_counter()
    retention(ostudy, ostudy.trials[-1])
    return first, time.perf_counter() - start


def checkpointed_trial(folder: Path, i: int, objectives: int) -> optuna.trial.FrozenTrial:
    (folder / f"ckpt-{i}").write_bytes(b"\0" * 1024)
    values = [float((i * 7919) % 1009), float((i * 104729) % 997)][:objectives]
    return optuna.trial.create_trial(values=values, user_attrs={"checkpoint": f"ckpt-{i}"})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--keep", type=int, default=3)
    parser.add_argument("--ranked", type=int, default=1000)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with scratch_dir() as tmp:
        every = run(tmp, "keep_all", args.trials, None)
        kept = run(tmp, "keep_best", args.trials, args.keep)
        first_one, one = pass_seconds(tmp, args.ranked, ["maximize"])
        first_two, two = pass_seconds(tmp, args.ranked, ["maximize", "minimize"])
    print(f"\nResNet-18 trials, {args.trials} per run, 1 epoch each")
    print_table(["checkpoints", "files", "MiB", "s per trial", "best value", "best exported"],
                [["all kept", every["files"], every["mib"], every["seconds_per_trial"], every["best"],
                  every["exported"]],
                 [f"best {args.keep} kept", kept["files"], kept["mib"], kept["seconds_per_trial"], kept["best"],
                  kept["exported"]]])
    ratio = every["mib"] / max(kept["mib"], 1e-9)
    disk_ok = kept["mib"] <= every["mib"] * (args.keep + 1) / args.trials and kept["exported"]
    cheapest = min(every["cheapest_trial"], kept["cheapest_trial"])
    pass_ok = max(one, two) <= PASS_SHARE * cheapest
    print(f"disk: {ratio:.1f}x less with keep_checkpoints {args.keep}; target <= (keep + 1) / trials of it and "
          f"the best exported: {verdict(disk_ok)}")
    print(f"\nRetention pass over {args.ranked} completed trials (SQLite), keep 10")
    print_table(["pass", "single-objective ms", "two objectives ms"],
                [["first of a process (judges all, deletes the rest)", 1000 * first_one, 1000 * first_two],
                 ["after each trial (judges the kept, deletes <= 1)", 1000 * one, 1000 * two]])
    print(f"a pass after each trial vs the cheapest trial ({cheapest:.1f} s): target <= {PASS_SHARE:.0%}: "
          f"{verdict(pass_ok)}")
    print_summary({"bench": "checkpoint_retention", "trials": args.trials, "keep": args.keep,
                   "mib_all": round(every["mib"], 1), "mib_kept": round(kept["mib"], 1), "disk_ratio": round(ratio, 2),
                   "s_per_trial_all": round(every["seconds_per_trial"], 2),
                   "s_per_trial_kept": round(kept["seconds_per_trial"], 2), "ranked": args.ranked,
                   "first_pass_ms_single": round(1000 * first_one, 1), "first_pass_ms_two": round(1000 * first_two, 1),
                   "pass_ms_single": round(1000 * one, 1), "pass_ms_two": round(1000 * two, 1),
                   "pass": disk_ok and pass_ok})
    return 0 if disk_ok and pass_ok else 1


if __name__ == "__main__":
    sys.exit(main())
