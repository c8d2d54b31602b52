"""The command line's output streams. `searchlab run study.yaml | head`: the reader of a run's header and summary
may leave long before the run ends.

The trials and the export are the point of a run, not those lines, so the run goes on with its output dropped and
keeps its own exit code. Before, the summary's BrokenPipeError made a run that went well exit 1 without a word, and
with unbuffered output (PYTHONUNBUFFERED=1) the header's ended the run before its first trial."""
from __future__ import annotations

import io
import os
import sys
from typing import Any, TextIO


class OutputWhoseReaderMayLeave:
    """Stands in for sys.stdout: writes go through until the reader leaves, then nowhere."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.reader_left = False

    def write(self, text: str) -> int:
        if not self.reader_left:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._drop_the_rest()
        return len(text)

    def flush(self) -> None:
        if not self.reader_left:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._drop_the_rest()

    def _drop_the_rest(self) -> None:
        self.reader_left = True
        # what is still buffered is flushed at exit: into /dev/null, not into a closed pipe (Python's "Exception
        # ignored ... BrokenPipeError" and exit code 120)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self._stream.fileno())
        os.close(devnull)

    def __getattr__(self, name: str) -> Any:   # isatty, fileno, encoding ... of the real stream
        return getattr(self._stream, name)


def streams_that_take_any_text() -> None:
    """For searchlab's own command line (not a Python caller's streams): a stream closed at start (`>&-`) is
    None in Python, and printing to it raised AttributeError deep inside; a stream of an encoding that cannot
    say a path's letters (PYTHONIOENCODING=ascii) raised UnicodeEncodeError. Closed: /dev/null. Narrow: standard
    output, which carries data (predict's rows, trials tables), is UTF-8 as --out files are (escaped, a path
    named a file that does not exist); standard error, read by people, escapes what it cannot say (\\xe9)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            setattr(sys, name, open(os.devnull, "w"))   # noqa: SIM115 - the process's own, open until it ends
        elif isinstance(stream, io.TextIOWrapper) and not _utf8(stream.encoding):
            if name == "stdout":
                stream.reconfigure(encoding="utf-8", errors="surrogateescape")
            elif stream.errors == "strict":
                stream.reconfigure(errors="backslashreplace")


def _utf8(encoding: str) -> bool:
    return encoding.lower().replace("-", "").replace("_", "") == "utf8"
