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

from searchlab.errors import SearchlabError

# the streams that were closed at start (`>&-`), by name: a command whose rows are its only product says so
_CLOSED_AT_START: set[str] = set()


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
    say a path's letters (PYTHONIOENCODING=ascii) raised UnicodeEncodeError. Closed: /dev/null, and recorded
    (stdout_was_closed): predict's rows and trials tables, all those commands make, are refused. Narrow: standard
    output, which carries data (predict's rows, trials tables), is UTF-8 as --out files are (escaped, a path
    named a file that does not exist); standard error, read by people, escapes what it cannot say (\\xe9)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None:
            _CLOSED_AT_START.add(name)
            setattr(sys, name, open(os.devnull, "w"))   # noqa: SIM115 - the process's own, open until it ends
        elif isinstance(stream, io.TextIOWrapper) and not _utf8(stream.encoding):
            if name == "stdout":
                stream.reconfigure(encoding="utf-8", errors="surrogateescape")
            elif stream.errors == "strict":
                stream.reconfigure(errors="backslashreplace")


class ClosedOutputError(SearchlabError):
    """Rows with nowhere to go: exit code 1, as a file the CLI cannot write (and as `cat FILE >&-`)."""

    exit_code = 1


def refuse_a_closed_stdout(what: str, fix: str = "give --out FILE, or leave standard output open") -> None:
    """`searchlab predict EXPORT scans/ >&-`: the rows, the command's only product, went to /dev/null and the
    command exited 0. (`searchlab run`'s output is only a summary of what it stores, so it still runs.)"""
    if stdout_was_closed():
        raise ClosedOutputError(f"standard output (stdout) is closed (e.g. >&-), so {what} would be written "
                                f"nowhere. Fix: {fix}")


def beside_the_output(out: str | os.PathLike[str] | None) -> TextIO:
    """Where to say a line about a file written to --out: standard error when --out is standard output itself
    (`--out /dev/stdout`, `--out /proc/self/fd/1 > p.csv`), where the line became the data's last row."""
    try:
        if out is not None and os.path.samestat(os.stat(out), os.fstat(sys.stdout.fileno())):
            return sys.stderr
    except (OSError, ValueError, AttributeError):   # no such file, or a stdout with no descriptor (a notebook)
        pass
    return sys.stdout


def stdout_was_closed() -> bool:
    """Whether searchlab's command line found standard output closed at start (never so for a Python caller)."""
    return "stdout" in _CLOSED_AT_START


def _utf8(encoding: str) -> bool:
    return encoding.lower().replace("-", "").replace("_", "") == "utf8"
