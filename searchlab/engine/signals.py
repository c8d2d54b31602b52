"""Stop requests: Ctrl-C, and SIGTERM / SIGHUP handled like it. The running trials are failed as interrupted,
the run ends, and running the study again re-queues their configs.

SIGTERM is how a batch scheduler (SLURM at its time limit or on preemption), `docker stop`, systemd or a plain
`kill PID` stops a run; SIGHUP is a closed terminal. By default both end Python at once: the running trials
stayed RUNNING, and supervised worker processes, which get no signal when only their parent is told, went on
running the study with nobody watching them. Workers also stop when their parent process is gone (killed -9).

A signal ignored when the process starts stays ignored (the Unix convention): `nohup searchlab run ... &` is
not stopped by the hang-up of a closed SSH session, nor a background job of a script (`cmd &`, whose shell
ignores Ctrl-C for it) by a Ctrl-C; their worker processes ignore them too.

A stop is raised asynchronously, wherever the main thread is, and library code with a bare `except:` can
swallow it (medmnist's import does). So the request is also remembered, and the run checks it between trials
and at every epoch (`raise_if_stopped`).
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PARENT_GONE = signal.SIGUSR1   # what a worker's parent watcher sends its own worker
_COMMAND_DONE: list[int] = []   # the exit code of this process's finished `searchlab` command, once decided
STOP_SECONDS = 30              # for a stopping worker to record its trial: one storage write, unless the disk hangs
_requested: list[int] = []     # this process's first stop signal, while a run is listening for stops
_listening: list[bool] = []    # one entry per stop_on_signals block open (they nest: a run, its Ray driver)
_process_ends_after_a_stop: list[bool] = []   # a run command's: once stopped, it only winds down
_held: list[bool] = []         # while Optuna records a trial's outcome: a stop is remembered, raised after


class Interrupted(KeyboardInterrupt):
    """A stop request by signal `signum`; a KeyboardInterrupt, so every path that handles Ctrl-C handles it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.reason = {signal.SIGINT: "Ctrl-C", PARENT_GONE: "its run's main process ended"}.get(
            signum, signal.Signals(signum).name)
        super().__init__(self.reason)


def as_interrupted(exc: KeyboardInterrupt) -> Interrupted:
    """The stop `exc` stands for. Some libraries (Ray Tune) raise a KeyboardInterrupt of their own in place
    of ours: the signal this process received says what it was; none, a plain Ctrl-C."""
    if isinstance(exc, Interrupted):
        return exc
    return Interrupted(_requested[0] if _requested else signal.SIGINT)


def interruption_message(exc: KeyboardInterrupt) -> str:
    """What a trial stopped by `exc` stores as its error; every such message starts with "interrupted"."""
    return f"interrupted ({as_interrupted(exc).reason})"


def exit_code(exc: KeyboardInterrupt) -> int:
    """The shell's code for a process ended by the stop's signal: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + as_interrupted(exc).signum


def is_interruption(error: object) -> bool:
    """True for the error of a trial stopped from outside (its config was never judged): retried on resume."""
    return isinstance(error, str) and error.startswith("interrupted")


def raise_if_stopped() -> None:
    """Raise Interrupted if a stop was requested, even one some library swallowed."""
    if _requested:
        raise Interrupted(_requested[0])


def _request_stop(signum: int, frame: FrameType | None) -> None:
    if not _requested:
        _requested.append(signum)
    if not _held:
        raise Interrupted(signum)


def hold_stops() -> None:
    """Until release_stops, a stop is only remembered (raise_if_stopped raises it). For Optuna's recording of
    a trial's outcome after the objective: a stop raised in there broke Optuna's own clean-up
    (UnboundLocalError: 'updated_state'), crashed the run with exit 1 and a traceback, and left the trial
    RUNNING, to be retried on resume as a process that died without a word (2 of 14 Ctrl-Cs at instant trials)."""
    _held[:] = [True]


def release_stops() -> None:
    _held.clear()


def honoured_stops() -> tuple[int, ...]:
    """The stop signals this process is not set to ignore (SIG_IGN, as nohup sets SIGHUP, and a script's shell
    Ctrl-C for its background jobs): a run overriding that was stopped by the logout `nohup` was meant to outlive."""
    return tuple(sig for sig in STOP_SIGNALS if signal.getsignal(sig) != signal.SIG_IGN)


def end_at_a_stop_with(code: int) -> None:
    """For the rest of a `searchlab` process whose command is done, its exit code decided: a stop ends it at once
    with that code. The interpreter's teardown (garbage collection, exit hooks) takes ~2 s after a run's summary,
    and a stop then (a batch job's time limit, an impatient Ctrl-C) made a finished run or export exit 130 or 143,
    as if it had failed."""
    if threading.current_thread() is not threading.main_thread():
        return

    def end(signum: int, frame: FrameType | None) -> None:
        _flush_output()
        os._exit(code)

    for sig in honoured_stops():   # one ignored at start (nohup) stays ignored
        signal.signal(sig, end)
    _COMMAND_DONE.append(code)


def ignore_stops_once_done() -> None:
    """An exit hook, registered before any library's (searchlab.cli's import), so it runs after theirs: from here
    a finished command's process ignores stops. Python resets its own handlers (end_at_a_stop_with's) to the
    default before collecting garbage, ~2 s after a run's summary, so a stop there killed a finished run or
    export (143); an ignored signal stays ignored. The teardown still runs whole: SQLite folds its write-ahead
    log into study.db when its connections close (an os._exit left the trials in study.db-wal alone)."""
    if _COMMAND_DONE:
        for sig in honoured_stops():
            signal.signal(sig, signal.SIG_IGN)


def _flush_output() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:   # a closed or broken stream: nothing more can be said on it
            pass


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While the block runs in the main thread, Ctrl-C, SIGTERM and SIGHUP raise Interrupted (each time), unless
    the process ignores them (honoured_stops)."""
    if threading.current_thread() is not threading.main_thread():   # only the main thread may set handlers
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in honoured_stops()}   # one left ignored stays ignored
    for sig in previous:
        signal.signal(sig, _request_stop)
    _listening.append(True)
    try:
        yield
    finally:
        _listening.pop()
        winding_down = bool(_requested and _process_ends_after_a_stop and not _listening)
        for sig, handler in previous.items():
            signal.signal(sig, _ignore if winding_down else handler)
        if not _listening:
            _requested.clear()   # a later run in this process starts afresh


