"""Reliability under faults, at a scale CI cannot afford (issue 8's report table).

    python bench/fault_injection.py [--kills 50] [--export-attempts 20] [--workers-trials 200] [--fault-trials 48]
                                    [--fuzz 2000]

1. kill -9 of `searchlab run` at random moments (sampling, training, checkpointing, storage writes), restarted
   each time; invariants checked after every kill (tests/fault_harness.py); and of `searchlab export`: the
   export folder must be whole or absent after each kill.
2. 4 local worker processes on one study, on SQLite, the journal file and PostgreSQL (a real throwaway
   server, tests/postgres_server.py): no lost or duplicated trial, no "database is locked" reaching a trial.
   Without a PostgreSQL to start (nor SEARCHLAB_TEST_POSTGRES) that row says "not run" and the verdict is
   INCOMPLETE, exit 1.
3. Trial-level faults, one per trial: exceptions, NaN objective, out of memory (address-space limit), a hang
   past budget.trial_timeout, the worker process SIGKILLed. Each must fail its own trial with its reason.
4. Hostile study files: the hypothesis properties of tests/test_fuzz_study.py with `--fuzz` examples each, and
   its fixed cases; the inputs counted are those pytest and hypothesis report as run.
Exit 0 only on PASS: every row run and no violation.
"""
from __future__ import annotations

import argparse
import os
import re
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
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--hypothesis-show-statistics", "tests/test_fuzz_study.py"],
                          cwd=ROOT, env={**os.environ, "SEARCHLAB_FUZZ_EXAMPLES": str(examples)},
                          capture_output=True, text=True)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    return {"inputs": fuzz_inputs(proc.stdout), "crashes": 0 if proc.returncode == 0 else tail, "summary": tail,
            "seconds": time.time() - started}


def fuzz_inputs(stdout: str) -> int | None:
    """Inputs the fuzz run fed the loader: hypothesis's passing and failing cases over its properties, plus one
    per other test that ran (the fixed hostile files). Read from the output, as the number of fixed cases and
    of examples hypothesis actually generates can differ from what is asked; None if it cannot be read."""
    tests_run = pytest_tests_run(stdout)
    properties = len(re.findall(r"^\S+\.py::.*:$", stdout, re.MULTILINE))   # one statistics block per property
    cases = re.findall(r"- (\d+) passing, (\d+) failing, and \d+ invalid test cases", stdout)
    if not tests_run or not properties or not cases:
        return None   # hypothesis's statistics format is not promised stable: say "unknown", never a guess
    generated = sum(int(passing) + int(failing) for passing, failing in cases)
    return generated + tests_run - properties


def pytest_tests_run(stdout: str) -> int:
    """Tests passed + failed, from pytest's last line ("3 failed, 17 passed in 9.1s"); 0 if there is none."""
    last = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    return sum(int(n) for n, _ in re.findall(r"(\d+) (passed|failed)\b", last))


def survived(kills: int, violations: list[str]) -> int:
    """Kills with nothing wrong found after them, charging each violation to one kill: never more than
    really survived (one kill that broke two invariants counts twice)."""
    return max(0, kills - len(violations))


def table_rows(killed: dict, exported: dict, workers: list[dict], faults: dict, fuzzed: dict) -> list[list]:
    """fault, injected, survived, violations; a row that could not run says so instead of counting as clean."""
    rows = [["kill -9 of the runner (restarted)", killed["kills"], survived(killed["kills"], killed["violations"]),
             len(killed["violations"])],
            ["kill -9 of searchlab export", exported["kills"], survived(exported["kills"], exported["violations"]),
             len(exported["violations"])]]
    for w in workers:
        rows.append([f"4 workers on {w['storage']}", "not run", "-", "-"] if "not_run" in w
                    else [f"4 workers x {w['trials']} trials on {w['storage']}", w["trials"],
                          w["trials"] if w["ok"] else 0, 0 if w["ok"] else 1])
    rows += [[f"trial fault: {kind}", hit, right, hit - right] for kind, (hit, right) in faults["rows"].items()]
    clean = fuzzed["crashes"] == 0
    inputs = "-" if fuzzed["inputs"] is None else fuzzed["inputs"]
    rows.append(["hostile study files (hypothesis + fixed)", inputs, inputs if clean else "-", 0 if clean else 1])
    return rows


