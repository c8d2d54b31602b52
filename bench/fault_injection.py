"""Reliability under faults, at a scale CI cannot afford (issue 8's report table).

    python bench/fault_injection.py [--kills 50] [--workers-trials 200] [--fault-trials 48] [--fuzz 2000]

1. kill -9 of `searchlab run` at random moments (sampling, training, checkpointing, storage writes), restarted
   each time; invariants checked after every kill (tests/fault_harness.py); and of `searchlab export`: the
   export folder must be whole or absent after each kill.
2. 4 local worker processes on one study, on SQLite, the journal file and PostgreSQL (a real throwaway
   server, tests/postgres_server.py): no lost or duplicated trial, no "database is locked" reaching a trial.
3. Trial-level faults, one per trial: exceptions, NaN objective, out of memory (address-space limit), a hang
   past budget.trial_timeout, the worker process SIGKILLed. Each must fail its own trial with its reason.
4. Hostile study files: the hypothesis properties of tests/test_fuzz_study.py with many examples.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

import optuna  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from _common import data_root, print_summary, print_table, scratch_dir, verdict, write_study  # noqa: E402

TESTS_ENV = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
REASONS = {"raise": "RuntimeError: injected failure", "nan": "objective 'loss' is nan", "oom": "MemoryError",
           "hang": "exceeded budget.trial_timeout", "die": "killed by SIGKILL"}


def callable_study(tmp: Path, name: str, fn: str, space: dict, budget: dict, executor: dict, storage: str | None) -> Path:
    return write_study(tmp / f"{name}.yaml", {
        "name": name, "data": {"source": "medmnist", "name": "breastmnist", "root": data_root(), "download": False},
        "task": {"kind": "callable", "function": f"fake_tasks:{fn}"}, "space": space,
        "objective": {"metric": "loss", "direction": "minimize"}, "strategy": "random", "pruner": "none",
        "budget": budget, "executor": executor, "storage": storage, "run_dir": str(tmp / name)})


def kills(tmp: Path, n: int) -> dict:
    from fault_harness import StudyWatch, kill_loop

    trials = max(10, 2 * n)   # enough that every kill lands before the budget is met
    path = callable_study(tmp, "killed", "checkpointed", {"x": {"float": [-3, 3]}, "sleep": 0.9},
                          {"n_trials": trials, "max_failed": 10 * n + 10}, {"kind": "local"}, None)
    watch = StudyWatch(f"sqlite:///{tmp / 'killed' / 'study.db'}", "killed", trials, tmp / "killed" / "artifacts")
    report = kill_loop(path, watch, kills=n, seed=0, window=(2.5, 5.0), env=TESTS_ENV)
    return {"kills": report.kills, "violations": report.violations, "complete": report.complete,
            "interrupted": report.interrupted, "retried": report.retried, "seconds": report.seconds}


def export_kills(tmp: Path, n: int) -> dict:
    """kill -9 of `searchlab export` at random moments: the folder is a whole export or absent, each time."""
    from fault_harness import export_kill_loop
    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study

    path = write_study(tmp / "exported.yaml", {
        "name": "exported", "data": {"source": "medmnist", "name": "breastmnist", "root": data_root(), "download": False},
        "space": {"model": {"kind": "cnn", "depth": 1, "width": 8}, "optim": {"lr": {"float": [1.0e-3, 1.0e-2]}}},
        "strategy": "random", "pruner": "none", "budget": {"n_trials": 2, "epochs": 1}, "run_dir": str(tmp / "exported")})
    run_study(load_study(path), progress=False)
    report = export_kill_loop(tmp / "exported", tmp / "exported_best", attempts=n, seed=0)
    return {"kills": report.kills, "attempts": report.runs, "whole": report.complete, "violations": report.violations,
            "seconds": report.seconds}


def concurrent(tmp: Path, storage_kind: str, url: str, n: int) -> dict:
    from searchlab.engine.storage import open_storage

    name = f"workers_{storage_kind}"
    path = callable_study(tmp, name, "quadratic", {"x": {"float": [-3, 3]}}, {"n_trials": n},
                          {"kind": "local", "workers": 4}, url)
    started = time.time()
    proc = subprocess.run([sys.executable, "-c", "import sys; from searchlab.cli import main; sys.exit(main())",
                           "run", str(path), "--no-progress"], env={**os.environ, **TESTS_ENV}, capture_output=True,
                          text=True)
    trials = optuna.load_study(study_name=name, storage=open_storage(url or f"sqlite:///{tmp / name / 'study.db'}")).trials
    states = Counter(t.state.name for t in trials)
    locked = [t.number for t in trials if "locked" in str(t.user_attrs.get("error", ""))]
    numbers = [t.number for t in trials]
    ok = (proc.returncode == 0 and states.get("COMPLETE") == n and len(trials) == n and not locked
          and sorted(numbers) == list(range(len(numbers))))
    return {"storage": storage_kind, "trials": len(trials), "states": dict(states), "locked": len(locked),
            "worker_pids": len({t.user_attrs.get("pid") for t in trials}),
            "seconds": time.time() - started, "ok": ok, "stderr": proc.stderr[-300:] if proc.returncode else ""}


def trial_faults(tmp: Path, n: int) -> dict:
    from searchlab.engine.storage import open_storage

    path = callable_study(tmp, "faults", "fault_mix",
                          {"x": {"float": [-3, 3]}, "fault": {"choice": ["none", *REASONS]}},
                          {"n_trials": n, "max_failed": 10 * n, "trial_timeout": 3},
                          {"kind": "local", "workers": 2, "max_retries": 0}, None)
    started = time.time()
    proc = subprocess.run([sys.executable, "-c", "import sys; from searchlab.cli import main; sys.exit(main())",
                           "run", str(path), "--no-progress"], env={**os.environ, **TESTS_ENV}, capture_output=True,
                          text=True)
    trials = optuna.load_study(study_name="faults", storage=open_storage(f"sqlite:///{tmp / 'faults' / 'study.db'}")).trials
    rows = {}
    for kind, reason in REASONS.items():
        hit = [t for t in trials if t.params.get("fault") == kind]
        right = [t for t in hit if t.state == TrialState.FAIL and reason in str(t.user_attrs.get("error"))]
        rows[kind] = (len(hit), len(right))
    clean = [t for t in trials if t.params.get("fault") == "none"]
    return {"rows": rows, "clean_complete": sum(t.state == TrialState.COMPLETE for t in clean), "clean": len(clean),
            "left_running": sum(t.state == TrialState.RUNNING for t in trials), "exit": proc.returncode,
            "seconds": time.time() - started}


def fuzz(examples: int) -> dict:
    started = time.time()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz_study.py"],
                          cwd=ROOT, env={**os.environ, "SEARCHLAB_FUZZ_EXAMPLES": str(examples)},
                          capture_output=True, text=True)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    properties = 5   # hypothesis properties in tests/test_fuzz_study.py; the rest are fixed hostile files
    return {"inputs": properties * examples + 15, "crashes": 0 if proc.returncode == 0 else tail, "summary": tail,
            "seconds": time.time() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--export-attempts", type=int, default=20, help="exports started, each killed at random")
    parser.add_argument("--workers-trials", type=int, default=200)
    parser.add_argument("--fault-trials", type=int, default=48)
    parser.add_argument("--fuzz", type=int, default=2000, help="examples per hypothesis property")
    args = parser.parse_args()
    from postgres_server import postgres_url

    with scratch_dir() as tmp:
        killed = kills(tmp, args.kills)
        exported = export_kills(tmp, args.export_attempts)
        with postgres_url() as pg:
            storages = [("sqlite", None), ("journal", f"journal://{tmp / 'j' / 'study.log'}")] + ([("postgresql", pg)] if pg else [])
            workers = [concurrent(tmp, kind, url, args.workers_trials) for kind, url in storages]
        faults = trial_faults(tmp, args.fault_trials)
    fuzzed = fuzz(args.fuzz)
    rows = [["kill -9 of the runner (restarted)", killed["kills"], killed["kills"], len(killed["violations"])],
            ["kill -9 of searchlab export", exported["kills"], exported["kills"] - len(exported["violations"]),
             len(exported["violations"])]]
    rows += [[f"4 workers x {w['trials']} trials on {w['storage']}", w["trials"], w["trials"] if w["ok"] else 0,
              0 if w["ok"] else 1] for w in workers]
    rows += [[f"trial fault: {kind}", hit, right, hit - right] for kind, (hit, right) in faults["rows"].items()]
    rows += [["hostile study files (hypothesis + fixed)", fuzzed["inputs"], fuzzed["inputs"] if fuzzed["crashes"] == 0
              else "-", 0 if fuzzed["crashes"] == 0 else 1]]
    print_table(["fault", "injected", "survived", "violations"], rows)
    print(f"\nkills: {killed['complete']} trials COMPLETE (budget met), {killed['interrupted']} interrupted and FAILED, "
          f"{killed['retried']} retried, {killed['seconds']:.0f} s")
    for v in (killed["violations"] + exported["violations"])[:10]:
        print("  violation:", v)
    print(f"exports: {exported['attempts']} started, {exported['kills']} killed mid-way, a whole export found "
          f"{exported['whole']} times, otherwise none; {exported['seconds']:.0f} s")
    for w in workers:
        print(f"workers on {w['storage']}: {w['states']} from {w['worker_pids']} worker processes, 'locked' errors "
              f"{w['locked']}, {w['seconds']:.0f} s {w['stderr']}")
    print(f"trial faults: clean trials {faults['clean_complete']}/{faults['clean']} COMPLETE, left RUNNING "
          f"{faults['left_running']}, exit {faults['exit']}, {faults['seconds']:.0f} s")
    print(f"fuzz: {fuzzed['summary']} ({fuzzed['seconds']:.0f} s)")
    violations = sum(int(r[3]) for r in rows) + faults["left_running"] + (faults["clean_complete"] != faults["clean"])
    ok = violations == 0 and killed["kills"] >= args.kills
    print(f"\n{killed['kills']} kills survived, {violations} invariant violations, crashes "
          f"{0 if fuzzed['crashes'] == 0 else 1}: {verdict(ok)}")
    print_summary({"kills": killed, "export_kills": exported, "workers": workers, "trial_faults": faults, "fuzz": fuzzed, "pass": ok})


if __name__ == "__main__":
    main()
