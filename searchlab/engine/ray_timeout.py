"""`budget.trial_timeout` under `executor: {kind: ray}`: a trial that overruns is killed with its Ray worker.

Tune has no per-trial wall-clock limit that ends a trial which never reports (its stop criteria are read at
reports, and a hang reports nothing), so a hung trial held its slot, and the run, forever. As the local
supervisor does from outside, the worker kills its own process: a timer thread records the reason on the
trial, then SIGKILLs the process (torch's kernels release the GIL, so the timer gets to run). Tune reports
the lost actor as an errored trial; the driver keeps this reason and, unlike a worker lost otherwise, does
not retry the config: a trial that hangs would hang again.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import optuna

TIMEOUT_PREFIX = "exceeded budget.trial_timeout="


def timeout_reason(seconds: float) -> str:
    return (f"{TIMEOUT_PREFIX}{seconds:g} s: its Ray worker process was killed (a trial that hangs would hang "
            "again, so it is not retried)")


def timed_out(error: str | None) -> bool:
    return bool(error) and error.startswith(TIMEOUT_PREFIX)


class TrialWatchdog:
    """Started with the trial; `finish()` when it ends. Whichever comes first, the end or the timer, wins."""

    def __init__(self, trial: optuna.Trial, seconds: float | None) -> None:
        self.trial, self.seconds = trial, seconds
        self.lock = threading.Lock()
        self.ended = False
        self.timer = threading.Timer(seconds, self._kill) if seconds is not None else None
        if self.timer is not None:
            self.timer.daemon = True
            self.timer.start()

    def _kill(self) -> None:
        with self.lock:
            if self.ended:
                return
            self.ended = True
        try:
            self.trial.set_user_attr("error", timeout_reason(self.seconds))
        finally:
            os.kill(os.getpid(), signal.SIGKILL)

    def finish(self) -> None:
        """The trial ended in time; if the timer won instead, wait here for the kill (report nothing)."""
        with self.lock:
            fired, self.ended = self.ended, True
        if self.timer is not None:
            self.timer.cancel()
        while fired:
            time.sleep(1)
