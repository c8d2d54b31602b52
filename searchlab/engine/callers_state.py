"""What a command called from Python (`searchlab.cli.main([...])` in a notebook or script) gives back as it
found it: the process goes on after the command, and its own code should not notice the command ran.

- Optuna's log level: a run sets it to ERROR (its progress line says what Optuna would); a notebook's own
  studies went silent after one.
- torch's global random state: trials and exports seed it (torch.manual_seed) in this process, so the
  caller's next torch.rand, dropout or DataLoader shuffle drew other numbers than without the command.
- torch's thread count: a run's in-process worker sets its own (executor.threads_per_worker).
The searchlab command itself ends with the command: nothing to give back there. Python callers import torch
and Optuna here (a notebook has them already), so that what they later import is as they would find it.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager


@contextmanager
def callers_state_kept(caller_goes_on: bool) -> Iterator[None]:
    if not caller_goes_on:
        yield
        return
    import optuna
    import torch

    verbosity, threads = optuna.logging.get_verbosity(), torch.get_num_threads()
    with ExitStack() as stack:
        stack.callback(optuna.logging.set_verbosity, verbosity)
        stack.callback(torch.set_num_threads, threads)
        stack.enter_context(torch.random.fork_rng())   # CPU and every CUDA device's generator
        yield
