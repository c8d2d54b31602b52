"""`searchlab run`: create or resume the Optuna study, run the local workers, summarise.

Resuming: completed trials stay; `budget.n_trials` counts the total. When this process is the only runner
of a run directory (an exclusive lock) and the storage is a local file, trials left RUNNING by a killed
process are failed at once and their configs re-queued; otherwise Optuna's heartbeat does it. Ctrl-C,
SIGTERM and SIGHUP stop a run the same way: its running trials failed as interrupted, their configs re-queued
when it runs again (engine/signals.py).
"""
from __future__ import annotations

import contextlib
import fcntl
import shutil
import sys
import time
import warnings
from contextlib import contextmanager
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from searchlab.config.load import Study, locate_in_study, make_study_folder_importable
from searchlab.config.schema import ExecutorConfig, usable_cores
from searchlab.data import clear_cache
from searchlab.engine.changed_settings import fixed_settings
from searchlab.engine.disks import sqlite_on_network_warning
from searchlab.engine.progress import FINISHED, Progress, failed_configs, final_trials, stopped_by_failures
from searchlab.engine.own_trials import LEFT_RUNNING, OwnTrials, left_running
from searchlab.engine.context import refuse_unseen_cuda
from searchlab.engine.resume import check_resumable
from searchlab.engine.run_history import SAMPLER_STOPPED, record_run, run_entry, said_on_stderr
from searchlab.engine.rundir import check_same_storage, write_manifest
from searchlab.engine.study_record import study_record
from searchlab.engine.recovery import (configs_said, fail_left_running, left_running_note, recover_interrupted,
                                      recover_left_trials)
from searchlab.engine.signals import exit_code, hold_stops, release_stops, stop_on_signals
from searchlab.engine.stage_wait import TAKE_OVER, release_prepare_lock, stage_turn, take_prepare_lock
from searchlab.engine.storage import is_local_file, open_storage
from searchlab.engine.supervise import Supervisor
from searchlab.engine.trial_time import INTERRUPTED, NEVER_STARTED  # noqa: F401 (their home was here: kept importable)
from searchlab.engine.worker import ask_lock, run_worker
from searchlab.errors import ConfigError, SearchlabError, StorageError
from searchlab.strategy import (check_strategy_space, first_objective_warning, prepare_strategy, startup_warning,
                                unseeded_warning)
from searchlab.strategy_guard import StrategyStop
from searchlab.tasks import get_task


@dataclass(frozen=True)
class RunResult:
    study: optuna.Study
    interrupted: bool
    seconds: float
    exit_code: int = 0   # when interrupted: the shell's code for the stop's signal (130 Ctrl-C, 143 SIGTERM)
    trials_before: int = 0   # finished when the run started: a resumed study may have nothing left to run
    trials_finished: int = 0   # by this run (completed, pruned or failed)
    stopped_by: str = "budget.n_trials"   # or budget.timeout, budget.max_failed (a run that failed), interrupted
    failed_before: int = 0   # failed configs when the run started (budget.max_failed counts earlier runs' too)
    strategy_error: Exception | None = None   # a plug-in strategy's, that ended the run after trials (raised)


def run_study(study: Study, progress: bool = True) -> RunResult:
    with stop_on_signals():   # SIGTERM / SIGHUP stop the run as Ctrl-C does
        return _run(study, progress)


def refuse_what_cannot_run(study: Study) -> None:
    """Refuse, before the run's folder exists and before `run` says where it runs ("run: ... (new)"), a study
    that cannot start: a device it lacks, a space its strategy cannot search (deepmad on a timm model)."""
    try:
        refuse_unseen_cuda(study)
        check_strategy_space(study)
    except ConfigError as exc:
        raise locate_in_study(exc, study) from None


