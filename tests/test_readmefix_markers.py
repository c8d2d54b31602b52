"""pyproject.toml declared a pytest marker, `slow`, that no test carried: `pytest -m "not slow"` then ran every
test while seeming to leave the long ones out. Each declared marker must mark some test."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_declared_marker_marks_a_test():
    options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    declared = [line.partition(":")[0].strip() for line in options.get("markers", [])]
    used = {name for test in (ROOT / "tests").glob("*.py")
            for name in re.findall(r"pytest\.mark\.(\w+)", test.read_text(encoding="utf-8"))}
    assert [name for name in declared if name not in used] == []
