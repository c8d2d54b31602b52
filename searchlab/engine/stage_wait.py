"""A `searchlab run` that joins another run of its folder waits for that run's stage before training.

zen_nas and deepmad score thousands of networks before the first trial (nas/stage.py), in the folder's sole
runner, which then queues the best as the first trials. A second `searchlab run` of the folder started meanwhile
joined at once: its workers asked the sampler for trials while nothing was queued, trained random networks and
could take budget.n_trials before the stage's designs ever trained.

The sole runner holds the folder's prepare lock (`.prepare.lock`) from before any runner can join it (engine/run.py
held_run_lock) until its preparation ends. A joining run of a stage strategy takes that lock before its workers
start: waiting for it (polled: a flock call every POLL_SECONDS, no database reads) while the stage searches. A
killed runner's lock is released by the kernel, so a joiner never waits on a dead run. Holding the lock, the
joiner reads how the stage ended: its designs queued (nas/stage.py stage_queued), and it joins as before; or not
(the runner was killed, stopped, refused, or its budget.timeout cut the stage short), and it continues the stage
itself as the next `searchlab run` would (from the chunks written), then trains: the user started it to run the
study, and stopping would only make them type the command again. Other joiners wait on its lock meanwhile.
A waiting joiner marks the folder (nas/stage_live.py waiting_marker): `searchlab status` counts the runs waiting
without touching the lock.
"""
from __future__ import annotations

import fcntl
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import optuna

from searchlab.nas.stage import DESIGN_SUFFIX, PROXY_SUFFIX, stage_queued, stage_said
from searchlab.nas.stage_live import waiting_marker

PREPARE_LOCK = ".prepare.lock"   # in the run folder
POLL_SECONDS = 0.5
STAGE_SUFFIXES = {"zen_nas": PROXY_SUFFIX, "deepmad": DESIGN_SUFFIX}   # strategy.py PREPARE's, by their record
JOIN, TAKE_OVER, TIMED_OUT = "join", "take over", "timed out"


def take_prepare_lock(run_dir: Path) -> TextIO | None:
    """The sole runner's hold of the prepare lock, taken while it holds the folder's lock alone (no joiner can
    be waiting yet); None if something else holds it (then joiners do not wait for this runner)."""
    fh = (run_dir / PREPARE_LOCK).open("a")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


def release_prepare_lock(fh: TextIO | None) -> None:
    if fh is not None and not fh.closed:
        fcntl.flock(fh, fcntl.LOCK_UN)   # for the workers forked later too: they share the open file
        fh.close()


@contextmanager
def stage_turn(study: Any, ostudy: optuna.Study, deadline: float | None) -> Iterator[str]:
    """For a run joining another of its folder: JOIN (no stage, or its designs are queued: join as more workers),
    TAKE_OVER (the run it waited for ended without queuing them: prepare as the sole runner would, the prepare lock
    held meanwhile) or TIMED_OUT (its budget.timeout ran out while it waited: it trains nothing)."""
    suffix = _stage_suffix(study)
    if suffix is None or (deadline is not None and time.time() >= deadline):
        yield JOIN
        return
    with (study.run_dir / PREPARE_LOCK).open("a") as fh:
        if not _waited(fh, study, ostudy, suffix, deadline):
            yield TIMED_OUT
            return
        try:
            if stage_queued(ostudy, ostudy.study_name + suffix):
                yield JOIN
                return
            print("note: the run this one joined ended before its stage before training queued its designs (killed, "
                  "stopped, refused, or cut short by its budget.timeout): this run continues the stage itself, as the "
                  "next `searchlab run` of this study would, then trains them", file=sys.stderr)
            yield TAKE_OVER
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _stage_suffix(study: Any) -> str | None:
    """The suffix of the study's stage record, when its strategy has a stage before training."""
    from searchlab.strategy import resolve

    cfg = resolve(study.config.strategy, study.base_dir)
    return STAGE_SUFFIXES.get(cfg.name) if cfg.class_ is None else None


def _waited(fh: TextIO, study: Any, ostudy: optuna.Study, suffix: str, deadline: float | None) -> bool:
    """Hold the prepare lock, waiting for it while another runner prepares (said once); False when the deadline
    came first. Ctrl-C (or SIGTERM) while waiting raises out of the sleep: the run stops before its trials."""
    if _try_lock(fh):
        return True
    said = stage_said(ostudy, (suffix,), running=True)
    timeout = study.config.budget.timeout
    print(f"note: waiting for the stage before training of the other `searchlab run` of {study.run_dir} "
          f"({said.strip() if said else 'nothing written yet'}); this run's workers start once it has queued its "
          "designs" + (f" (its budget.timeout of {timeout:g} s counts while it waits)" if timeout else ""),
          file=sys.stderr, flush=True)
    with waiting_marker(study.run_dir):   # `searchlab status` counts the runs waiting (it takes no lock)
        return _polled(fh, timeout, deadline)


def _polled(fh: TextIO, timeout: float | None, deadline: float | None) -> bool:
    while not _try_lock(fh):
        if deadline is not None and time.time() >= deadline:
            print(f"note: budget.timeout ({timeout:g} s) ran out while this run waited for the other run's stage "
                  "before training: it trains nothing (the other run goes on)", file=sys.stderr)
            return False
        _pause(deadline)
    return True


def _pause(deadline: float | None) -> None:
    time.sleep(POLL_SECONDS if deadline is None else max(0.0, min(POLL_SECONDS, deadline - time.time())))


def _try_lock(fh: TextIO) -> bool:
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
