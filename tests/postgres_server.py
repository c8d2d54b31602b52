"""A throwaway PostgreSQL server for the tests: a fresh cluster in a temporary folder, listening on 127.0.0.1
only (a Unix socket in that folder too), stopped and deleted afterwards. `SEARCHLAB_TEST_POSTGRES` (a URL)
uses a running server instead. PostgreSQL refuses to run as root, so as root the cluster runs as `postgres`."""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bindir() -> Path | None:
    """Debian keeps the server programs in /usr/lib/postgresql/<version>/bin, off the PATH."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def postgres_url() -> Iterator[str | None]:
    """A postgresql:// URL of a live server, or None when this machine has no PostgreSQL to start."""
    given = os.environ.get("SEARCHLAB_TEST_POSTGRES")
    if given:
        yield given
        return
    bindir = _bindir()
    if bindir is None:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix="searchlab-pg-"))
    data, port = folder / "data", _free_port()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    run = lambda *cmd: subprocess.run(_as_server_user([str(bindir / cmd[0]), *cmd[1:]]), check=True,  # noqa: E731
                                      capture_output=True, text=True)
    try:
        run("initdb", "-D", str(data), "-U", "searchlab", "--auth=trust", "-E", "UTF8")
        run("pg_ctl", "-D", str(data), "-l", str(folder / "log"), "-w", "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {folder}", "start")
        run("createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "searchlab", "searchlab")
        yield f"postgresql://searchlab@127.0.0.1:{port}/searchlab"
    finally:
        subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
