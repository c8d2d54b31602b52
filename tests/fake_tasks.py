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


def learning_curve(config, ctx):
    """Ten epochs whose loss settles at x**2: bad configs are visibly bad from the first epoch."""
    x = config["x"]
    for epoch in range(10):
        ctx.report(epoch, {"loss": x ** 2 + 1.0 / (epoch + 1)})
        time.sleep(float(config.get("sleep", 0.0)))
    return {"loss": x ** 2}


def slow_with_pid_file(config, ctx):
    """Writes <pid_dir>/<trial number>.pid, then works for a while: a test kills the process meanwhile."""
    from pathlib import Path

    Path(config["pid_dir"], f"{ctx.trial.number}.pid").write_text(str(os.getpid()))
    time.sleep(float(config["sleep"]))
    return {"loss": config["x"] ** 2}
