"""An action repeated on a daemon thread while a block runs: a Ray driver's heartbeats for its trials, a joined
run's look at the trials its worker processes announce."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def repeating(interval: float, action: Callable[[], None], name: str,
              join_timeout: float | None = None) -> Iterator[None]:
    """`action()` every `interval` seconds until the block ends; then the thread is joined (for at most
    `join_timeout` seconds: an action stuck on a server need not hold the block's end)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(interval):
            action()

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=join_timeout)
