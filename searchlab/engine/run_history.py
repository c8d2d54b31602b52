"""Each `searchlab run` of a study, kept in the study (user attribute `searchlab_runs`): when it ran, what
stopped it, how many trials it finished, and the warnings its start printed. A terminal's scrollback is gone
by the time a reviewer asks why a re-run ended elsewhere (a pre-run estimate above budget.timeout, say)."""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import optuna

from searchlab.engine.host_locks import open_host_lock
from searchlab.engine.process_space import SPACE_KEYS, in_this_pid_space, pid_alive, pid_space

KEY = "searchlab_runs"
KEPT = 100   # runs listed; a study resumed more often keeps the latest
# what stopped a run whose plug-in sampler called study.stop() (Optuna's GridSampler and BruteForceSampler once their
# grid is tried), short of budget.n_trials
SAMPLER_STOPPED = "strategy (its sampler ended the study)"


class _Tee:
    """stderr as it was, plus the lines that start with one of `prefixes`, kept."""

    def __init__(self, stream: TextIO, prefixes: tuple[str, ...]) -> None:
        self.stream, self.prefixes, self.kept, self._line = stream, prefixes, [], ""

    def write(self, text: str) -> int:
        self._line += text
        *lines, self._line = self._line.split("\n")
        self.kept += [line for line in lines if line.startswith(self.prefixes)]
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:   # flush, isatty, fileno...: the real stream's
        return getattr(self.stream, name)


@contextmanager
def said_on_stderr(prefixes: tuple[str, ...] = ("warning:", "note:")) -> Iterator[list[str]]:
    """The warning and note lines printed to stderr inside the block, still printed."""
    tee = _Tee(sys.stderr, prefixes)
    sys.stderr = tee   # type: ignore[assignment]
    try:
        yield tee.kept
    finally:
        sys.stderr = tee.stream
        if tee._line.startswith(prefixes):
            tee.kept.append(tee._line)


@contextmanager
def run_entry(ostudy: optuna.Study, run_dir: Path, started: float,
              finished: Callable[[], int] = lambda: 0) -> Iterator[None]:
    """The run's entry, written as it starts (stopped_by None until record_run): a run killed -9, out of
    memory or with its machine never reached record_run and left no trace (6 of 33 runs in the long-studies
    audit); now it stays as a run that ended without a word. One that raised says so, with the trials it
    `finished` (a plug-in strategy's error at trial 1 was recorded as 0 finished beside 1 complete)."""
    _write(ostudy, run_dir, {**_key(started), **_space(), "run_dir": _folder(run_dir), "stopped_by": None})
    try:
        yield
    except BaseException as exc:
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"error: {type(exc).__name__}"
        with contextlib.suppress(Exception):   # a run refused before its first trial deleted its new study
            record_run(ostudy, run_dir, started, time.time() - started, reason, finished(), [])
        raise


def record_run(ostudy: optuna.Study, run_dir: Path, started: float, seconds: float, stopped_by: str,
               finished: int, warnings: list[str]) -> None:
    _write(ostudy, run_dir, {**_key(started), **_space(), "run_dir": _folder(run_dir), "seconds": round(seconds, 1),
                             "stopped_by": stopped_by,
                             "trials_finished": finished, "start_warnings": warnings})


def _key(started: float) -> dict[str, Any]:
    """What tells this run's entry from another runner's of the folder started in the same second."""
    return {"started_utc": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
            "host": socket.gethostname(), "pid": os.getpid()}


def _space() -> dict[str, Any]:
    """The boot and pid namespace beside the entry's host and pid: a run in a container sharing the host name (its
    own pids) read as killed to a run outside it, which then failed its live trials as a run starting alone."""
    space = pid_space()
    return {key: space[key] for key in SPACE_KEYS}


def _here(run: dict[str, Any]) -> bool:
    """The entry's pid is one of this pid space (an entry written before the pid space: by its host alone)."""
    return in_this_pid_space(run, strict=False)


def _folder(run_dir: Path | None) -> str | None:
    """The run folder a run entry names: runs of one study from several folders share its list (`status` of one
    folder said another folder's live run "ended without a word", as its own folder's lock was not held)."""
    return str(Path(run_dir).resolve()) if run_dir is not None else None


