"""Whether a stamp (a trial's holder, engine/orphans.py; a stage's writer, nas/stage_live.py) names a process this
one can see, and whether that process has ended.

A host name is not a pid space: a container with the host's network (docker `--network host`, a pod's
`hostNetwork`) shares it, with pids of its own. An audit ran a study in `unshare --pid` beside another run of it:
that run read the first's live holder (pid 1 there) as gone here, failed its trial, and the first crashed telling
it. So a stamp also carries the machine's boot id and its pid namespace, and only a stamp of this very pid space
is judged. A process's start is read in clock ticks since boot (/proc/<pid>/stat): a wall-clock step (a VM resumed,
chrony's makestep) moves a start given in wall time, and every live holder would have read as a reused pid.
No torch: `searchlab status` imports it.
"""
from __future__ import annotations

import os
import socket
from typing import Any

SPACE_KEYS = ("boot", "pidns")   # with the host, what a stamp's pid is a pid of


def pid_space() -> dict[str, Any]:
    """This process's pid space, for a stamp: the host, the boot and the pid namespace (None where not told)."""
    return {"host": socket.gethostname(), "boot": _boot_id(), "pidns": _pidns()}


def in_this_pid_space(stamp: dict[str, Any], strict: bool = True) -> bool:
    """The stamp's pid names a process of this pid space. `strict`: a stamp without the boot and namespace (written
    by a searchlab before them) is not judged; else it is taken by its host alone, as it was written for."""
    if stamp.get("host") != socket.gethostname():
        return False
    here = pid_space()
    if not all(key in stamp for key in SPACE_KEYS):
        return not strict
    return all(stamp[key] == here[key] for key in SPACE_KEYS)


def started_ticks(pid: int) -> int | None:
    """When the process `pid` started, in clock ticks since boot; None where it cannot be read (no /proc, or
    another user's process hidden by `hidepid`)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and fields[19].isdigit() else None


def process_gone(pid: int, since: object) -> bool:
    """The process `pid`, started at `since` (started_ticks), has ended: it is gone, a zombie (only its parent's
    wait is left), or its pid is another process's now. Where its start cannot be read, it has ended only when
    kill(pid, 0) says so (a hidden process of another user is alive)."""
    fields = _stat_fields(pid)
    if fields is None:
        return not pid_alive(pid)
    if fields[0] in ("Z", "X"):
        return True
    return isinstance(since, int) and fields[19].isdigit() and int(fields[19]) != since


def pid_alive(pid: int) -> bool:
    """A process of this pid space has the pid `pid` (another user's too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's process: alive
        return True
    return True


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat's fields after the command name (field 3, the state, first), else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            text = fh.read().decode(errors="replace")
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()   # the name may hold spaces and ')': it ends at the last one
    return fields if len(fields) > 19 else None


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return None


def _pidns() -> int | None:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