def violation_count(killed: dict, exported: dict, workers: list[dict], faults: dict, fuzzed: dict) -> int:
    return (len(killed["violations"]) + len(exported["violations"])
            + sum(not w["ok"] for w in workers if "not_run" not in w)
            + sum(hit - right for hit, right in faults["rows"].values()) + faults["left_running"]
            + (faults["clean_complete"] != faults["clean"]) + (fuzzed["crashes"] != 0))


def worker_runs(tmp: Path, trials: int) -> list[dict]:
    """The 4-worker run on each storage; PostgreSQL's entry says "not run" when no server could be had."""
    from postgres_server import postgres_url

    with postgres_url() as pg:
        storages = [("sqlite", None), ("journal", f"journal://{tmp / 'j' / 'study.log'}")]
        storages += [("postgresql", pg)] if pg else []
        workers = [concurrent(tmp, kind, url, trials) for kind, url in storages]
    if not pg:
        workers.append({"storage": "postgresql", "not_run": "no PostgreSQL server to start here "
                                                            "(install one or set SEARCHLAB_TEST_POSTGRES)"})
    return workers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--export-attempts", type=int, default=20, help="exports started, each killed at random")
    parser.add_argument("--workers-trials", type=int, default=200)
    parser.add_argument("--fault-trials", type=int, default=48)
    parser.add_argument("--fuzz", type=int, default=2000, help="examples per hypothesis property")
    args = parser.parse_args()

    with scratch_dir() as tmp:
        killed = kills(tmp, args.kills)
        exported = export_kills(tmp, args.export_attempts)
        workers = worker_runs(tmp, args.workers_trials)
        faults = trial_faults(tmp, args.fault_trials)
    fuzzed = fuzz(args.fuzz)
    print_table(["fault", "injected", "survived", "violations"], table_rows(killed, exported, workers, faults, fuzzed))
    print(f"\nkills: {killed['complete']} trials COMPLETE (budget met), {killed['interrupted']} interrupted and FAILED, "
          f"{killed['retried']} retried, {killed['seconds']:.0f} s")
    for v in (killed["violations"] + exported["violations"])[:10]:
        print("  violation:", v)
    print(f"exports: {exported['attempts']} started, {exported['kills']} killed mid-way, a whole export found "
          f"{exported['whole']} times, otherwise none; {exported['seconds']:.0f} s")
    for w in workers:
        if "not_run" in w:
            print(f"workers on {w['storage']}: NOT RUN: {w['not_run']}")
        else:
            print(f"workers on {w['storage']}: {w['states']} from {w['worker_pids']} worker processes, 'locked' "
                  f"errors {w['locked']}, {w['seconds']:.0f} s {w['stderr']}")
    print(f"trial faults: clean trials {faults['clean_complete']}/{faults['clean']} COMPLETE, left RUNNING "
          f"{faults['left_running']}, exit {faults['exit']}, {faults['seconds']:.0f} s")
    print(f"fuzz: {fuzzed['summary']} ({fuzzed['seconds']:.0f} s)")
    violations = violation_count(killed, exported, workers, faults, fuzzed)
    not_run = [w["storage"] for w in workers if "not_run" in w]
    ok = violations == 0 and killed["kills"] >= args.kills
    result = "INCOMPLETE" if ok and not_run else verdict(ok)
    print(f"\n{survived(killed['kills'], killed['violations'])} of {killed['kills']} kills survived, {violations} "
          f"invariant violations, crashes {0 if fuzzed['crashes'] == 0 else 1}"
          f"{', not run: ' + ', '.join(not_run) if not_run else ''}: {result}")
    print_summary({"bench": "fault_injection", "kills": killed, "export_kills": exported, "workers": workers,
                   "trial_faults": faults, "fuzz": fuzzed, "not_run": not_run, "result": result,
                   "pass": ok and not not_run})
    return 0 if ok and not not_run else 1


if __name__ == "__main__":
    sys.exit(main())