def _run(study: Study, progress: bool) -> RunResult:
    run_dir = study.run_dir
    # this study's modules first, not those of a study loaded after it (a script's load_study(a), load_study(b),
    # run_study(a) ran b's obj.py for a)
    make_study_folder_importable(study.base_dir / study.file.name)
    clear_cache()   # files read by an earlier run in this process may have changed since (their disk cache knows)
    with said_on_stderr() as start_warnings:
        refuse_what_cannot_run(study)
        try:
            get_task(study.config.task).prepare(study)
        except ConfigError as exc:
            raise locate_in_study(exc, study) from None
        _warn_if_oversubscribed(study)
        _warn_if_pruner_idle(study)
        for said in (unseeded_warning(study.config.strategy, study.base_dir),
                     startup_warning(study.config.strategy, study.base_dir, study.config.budget.n_trials),
                     first_objective_warning(study.config.strategy, study.base_dir,
                                             [metric for metric, _ in study.objectives]),
                     sqlite_on_network_warning(study.storage_url)):
            if said:
                print(f"warning: {said}", file=sys.stderr)
    new_dir = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    check_same_storage(study)
    with said_on_stderr() as resume_warnings:   # a changed setting, epochs or task code since the trials ran
        try:
            ostudy = create_or_load(study)
        except StorageError as exc:
            if new_dir:   # a refused run leaves no empty folder behind (SQLite may have made its file: kept)
                with contextlib.suppress(OSError):
                    run_dir.rmdir()
            raise _at_storage_key(exc, study) from None
    start_warnings += resume_warnings
    write_manifest(study)
    trials_before = len(ostudy.get_trials(deepcopy=False, states=FINISHED))
    failed_before = failed_configs(ostudy)
    started = time.time()
    deadline = started + study.config.budget.timeout if study.config.budget.timeout else None
    interrupted, code = False, 0
    own, strategy = OwnTrials(ostudy, started, run_dir), StrategyStop(study)
    with run_entry(ostudy, run_dir, started, lambda: own.count(ostudy, False)), \
            held_run_lock(run_dir, preparing=True) as lock:
        sole_runner = lock.sole
        own.note_start(ostudy, sole_runner)   # joining another: the progress says this run's trials only
        with said_on_stderr() as recovery_warnings:   # until the first trial: the run's start, in its history
            try:   # own.beside: a run of the study from another folder is open
                _recover_and_prepare(study, ostudy, sole_runner, deadline, new_dir, own.beside)
            finally:
                lock.prepared()   # runs that joined this one wait for it (engine/stage_wait.py)
        start_warnings += recovery_warnings
        # none once budget.timeout ran out before any trial (in the stage, or waiting for another run's): no trial
        # starts, and its "runs beside this one" line followed the note that this run trains nothing
        in_time = deadline is None or time.time() < deadline
        bar = Progress(ostudy, study.config.budget.n_trials, enabled=progress and in_time, own=own)
        try:
            with strategy.after_trials(lambda: own.count(ostudy, False)):   # the run then ends as a finished one
                _run_trials(study, ostudy, deadline, bar, own, alone=sole_runner, new_dir=new_dir)
                while _take_over_left_running(study, ostudy, started, deadline, lock):
                    _run_trials(study, ostudy, deadline, bar, own, alone=sole_runner, new_dir=new_dir)
        except KeyboardInterrupt as exc:
            interrupted, code = True, exit_code(exc)
            _fail_left_by_the_stop(study, ostudy, started, lock)
        except BaseException:   # no last update: a run refused before its first trial may have deleted its study
            bar.close()
            raise
        bar.update(ostudy)
        bar.close()
        left = not interrupted and bool(_unheld_running(study, ostudy, started, lock))
    seconds = time.time() - started
    # this run's own: a study-wide count took in what the runs that joined it (or it joined) finished meanwhile
    finished = own.count(ostudy, joined=own.shares_study(ostudy))
    own.record(ostudy)   # the folder holding their checkpoints, for an export from another run folder
    stopped_by = strategy.stopped_by or _stopped_by(study, ostudy, interrupted, deadline, left, strategy.plugin)
    record_run(ostudy, run_dir, started, seconds, stopped_by, finished, start_warnings)
    result = RunResult(ostudy, interrupted, seconds, code, trials_before, finished, stopped_by, failed_before,
                       strategy.error)
    if strategy.error is not None:   # raised for a Python caller as before; the command line summarises it first
        strategy.error.run_result = result
        raise strategy.error
    return result


