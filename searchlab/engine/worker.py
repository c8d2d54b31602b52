"""One local worker: runs trials of a study until the shared budget is reached.

Workers (processes) share only the storage. Each counts finished + running trials before starting one, so
the study stops at `budget.n_trials` in total, across workers and across resumed runs.
"""
from __future__ import annotations

import fcntl
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from searchlab.config.load import Study
from searchlab.engine.current_trial import STOPS_RUN, announce_trial, leave_stop_error, stop_run_file, trial_done
from searchlab.engine.objective import make_objective
from searchlab.engine.orphans import HOLDER, holder_stamp, take_over_orphans
from searchlab.engine.progress import FINISHED, final_trials
from searchlab.engine.retention import checkpoint_retention
from searchlab.engine.signals import (STOP_SIGNALS, Interrupted, hold_stops, interruption_message, raise_if_stopped,
                                      release_stops, stop_worker_on_signals)
from searchlab.engine.storage import (GRACE_SECONDS, artifact_store, count_trials, is_local_file,
                                      lost_storage_error, open_storage)
from searchlab.engine.trial_seed import SeededByFirstTrial, stream_seed
from searchlab.errors import DataChanged, SearchlabError
from searchlab.strategy import build_pruner, build_sampler, resolve
from searchlab.strategy_guard import GuardedSampler, StrategyError, keep_traceback
from searchlab.tasks import get_task, pruner_steps



def limit_threads(study: Study) -> int:
    threads = study.config.executor.local_threads
    torch.set_num_threads(threads)
    return threads


def open_optuna_study(study: Study, worker_index: int = 0, heartbeat: bool = True) -> optuna.Study:
    """The study with this worker's sampler; heartbeats (trials of a dead process failed and re-queued) when
    the storage is shared and trials run in Study.optimize, the only place Optuna sends them."""
    shared = study.config.executor.workers > 1 or not is_local_file(study.storage_url)
    storage = open_storage(study.storage_url, heartbeat=heartbeat and shared,
                           retries=study.config.executor.max_retries)
    # `run` has created the study already: its next trial number is, for a lone runner, this worker's first
    existing = count_trials(storage, storage.get_study_id_from_name(study.config.name))
    plugin = resolve(study.config.strategy, study.base_dir).class_

    def sampler_from(first_trial: int) -> BaseSampler:
        sampler = build_sampler(study.config.strategy, stream_seed(study.config.seed, worker_index, first_trial),
                                study.base_dir, study)
        return GuardedSampler(sampler, plugin) if plugin else sampler

    return optuna.load_study(study_name=study.config.name, storage=storage,
                             sampler=SeededByFirstTrial(sampler_from, existing),
                             pruner=build_pruner(study.config.pruner, pruner_steps(study)))


WAIT_SECONDS = 1.0   # between looks at the running trials, while only they hold the budget


class Budget:
    """Is there budget left? Counts finished + running trials of every worker in the storage.

    Read afresh before every trial, under the AskGate: an allowance of several trials between reads (tried
    once, to save the read) goes stale when its worker stalls or runs one long trial while the others use
    up the budget (bench/fault_injection.py measured 4 journal workers overshooting 200 trials by up to 33).
    The read is cheap: Optuna's cached RDB storage re-reads only unfinished trials (~1 ms at 300 trials),
    the journal only its new lines.
    """

    def __init__(self, study: Study) -> None:
        self.n_trials = study.config.budget.n_trials
        self.max_failed = study.config.budget.max_failed or self.n_trials

    def left(self, ostudy: optuna.Study) -> bool:
        """May another trial start? No with trials running may turn to yes when one of them fails."""
        final = final_trials(ostudy)
        used = sum(t.state in FINISHED or t.state == TrialState.RUNNING for t in final)
        # Trials already running finish after the failure cap: with several at once, up to (concurrent - 1)
        # more may fail (the run's summary says the cap stopped it)
        failed = sum(t.state == TrialState.FAIL for t in final)
        return min(self.n_trials - used, self.max_failed - failed) > 0

    def capped(self, ostudy: optuna.Study) -> bool:
        """The failure cap is reached: nothing that still runs can open room again."""
        failed = sum(t.state == TrialState.FAIL for t in final_trials(ostudy))
        return failed >= self.max_failed

    def may_open(self, ostudy: optuna.Study) -> bool:
        """No budget left now, but some may open: a running trial can still fail, or, with heartbeats (a shared
        storage), turn out to be a dead process's, which stays RUNNING, holding budget, until Optuna fails it.
        Optuna does that only when asked for a new trial: a run restarted after its last trial's process was
        killed (PostgreSQL, where RUNNING trials may be other machines') found no budget left and exited, and
        the trial stayed RUNNING for good. Fails such trials now (their configs are queued again)."""
        if self.capped(ostudy) or not _heartbeats(ostudy) or not _running(ostudy):
            return False
        with warnings.catch_warnings():   # experimental in Optuna: its warning would reach every run's stderr
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(ostudy)
        return True


