"""Which RUNNING trials of a Ray study on a server storage were left by a driver that is gone.

A Ray driver tells its trials' outcomes itself, so a trial it asked for and never told is its to finish or
nobody's. On a local file only one driver can run (the run folder's lock), and every RUNNING trial at its
start was a killed driver's. On a server storage a second driver may run the study from another folder or
machine: failing its live trials made it crash ("Trial#0 has already finished") and their configs ran twice.
Ray drivers on a server storage send their trials' heartbeats (engine/ray_executor.py): a heartbeat that goes
on is a live driver's trial, left to it; one that stops, or a trial that never had one (a driver older than
heartbeats, or killed before its first), is a gone driver's.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from searchlab.engine.storage import GRACE_SECONDS, HEARTBEAT_SECONDS, heartbeat_ages


def trials_of_gone_drivers(ostudy: optuna.Study, grace: float = GRACE_SECONDS, interval: float = HEARTBEAT_SECONDS,
                           sleep: Callable[[float], None] = time.sleep) -> set[int]:
    """The numbers of the RUNNING trials whose driver is gone. A trial with a recent heartbeat is watched
    until it beats again (alive) or its last beat is `grace` seconds old (gone): at most about `grace`
    seconds, said while it waits."""
    running = ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    ages = heartbeat_ages(ostudy._storage, running)
    gone = {t.number for t in running if ages.get(t.number, grace + 1) > grace}
    watched = {number: age for number, age in ages.items() if number not in gone}
    if watched:
        print(f"note: {len(watched)} trial(s) RUNNING in the storage (trial {_listed(watched)}) have sent "
              f"heartbeats within {grace:.0f} s: waiting up to {grace:.0f} s to tell another driver's live trials "
              "(left to it) from a killed driver's (failed, their configs run again)", file=sys.stderr)
    deadline = time.monotonic() + grace + interval
    while watched and time.monotonic() < deadline:
        sleep(min(interval / 2, max(deadline - time.monotonic(), 0)))
        now = heartbeat_ages(ostudy._storage, _still_running(ostudy, watched))
        for number, before in list(watched.items()):
            age = now.get(number)
            if age is None or age < before:   # finished since, or beat again: not a gone driver's
                del watched[number]
            elif age > grace:
                gone.add(number)
                del watched[number]
            else:
                watched[number] = age
    return gone | set(watched)   # a heartbeat that never came again before the deadline: gone


def _still_running(ostudy: optuna.Study, numbers: dict[int, float]) -> list[FrozenTrial]:
    return [t for t in ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) if t.number in numbers]


def _listed(numbers: dict[int, float]) -> str:
    shown = sorted(numbers)
    return ", ".join(map(str, shown[:5])) + (", ..." if len(shown) > 5 else "")