def _stopped_by(study: Study, ostudy: optuna.Study, interrupted: bool, deadline: float | None, left: bool,
                plugin: str | None = None) -> str:
    """What stopped the run, for its history. `left`: RUNNING trials no live run holds are left; `plugin`: the
    strategy's class, when a plug-in (only those stop a study themselves)."""
    budget = study.config.budget
    if interrupted:
        return "interrupted"
    if stopped_by_failures(ostudy, budget.n_trials, budget.max_failed, False):
        return "budget.max_failed"
    if deadline and time.time() >= deadline:
        return "budget.timeout"
    # not the budget: trials a killed run left RUNNING (not taken over: a Ray driver's, or a server storage's)
    if left:
        return LEFT_RUNNING
    # short of the budget by nothing above: the sampler called study.stop() (Optuna's GridSampler and
    # BruteForceSampler once their grid is tried), which was recorded as the budget
    configs = sum(t.state in FINISHED for t in final_trials(ostudy))   # as the budget counts them
    return SAMPLER_STOPPED if plugin and configs < budget.n_trials else "budget.n_trials"


def _run_trials(study: Study, ostudy: optuna.Study, deadline: float | None, bar: Progress, own: OwnTrials,
                alone: bool, new_dir: bool) -> None:
    """Run the study's trials on the executor until its budget; `own` learns which trials were this run's."""
    def on_trial(told: optuna.Study, trial: FrozenTrial) -> None:
        bar.callback(told, trial)
        own.callback(told, trial)

    if study.config.executor.kind == "ray":
        _run_on_ray(study, ostudy, deadline, on_trial, alone=alone, new_dir=new_dir)
    elif study.config.executor.workers == 1 and study.config.budget.trial_timeout is None:
        run_worker(study, 0, deadline, on_trial=on_trial)
    else:
        supervisor = Supervisor(study, deadline, ostudy, bar)
        with own.watching(study.run_dir, lambda: [w.process.pid for w in supervisor.workers]):
            supervisor.run()


def _take_over_left_running(study: Study, ostudy: optuna.Study, started: float, deadline: float | None,
                            lock: HeldLock) -> bool:
    """Once this run's workers stopped: fail the RUNNING trials no live run of the folder holds (a run this one
    joined was killed -9) and queue their configs again, as a run that starts alone does; True when it did, for
    the workers to run them. On a local file only: a server storage's RUNNING trials may be another machine's
    (their heartbeats tell, engine/worker.py Budget.may_open). Not under Ray: its driver runs Tune once."""
    if study.config.executor.kind == "ray" or not is_local_file(study.storage_url):
        return False
    if deadline is not None and time.time() >= deadline:
        return False
    with ask_lock(study.run_dir):   # the workers' budget lock: no runner reads the budget mid-way
        if not (left := _unheld_running(study, ostudy, started, lock)):
            return False
        recovery = recover_left_trials(ostudy, study.config.executor.max_retries, fail_running=False,
                                       fixed_now=_fixed_names(study), gone={t.number for t in left})
    print(f"note: {len(left)} trial(s) RUNNING (trial {', '.join(str(t.number) for t in left[:5])}) were left by a "
          "run of this folder that ended without finishing them (killed): they held budget.n_trials, so this run "
          f"failed them{configs_said(recovery)}", file=sys.stderr)
    return True


def _fail_left_by_the_stop(study: Study, ostudy: optuna.Study, started: float, lock: HeldLock) -> None:
    """Once an interrupted run's workers stopped, FAIL as interrupted what they left RUNNING (configs run again
    later): a stop inside Optuna's ask, before the objective, left it RUNNING (2 of 14 stops of 2 workers).
    Where _take_over_left_running would (a local file, no Ray); a second Ctrl-C meanwhile is held."""
    if study.config.executor.kind == "ray" or not is_local_file(study.storage_url):
        return
    hold_stops()
    try:
        with ask_lock(study.run_dir):   # the workers' budget lock: a runner that joined this one may be reading
            fail_left_running(ostudy, _unheld_running(study, ostudy, started, lock))
    finally:
        release_stops()


