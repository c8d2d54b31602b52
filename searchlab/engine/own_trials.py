"""Runs of one folder joined by others (more workers from another shell): which trials a run finished itself,
and which RUNNING trials no live run holds any more.

The study-wide count of finished trials went up by the trials every runner of the folder finished meanwhile:
three joined runs recorded 6 + 2 + 2 finished trials of a study that held 8, one having run none. And a run
joined by another, then killed -9, left its trials RUNNING: they held budget.n_trials (a local file has no
heartbeats to tell them dead), so the run that joined it stopped with half the budget undone.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from searchlab.engine.current_trial import current_trial_file
from searchlab.engine.progress import FINISHED
from searchlab.engine.repeating import repeating
from searchlab.engine.run_history import others_alive, pid_alive

LEFT_RUNNING = "trials_left_running"   # a run's stop: RUNNING trials hold the budget, and no live run holds them
WATCH_SECONDS = 0.005   # between looks at a supervised worker's current trial: a tiny trial lasts ~10 ms


class OwnTrials:
    """The trials this run's own workers finished (COMPLETE or PRUNED, as budget.n_trials counts them).

    Told exactly by `callback` where this process runs or drives the trials (one in-process worker, a Ray
    driver). Supervised worker processes tell nothing back (engine/supervise.py): the trials they announce
    (`.workers/<pid>.json`) are watched; a run nobody joined counts every trial finished since it started,
    which no watch can miss."""

    def __init__(self, ostudy: optuna.Study) -> None:
        self.before = _finished_numbers(ostudy)
        self.seen: set[int] = set()
        self.told_exactly = False

    def callback(self, _study: optuna.Study, trial: FrozenTrial) -> None:
        self.told_exactly = True
        self.seen.add(trial.number)

    def count(self, ostudy: optuna.Study, joined: bool) -> int:
        new = _finished_numbers(ostudy) - self.before
        return len(new & self.seen) if self.told_exactly or joined else len(new)

    @contextmanager
    def watching(self, run_dir: Path, pids: Callable[[], list[int]]) -> Iterator[None]:
        """Notes the trials the worker processes `pids()` announce, while the block runs."""
        with repeating(WATCH_SECONDS, lambda: self.seen.update(_announced(run_dir, pids())), "searchlab-own-trials"):
            yield


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
