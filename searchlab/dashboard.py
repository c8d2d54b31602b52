"""`searchlab dashboard RUN`: optuna-dashboard on the run's storage and artifacts, bound to 127.0.0.1."""
from __future__ import annotations

import socket
from pathlib import Path

from searchlab.engine.rundir import open_run
from searchlab.engine.storage import ContainedArtifactStore, open_storage
from searchlab.errors import SearchlabError


def free_port(host: str, wanted: int) -> int:
    """The wanted port if free, else the next free one (a busy port is said, not a crash)."""
    for port in range(wanted, wanted + 50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex((host, port)) != 0:
                return port
        print(f"port {port} is in use; trying {port + 1}")
    raise SearchlabError(f"ports {wanted}..{wanted + 49} on {host} are all in use. Fix: pass --port")


def serve(target: str | Path, host: str = "127.0.0.1", port: int = 8080) -> None:
    from optuna_dashboard import run_server

    run = open_run(target)
    port = free_port(host, port)
    print(f"optuna-dashboard for '{run.study.study_name}' at http://{host}:{port}/  (Ctrl-C to stop)")
    run_server(open_storage(run.storage_url), host=host, port=port,
               artifact_store=ContainedArtifactStore(run.artifacts))
