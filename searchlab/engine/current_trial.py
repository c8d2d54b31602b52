"""Which trial a supervised worker process is running: `<run_dir>/.workers/<pid>.json`, read by its parent
(engine/supervise.py) to fail that trial if the process dies or overruns budget.trial_timeout; and
`<pid>.error`, the error of a worker that stops the run (a strategy plug-in raising outside a trial, a lost
storage server, a trial that found the run's data changed), as its class name and message."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import optuna

from searchlab.errors import DataChanged, SearchlabError


STOPS_RUN = 2   # a worker's exit code for an error that stops the whole run; its message is in stop_run_file


def current_trial_file(run_dir: Path, pid: int) -> Path:
    return run_dir / ".workers" / f"{pid}.json"


def stop_run_file(run_dir: Path, pid: int) -> Path:
    """Where a worker process leaves the error that stops the run, for its parent to raise as its own."""
    path = run_dir / ".workers" / f"{pid}.error"
    path.parent.mkdir(exist_ok=True)
    return path


# Errors a worker passes up as their own class (others as a SearchlabError with their message): the run's history
# names the class ("error: DataChanged"), and a caller of run_study can tell a changed data set from other stops
PASSED_AS_THEMSELVES = {cls.__name__: cls for cls in (DataChanged,)}


def leave_stop_error(run_dir: Path, pid: int, exc: SearchlabError) -> None:
    """Worker side: `exc` stops the run; its parent raises it (stop_error)."""
    stop_run_file(run_dir, pid).write_text(json.dumps({"kind": type(exc).__name__, "message": str(exc)}))


def stop_error(path: Path) -> SearchlabError:
    """Parent side: the error a worker left in `path`, to raise as the run's own."""
    text = path.read_text()
    try:
        left = json.loads(text)
        kind, message = left["kind"], left["message"]
    except (ValueError, KeyError, TypeError):   # plain text: as written before the kind was kept
        return SearchlabError(text)
    return PASSED_AS_THEMSELVES.get(kind, SearchlabError)(message)


def announce_trial(run_dir: Path, trial: optuna.Trial) -> None:
    """Worker side: this process now runs `trial` (read by the parent to fail it if the process dies)."""
    path = current_trial_file(run_dir, os.getpid())
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"trial_id": trial._trial_id, "number": trial.number, "started": time.time()}))
    tmp.replace(path)   # atomic: the parent never reads half a file


def trial_done(run_dir: Path) -> None:
    current_trial_file(run_dir, os.getpid()).unlink(missing_ok=True)