ASK_LOCK = ".ask.lock"   # in the run folder


@contextmanager
def ask_lock(run_dir: Path) -> Iterator[None]:
    """The lock AskGate holds, for a step of a runner's own (queuing configs again): no worker reads the budget
    mid-way."""
    with (run_dir / ASK_LOCK).open("a") as gate:
        fcntl.flock(gate, fcntl.LOCK_EX)
        yield


class AskGate:
    """Makes "is there budget left?" and the creation of the next trial one step across local workers.

    Without it two workers finishing together could both see one trial left and both start one. The file
    lock is taken before the budget check and released once Optuna has created the trial (first thing the
    objective does), so the next worker's count includes it.
    """

    def __init__(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.fh = (run_dir / ASK_LOCK).open("a")
        self.held = False

    def hold(self) -> None:
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            fcntl.flock(self.fh, fcntl.LOCK_UN)

    def close(self) -> None:
        self.release()
        self.fh.close()


def run_worker(study: Study, worker_index: int = 0, deadline: float | None = None,
               on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None, supervised: bool = False) -> None:
    """Run trials until the budget, the failure cap or the wall-clock deadline (time.time()) is reached.

    The budget is checked before the first trial and after every trial (counting other workers' running
    trials), so the study stops at n_trials in total. No per-trial gc.collect(): trial objects are freed by
    reference counting, and a full collection with torch loaded costs ~0.1 s (bench/memory.py shows no growth).

    A trial that finds the run's data changed (DataChanged) fails, and the error is raised once Optuna recorded
    it: the run stops, as every later trial would fail the same way (an audit saw 10 fail in 13 s, until
    budget.max_failed ended the run with the files still changed). Its config is queued again by the next run
    (engine/recovery.py runs_again), not this one: a sibling worker took such a retry before the run stopped,
    and it failed the same way.
    """
    limit_threads(study)
    ostudy = open_optuna_study(study, worker_index)
    budget, gate = Budget(study), AskGate(study.run_dir)
    objective = make_objective(study, get_task(study.config.task), artifact_store(study.run_dir), deadline)
    retention = checkpoint_retention(study)
    data_changed: list[DataChanged] = []   # the error of this worker's trial that found the data changed
    # a local file has no heartbeats: each trial names its process, and a dead one's trial is taken over at an ask
    stamp = holder_stamp(study.run_dir, supervised) if is_local_file(study.storage_url) else None

    def go_on() -> bool:
        said_waiting = supervised   # a supervised worker's siblings hold the budget often: the parent reports
        while True:
            raise_if_stopped()
            gate.hold()   # released by the next trial's objective, or below when we stop
            if _past(deadline):
                gate.release()
                return False
            if stamp is not None:   # before the budget: a killed run's trial held it, and its config runs next
                take_over_orphans(study, ostudy)
            if budget.left(ostudy):
                return True
            gate.release()
            if not budget.may_open(ostudy):
                return False
            if not said_waiting and (running := _running(ostudy)):
                said_waiting = True
                say_waiting(running, ostudy)
            time.sleep(WAIT_SECONDS)   # for the running trials: they finish, fail or go stale

    def gated_objective(trial: optuna.Trial) -> Any:
        try:
            gate.release()   # the trial exists now: other workers' counts include it
            if stamp is not None:
                trial.set_user_attr(HOLDER, stamp)
            if supervised:
                announce_trial(study.run_dir, trial)
            return objective(trial)
        except DataChanged as exc:   # failed by Optuna as any error; then the run stops (stop_when_done)
            data_changed.append(exc)
            raise
        except KeyboardInterrupt as exc:   # one before the objective's own record failed the trial unsaid (not
            trial.set_user_attr("error", interruption_message(exc))   # retried, a failed config): said here too
            raise
        finally:
            hold_stops()   # Optuna records the outcome next; a stop then is raised after it (go_on)

    def stop_when_done(ostudy: optuna.Study, trial: FrozenTrial) -> None:
        release_stops()   # recorded: a stop that came meanwhile is raised by go_on, after the bookkeeping
        if supervised:
            trial_done(study.run_dir)
        if retention is not None:
            retention(ostudy, trial)
        if on_trial is not None:
            on_trial(ostudy, trial)
        if data_changed:   # its config runs again when the study next runs (engine/recovery.py runs_again)
            ostudy.stop()
        elif not go_on():
            ostudy.stop()

    try:
        if go_on():
            ostudy.optimize(gated_objective, catch=(Exception,), callbacks=[stop_when_done])
    finally:
        release_stops()   # Optuna re-raised the trial's own stop after recording it: no callback ran
        gate.close()
    if data_changed:
        raise data_changed[0]


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.time() >= deadline


def _heartbeats(ostudy: optuna.Study) -> bool:
    interval = getattr(ostudy._storage, "get_heartbeat_interval", None)   # RDB storages (Optuna's BaseHeartbeat)
    return interval is not None and interval() is not None


def _running(ostudy: optuna.Study) -> list[FrozenTrial]:
    return ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def say_waiting(running: list[FrozenTrial], ostudy: optuna.Study) -> None:
    """A run whose budget only running trials hold waits for them (engine/worker.py Budget.may_open): on a
    server storage they may be another machine's, or a killed run's, which only their stale heartbeat tells.
    That wait (up to the grace period) looked like a hang."""
    grace = getattr(getattr(ostudy._storage, "_backend", ostudy._storage), "grace_period", None) or GRACE_SECONDS
    numbers = ", ".join(str(t.number) for t in running[:5]) + (", ..." if len(running) > 5 else "")
    print(f"note: waiting for {len(running)} trial(s) RUNNING in the storage (trial {numbers}: another runner's, "
          f"on this or another machine, or left by a killed run) that hold the rest of budget.n_trials: they "
          f"finish, or are failed (and their configs run again) once their runner has sent no heartbeat for "
          f"{grace} s", file=sys.stderr)


def worker_process_main(study: Study, worker_index: int, deadline: float | None,
                        honoured: tuple[int, ...] = STOP_SIGNALS) -> None:
    """Entry point of a spawned worker process. It takes the study the run loaded, not its file read again: a
    file edited during a run (for the next one) gave a worker started later, replacing a dead one, other
    settings than the run's, recorded under the run's name. `honoured`: the stop signals its run does not ignore
    (its own Ctrl-C is ignored while it starts, so it cannot tell)."""
    from searchlab.config.load import make_study_folder_importable

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    make_study_folder_importable(study.base_dir / study.file.name)
    try:
        stop_worker_on_signals(honoured)   # a stop held while this process started is raised here
        run_worker(study, worker_index, deadline, supervised=True)
    except SearchlabError as exc:   # a strategy plug-in that raised outside a trial, data changed: the parent says it
        if isinstance(exc, StrategyError):   # its traceback is the plug-in's code: for the run's --debug
            keep_traceback(exc, study.run_dir, os.getpid())
        leave_stop_error(study.run_dir, os.getpid(), exc)
        raise SystemExit(STOPS_RUN) from None
    except Interrupted:
        # Its running trial is FAIL, marked interrupted. Exit code 1: a parent that is not stopping itself
        # (this worker alone was told to stop) retries that trial and starts a new worker.
        raise SystemExit(1) from None
    except Exception as exc:   # the database server went away: said once by the parent, as `run` alone says it
        lost = lost_storage_error(study.storage_url, exc)
        if lost is None:
            raise
        stop_run_file(study.run_dir, os.getpid()).write_text(str(lost))
        raise SystemExit(STOPS_RUN) from None