def _write(ostudy: optuna.Study, run_dir: Path, entry: dict[str, Any]) -> None:
    """The entry in place of this run's open one (written as it started), else after the others."""
    mine = [entry[k] for k in ("started_utc", "host", "pid")] + [None]
    # runners of one study end at once: read and write as one, or one's entry is lost to the other's write
    with study_lock(ostudy, run_dir) as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runs = list(ostudy.user_attrs.get(KEY, []))
        at = next((i for i, run in enumerate(runs)
                   if [run.get(k, "") for k in ("started_utc", "host", "pid", "stopped_by")] == mine), None)
        if at is None:
            runs.append(entry)
        else:
            runs[at] = entry
        ostudy.set_user_attr(KEY, runs[-KEPT:])


def study_lock(ostudy: optuna.Study, run_dir: Path) -> TextIO:
    """The lock file the runs of this study on this machine share: one per study name in the system's temporary
    folder. The run folder's own lock kept out runners of one folder only, and two run folders of one study (a
    second folder on one SQLite file, two drivers of a PostgreSQL study) lost one run's end to the other's write
    (seen in CI). Runs on two machines are not serialised by it; the run folder's lock is the fallback."""
    # in a temporary folder this user cannot write in, the run folder's (which raises if it cannot be opened either)
    return open_host_lock(ostudy.study_name, ".lock") or (run_dir / ".runs.lock").open("a")


def runs_line(ostudy: optuna.Study, in_progress: bool, run_dir: Path | None = None) -> str | None:
    """The study's runs for `status`: how many, those that ended without a word, those running, and the latest.
    `in_progress`: a run of this folder holds its lock on this machine. A run without an end is running when
    its process on this machine is alive: a second `searchlab run` joined the first (more workers) was said
    to have ended without a word while it trained. A latest run that ended so on a disk that is full now most
    likely stopped for that (its end could not be written there) and is said to."""
    runs = ostudy.user_attrs.get(KEY)
    if not isinstance(runs, list) or not runs:
        return None
    here = _folder(run_dir)
    open_ = [run for run in runs if run.get("stopped_by", "") is None]
    running = [run for run in open_ if _running(run, in_progress, here)]
    elsewhere = [run for run in open_ if run not in running and not _here(run)]
    unsaid = [run for run in open_ if run not in running and run not in elsewhere]
    said = f"{len(runs)} recorded (the latest {KEPT} are kept)" if len(runs) >= KEPT else f"{len(runs)} recorded"
    latest = runs[-1]
    ours = [run for run in running if run.get("run_dir") in (None, here)]
    if len(ours) > 1 or (ours and latest not in ours):   # the latest's own words say one that is the latest
        said += f"; {len(ours)} running on this machine" + (" (a run of the folder joined by more)" if len(ours) > 1
                                                              else "")
    if theirs := [run for run in running if run not in ours]:
        folders = sorted({run["run_dir"] for run in theirs})
        said += (f"; {len(theirs)} running on this machine from another run folder of the study "
                 f"({', '.join(folders[:3])}{', ...' if len(folders) > 3 else ''})")
    if elsewhere:
        said += (f"; {len(elsewhere)} on other machines (or containers) without an end: running there, or ended "
                 "without a word (this machine cannot tell)")
    if unsaid:
        said += (f"; {len(unsaid)} ended without a word (killed -9, out of memory, a lost machine: their running "
                 "trials are failed and queued again by a run of the study beside them, or by the next run), the last "
                 f"started {unsaid[-1]['started_utc']}")
    now = ("is running" if latest in running else
           f"{_ended(latest['stopped_by'])}, {latest.get('trials_finished', 0)} trial(s) finished"
           if latest.get("stopped_by") else "on another machine, without an end" if latest in elsewhere
           else "ended without a word" + _full_disk_note(run_dir))
    return f"runs:      {said}; the latest, started {latest.get('started_utc')}, {now} (user attr {KEY})"


