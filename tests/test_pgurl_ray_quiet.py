"""A Ray worker killed mid-trial: the raylet's pushed "A worker died or was killed ..." error (printed by the
driver with terminal colour codes, log_to_driver=False or not) stays off searchlab's output, which says the
trial failed in its own line; other pushed errors are still printed."""
from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

ray_worker = pytest.importorskip("ray._private.worker")

from searchlab.engine.ray_cluster import RAY_WORKER_DIED, _quiet_worker_deaths  # noqa: E402

DIED = (f"{RAY_WORKER_DIED} while executing a task by an unexpected system error. ... consider enabling resource "
        "isolation via --enable-resource-isolation ...")


class _Subscriber:
    """Ray's GCS error subscriber, as listen_error_messages polls it: one error each, then the thread stops."""

    def __init__(self, messages: list[str], stop: threading.Event) -> None:
        self.messages, self.stop = list(messages), stop

    def subscribe(self) -> None:
        pass

    def poll(self) -> tuple[None, dict | None]:
        if not self.messages:
            self.stop.set()
            return None, None
        return None, {"job_id": None, "error_message": self.messages.pop(0)}


def _listen(messages: list[str]) -> None:
    """Ray's own driver thread body, fed `messages` as the raylet would push them."""
    stop = threading.Event()
    fake = SimpleNamespace(gcs_error_subscriber=_Subscriber(messages, stop),
                           current_job_id=SimpleNamespace(binary=lambda: b"job"))
    ray_worker.listen_error_messages(fake, stop)


def test_the_raylets_worker_death_line_is_not_printed_and_other_errors_are(monkeypatch, capsys):
    monkeypatch.setattr(ray_worker, "print_to_stdstream", ray_worker.print_to_stdstream)   # restored after
    _quiet_worker_deaths()
    _quiet_worker_deaths()   # a second ray.init in the process: wrapped once
    _listen([DIED, "Some other error the raylet pushed"])
    out = capsys.readouterr()
    assert RAY_WORKER_DIED not in out.out + out.err
    assert "Some other error the raylet pushed" in out.out
    assert getattr(ray_worker.print_to_stdstream, "searchlab_quiet", False)
