"""Each `searchlab run` of a study, kept in the study (user attribute `searchlab_runs`): when it ran, what
stopped it, how many trials it finished, and the warnings its start printed. A terminal's scrollback is gone
by the time a reviewer asks why a re-run ended elsewhere (a pre-run estimate above budget.timeout, say)."""
from __future__ import annotations

import fcntl
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import optuna

KEY = "searchlab_runs"
KEPT = 100   # runs listed; a study resumed more often keeps the latest


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


def record_run(ostudy: optuna.Study, run_dir: Path, started: float, seconds: float, stopped_by: str,
               finished: int, warnings: list[str]) -> None:
    entry = {"started_utc": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
             "seconds": round(seconds, 1), "stopped_by": stopped_by, "trials_finished": finished,
             "start_warnings": warnings}
    # runners of one folder (more workers from another shell) end at once: read and write as one, or one's
    # entry is lost to the other's write
    with (run_dir / ".runs.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runs = list(ostudy.user_attrs.get(KEY, []))[-(KEPT - 1):]
        ostudy.set_user_attr(KEY, runs + [entry])
