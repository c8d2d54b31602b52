"""Whether a stage before training (nas/stage.py) is searching now, in another run: read from what it writes.

A stage stamps its record with its writer (WRITER: host, pid and the time) as it starts, with each chunk, and from
a thread every CHUNK_SECONDS while it searches (stamping: a round of the search may be longer). A second run
folder of one study (two Ray drivers on PostgreSQL, two folders sharing one SQLite or journal file through
`storage:`) read a live stage's chunks as those of a killed one and continued it at the same time:
two searches wrote one record. A stage whose last write is younger than LIVE_CHUNKS chunks, by a process still
alive where this machine can tell (its own host), is running elsewhere: the run waits for it (wait_for_stage).

Every writer of a stage (the run that starts it, and any run that continues it) holds the stage's lock on this
machine (StageLock: a file of engine/host_locks.py, named by the stage's storage and name) while it searches, and
names it in its stamp. Two runs that waited for one killed writer both continued the stage: only a random pause and
a second look of the storage (which has no compare-and-set) kept them apart, mostly. The lock makes it exact on one
machine: the run that takes it continues the stage, the other finds it held and waits on. The kernel releases the
lock of a killed writer (kill -9) at once, and a writer of this machine is live exactly while its lock is held (a
pid reused since, or a run that raised out of its stage, read as alive). Runs on two machines share no lock: the
random pause and second look stay for them.

`searchlab status` reads the same stamp, and counts the runs of the folder that wait for its stage: each writes a
marker (`.stage_waiting.<pid>`) while it waits and removes it after (a killed one's is told by its dead pid). A run
waiting for the stage searched by another run folder or machine of the study marks its own folder the same way
(`.stage_waiting_elsewhere.<pid>`): status said nothing of why that run trained nothing. Status takes no lock that
a run takes: the folder's prepare lock taken by a status at the instant the sole runner took it with LOCK_NB would
have stopped joiners from waiting for the stage (its look at a stage's lock is a shared one, for an instant, and
a run that finds the lock held tries again before it waits). No torch: `status` imports it.
"""
from __future__ import annotations

import fcntl
import math
import os
import random
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from searchlab.engine.host_locks import open_host_lock, same_file, storage_file, storage_lock_folder
from searchlab.engine.process_space import in_this_pid_space, pid_alive, pid_space
from searchlab.engine.signals import raise_if_stopped

WRITER = "searchlab:stage_writer"   # on the stage's study: {"host", "boot", "pidns", "pid", "at"}, its latest write
LIVE_CHUNKS = 3                      # a stage silent for this many CHUNK_SECONDS is no longer written (killed)
POLL_SECONDS = 2.0                   # how often a run waiting for a stage elsewhere reads the storage
WAITING_MARKER = ".stage_waiting."   # + pid: in the run folder, while a joined run waits for its stage
ELSEWHERE_MARKER = ".stage_waiting_elsewhere."   # + pid: in the run folder, while its run waits for the stage
#                                                  searched by another run folder or machine of the study
HELD_HERE = "a run on this machine holding the stage's lock, starting or continuing it"
TAKE_TRIES = 5   # a lock found held is tried this often, 50 ms apart, before the run waits: a status looks at it


def writer_stamp(lock: str | None = None) -> dict[str, Any]:
    """This process as a stage's writer, now; `lock`: the stage lock it holds (StageLock.path), if any."""
    stamp = {**pid_space(), "pid": os.getpid(), "at": time.time()}
    return {**stamp, "lock": lock} if lock else stamp


