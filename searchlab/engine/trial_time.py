"""When a trial ended, for the time a search spent on it.

Optuna stamps a trial's end when its state is set. A trial whose process died unseen (killed -9, out of
memory, a lost machine) is failed later: by the next run of its study (days later, after a weekend) or by a
runner that saw its heartbeats stop. Its stamp is then that moment, and `compare` drew the whole gap as search
time, `status` summed it into the trials' run time, and `searchlab trials` gave it as the trial's duration.
So a trial records its last sign of life (user attr `alive_at`, unix seconds, written at its reports at most
every ALIVE_EVERY seconds), and such a trial ends there: short of its real end by at most that, plus the
epoch it died in.

A trial also starts later than Optuna's stamp under Ray: the driver asks for it when Tune asks, ahead of a free
slot, and a worker starts it when one is free (its user attr `started_at`, unix seconds). Its duration counts
from there, not from its time in Tune's queue.
"""
from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from optuna.trial import TrialState

ALIVE_AT = "alive_at"
STARTED_AT = "started_at"
ALIVE_EVERY = 10.0   # seconds: a storage write per epoch would cost a trivial trial as much as its own work
INTERRUPTED = "interrupted: its process ended without finishing"   # failed by the next run of its study
# ... one its run had asked for but no worker had started (Ray Tune asks ahead of free slots): not its doing
NEVER_STARTED = "interrupted: its run ended before a worker started it"
# ... one a worker was free for only after budget.timeout: not run (its config runs when the study does again)
AFTER_THE_DEADLINE = "interrupted: budget.timeout passed before a worker was free to start it"
NO_HEARTBEAT = "its runner sent no heartbeat"                       # failed by a runner beside it


def died_unseen(trial: Any) -> bool:
    """A trial failed by someone else than its own process, after that process was gone."""
    error = trial.user_attrs.get("error")
    return (trial.state == TrialState.FAIL and isinstance(error, str)
            and (error in (INTERRUPTED, NEVER_STARTED) or error.startswith(NO_HEARTBEAT)))


def trial_start(trial: Any) -> datetime | None:
    """When a worker started the trial (`started_at`), else Optuna's start stamp."""
    started = trial.user_attrs.get(STARTED_AT)
    if trial.datetime_start is None or not isinstance(started, (int, float)):
        return trial.datetime_start
    # Optuna's stamps are the writing machine's local time without a zone; fromtimestamp gives the same kind
    return max(trial.datetime_start, datetime.fromtimestamp(started))


def trial_end(trial: Any) -> datetime | None:
    """Optuna's end stamp, or for a trial that died unseen its last sign of life (its start if it never
    reported: what it did before its first report is not known to have happened)."""
    end, start = trial.datetime_complete, trial_start(trial)
    if end is None or start is None or not died_unseen(trial):
        return end
    alive = trial.user_attrs.get(ALIVE_AT)
    last = datetime.fromtimestamp(alive) if isinstance(alive, (int, float)) else start
    return min(end, max(last, start))


def trial_seconds(trial: Any) -> float | None:
    end, start = trial_end(trial), trial_start(trial)
    return max(0.0, (end - start).total_seconds()) if end and start else None


class AliveStamp:
    """Writes a trial's `alive_at`, at most every ALIVE_EVERY seconds."""

    def __init__(self) -> None:
        self.written = float("-inf")

    def touch(self, trial: Any) -> None:
        now = time.time()
        if now - self.written >= ALIVE_EVERY:
            trial.set_user_attr(ALIVE_AT, round(now, 3))
            self.written = now