def _unheld_running(study: Study, ostudy: optuna.Study, started: float, lock: HeldLock) -> list[FrozenTrial]:
    """RUNNING trials no live run holds, once this run's workers stopped: none while another runner holds the
    folder's lock (its entry in the run history may not be written yet)."""
    left = left_running(ostudy, study.run_dir, started)
    return left if left and not lock.others_hold() else []


def _recover_and_prepare(study: Study, ostudy: optuna.Study, sole_runner: bool, deadline: float | None,
                         new_dir: bool, others_open: bool = False) -> None:
    """What the run's sole runner does before the first trial: recover what a killed run left, and let the
    strategy prepare (queue its designs); a runner joining another says so, and waits for the other's stage
    before training (zen_nas, deepmad), continuing it itself if that runner ended without queuing its designs."""
    if not sole_runner:   # by design (more workers from another shell), but a user may not know it
        print(f"note: another `searchlab run` of {study.run_dir} is running: this one joins it as more workers of "
              "the same study (together they stop at budget.n_trials; Ctrl-C stops this one only)", file=sys.stderr)
        with stage_turn(study, ostudy, deadline) as turn:
            if turn == TAKE_OVER:   # beside others still (its RUNNING trials are not failed: they may be theirs)
                _prepare_alone(study, ostudy, deadline, new_dir, others_open=True)
                return
        _requeue_interrupted(study, ostudy)
        return
    _prepare_alone(study, ostudy, deadline, new_dir, others_open)


def _prepare_alone(study: Study, ostudy: optuna.Study, deadline: float | None, new_dir: bool,
                   others_open: bool) -> None:
    """The sole runner's recovery and the strategy's preparation (_recover_and_prepare)."""
    # Trials left RUNNING are failed at once only where no other machine can be running them: a local file's
    # study. On a server, a Ray driver's trials are failed once their driver is seen to be gone (its heartbeats
    # stopped), other runners' once their heartbeat is stale (Optuna's, as they run). Interrupted trials already
    # FAIL are re-queued on any storage (a Ctrl-C'd run on PostgreSQL said their configs would run again).
    # Not while a run of the study from another folder is open (`others_open`: its RUNNING trials are its own): a
    # second folder sharing the SQLite file failed the first's live trials, and the first crashed telling them
    owned = is_local_file(study.storage_url) and not others_open
    gone: set[int] = set()
    if study.config.executor.kind == "ray" and not owned:
        from searchlab.engine.driver_liveness import trials_of_gone_drivers

        gone = trials_of_gone_drivers(ostudy)
    recovery = recover_left_trials(ostudy, study.config.executor.max_retries, fail_running=owned,
                                   fixed_now=_fixed_names(study), gone=gone)
    if recovery.failed:   # which of their configs run again, and which do not (the warning above says why)
        print(left_running_note(recovery), file=sys.stderr)
    try:
        prepare_strategy(study, ostudy, deadline)
    except ConfigError as exc:
        _forget_if_empty(study, ostudy, new_dir)
        raise locate_in_study(exc, study) from None


def _requeue_interrupted(study: Study, ostudy: optuna.Study) -> None:
    """A joining run leaves RUNNING trials alone (the other runner's), but queues again the configs of trials
    interrupted since (a run of the folder Ctrl-C'd and started again joins the one still going: its
    interrupted configs were never run again). Under the workers' ask lock: two joining at once queue each once."""
    with ask_lock(study.run_dir):
        recover_interrupted(ostudy, study.config.executor.max_retries, fail_running=False,
                            fixed_now=_fixed_names(study))


def _fixed_names(study: Study) -> set[str]:
    """The settings this run's space holds fixed: a retry of a config that drew one while it was searched runs
    at this run's fixed value (engine/storage.py RetryLost)."""
    return {fixed.name for _, fixed, _ in fixed_settings(study.space)}