@contextmanager
def only_winding_down_after_a_stop(process_ends: bool) -> Iterator[None]:
    """For a command whose run, once stopped, only winds down: later stops are ignored until the block ends.
    The second or third Ctrl-C of an impatient user landed in the run's summary (lost) or in Ray's shutdown at
    exit (its traceback printed); the run already stops at the first. When the process ends with the command
    (`process_ends`: the `searchlab run` command) they stay ignored up to its exit. Otherwise (main() called
    from a notebook or a script) the handlers from before the block come back: they stayed ignored for the
    rest of the process, and a notebook's "Interrupt kernel" did nothing after one interrupted run."""
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS} if in_main_thread else {}
    _process_ends_after_a_stop.append(True)
    try:
        yield
    finally:
        _process_ends_after_a_stop.pop()
        if not process_ends:
            for sig, handler in previous.items():
                if handler is not None:   # None: set outside Python, which cannot set it back
                    signal.signal(sig, handler)


@contextmanager
def stops_ignored() -> Iterator[None]:
    """Ctrl-C, SIGTERM and SIGHUP do nothing while the block runs (main thread only). A handler that does
    nothing, not SIG_IGN: for a signal that arrived just before the switch CPython prints a traceback."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _ignore) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore(signum: int, frame: FrameType | None) -> None:
    return None


def stop_worker_on_signals(honoured: Collection[int] = STOP_SIGNALS) -> None:
    """In a worker process, for its whole life: the first stop signal of `honoured` (its run's, honoured_stops)
    or the parent's death raises Interrupted; later ones do nothing, so the terminal's Ctrl-C followed by the
    parent's SIGTERM cannot cut short the worker recording its trial as failed. (Not SIG_IGN for those: for a
    signal that arrived before the switch, CPython prints an "ignored due to race condition" traceback.) A stop
    signal its run ignores is ignored here too: a hang-up reaches every process of the terminal's group, and
    stopped a nohup run's workers. The parent kills a worker that has not ended in time."""
    def first_stop(signum: int, frame: FrameType | None) -> None:
        if not _requested:
            _request_stop(signum, frame)

    for sig in STOP_SIGNALS:   # Ctrl-C is ignored while a worker starts (ctrl_c_ignored_by_started_processes)
        signal.signal(sig, first_stop if sig in honoured else signal.SIG_IGN)
    signal.signal(PARENT_GONE, first_stop)
    _watch_parent()


@contextmanager
def ctrl_c_ignored_by_started_processes() -> Iterator[None]:
    """A worker process started in this block ignores Ctrl-C until stop_worker_on_signals sets its handlers:
    a Ctrl-C during its imports (torch) printed a KeyboardInterrupt traceback from every worker. An ignored
    signal stays ignored across exec (a blocked one did not: the spawn resets the mask). This process ignores
    Ctrl-C for the few milliseconds of the start; its workers are then stopped by it (Supervisor), with
    SIGTERM for one still importing. (Only the main thread may set handlers: from another thread, workers
    started there take a Ctrl-C during their imports as any program does.)"""
    from searchlab.engine.script_guard import refuse_an_unguarded_script

    refuse_an_unguarded_script()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def forwarded_stop() -> int:
    """The signal to send workers when this run stops: the one it got (a Ctrl-C is recorded as Ctrl-C),
    or SIGTERM when it stops by itself; PARENT_GONE when the run ignores SIGTERM, and so its workers do."""
    if _requested:
        return _requested[0]
    return signal.SIGTERM if signal.SIGTERM in honoured_stops() else PARENT_GONE


def _watch_parent() -> None:
    """A worker whose parent is gone stops as if told to (a signal to itself, so the stop is raised in the
    main thread, where the trial runs), and exits for good STOP_SECONDS later if that did not end it: nobody
    is left to kill it. Its parent's sentinel tells at once, whenever the parent died, even before this ran."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()   # returns once the parent process has ended
        os.kill(os.getpid(), PARENT_GONE)
        time.sleep(STOP_SECONDS)
        os._exit(1)   # its trial stays RUNNING: failed and re-queued when the study runs again

    threading.Thread(target=watch, name="searchlab-parent-watch", daemon=True).start()
