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


def reads_a_relative_file(config, ctx):
    """A user's function reading its own data by a path relative to where `searchlab run` started."""
    with open("weights_of_x.txt") as handle:
        weight = float(handle.read())
    ctx.record(folder=os.getcwd())
    return {"loss": weight * (config["x"] - 1) ** 2}


def fails_when_positive(config, ctx):
    if config["x"] > 0:
        raise ValueError(f"x={config['x']} is positive")
    return {"loss": config["x"] ** 2}


def only_trial_1_fails(config, ctx):
    """Trial 1 fails at once while trial 0 still runs (`sleep`); every other trial completes."""
    if ctx.trial.number == 1:
        raise ValueError("trial 1 fails")
    time.sleep(float(config.get("sleep", 0.0)) if ctx.trial.number == 0 else 0.0)
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


def hangs_when_positive(config, ctx):
    """A trial that never returns (a deadlock, an endless loop) for x > 0."""
    if config["x"] > 0:
        time.sleep(3600)
    return {"loss": config["x"] ** 2}


def dies_when_positive(config, ctx):
    """The worker process is killed mid-trial for x > 0, as the out-of-memory killer would (SIGKILL)."""
    import signal

    if config["x"] > 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return {"loss": config["x"] ** 2}


def out_of_memory_when_positive(config, ctx):
    """For x > 0, allocates past a 256 MiB address-space limit set around it: a MemoryError, as on a full GPU/host."""
    import resource

    if config["x"] <= 0:
        return {"loss": config["x"] ** 2}
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as fh:
        used = int(fh.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + 256 * 2**20, hard))
    try:
        block = bytearray(2**31)
        return {"loss": float(len(block))}
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def checkpointed(config, ctx):
    """Reports a few steps, then stores a checkpoint (safetensors) whose tensor is derived from x."""
    import tempfile
    from pathlib import Path

    import torch
    from safetensors.torch import save_file

    x = config["x"]
    for step in range(3):
        ctx.report(step, {"loss": (x - 1) ** 2 + 1.0 / (step + 1)})
        time.sleep(float(config.get("sleep", 0.0)) / 3)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.safetensors"
        save_file({"w": torch.full((64,), float(x))}, str(path))
        ctx.record(checkpoint=ctx.store_file(path))
    return {"loss": (x - 1) ** 2}


def fault_mix(config, ctx):
    """One injected fault per trial, named by config["fault"]: none, raise, nan, oom, hang, die."""
    fault = config["fault"]
    if fault == "raise":
        raise RuntimeError("injected failure")
    if fault == "nan":
        return {"loss": float("nan")}
    if fault == "oom":
        return out_of_memory_when_positive({"x": 1.0}, ctx)
    if fault == "hang":
        return hangs_when_positive({"x": 1.0}, ctx)
    if fault == "die":
        return dies_when_positive({"x": 1.0}, ctx)
    return {"loss": config["x"] ** 2}


def swallows_a_stop_once(config, ctx):
    """Asks for its own SIGTERM under a bare `except:` that swallows it (as medmnist's import does), the first
    time only (a marker file): the next epoch report must still stop the trial."""
    import signal
    from pathlib import Path

    marker = Path(config["marker"])
    if not marker.exists():
        marker.write_text("stopped once")
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except:  # noqa: E722 -- the point of this task
            pass
    for step in range(3):
        ctx.report(step, {"loss": 1.0 + step})
    return {"loss": config["x"] ** 2}


def reports_then_dies_once(config, ctx):
    """Reports an epoch, then its whole process is killed (SIGKILL) the first time; its retry completes."""
    import signal
    from pathlib import Path

    ctx.report(0, {"loss": 1.0})
    time.sleep(0.5)
    marker = Path(config["marker"])
    if not marker.exists():
        marker.write_text("died once")
        os.kill(os.getpid(), signal.SIGKILL)
    return {"loss": config["x"] ** 2}


def storage_away_in_trial_0(config, ctx):
    """Trial 0 (not its retry) meets the storage's server gone, as a storage call mid-trial does during a restart."""
    import sqlalchemy.exc

    if ctx.trial.number == 0:
        raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("the database system is shutting down"))
    return {"loss": config["x"] ** 2}
