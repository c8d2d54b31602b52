"""What a run does with the trials an earlier run left: RUNNING ones whose process is gone are failed, and the
configs of interrupted trials are queued again (at most executor.max_retries times for a config whose process
ended without a word). Used by engine/run.py as a run starts, and when it takes over what a joined run left."""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Collection
from dataclasses import dataclass, field

import optuna
from optuna.trial import FrozenTrial, TrialState

from searchlab.engine.signals import is_interruption
from searchlab.engine.storage import retry_callback
from searchlab.engine.trial_time import INTERRUPTED, NEVER_STARTED
from searchlab.errors import DataChanged


# how the error of a trial that found the run's data changed starts (engine/objective.py: "Name: message")
DATA_CHANGED_ERROR = f"{DataChanged.__name__}: "

# the study's user attr listing the trials whose config was dropped at executor.max_retries (and said so)
NOT_RETRIED = "searchlab_not_retried"


@dataclass(frozen=True)
class Recovery:
    """Trial numbers: `failed`, the RUNNING ones failed now; of those, `requeued` (their config runs again),
    `dropped` (over executor.max_retries: not run again, the warning says why) and `kept_error` (one that
    stored its own error before its process ended: its config's failure, not an interruption)."""
    failed: list[int] = field(default_factory=list)
    requeued: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)
    kept_error: list[int] = field(default_factory=list)


def recover_interrupted(ostudy: optuna.Study, max_retries: int, fail_running: bool = True,
                        fixed_now: Collection[str] = (), gone: Collection[int] = ()) -> int:
    """recover_left_trials, for callers that need only how many RUNNING trials were failed."""
    return len(recover_left_trials(ostudy, max_retries, fail_running, fixed_now, gone).failed)


def recover_left_trials(ostudy: optuna.Study, max_retries: int, fail_running: bool = True,
                        fixed_now: Collection[str] = (), gone: Collection[int] = (),
                        only_failed_here: bool = False) -> Recovery:
    """Fail trials a killed process left RUNNING (all with `fail_running`, else those numbered in `gone`) and
    re-queue their configs (like Optuna's heartbeat); one that stored its error before its process ended keeps
    it and is not retried.

    Also re-queues interrupted trials whose retry was never queued, and those that found the run's data changed
    (runs_again): those stopped by Ctrl-C or SIGTERM (their
    config was never judged), and those of a process killed between failing a trial and queuing its retry
    (measured: 1 in 50 kills), which would otherwise lose that config for good. A stop said by a signal is
    retried however often (a job preempted three times lost its config to executor.max_retries); a process
    that ended without a word (out of memory, a crash) may be the config's doing, so that config runs again
    at most `max_retries` times: one that killed its process each time was run again by every run, for good.
    A trial no worker had started (Ray Tune asks for trials ahead of free slots) is not its config's doing.
    `only_failed_here`: queue again only the trials this call failed (not those another run failed just before:
    two runs that took one killed trial over at once, sharing no lock, each queued its config).
    """
    retry = retry_callback(sys.maxsize, fixed_now)
    stale = [t for t in ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
             if fail_running or t.number in gone]
    stale = fail_left_running(ostudy, stale)
    failed = [t.number for t in stale]
    trials = ostudy.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials} | {   # ours, and Optuna's retry callback's
        t.system_attrs["retry_history"][-1] for t in trials if t.system_attrs.get("retry_history")}
    requeued, dropped = [], []
    said_before = set(ostudy.user_attrs.get(NOT_RETRIED, []))
    for trial in trials:
        # also a trial killed before it drew anything: its retry (a fresh draw) keeps the interruption from
        # counting as a failed config against budget.max_failed
        interrupted = trial.state == TrialState.FAIL and runs_again(trial.user_attrs.get("error"))
        if only_failed_here and trial.number not in failed:
            continue
        if interrupted and trial.number not in retried and trial.number not in said_before:
            if (deaths := _silent_deaths(trial, trials)) > max_retries:
                print(f"warning: trial {trial.number}'s config ended its process without a word "
                      f"{deaths} time{'s' if deaths > 1 else ''} (out of memory? a crash?): not run again "
                      f"(executor.max_retries={max_retries}). Fix: see `searchlab trials` for its params; a "
                      "smaller batch or network may fit", file=sys.stderr)
                dropped.append(trial.number)
                continue
            retry(ostudy, trial)
            requeued.append(trial.number)
    if dropped:   # said once: every later run repeated the warning of a config it had long given up
        ostudy.set_user_attr(NOT_RETRIED, sorted(said_before | set(dropped)))
    return Recovery(failed, [n for n in requeued if n in failed], [n for n in dropped if n in failed],
                    [n for n in failed if n not in requeued and n not in dropped])