def _run_on_ray(study: Study, ostudy: optuna.Study, deadline: float | None,
                on_trial: Callable[[optuna.Study, FrozenTrial], None], alone: bool, new_dir: bool) -> None:
    from searchlab.engine.ray_executor import run_ray   # ray: an optional, heavy import

    try:
        run_ray(study, deadline, on_trial=on_trial, alone=alone)
    except SearchlabError:   # a cluster out of reach or too small is refused before its first trial
        if alone:            # another runner's study is its own to keep
            _forget_if_empty(study, ostudy, new_dir)
        raise


def _warn_if_oversubscribed(study: Study) -> None:
    ex = study.config.executor
    if ex.kind == "local" and (said := _local_threads_over_cores(ex, usable_cores())):
        print(f"warning: {said}", file=sys.stderr)
    if ex.kind == "ray" and "workers" in ex.model_fields_set:
        print("warning: executor.workers is for kind: local; under Ray, resources_per_trial and max_concurrent "
              "set how many trials run at once", file=sys.stderr)
    if ex.kind == "ray" and (said := _ray_threads_over_cpus(ex)):
        print(f"warning: {said}", file=sys.stderr)


def _local_threads_over_cores(ex: ExecutorConfig, cores: int) -> str | None:
    """Local workers run torch threads side by side: more of them in all than cores, and they take turns on the
    cores (each thread waiting on the others'), so every trial runs slower than the same trials fewer at once."""
    threads = ex.threads_per_worker or max(1, cores // ex.workers)   # ex.local_threads, on these cores
    if ex.workers * threads <= cores:
        return None
    written = f" x executor.threads_per_worker={threads}" if ex.threads_per_worker else ""
    if ex.workers > cores:
        fix = f"workers: {cores}" + (", and leave threads_per_worker out (each worker then runs cores // workers "
                                     "threads)" if written else "")
    else:   # only a threads_per_worker written can exceed the cores' share
        fix = f"threads_per_worker: {cores // ex.workers}, or leave it out (cores // workers)"
    return (f"executor.workers={ex.workers}{written} on {cores} cores: {ex.workers} trial(s) at once with "
            f"{threads} torch thread(s) each, {ex.workers * threads} threads on {cores} cores; the threads beyond "
            f"the cores take turns on them, so each trial runs slower than with one thread per core. Fix: {fix}")


def _ray_threads_over_cpus(ex: ExecutorConfig) -> str | None:
    """Ray packs trials by the CPUs they reserve; more torch threads than that share cores with the trials beside
    (a GPU trial's CPU share only feeds its GPU, so fractions are not said there)."""
    cpu = ex.resources_per_trial.cpu
    threads = ex.ray_threads
    if threads <= cpu or (ex.resources_per_trial.gpu and not ex.threads_per_worker):
        return None
    written = f"executor.threads_per_worker={threads} with " if ex.threads_per_worker else ""
    return (f"{written}executor.resources_per_trial.cpu={cpu:g}: each trial runs {threads} torch thread(s) on the "
            f"{cpu:g} CPU Ray reserves for it, so trials beside each other share cores and each runs slower. Fix: "
            f"resources_per_trial.cpu: {threads}" + (", or leave threads_per_worker out" if written else ""))


def _forget_if_empty(study: Study, ostudy: optuna.Study, new_dir: bool) -> None:
    """A run refused before its first trial leaves nothing behind: no empty study (the next run would call
    itself a resume) and no run folder it made."""
    if ostudy.get_trials(deepcopy=False):
        return
    optuna.delete_study(study_name=ostudy.study_name, storage=ostudy._storage)
    if new_dir:
        shutil.rmtree(study.run_dir, ignore_errors=True)


def _warn_if_pruner_idle(study: Study) -> None:
    """Optuna's pruners judge one intermediate value; with several objectives nothing is reported to them."""
    pruner = study.config.pruner
    if len(study.directions) > 1 and "pruner" in study.config.model_fields_set and pruner.kind != "none":
        print(f"warning: pruner {pruner.kind!r} has no effect in a study of {len(study.directions)} objectives: "
              "Optuna prunes on one intermediate value, and multi-objective trials report none. Fix: pruner: none "
              "(or one objective)", file=sys.stderr)


def _at_storage_key(exc: StorageError, study: Study) -> StorageError:
    """A storage that cannot be opened, named at the study file's `storage` line (or its --set), as every
    other error of the study file is."""
    rule, _, fix = str(exc).partition(". Fix: ")
    if (study.source is None and study.file is None) or study.config.storage is None:
        return exc   # the default database in run_dir: no line of the file to name (it named line 1)
    return StorageError(str(locate_in_study(ConfigError(rule, key="storage", fix=fix or None), study)))


def create_or_load(study: Study) -> optuna.Study:
    storage = open_storage(study.storage_url)
    ostudy = optuna.create_study(study_name=study.config.name, storage=storage, load_if_exists=True,
                                 directions=study.directions)
    record = study_record(study)
    check_resumable(study, ostudy, record)
    finished = len(ostudy.get_trials(deepcopy=False, states=FINISHED))
    if finished < study.config.budget.n_trials or "searchlab" not in ostudy.user_attrs:
        # a run that trains nothing (its budget is reached) keeps the record of the runs that trained: its
        # own settings (another budget.epochs) would otherwise be reported as theirs
        ostudy.set_user_attr("searchlab", record)
    _name_the_objectives(ostudy, study)
    return ostudy


def _name_the_objectives(ostudy: optuna.Study, study: Study) -> None:
    """The objectives' names (auc, params), which optuna-dashboard labels its plots and columns with: it showed
    "Objective 0" and "Objective 1", so a Pareto plot did not say which axis was AUC."""
    names = [metric for metric, _ in study.objectives]
    if ostudy.metric_names != names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            ostudy.set_metric_names(names)


@contextmanager
def run_lock(run_dir: Path) -> Iterator[bool]:
    """Shared lock for every runner of this run directory; yields True if we were alone when we started."""
    with held_run_lock(run_dir) as lock:
        yield lock.sole


@dataclass
class HeldLock:
    """A runner's shared hold of its run folder's lock."""
    fh: Any
    sole: bool   # no other runner held it when this one started
    preparing: Any = None   # the sole runner's prepare lock, until prepared() (engine/stage_wait.py)

    def prepared(self) -> None:
        """The run's preparation (its stage before training) is over: runners that joined it may go on."""
        release_prepare_lock(self.preparing)
        self.preparing = None

    def others_hold(self) -> bool:
        """Another runner holds it now: ours cannot turn exclusive (a few tries: `status` probes it an instant).
        Linux drops a shared flock whose conversion failed: it is taken again either way."""
        try:
            return not _alone(self.fh)
        finally:
            fcntl.flock(self.fh, fcntl.LOCK_SH)


@contextmanager
def held_run_lock(run_dir: Path, preparing: bool = False) -> Iterator[HeldLock]:
    """`preparing`: a sole runner also takes the folder's prepare lock, before any runner can join it (one that
    does waits on it for the stage before training), until HeldLock.prepared()."""
    with (run_dir / ".lock").open("a") as fh:
        sole = _alone(fh)
        lock = HeldLock(fh, sole, take_prepare_lock(run_dir) if sole and preparing else None)
        fcntl.flock(fh, fcntl.LOCK_SH)   # downgrade: later runners may join as extra workers
        try:
            yield lock
        finally:
            lock.prepared()
            fcntl.flock(fh, fcntl.LOCK_UN)


def _alone(fh: Any, tries: int = 10) -> bool:
    """No other runner holds the folder's lock. `searchlab status` probes it exclusively for an instant: a run
    starting then took itself for a joining worker and skipped recovering the trials a killed run left; a
    runner holds its shared lock for good, so a few tries tell the two apart."""
    for attempt in range(tries):
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if attempt < tries - 1:
                time.sleep(0.05)
    return False