def latest_run_live(ostudy: optuna.Study, in_progress: bool, run_dir: Path | None = None) -> bool | None:
    """Whether the study's latest run is running now, as runs_line says it (`in_progress` as there): True, False
    (it ended, or ended without a word), or None (on another machine, without an end: this one cannot tell)."""
    runs = ostudy.user_attrs.get(KEY)
    latest = runs[-1] if isinstance(runs, list) and runs and isinstance(runs[-1], dict) else None
    if latest is None or latest.get("stopped_by", "") is not None:
        return False
    if not _here(latest):
        return None
    return _running(latest, in_progress, _folder(run_dir))


def _running(run: dict[str, Any], in_progress: bool, folder: str | None) -> bool:
    """A run without an end is running: its process lives on this machine, and for a run of `folder` (or one
    recorded before entries named their folder), the folder's lock is held too (a pid reused since would read
    as alive). A run of another folder has no lock this status can see: its live process alone says so."""
    if not _alive_here(run):
        return False
    return in_progress if run.get("run_dir") in (None, folder) else True


def latest_start_warnings(ostudy: optuna.Study) -> tuple[str, list[str]] | None:
    """When the latest run that recorded its start's warnings started, and those warnings (their "warning: "
    left out). Said once on stderr, a leak of test images into the weights' run was gone with the terminal's
    scrollback, while status and the report showed the optimistic scores without it."""
    runs = ostudy.user_attrs.get(KEY)
    recorded = [run for run in runs if isinstance(run, dict) and isinstance(run.get("start_warnings"), list)] \
        if isinstance(runs, list) else []
    if not recorded:
        return None
    lines = [line for line in recorded[-1]["start_warnings"] if isinstance(line, str) and line.startswith("warning:")]
    return str(recorded[-1].get("started_utc", "?")), [line.removeprefix("warning:").strip() for line in lines]


def start_warnings_said(ostudy: optuna.Study) -> str | None:
    """The latest run's start warnings for `status`, one per line, or None when it had none."""
    latest = latest_start_warnings(ostudy)
    if latest is None or not latest[1]:
        return None
    started, warnings = latest
    return (f"warnings:  {len(warnings)} when the latest run started ({started}; user attr {KEY}):\n"
            + "\n".join(f"  warning: {text}" for text in warnings))


def _ended(stopped_by: str) -> str:
    """How the run ended, in words ("stopped by interrupted" read as a typo)."""
    if stopped_by == "interrupted":
        return "interrupted (Ctrl-C or a stop signal)"
    return f"ended by {stopped_by}" if stopped_by.startswith("error:") else f"stopped by {stopped_by}"


def _full_disk_note(run_dir: Path | None) -> str:
    from searchlab.engine.disks import free_space_note

    note = free_space_note(run_dir) if run_dir is not None else None
    return f" ({note}: most likely it stopped as the disk filled, which left no room to record its end)" \
        if note else ""


def _alive_here(run: dict[str, Any]) -> bool:
    """Its process is alive on this machine (a pid reused since would read as alive: the lock check beside it
    makes that rare)."""
    if not _here(run) or not isinstance(run.get("pid"), int):
        return False
    return pid_alive(run["pid"])


def _others(ostudy: optuna.Study, started: float) -> list[dict[str, Any]]:
    """The study's run entries but this process's run started at `started`."""
    mine = _key(started)
    runs = ostudy.user_attrs.get(KEY)
    return [run for run in runs if {k: run.get(k) for k in mine} != mine] if isinstance(runs, list) else []


def others_alive(ostudy: optuna.Study, started: float) -> bool:
    """Another run of the study may still be running: one without an end whose process is alive here, or on
    another machine (which this one cannot tell). One without an end whose process is gone was killed."""
    return any(run.get("stopped_by", "") is None and (not _here(run) or _alive_here(run))
               for run in _others(ostudy, started))


def joined_since(ostudy: optuna.Study, started: float) -> bool:
    """Another run of the study started since this one did (to the second): it may have joined this one."""
    since = _key(started)["started_utc"]
    return any(str(run.get("started_utc", "")) >= since for run in _others(ostudy, started))