def runs_again(error: object) -> bool:
    """A failed trial whose config the next run queues again: one interrupted, or one that found the run's data
    changed (DataChanged, engine/worker.py): the files failed it, not its config. Not queued by the run it
    stopped: a sibling worker took that retry before the run stopped, and it failed the same way."""
    return is_interruption(error) or found_data_changed(error)


def found_data_changed(error: object) -> bool:
    """The stored error of a trial that found the run's data changed (the run stopped on it)."""
    return isinstance(error, str) and error.startswith(DATA_CHANGED_ERROR)


def left_running_note(recovery: Recovery) -> str:
    """The note a run starting prints for what `recovery` failed: which configs run again and which do not. It
    said "the configs they drew run again" of a config dropped at executor.max_retries, under the warning
    saying it was not run again."""
    return (f"note: {len(recovery.failed)} trial(s) left RUNNING by a run that ended without finishing them "
            f"(killed) are now FAIL{configs_said(recovery)}")


def configs_said(recovery: Recovery) -> str:
    """What becomes of the configs of the trials `recovery` failed, to follow a clause saying they were failed."""
    if recovery.requeued == recovery.failed:
        return ", and the configs they drew run again"
    said = ""
    if recovery.requeued:
        said += f"; {_configs_of(recovery.requeued)} {_verb(recovery.requeued, 'runs', 'run')} again"
    if recovery.dropped:
        said += (f"; {_configs_of(recovery.dropped)} {_verb(recovery.dropped, 'is', 'are')} not run again "
                 "(executor.max_retries: see the warning above)")
    if recovery.kept_error:   # its own failure (a BaseException it stored), as `searchlab trials` shows
        said += (f"; {_configs_of(recovery.kept_error)} {_verb(recovery.kept_error, 'is', 'are')} not run again: "
                 "the trial stored its own error (searchlab trials shows it)")
    return said


def _configs_of(numbers: list[int]) -> str:
    if len(numbers) == 1:
        return f"trial {numbers[0]}'s config"
    return f"the configs of trials {', '.join(map(str, numbers))}"


def _verb(numbers: list[int], one: str, many: str) -> str:
    return one if len(numbers) == 1 else many


def fail_left_running(ostudy: optuna.Study, stale: list[FrozenTrial]) -> list[FrozenTrial]:
    """FAIL the RUNNING trials `stale`, whose process ended without them, as interrupted (or with its own error);
    returns those this call failed (not one its driver told, or another run failed, just now)."""
    storage = ostudy._storage
    failed = []
    for trial in stale:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):   # its driver told it just now
            if "error" not in trial.user_attrs:   # `ran_with` is its objective's first record on a worker
                storage.set_trial_user_attr(trial._trial_id, "error",
                                            INTERRUPTED if "ran_with" in trial.user_attrs else NEVER_STARTED)
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                failed.append(trial)
    return failed


def _silent_deaths(trial: FrozenTrial, trials: list[FrozenTrial]) -> int:
    """How many attempts at `trial`'s config (it and the ones it retried) ended with their process unsaid."""
    number = {t.number: t for t in trials}
    attempts = [*trial.system_attrs.get("retry_history", []), trial.number]
    return sum(number[n].user_attrs.get("error") == INTERRUPTED for n in attempts if n in number)
