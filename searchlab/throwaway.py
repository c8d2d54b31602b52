"""In-memory Optuna studies made for a check (load-time probes, a pruner's first judgement): not news, so
Optuna's "A new study created in memory" line is not printed for them."""
from __future__ import annotations

from typing import Any

import optuna


def throwaway_study(**kwargs: Any) -> optuna.Study:
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.create_study(**kwargs)
    finally:
        optuna.logging.set_verbosity(previous)
