"""What a command called from Python (`searchlab.cli.main([...])` in a notebook or script) gives back as it
found it: the process goes on after the command, and its own code should not notice the command ran.

- Optuna's log level: a run sets it to ERROR (its progress line says what Optuna would); a notebook's own
  studies went silent after one.
- torch's global random state: trials and exports seed it (torch.manual_seed) in this process, so the
  caller's next torch.rand, dropout or DataLoader shuffle drew other numbers than without the command.
- torch's thread count: a run's in-process worker sets its own (executor.threads_per_worker).
- Its own modules: a study's modules come before the caller's folder while the command runs (study_modules.py);
  after it, the caller's `import helpers` gets its own `helpers.py` again, not the study's, cached.
- Its import path: sys.path and sys.meta_path as they were, without the study's folder and its finder (the
  caller's `import onlyA` found a file only the study's folder has).
The searchlab command itself ends with the command: nothing to give back there. Nothing is imported for it: a
caller without torch has no random state to keep (`searchlab cache` stays quick), and Optuna imported by the
command is left at the level its import sets.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any


@contextmanager
def callers_state_kept(caller_goes_on: bool) -> Iterator[None]:
    if not caller_goes_on:
        yield
        return
    with ExitStack() as stack:
        stack.callback(_imports_given_back, dict(sys.modules), list(sys.path), list(sys.meta_path))
        if "optuna" in sys.modules:
            import optuna

            stack.callback(optuna.logging.set_verbosity, optuna.logging.get_verbosity())
        else:
            stack.callback(_optuna_as_imported)
        if "torch" in sys.modules:
            import torch

            stack.callback(torch.set_num_threads, torch.get_num_threads())
            stack.enter_context(torch.random.fork_rng())   # CPU and every CUDA device's generator
        yield


def _imports_given_back(before: dict[str, Any], path: list[str], meta_path: list[Any]) -> None:
    study_modules = sys.modules.get("searchlab.study_modules")
    if study_modules is not None:   # no study was loaded without it
        study_modules.give_back_imports(before)   # first: told by where they are, on the study's path
        study_modules.give_back_import_path(path, meta_path)


def _optuna_as_imported() -> None:
    optuna = sys.modules.get("optuna")
    if optuna is not None:   # imported by the command: at the level Optuna's import sets
        optuna.logging.set_verbosity(optuna.logging.INFO)
