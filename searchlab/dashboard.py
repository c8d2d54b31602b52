"""`searchlab dashboard RUN`: optuna-dashboard on the run's storage and artifacts, bound to 127.0.0.1."""
from __future__ import annotations

import errno
import ipaddress
import socket
import sys
from pathlib import Path

from searchlab.engine.rundir import open_run
from searchlab.engine.storage import ContainedArtifactStore, open_storage
from searchlab.errors import SearchlabError


def free_port(host: str, wanted: int) -> int:
    """The wanted port if free, else the next free one (a busy port is said, not a crash). Probed by binding,
    as the server will: a connect would wait out a TCP timeout on an address that is not this machine's."""
    try:
        family = socket.getaddrinfo(host, wanted, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise SearchlabError(f"--host {host!r}: not a name or address this machine can resolve ({exc.strerror}). "
                             f"Fix: {LISTEN_ON}") from None
    last = min(wanted + 49, 65535)
    for port in range(wanted, last + 1):
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # as the server binds (HTTPServer reuses addresses): a port a stopped dashboard left in TIME_WAIT
            # was said busy, and a restart moved to the next one, away from open tabs and SSH tunnels
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
                return port
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise SearchlabError(_cannot_listen(host, port, exc)) from None
        if port < last:
            print(f"port {port} is in use; trying {port + 1}")
    raise SearchlabError(f"ports {wanted}..{last} on {host} are all in use. Fix: pass another --port")


LISTEN_ON = "--host 127.0.0.1 (the default: this machine only) or an address of one of its network interfaces"


def _cannot_listen(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"--host {host}: not an address of this machine, so the dashboard cannot listen on it. Fix: {LISTEN_ON}"
    if exc.errno == errno.EACCES:
        return f"--port {port}: this user may not listen on it (ports below 1024 need privileges). Fix: --port 8080"
    return f"cannot listen on {host}:{port}: {exc.strerror}. Fix: another --port, or {LISTEN_ON}"


def warn_if_reachable(host: str, changes: str) -> None:
    """Binding another address than loopback is opt-in, but optuna-dashboard has no login: say what anyone
    reaching it can change."""
    if not _loopback(host):
        print(f"warning: --host {host}: other machines that reach this one can open the dashboard, with no login, "
              f"and change {changes}. Fix: the default --host 127.0.0.1 with an SSH tunnel "
              "(ssh -L 8080:127.0.0.1:8080 this-machine)", file=sys.stderr)


def _loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (socket.gaierror, ValueError):
        return False


def url(host: str, port: int) -> str:
    """The address to open: an IPv6 host in brackets (http://[::1]:8080/; http://::1:8080/ opens nothing)."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def serve(target: str | Path, host: str = "127.0.0.1", port: int = 8080) -> None:
    from optuna_dashboard import run_server

    run = open_run(target)
    port = free_port(host, port)
    warn_if_reachable(host, "the study (notes, trial states) or delete its checkpoint artifacts")
    print(f"optuna-dashboard for '{run.study.study_name}' at {url(host, port)}  (Ctrl-C to stop)")
    run_server(open_storage(run.storage_url, reading=True), host=host, port=port,
               artifact_store=ContainedArtifactStore(run.artifacts))
