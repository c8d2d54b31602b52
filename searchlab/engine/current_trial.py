"""Which trial a supervised worker process is running: `<run_dir>/.workers/<pid>.json`, read by its parent
(engine/supervise.py) to fail that trial if the process dies or overruns budget.trial_timeout; and
`<pid>.error`, the error of a worker that stops the run (a strategy plug-in raising outside a trial)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import optuna


STOPS_RUN = 2   # a worker's exit code for an error that stops the whole run; its message is in stop_run_file


def current_trial_file(run_dir: Path, pid: int) -> Path:
    return run_dir / ".workers" / f"{pid}.json"


def stop_run_file(run_dir: Path, pid: int) -> Path:
    """Where a worker process leaves the error that stops the run, for its parent to raise as its own."""
    path = run_dir / ".workers" / f"{pid}.error"
    path.parent.mkdir(exist_ok=True)
    return path


def announce_trial(run_dir: Path, trial: optuna.Trial) -> None:
    """Worker side: this process now runs `trial` (read by the parent to fail it if the process dies)."""
    path = current_trial_file(run_dir, os.getpid())
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"trial_id": trial._trial_id, "number": trial.number, "started": time.time()}))
    tmp.replace(path)   # atomic: the parent never reads half a file


def trial_done(run_dir: Path) -> None:
    current_trial_file(run_dir, os.getpid()).unlink(missing_ok=True)