@contextmanager
def stamping(stamp: Callable[[], None], every: float) -> Iterator[None]:
    """Call `stamp` (the stage's WRITER, now) every `every` s from a thread while the block searches: a round of
    the search may outlast the silence after which another run takes the stage for killed (a space whose
    networks are all scored draws repeats for minutes between two chunks). No thread for an `every` of 0 (a
    chunk at every round: it would stamp without a pause) or of no end (Event.wait overflows on it)."""
    if not 0 < every < math.inf:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                stamp()
            except Exception:   # noqa: BLE001 - a beat missed (storage busy): the next one, or a chunk, stamps it
                pass

    thread = threading.Thread(target=beat, name="stage-stamp", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def live_writer(writer: Any, spans: Any, chunk_seconds: float) -> str | None:
    """Who writes an unfinished stage now ("pid 12 on host h, last write 3 s ago"), or None when it is written no
    more. `writer`: its WRITER stamp; a stage written by a searchlab before the stamp is dated by the end of its
    run's span (the main study's SPANS). Its own host's writer counts exactly while it holds the stage lock its
    stamp names (lock_held), else (a stamp without one) while its pid lives; another host's, while its writes are
    fresh (the clocks of the two machines compared)."""
    stamp = writer if isinstance(writer, dict) else {}
    pid, host = stamp.get("pid"), stamp.get("host")
    # a container sharing the host name has pids (and a temporary folder) of its own: its writer is told as another
    # machine's is, by its stamp's age (a stamp before the pid space: by the host name, as it was written for)
    here = in_this_pid_space(stamp, strict=False)
    if here and pid == os.getpid():
        return None   # this process: its stage ended here, by an error
    held = lock_held(stamp.get("lock")) if here else None
    if held is False:
        return None   # its writer holds the lock while it writes: killed, or its stage ended
    at = stamp.get("at") if stamp else _last_span_end(spans)
    if not isinstance(at, (int, float)):
        return None
    age = max(0.0, time.time() - at)
    if held is None and (age >= LIVE_CHUNKS * chunk_seconds or (here and not _alive(pid))):
        return None   # silent too long, or killed on this machine
    who = f"pid {pid} on {host}" if pid is not None else "a run of this study"
    return f"{who}, last write {age:.0f} s ago"


def _last_span_end(spans: Any) -> float | None:
    last = spans[-1] if isinstance(spans, list) and spans else None
    return last[1] if isinstance(last, list) and len(last) == 2 else None


def _alive(pid: Any) -> bool:
    return isinstance(pid, int) and pid > 0 and pid_alive(pid)   # kill(0, 0) would signal this process group


def wait_for_stage(name: str, still_written: Callable[[], str | None], chunk_seconds: float,
                   deadline: float | None, lock: StageLock | None = None, run_dir: Path | None = None) -> bool:
    """Wait while the stage `name` is written by another run (`still_written`: its writer, None once it finished,
    was cut short or went silent), said once; False when `deadline` (budget.timeout) came first. True: this run
    goes on with the stage, holding `lock` (taken as the wait ends: the caller releases it). A stop (Ctrl-C,
    SIGTERM) raises out of the wait: the run stops before its trials. `run_dir`: this run's folder, marked while it
    waits (`searchlab status` of it says for whom)."""
    writer = _claimed(still_written, lock)
    if writer is None:
        return True
    silent = LIVE_CHUNKS * chunk_seconds
    print(f"note: {name}: the stage before training is being searched by another run of this study ({writer}; "
          "another run folder or machine on the same storage): this run waits for it to queue its designs, then "
          f"trains them as a run joining it would (it reads the storage every {POLL_SECONDS:g} s; if the stage goes "
          f"unwritten for {silent:g} s, or on this machine as soon as its process ends, this run continues the stage "
          "itself)"
          + (" (budget.timeout counts while it waits)" if deadline is not None else ""), file=sys.stderr, flush=True)
    with waiting_marker(run_dir, ELSEWHERE_MARKER, writer):
        while writer is not None:
            if deadline is not None and time.time() >= deadline:
                print(f"note: {name}: budget.timeout ran out while this run waited for the stage searched by another "
                      "run: it trains nothing (the other run goes on)", file=sys.stderr, flush=True)
                return False
            _pause(deadline, POLL_SECONDS)
            writer = still_written()
            if writer is None:
                # finished, cut short, or its run killed: another run waiting for it may be taking it on now. On
                # this machine the stage lock lets one take it (_claimed). A run of another machine shares no lock:
                # a pause of a length of its own, then a second look, keeps two machines' waiters from continuing it
                # both, mostly (Optuna's storage has no compare-and-set; the one that claims it stamps it first)
                _pause(deadline, random.uniform(0.2, 1.0) * POLL_SECONDS)
                writer = _claimed(still_written, lock)
    return True


def _claimed(still_written: Callable[[], str | None], lock: StageLock | None) -> str | None:
    """None once this run may write the stage (nobody writes it; `lock` taken), else who writes it: a run whose
    stamp is live, or one of this machine holding the lock (it is starting or continuing the stage: not stamped
    yet, or its stamp read a moment before it took the lock)."""
    writer = still_written()
    if writer is not None or lock is None:
        return writer
    if not lock.take():
        return HELD_HERE
    writer = still_written()   # a run of another machine may have stamped it meanwhile
    if writer is not None:
        lock.release()
    return writer


def _pause(deadline: float | None, seconds: float) -> None:
    end = time.time() + seconds if deadline is None else min(time.time() + seconds, deadline)
    while time.time() < end:   # short sleeps: a stop a library swallowed is seen within 0.2 s
        raise_if_stopped()
        time.sleep(min(0.2, max(0.0, end - time.time())))
    raise_if_stopped()


@contextmanager
def waiting_marker(run_dir: Path | None, prefix: str = WAITING_MARKER, waits_for: str = "") -> Iterator[None]:
    """Mark the run folder while this run waits for its stage (counted by waiting_runs, or for a stage of another
    folder or machine, `prefix` ELSEWHERE_MARKER, listed by runs_waiting_elsewhere with `waits_for`: its writer as
    first seen); removed after. A marker that cannot be written (a read-only folder) only leaves the waiter
    unsaid."""
    marker = run_dir / f"{prefix}{os.getpid()}" if run_dir is not None else None
    try:
        if marker is not None:
            marker.write_text(f"{socket.gethostname()}\n{waits_for}".rstrip("\n"))
    except OSError:
        marker = None
    try:
        yield
    finally:
        if marker is not None:
            marker.unlink(missing_ok=True)


def waiting_runs(run_dir: Path) -> int:
    """How many runs of the folder wait for its stage now: markers of live processes of this machine (a marker
    left by a killed waiter is not counted; one of another machine's run cannot be told apart, and is counted)."""
    return len(_marked(run_dir, WAITING_MARKER))


def runs_waiting_elsewhere(run_dir: Path) -> list[tuple[str, str]]:
    """The runs of the folder waiting for the stage searched by another run folder or machine of the study, as
    waiting_runs counts them: (pid, its writer as the run first saw it)."""
    return _marked(run_dir, ELSEWHERE_MARKER)


def _marked(run_dir: Path, prefix: str) -> list[tuple[str, str]]:
    marked = []
    for marker in sorted(run_dir.glob(f"{prefix}*")):
        pid = marker.name.removeprefix(prefix)
        try:
            host, _, waits_for = marker.read_text().partition("\n")
        except OSError:
            continue
        if pid.isdigit() and (host.strip() != socket.gethostname() or _alive(int(pid))):
            marked.append((pid, waits_for.strip()))
    return marked


def waiters_said(joined: int, elsewhere: list[tuple[str, str]], writer: str | None) -> str:
    """What `searchlab status` adds to its stage line for the runs of the folder waiting: `joined` runs waiting for
    this folder's runner, and those waiting for the stage of another folder or machine (`elsewhere`; `writer`:
    who writes it now, as live_writer says, None when nobody does: the marker's writer is named then)."""
    said = ""
    if elsewhere:
        pids = ", ".join(pid for pid, _ in elsewhere)
        runs = f"this folder's run (pid {pids}) waits" if len(elsewhere) == 1 else \
            f"{len(elsewhere)} runs of this folder (pid {pids}) wait"
        first = next((w for _, w in elsewhere if w), "")
        who = writer or (f"{first}, as it began waiting" if first else "")
        said += (f"; {runs} for it, as another run folder or machine of this study searches it"
                 + (f" ({who})" if who else "") + f", then {'trains' if len(elsewhere) == 1 else 'train'} its designs")
    if joined:
        said += (f"; {joined} joined run(s) of this folder wait for it (their workers start once it has queued its "
                 "designs)")
    return said


class StageLock:
    """This machine's lock of one stage, held by its writer while it searches (the module doc). `key`: the stage's
    storage and name (stage_lock_key); `beside`: the lock folder beside a local storage file, where every run on it
    looks (engine/host_locks.py storage_lock_folder); `fallback`: the lock file used when no lock folder can be
    written (the run folder's: it still tells a writer's death exactly, but keeps out only the runs of its folder,
    which the folder's prepare lock serialises already; other waiters fall back on the second look)."""

    def __init__(self, key: str, fallback: Path | None = None, beside: Path | None = None) -> None:
        self.key, self.fallback, self.beside = key, fallback, beside
        self.fh: TextIO | None = None
        self.path: str | None = None   # the lock file while held (the writer's stamp names it)

    def take(self) -> bool:
        """Take the lock without waiting for it: True once taken (or when no lock file opens here: nothing to keep
        out then), False when another process of this machine holds it."""
        if self.fh is not None:
            return True
        fh = open_host_lock(self.key, ".stage.lock", self.fallback, self.beside)
        if fh is None:
            return True
        for attempt in range(TAKE_TRIES):   # a status looking at it holds it for an instant
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                time.sleep(0.05)
                continue
            self.fh, self.path = fh, same_file(fh.name)
            _HELD.add(self.path)
            return True
        fh.close()
        return False

    def release(self) -> None:
        if self.fh is not None:
            _HELD.discard(self.path)
            fcntl.flock(self.fh, fcntl.LOCK_UN)
            self.fh.close()
        self.fh = self.path = None


_HELD: set[str] = set()   # the stage locks this process holds


def stage_lock(storage_url: str, name: str, run_dir: Path | None) -> StageLock:
    """The lock of the stage `name` on its storage: beside a local storage file, else in this machine's lock folder
    (the run folder's when neither can be written)."""
    return StageLock(stage_lock_key(storage_url, name), run_dir and run_dir / ".stage.lock",
                     storage_lock_folder(storage_url))


def stage_lock_key(storage_url: str, name: str) -> str:
    """What names a stage's lock: its storage (a SQLite or journal file by its real path, so two folders naming one
    file differently share it; a server's URL without its password) and its study. By the name alone, two
    unrelated studies of one name on two SQLite files of the machine waited for each other's stage."""
    if (file := storage_file(storage_url)) is not None:
        return f"{storage_url.split(':', 1)[0]}:{file}\n{name}"
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1@", storage_url) + f"\n{name}"


def lock_held(path: Any) -> bool | None:
    """Whether a process of this machine other than this one holds the stage lock at `path` (a writer's stamp
    names it); None when it cannot be told (no path: a stamp of a searchlab before the lock; a file gone or
    unreadable). A lock this process holds is held by no other writer: False."""
    if not isinstance(path, str) or not path:
        return None
    if same_file(path) in _HELD:
        return False
    try:
        fh = open(path)
    except OSError:
        return None
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)   # shared: two looks at once do not keep each other out
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False
