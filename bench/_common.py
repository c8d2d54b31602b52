"""Helpers shared by the bench scripts: scratch directories, study files, tables, memory readings."""
from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = str(ROOT.parent / "shared" / "data")   # ../shared/data beside the checkout
MiB = 1024 * 1024


def data_root() -> str:
    """Where BreastMNIST is read from: $SEARCHLAB_DATA, else the shared read-only copy."""
    return os.environ.get("SEARCHLAB_DATA") or DEFAULT_DATA


@contextmanager
def scratch_dir(keep: bool = False) -> Iterator[Path]:
    """A fresh mkdtemp() directory; removed afterwards. Only that exact directory is ever deleted."""
    path = Path(tempfile.mkdtemp(prefix="searchlab-bench-")).resolve()
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}", file=sys.stderr)
        elif path.parent == Path(tempfile.gettempdir()).resolve() and path.name.startswith("searchlab-bench-"):
            shutil.rmtree(path, ignore_errors=True)


def write_study(path: Path, study: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def rss_mib() -> float:
    """Current resident set size of this process."""
    return psutil.Process().memory_info().rss / MiB


def maxrss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def start(cmd: list[str], core: int | None, log: Path) -> tuple[subprocess.Popen, float]:
    """Start `cmd` from the checkout, output to `log`, pinned to CPU `core` (taskset) when given."""
    env = dict(os.environ, SEARCHLAB_DATA=data_root())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    pinned = ["taskset", "-c", str(core)] + cmd if core is not None else cmd
    handle = log.open("w")
    return subprocess.Popen(pinned, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT), time.time()


def with_ci(value: float | None, ci: list[float] | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain-text table: left-aligned first column, right-aligned others."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def print_summary(summary: dict[str, Any]) -> None:
    print(json.dumps(summary, sort_keys=False))


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)
