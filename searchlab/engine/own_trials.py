"""Runs of one folder joined by others (more workers from another shell): which trials a run finished itself,
and which RUNNING trials no live run holds any more.

The study-wide count of finished trials went up by the trials every runner of the folder finished meanwhile:
three joined runs recorded 6 + 2 + 2 finished trials of a study that held 8, one having run none. And a run
joined by another, then killed -9, left its trials RUNNING: they held budget.n_trials (a local file has no
heartbeats to tell them dead), so the run that joined it stopped with half the budget undone.

Runs of one study from several run folders (two Ray drivers of a PostgreSQL study, from two folders or machines;
two folders sharing one SQLite file) each store their trials' checkpoints in their own artifacts/: an export
from one folder looked only there and called the other's checkpoints deleted. Each folder records (a study user
attribute per folder, which drivers elsewhere never write) its artifact folder, machine and the trials whose
checkpoint it stored: `record_trained`, read by export/checkpoint_place.py.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from searchlab.engine.current_trial import current_trial_file
from searchlab.engine.progress import FINISHED, LOOK_SECONDS
from searchlab.engine.repeating import repeating
from searchlab.engine.process_space import pid_alive
from searchlab.engine.run_history import joined_since, others_alive

LEFT_RUNNING = "trials_left_running"   # a run's stop: RUNNING trials hold the budget, and no live run holds them
WATCH_SECONDS = 0.005   # between looks at a supervised worker's current trial: a tiny trial lasts ~10 ms
TRAINED_IN = "searchlab_trained_in:"   # + a digest of machine and folder: that run folder's record


class OwnTrials:
    """The trials this run's own workers finished (COMPLETE or PRUNED, as budget.n_trials counts them).

    Told exactly by `callback` where this process runs or drives the trials (one in-process worker, a Ray
    driver). Supervised worker processes tell nothing back (engine/supervise.py): the trials they announce
    (`.workers/<pid>.json`) are watched; a run nobody joined counts every trial finished since it started,
    which no watch can miss. `started` (the run's start, its key in the run history) tells whether another
    run shares the study (`shares_study`); `run_dir`, where the trials told are recorded as trained."""

    def __init__(self, ostudy: optuna.Study, started: float | None = None, run_dir: Path | None = None) -> None:
        self.before = _finished_numbers(ostudy)
        self.seen: set[int] = set()
        self.told_exactly = False
        self.started, self.run_dir = started, run_dir
        self.beside = False   # another run of the study ran beside this one (it joined one, or one joined it)
        self.looked = -math.inf   # when the run history was last read for it (time.monotonic())
        self.checkpointed: set[int] = set()   # told trials that stored a checkpoint (in this folder's artifacts)

    def callback(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.told_exactly = True
        self.seen.add(trial.number)
        if "checkpoint" in trial.user_attrs:
            self.checkpointed.add(trial.number)
        # beside another run, as each trial ends: a driver elsewhere exporting meanwhile finds the checkpoint's
        # folder (a run alone writes its record once, at its end: no study write after each tiny trial). A write
        # lost here (a storage outage) is not the trial's failure: `record` writes it again at the end
        if self.run_dir is not None and self.shares_study(study, LOOK_SECONDS):
            with contextlib.suppress(Exception):
                record_trained(study, self.run_dir, self.checkpointed)

    def numbers(self, ostudy: optuna.Study, joined: bool) -> set[int]:
        new = _finished_numbers(ostudy) - self.before
        return new & self.seen if self.told_exactly or joined else new

    def count(self, ostudy: optuna.Study, joined: bool) -> int:
        return len(self.numbers(ostudy, joined))

    def note_start(self, ostudy: optuna.Study, sole_runner: bool) -> None:
        """Whether this run joined another as it started: more workers of its folder (the folder's lock was
        held), or a run of the study from another folder or machine still open (a second Ray driver)."""
        self.beside = not sole_runner or (self.started is not None and others_alive(ostudy, self.started))

    def shares_study(self, ostudy: optuna.Study, seconds_between: float = 0.0) -> bool:
        """Another run of the study ran beside this one: it joined one (`note_start`), or one joined it since
        (the study's run history, read until one has, at most every `seconds_between`)."""
        if not self.beside and self.started is not None and time.monotonic() - self.looked >= seconds_between:
            self.looked = time.monotonic()
            self.beside = joined_since(ostudy, self.started)
        return self.beside

    def record(self, ostudy: optuna.Study) -> None:
        """At the run's end: its own trials in the folder's record, those of supervised workers (which told
        nothing back) with them."""
        if self.run_dir is None:
            return
        mine = self.numbers(ostudy, self.shares_study(ostudy))
        record_trained(ostudy, self.run_dir, {t.number for t in ostudy.get_trials(deepcopy=False)
                                              if t.number in mine and "checkpoint" in t.user_attrs})

    @contextmanager
    def watching(self, run_dir: Path, pids: Callable[[], list[int]]) -> Iterator[None]:
        """Notes the trials the worker processes `pids()` announce, while the block runs."""
        with repeating(WATCH_SECONDS, lambda: self.seen.update(_announced(run_dir, pids())), "searchlab-own-trials"):
            yield


@dataclass(frozen=True)
class TrainedIn:
    """One run folder's record: where it was, on which machine, and the trials whose checkpoint it stored."""
    host: str
    run_dir: str
    artifacts: str
    trials: frozenset[int]


def record_trained(ostudy: optuna.Study, run_dir: Path, numbers: set[int]) -> None:
    """Adds to this folder's record the trials `numbers` (this run's own, that stored a checkpoint here); no
    write when none is new (a callable task's study, which stores none, gets no record)."""
    if not numbers:
        return
    folder, host = run_dir.resolve(), socket.gethostname()
    key = TRAINED_IN + hashlib.sha256(f"{host}\0{folder}".encode()).hexdigest()[:16]
    # joined runs of the folder (more workers from another shell) write the same key: one at a time, as their
    # run history entries are written (engine/run_history.py)
    with (run_dir / ".runs.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        held = ostudy.user_attrs.get(key)   # read anew from the storage: another worker's write included
        known = set(held.get("trials", [])) if isinstance(held, dict) else set()
        if numbers <= known:
            return
        ostudy.set_user_attr(key, {"host": host, "run_dir": str(folder), "artifacts": str(folder / "artifacts"),
                                   "trials": sorted(known | numbers)})


def trained_in(user_attrs: dict[str, Any]) -> list[TrainedIn]:
    """The run folders a study's user attributes record (one not well formed is left out)."""
    found = []
    for key, held in user_attrs.items():
        if not key.startswith(TRAINED_IN) or not isinstance(held, dict):
            continue
        try:
            found.append(TrainedIn(str(held["host"]), str(held["run_dir"]), str(held["artifacts"]),
                                   frozenset(int(n) for n in held.get("trials", []))))
        except (KeyError, TypeError, ValueError):
            continue
    return found


def _finished_numbers(ostudy: optuna.Study) -> set[int]:
    return {t.number for t in ostudy.get_trials(deepcopy=False, states=FINISHED)}


def _announced(run_dir: Path, pids: list[int]) -> set[int]:
    numbers = set()
    for pid in pids:
        try:
            numbers.add(json.loads(current_trial_file(run_dir, pid).read_text())["number"])
        except (OSError, ValueError, KeyError):   # between trials, or mid-replace
            continue
    return numbers


def left_running(ostudy: optuna.Study, run_dir: Path, started: float) -> list[FrozenTrial]:
    """RUNNING trials no live run of the folder holds: called once this run's own workers have stopped, so none
    is its own. None when another run of the folder may be alive (its process here, or an open run on another
    machine, which this one cannot see), or a live worker process announces the trial (a supervised worker
    outlives its killed parent and tells its trial itself)."""
    running = ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if not running or others_alive(ostudy, started):
        return []
    held = _announced_by_live_workers(run_dir)
    return [t for t in running if t.number not in held]


def _announced_by_live_workers(run_dir: Path) -> set[int]:
    folder = run_dir / ".workers"
    pids = [int(f.stem) for f in folder.glob("*.json") if f.stem.isdigit()] if folder.is_dir() else []
    return _announced(run_dir, [pid for pid in pids if pid_alive(pid)])
