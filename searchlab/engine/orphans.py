"""RUNNING trials whose process is gone, taken over by a live run of the study while it runs.

A local storage file (SQLite, a journal) has no Optuna heartbeats: a trial whose process was killed -9 stays
RUNNING. A run starting alone fails such trials, and a run fails what a run of its folder left once its own
workers stop; but while another run of the study lived, neither did. An audit killed one run folder's run while it
trained the top design a zen_nas stage queued: a second folder's run, sharing the SQLite file, trained the next
designs, then random ones, and the top design's trial stayed RUNNING (holding budget.n_trials) until that run ended.

So a trial records its holder as it starts on a local worker (user attr `held_by`: its pid space, that is machine,
boot and pid namespace (engine/process_space.py), the process id and that process's start, against a pid used
again), and before asking for a trial a worker fails the RUNNING trials whose holder in its pid space is gone and
queues their configs again (engine/recovery.py), to run next. A trial without the stamp (just asked for, or
written by an older searchlab), or of another machine or container, is never judged. A supervised worker's trial
names its run (`parent`) too: while that run lives it fails its dead worker's trial itself, saying how it died.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import sys
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from searchlab.config.load import Study
from searchlab.engine.changed_settings import fixed_settings
from searchlab.engine.process_space import in_this_pid_space, pid_space, process_gone, started_ticks
from searchlab.engine.recovery import Recovery, configs_said, recover_left_trials
from searchlab.engine.run_history import study_lock

HOLDER = "held_by"   # the trial's user attr naming the process that runs it


def holder_stamp(run_dir: Path, supervised: bool) -> dict[str, Any]:
    """What a worker process writes on each trial it starts: this pid space (machine, boot, pid namespace), this
    process and its start, its run folder, and for a supervised worker the run supervising it."""
    stamp: dict[str, Any] = {**pid_space(), "pid": os.getpid(), "since": started_ticks(os.getpid()),
                             "run_dir": str(run_dir.resolve())}
    if supervised:
        stamp.update(parent=os.getppid(), parent_since=started_ticks(os.getppid()))
    return stamp


def holder_gone(stamp: object) -> bool:
    """The stamped holder of a RUNNING trial ran in this pid space and is gone, and so is the run that supervised
    it. False for no stamp, or one of another machine or container (this one cannot tell)."""
    if not isinstance(stamp, dict) or not in_this_pid_space(stamp):
        return False
    pid, parent = stamp.get("pid"), stamp.get("parent")
    if not isinstance(pid, int) or not process_gone(pid, stamp.get("since")):
        return False
    # a live run fails its dead worker's trial itself (engine/supervise.py), with how the process died
    return not isinstance(parent, int) or process_gone(parent, stamp.get("parent_since"))


def orphaned(ostudy: optuna.Study) -> list[FrozenTrial]:
    """RUNNING trials whose holder on this machine is gone. One read of the RUNNING trials (cached storage: cheap)."""
    return [t for t in ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if holder_gone(t.user_attrs.get(HOLDER))]


def take_over_orphans(study: Study, ostudy: optuna.Study) -> Recovery | None:
    """Fail the orphaned trials as interrupted and queue their configs again (at most executor.max_retries times for
    a config whose process ended without a word), to run next on this worker. Called under the folder's ask lock;
    runs of the study from other folders do not share it, so the study-wide lock of this machine (the run
    history's) makes one of them take each trial, once; where two share no lock (each its own TMPDIR), the run
    whose write failed a trial queues it. None when there was none (no write)."""
    if not orphaned(ostudy):
        return None
    with study_lock(ostudy, study.run_dir) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        left = orphaned(ostudy)   # read again: another run may have taken them meanwhile
        if not left:
            return None
        recovery = recover_left_trials(ostudy, study.config.executor.max_retries, fail_running=False,
                                       fixed_now={fixed.name for _, fixed, _ in fixed_settings(study.space)},
                                       gone={t.number for t in left}, only_failed_here=True)
    if not recovery.failed:   # another run (sharing no lock with this one: another TMPDIR) took them first
        return None
    print(_note(study, [t for t in left if t.number in recovery.failed], recovery), file=sys.stderr)
    run_first(ostudy, [t._trial_id for t in ostudy.get_trials(deepcopy=False, states=(TrialState.WAITING,))
                       if t.user_attrs.get("retry_of") in recovery.requeued])
    return recovery


def _note(study: Study, left: list[FrozenTrial], recovery: Recovery) -> str:
    stamps = [t.user_attrs[HOLDER] for t in left]
    folders = sorted({str(s.get("run_dir")) for s in stamps})
    where = "this folder" if folders == [str(study.run_dir.resolve())] else \
        f"run folder{'s' if len(folders) > 1 else ''} {', '.join(folders)}"
    pids = ", ".join(sorted({str(s["pid"]) for s in stamps}))
    numbers = ", ".join(str(t.number) for t in left[:5]) + (", ..." if len(left) > 5 else "")
    return (f"note: {len(left)} trial(s) RUNNING (trial {numbers}) were left by a run of {where} that ended without "
            f"finishing them (killed), its process {pids} on this machine gone: they held budget.n_trials, so this "
            f"run failed them{configs_said(recovery)}")


FIRST = "_searchlab_run_first"   # the Study attribute listing the trial ids its next asks take first


def run_first(ostudy: optuna.Study, trial_ids: list[int]) -> None:
    """This worker's next asks take the queued trials `trial_ids` before the rest of the queue: Optuna takes
    queued trials in the order they were queued, and a retry is queued last, so the top design a stage queued,
    whose process was killed, would have waited behind every design ranked below it."""
    pop_in_order = getattr(ostudy, "_pop_waiting_trial_id", None)   # Optuna's (private): without it, queue order
    if not trial_ids or pop_in_order is None:
        return
    if not hasattr(ostudy, FIRST):
        setattr(ostudy, FIRST, [])

        def pop_first() -> int | None:
            pending: list[int] = getattr(ostudy, FIRST)
            while pending:
                trial_id = pending.pop(0)
                # False or the error: another worker took it (RUNNING), or it finished meanwhile
                with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                    if ostudy._storage.set_trial_state_values(trial_id, state=TrialState.RUNNING):
                        return trial_id
            return pop_in_order()

        ostudy._pop_waiting_trial_id = pop_first   # type: ignore[method-assign]
    getattr(ostudy, FIRST).extend(trial_ids)
