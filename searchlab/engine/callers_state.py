"""What a run called from Python (`searchlab.cli.main([...])` in a notebook or script) gives back as it found
it: the process goes on after the run, and its own code should not notice the run happened.

- Optuna's log level: a run sets it to ERROR (its progress line says what Optuna would); a notebook's own
  studies went silent after one.
- torch's global random state: trials seed it (torch.manual_seed) in this process, so the caller's next
  torch.rand, dropout or DataLoader shuffle drew other numbers than without the run.
The searchlab command itself ends with the run: nothing to give back there.
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

    verbosity = optuna.logging.get_verbosity()
    with ExitStack() as stack:
        stack.callback(optuna.logging.set_verbosity, verbosity)
        stack.enter_context(torch.random.fork_rng())   # CPU and every CUDA device's generator
        yield
