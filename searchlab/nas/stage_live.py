"""Whether a stage before training (nas/stage.py) is searching now, in another run: read from what it writes.

A stage stamps its record with its writer (WRITER: host, pid and the time) as it starts, with each chunk, and from
a thread every CHUNK_SECONDS while it searches (stamping: a round of the search may be longer). A second run
folder of one study (two Ray drivers on PostgreSQL, two folders sharing one SQLite or journal file through
`storage:`) read a live stage's chunks as those of a killed one and continued it at the same time:
two searches wrote one record. A stage whose last write is younger than LIVE_CHUNKS chunks, by a process still
alive where this machine can tell (its own host), is running elsewhere: the run waits for it (wait_for_stage).

`searchlab status` reads the same stamp, and counts the runs of the folder that wait for its stage: each writes a
marker (`.stage_waiting.<pid>`) while it waits and removes it after (a killed one's is told by its dead pid). It
takes no lock: the folder's prepare lock taken by a status at the instant the sole runner took it with LOCK_NB
would have stopped joiners from waiting for the stage. No torch: `status` imports it.
"""
from __future__ import annotations

import os
import random
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from searchlab.engine.run_history import pid_alive
from searchlab.engine.signals import raise_if_stopped

WRITER = "searchlab:stage_writer"   # on the stage's study: {"host", "pid", "at"} of its latest write
LIVE_CHUNKS = 3                      # a stage silent for this many CHUNK_SECONDS is no longer written (killed)
POLL_SECONDS = 2.0                   # how often a run waiting for a stage elsewhere reads the storage
WAITING_MARKER = ".stage_waiting."   # + pid: in the run folder, while a joined run waits for its stage


def writer_stamp() -> dict[str, Any]:
    """This process as a stage's writer, now."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "at": time.time()}


@contextmanager
def stamping(stamp: Callable[[], None], every: float) -> Iterator[None]:
    """Call `stamp` (the stage's WRITER, now) every `every` s from a thread while the block searches: a round of
    the search may outlast the silence after which another run takes the stage for killed (a space whose
    networks are all scored draws repeats for minutes between two chunks)."""
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
    run's span (the main study's SPANS). Its own host's writer counts only while its pid lives (a kill there is
    told at once); another host's, while its writes are fresh (the clocks of the two machines compared)."""
    stamp = writer if isinstance(writer, dict) else {}
    at = stamp.get("at") if stamp else _last_span_end(spans)
    if not isinstance(at, (int, float)):
        return None
    age = max(0.0, time.time() - at)
    if age >= LIVE_CHUNKS * chunk_seconds:
        return None
    pid, host = stamp.get("pid"), stamp.get("host")
    if host == socket.gethostname() and (pid == os.getpid() or not _alive(pid)):
        return None   # this process (its stage ended here, by an error) or one killed on this machine
    who = f"pid {pid} on {host}" if pid is not None else "a run of this study"
    return f"{who}, last write {age:.0f} s ago"


def _last_span_end(spans: Any) -> float | None:
    last = spans[-1] if isinstance(spans, list) and spans else None
    return last[1] if isinstance(last, list) and len(last) == 2 else None


def _alive(pid: Any) -> bool:
    return isinstance(pid, int) and pid > 0 and pid_alive(pid)   # kill(0, 0) would signal this process group


def wait_for_stage(name: str, still_written: Callable[[], str | None], chunk_seconds: float,
                   deadline: float | None) -> bool:
    """Wait while the stage `name` is written by another run (`still_written`: its writer, None once it finished,
    was cut short or went silent), said once; False when `deadline` (budget.timeout) came first. A stop (Ctrl-C,
    SIGTERM) raises out of the wait: the run stops before its trials."""
    writer = still_written()
    if writer is None:
        return True
    silent = LIVE_CHUNKS * chunk_seconds
    print(f"note: {name}: the stage before training is being searched by another run of this study ({writer}; "
          "another run folder or machine on the same storage): this run waits for it to queue its designs, then "
          f"trains them as a run joining it would (it reads the storage every {POLL_SECONDS:g} s; if the stage goes "
          f"unwritten for {silent:g} s, its run was killed and this run continues the stage itself)"
          + (" (budget.timeout counts while it waits)" if deadline is not None else ""), file=sys.stderr, flush=True)
    while writer is not None:
        if deadline is not None and time.time() >= deadline:
            print(f"note: {name}: budget.timeout ran out while this run waited for the stage searched by another "
                  "run: it trains nothing (the other run goes on)", file=sys.stderr, flush=True)
            return False
        _pause(deadline, POLL_SECONDS)
        writer = still_written()
        if writer is None:
            # finished, cut short, or its run killed: another run waiting for it may be taking it on now (its claim
            # stamps it). A pause of a length of its own, then a second look, keeps two waiters from continuing it
            # both, mostly: Optuna's storage has no compare-and-set to make the claim one
            _pause(deadline, random.uniform(0.2, 1.0) * POLL_SECONDS)
            writer = still_written()
    return True


def _pause(deadline: float | None, seconds: float) -> None:
    end = time.time() + seconds if deadline is None else min(time.time() + seconds, deadline)
    while time.time() < end:   # short sleeps: a stop a library swallowed is seen within 0.2 s
        raise_if_stopped()
        time.sleep(min(0.2, max(0.0, end - time.time())))
    raise_if_stopped()


@contextmanager
def waiting_marker(run_dir: Path) -> Iterator[None]:
    """Mark the run folder while this run waits for its stage (counted by waiting_runs); removed after. A marker
    that cannot be written (a read-only folder) only leaves the waiter uncounted."""
    marker = run_dir / f"{WAITING_MARKER}{os.getpid()}"
    try:
        marker.write_text(socket.gethostname())
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
    count = 0
    for marker in run_dir.glob(f"{WAITING_MARKER}*"):
        pid = marker.name.removeprefix(WAITING_MARKER)
        try:
            host = marker.read_text().strip()
        except OSError:
            continue
        count += pid.isdigit() and (host != socket.gethostname() or _alive(int(pid)))
    return count
