"""The signals a child process a test stops starts with."""
from __future__ import annotations

import signal


def default_stop_signals() -> None:
    """preexec_fn for a child a test sends Ctrl-C or SIGHUP: with the signals' default handlers, as from a
    terminal. The suite may run under nohup or as a script's background job (CI: `nohup bash .ci/run &`),
    whose SIG_IGN the child would inherit and keep (a signal ignored when a process starts stays ignored)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
