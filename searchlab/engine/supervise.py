"""Supervised local worker processes: a worker that dies or a trial that hangs fails alone, and the study goes on.

Each worker process writes which trial it is running into `<run_dir>/.workers/<pid>.json`. The parent polls:
- a worker that ended abnormally (killed by the out-of-memory killer, a signal, a crash) leaves its trial
  RUNNING: the trial is failed at once with the reason and its config queued again (executor.max_retries),
  and a new worker takes the dead one's place;
- a trial running longer than `budget.trial_timeout` is killed with its worker (a Python thread cannot be
  stopped, a process can), failed with the reason and not retried (it would hang again); a new worker starts.
A worker whose error stops the whole run (a lost storage server; a trial that found the run's data changed, which
every later trial would find too) exits with STOPS_RUN: its error is raised here, once, and the run stops.
When the run stops (done, Ctrl-C, SIGTERM, such an error), live workers are told to stop and given STOP_SECONDS to
record their running trials as interrupted (engine/signals.py); one still alive then is killed.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from searchlab.config.load import Study
from searchlab.engine.current_trial import STOPS_RUN, current_trial_file, stop_error, stop_run_file
from searchlab.engine.progress import Progress
from searchlab.engine.signals import (STOP_SECONDS, ctrl_c_ignored_by_started_processes, forwarded_stop,
                                     honoured_stops, is_interruption, raise_if_stopped)
from searchlab.engine.storage import retry_callback
from searchlab.engine.worker import AskGate, worker_process_main

POLL_SECONDS = 0.2
SIGINT_GRACE = 1.0   # seconds for a started worker to take a forwarded Ctrl-C before the SIGTERM


@dataclass
class Worker:
    index: int
    process: Any      # multiprocessing.Process

    def current(self, run_dir: Path) -> dict[str, Any] | None:
        try:
            return json.loads(current_trial_file(run_dir, self.process.pid).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None


class Supervisor:
    def __init__(self, study: Study, deadline: float | None, ostudy: optuna.Study, bar: Progress) -> None:
        self.study, self.deadline, self.ostudy, self.bar = study, deadline, ostudy, bar
        self.ctx = multiprocessing.get_context("spawn")   # fork would copy torch's thread pools and locks
        self.timeout = study.config.budget.trial_timeout
        self.retry = retry_callback(study.config.executor.max_retries)
        self.gate = AskGate(study.run_dir)
        self.lost_in_poll = 0
        self.workers = [self._start(i) for i in range(study.config.executor.workers)]

    def _start(self, index: int) -> Worker:
        proc = self.ctx.Process(target=worker_process_main, daemon=True,   # it ignores the stops this run ignores
                                args=(self.study, index, self.deadline, honoured_stops()))
        with ctrl_c_ignored_by_started_processes():
            proc.start()
        return Worker(index, proc)

    def run(self) -> None:
        try:
            while self.workers:
                raise_if_stopped()
                self.bar.update(self.ostudy)
                self.lost_in_poll = 0   # workers of this poll ended outside a trial: the count goes on without
                self.workers = [w for w in (self._check(w) for w in self.workers) if w is not None]
                time.sleep(POLL_SECONDS)
        finally:
            self._stop_workers()
            self.gate.close()

    def _stop_workers(self) -> None:
        """The stop this run got (SIGTERM when it ends by itself) to each live worker: Ctrl-C in a terminal
        reaches every process, but a signal sent to this one alone left the workers running the study
        unsupervised. A worker stopping already (it got the Ctrl-C) ignores it."""
        alive = [w.process for w in self.workers if w.process.is_alive()]
        stop = forwarded_stop()
        for proc in alive:
            os.kill(proc.pid, stop)
        if stop == signal.SIGINT:   # a worker still importing ignores it; SIGTERM ends that one (a started one
            time.sleep(SIGINT_GRACE)   # records its trial under the Ctrl-C and ignores the SIGTERM)
            for proc in alive:
                if proc.is_alive():
                    proc.terminate()
        deadline = time.time() + STOP_SECONDS
        for proc in alive:
            proc.join(timeout=max(0.0, deadline - time.time()))
            if proc.is_alive():
                proc.kill()   # its trial stays RUNNING: failed and re-queued when the study runs again
                proc.join()
            current_trial_file(self.study.run_dir, proc.pid).unlink(missing_ok=True)
        for worker in self.workers:   # ended ones too: one may have exited with it before this poll saw it
            # a second worker stopped by the same plug-in error left it too: the run says it once, from the first
            stop_run_file(self.study.run_dir, worker.process.pid).unlink(missing_ok=True)

    def _check(self, worker: Worker) -> Worker | None:
        """The worker to keep watching: itself, its replacement, or None when it finished normally."""
        proc, run_dir = worker.process, self.study.run_dir
        if not proc.is_alive():
            proc.join()
            running = worker.current(run_dir)
            current_trial_file(run_dir, proc.pid).unlink(missing_ok=True)
            stopped = stop_run_file(run_dir, proc.pid)
            if proc.exitcode == STOPS_RUN and stopped.is_file():   # its error stops the run: said once, here
                error = stop_error(stopped)
                stopped.unlink()
                raise error
            if proc.exitcode == 0:
                return None
            if running is None:   # it failed outside any trial (its error is on stderr): not restarted
                self.lost_in_poll += 1   # two ended in one poll both said "1 worker(s)" of 2
                print(f"warning: worker process {worker.index} ended with exit code {proc.exitcode} outside any "
                      f"trial (its error is above); the run goes on with {len(self.workers) - self.lost_in_poll} "
                      "worker(s)", file=sys.stderr)
                return None
            self._fail(running, _death(proc.exitcode), retry=True)
            return self._start(worker.index)
        running = worker.current(run_dir)
        if self.timeout is not None and running and time.time() - running["started"] > self.timeout:
            os.kill(proc.pid, signal.SIGKILL)
            proc.join()
            current_trial_file(run_dir, proc.pid).unlink(missing_ok=True)
            self._fail(running, f"exceeded budget.trial_timeout={self.timeout:g} s: its worker process was "
                                "killed (a trial that hangs would hang again, so it is not retried)", retry=False)
            return self._start(worker.index)
        return worker

    def _fail(self, running: dict[str, Any], reason: str, retry: bool) -> None:
        storage = self.ostudy._storage
        trial = storage.get_trial(running["trial_id"])
        # A worker told to stop (SIGTERM to it alone) failed its trial itself, as interrupted: retried too
        stopped = trial.state == TrialState.FAIL and is_interruption(trial.user_attrs.get("error"))
        if trial.state != TrialState.RUNNING and not stopped:
            return   # it finished just before the process ended
        # Under the workers' budget lock: between FAIL and the queued retry, a worker reading the budget
        # would count a failed config that is about to be retried, stop at max_failed, and leave the retry
        # WAITING for ever (seen once in CI under load).
        self.gate.hold()
        try:
            failed = stopped
            if not stopped:
                storage.set_trial_user_attr(trial._trial_id, "error", reason)
                failed = storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
            if retry and failed:
                self.retry(self.ostudy, storage.get_trial(trial._trial_id))
        finally:
            self.gate.release()


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        name = signal.Signals(-exitcode).name
        hint = " (the out-of-memory killer sends this)" if exitcode == -signal.SIGKILL else ""
        return f"its worker process was killed by {name}{hint} while running it"
    return f"its worker process ended with exit code {exitcode} while running it"
