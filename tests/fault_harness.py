"""Kill -9 a `searchlab run` at random moments, restart it, and check the study's invariants after each kill.

Shared by tests/test_kill_runner.py (a few kills in CI) and bench/fault_injection.py (50 and more).
Invariants, read from the storage after every kill and at the end:
- a trial COMPLETE once stays COMPLETE with the same values;
- no config completes twice (a retried config and its retry never both COMPLETE);
- never more COMPLETE trials than the budget; at the end exactly the budget, nothing RUNNING or WAITING;
- interrupted trials are FAILED with the reason, and their configs retried (up to executor.max_retries);
- every COMPLETE trial's checkpoint artifact exists, loads (safetensors) and holds what its config implies.
"""
from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import TrialState
from safetensors.torch import load_file

RUN = "import sys; from searchlab.cli import main; sys.exit(main())"


@dataclass
class KillReport:
    kills: int = 0
    runs: int = 0
    violations: list[str] = field(default_factory=list)
    complete: int = 0
    interrupted: int = 0
    retried: int = 0
    seconds: float = 0.0


class StudyWatch:
    """What the storage held after the previous kill, to check that nothing completed changes."""

    def __init__(self, storage: str, name: str, n_trials: int, artifacts: Path) -> None:
        self.storage, self.name, self.n_trials, self.artifacts = storage, name, n_trials, artifacts
        self.completed: dict[int, list[float]] = {}
        self.checked_checkpoints: set[int] = set()

    def trials(self) -> list[optuna.trial.FrozenTrial]:
        if self.storage.startswith("sqlite:///") and not Path(self.storage.removeprefix("sqlite:///")).is_file():
            return []   # killed before the run created its storage (reading would create the file)
        try:
            return optuna.load_study(study_name=self.name, storage=self.storage).get_trials()
        except KeyError:
            return []   # killed before the study was created

    def check(self, final: bool = False) -> list[str]:
        trials = self.trials()
        problems = []
        by_number = {t.number: t for t in trials}
        if len(by_number) != len(trials):
            problems.append("duplicated trial numbers")
        for number, values in self.completed.items():
            now = by_number.get(number)
            if now is None or now.state != TrialState.COMPLETE or now.values != values:
                problems.append(f"trial {number} was COMPLETE {values}, now {now and (now.state.name, now.values)}")
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        roots = [t.system_attrs.get("failed_trial", t.number) for t in complete]
        problems += [f"config of trial {r} completed {roots.count(r)} times" for r in set(roots) if roots.count(r) > 1]
        if len(complete) > self.n_trials:
            problems.append(f"{len(complete)} COMPLETE trials, budget {self.n_trials}")
        problems += self._checkpoints(complete)
        if final:
            problems += self._final(trials, complete)
        self.completed = {t.number: t.values for t in complete}
        return problems

    def _checkpoints(self, complete: list) -> list[str]:
        problems = []
        for trial in complete:
            if trial.number in self.checked_checkpoints:
                continue
            path = self.artifacts / str(trial.user_attrs.get("checkpoint"))
            try:
                weights = load_file(str(path))["w"]
                if not bool((weights == float(trial.params["x"])).all()):
                    problems.append(f"trial {trial.number}: its checkpoint holds other weights")
            except Exception as exc:
                problems.append(f"trial {trial.number}: checkpoint {path.name} does not load ({exc})")
            self.checked_checkpoints.add(trial.number)
        return problems

    def _final(self, trials: list, complete: list) -> list[str]:
        problems = []
        if len(complete) != self.n_trials:
            problems.append(f"finished with {len(complete)} COMPLETE trials, budget {self.n_trials}")
        left = [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
        if left:
            problems.append(f"trials left RUNNING/WAITING: {left}")
        retried = {t.user_attrs.get("retry_of") for t in trials}
        for trial in trials:
            if trial.state != TrialState.FAIL:
                continue
            if not str(trial.user_attrs.get("error", "")).startswith("interrupted"):
                problems.append(f"trial {trial.number} FAILED without the interruption reason")
            elif len(trial.system_attrs.get("retry_history", [])) < 2 and trial.number not in retried:
                problems.append(f"interrupted trial {trial.number} was not retried")
        return problems


def kill_loop(study_file: Path, watch: StudyWatch, kills: int, seed: int, window: tuple[float, float] = (0.5, 6.0),
              env: dict[str, str] | None = None, final_timeout: float = 900) -> KillReport:
    """Start the run, SIGKILL it after a random time, check, restart; the last run goes to the end."""
    rng, report, started = random.Random(seed), KillReport(), time.time()
    env = {**os.environ, **(env or {})}
    while True:
        proc = subprocess.Popen([sys.executable, "-c", RUN, "run", str(study_file), "--no-progress"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        report.runs += 1
        try:
            _, err = proc.communicate(timeout=rng.uniform(*window) if report.kills < kills else final_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            report.kills += 1
            report.violations += [f"after kill {report.kills}: {p}" for p in watch.check()]
            continue
        if proc.returncode != 0:
            report.violations.append(f"run {report.runs} exited with {proc.returncode}: {err[-500:]}")
        break
    report.violations += [f"at the end: {p}" for p in watch.check(final=True)]
    trials = watch.trials()
    report.complete = sum(t.state == TrialState.COMPLETE for t in trials)
    report.interrupted = sum(t.state == TrialState.FAIL for t in trials)
    report.retried = sum("retry_of" in t.user_attrs for t in trials)
    report.seconds = time.time() - started
    return report


EXPORT_FILES = {"config.json", "model.py", "weights.safetensors", "test_predictions.json"}


def export_kill_loop(run_dir: Path, out: Path, attempts: int, seed: int, window: tuple[float, float] = (0.05, 0.9),
                     env: dict[str, str] | None = None) -> KillReport:
    """`searchlab export` SIGKILLed at random moments: after each, `out` is absent or a whole export.

    Kill moments are fractions (`window`) of one export's measured duration, not seconds: a loaded CI machine
    once took longer than every fixed window, so no attempt ever finished. The last attempt is left to finish
    and must leave a whole export."""
    import shutil

    rng, report, started = random.Random(seed), KillReport(), time.time()
    calibration = out.parent / f".{out.name}-calibration"
    took = time.time()
    if _export(run_dir, calibration, env).wait() != 0:
        report.violations.append("the unkilled calibration export failed")
    took = time.time() - took
    shutil.rmtree(calibration, ignore_errors=True)
    for attempt in range(attempts):
        proc = _export(run_dir, out, env)
        report.runs += 1
        try:
            proc.wait(timeout=None if attempt == attempts - 1 else rng.uniform(*window) * took)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            report.kills += 1
        if out.exists():
            _check_whole_export(out, report)
    report.seconds = time.time() - started
    return report


def _export(run_dir: Path, out: Path, env: dict[str, str] | None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", RUN, "export", str(run_dir), "--out", str(out),
                             "--bootstrap", "1000"],
                            env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _check_whole_export(out: Path, report: KillReport) -> None:
    import json

    try:
        files = {p.name for p in out.iterdir()}
        assert files - {"trained_on.json"} == EXPORT_FILES, f"files {sorted(files)}"   # folder/CSV sets only
        assert json.loads((out / "config.json").read_text())["format"] == "searchlab-export/1"
        assert load_file(str(out / "weights.safetensors"))
        report.complete += 1
    except Exception as exc:
        report.violations.append(f"after export attempt {report.runs}: {exc}")
