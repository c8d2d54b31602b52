"""Objectives for `task: {kind: callable}` studies in tests (importable: tests/ is on sys.path)."""
from __future__ import annotations

import os
import time


def quadratic(config, ctx):
    x = config["x"]
    for step in range(3):
        ctx.report(step, {"loss": (x - 1) ** 2 + 1.0 / (step + 1)})
    ctx.record(pid=os.getpid())
    time.sleep(float(config.get("sleep", 0.0)))
    return {"loss": (x - 1) ** 2, "x_abs": abs(x)}


def fails_when_positive(config, ctx):
    if config["x"] > 0:
        raise ValueError(f"x={config['x']} is positive")
    return {"loss": config["x"] ** 2}


def nan_objective(config, ctx):
    return {"loss": float("nan")}
