"""What the zen_nas and deepmad strategies share: a recorded stage before training, and their settings.

A stage scores architectures without training them, records every one as a study of its own in the main
study's storage (`<study><suffix>`, written in one batch), marks it done, and queues the best in the main study.
A finished stage is reused when the study resumes; one killed half-way is refused (its trials are incomplete
evidence), saying how to start over.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from searchlab.engine.bulk import bulk_add_trials
from searchlab.errors import ConfigError, SearchlabError
from searchlab.suggest import did_you_mean

DONE = "searchlab:stage_done"
SPANS = "searchlab:stage_spans"   # on the main study: [start, end] seconds of each stage run (compare counts them)


def run_stage(main: optuna.Study, name: str, produce: Callable[[], list[FrozenTrial]], top_k: int,
              score_attr: str) -> list[FrozenTrial]:
    """Record `produce()` as the study `name` (once), queue its `top_k` best in `main`; returns its trials."""
    record = optuna.create_study(study_name=name, storage=main._storage, direction="maximize", load_if_exists=True)
    if record.user_attrs.get(DONE):
        trials = record.get_trials(deepcopy=False)   # resuming: read the finished stage back once
    else:
        if record.get_trials(deepcopy=False):
            raise SearchlabError(f"the study '{name}' holds an unfinished search. Fix: delete it (optuna "
                                 f"delete-study --study-name '{name}' --storage URL) or rename the study")
        started = time.time()
        print(f"{name}: scoring architectures without training (a stage before the first trial) ...", flush=True)
        trials = produce()
        bulk_add_trials(record, trials)
        record.set_user_attr(DONE, True)
        main.set_user_attr(SPANS, [*main.user_attrs.get(SPANS, []), [started, time.time()]])
        print(f"{name}: {_stage_counts(trials)} in {time.time() - started:.0f} s", flush=True)
        for number, trial in enumerate(trials):   # a fresh study numbers them in the order written
            trial.number = number
    enqueue_top_k(main, trials, top_k, score_attr)
    return trials


def _stage_counts(trials: list[FrozenTrial]) -> str:
    twins = [t for t in trials if "same_network_as" in t.user_attrs]   # given the score of one scored already
    new = [t for t in trials if "same_network_as" not in t.user_attrs]
    scored = sum(t.state == TrialState.COMPLETE for t in new)
    over = sum(t.state == TrialState.PRUNED for t in new)
    failed = sum(t.state == TrialState.FAIL for t in new)
    again = f", {len(twins)} repeat(s) of a network scored already" if twins else ""
    return f"{scored} scored, {over} over the budgets, {failed} failed{again}"


def settings_from_args(cls: type, strategy: str, args: dict[str, Any]) -> Any:
    """A strategy's settings dataclass from `strategy.args`: unknown names, non-positive values and fractions
    of a count (top_k: 2.5 queued every candidate) are refused."""
    fields = cls.__dataclass_fields__
    unknown = sorted(set(args) - set(fields))
    if unknown:
        close = did_you_mean(unknown[0], sorted(fields))
        raise ConfigError(f"{strategy} has no such argument", key=f"strategy.args.{unknown[0]}", got=unknown[0],
                          fix=(f"{close} " if close else "") + f"{strategy} takes {', '.join(sorted(fields))}")
    for name, value in args.items():
        if fields[name].type == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
            raise ConfigError(f"{strategy}'s {name} is a count: a whole number", key=f"strategy.args.{name}",
                              got=value, fix=f"write {name} as a whole number, e.g. {_whole_example(value)}")
    settings = cls(**args)
    # true is no number here (it was read as 1: rho0: true bounded the design at 1)
    bad = [name for name, value in vars(settings).items()
           if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0]
    if bad:
        raise ConfigError(f"{strategy} arguments must be positive numbers", key=f"strategy.args.{bad[0]}",
                          got=getattr(settings, bad[0]), fix="give a positive count or bound")
    return settings


def _whole_example(value: Any) -> int:
    return max(1, round(value)) if isinstance(value, (int, float)) and math.isfinite(value) else 5


def enqueue_top_k(main: optuna.Study, ranked_by: list[FrozenTrial], k: int, score_attr: str) -> None:
    """Queue the k best distinct scored networks of a proxy/design study (their score as user attr `score_attr`):
    distinct by the architecture a trial recorded, else by its params (two trials of one network that differ
    in lr would train one network twice); a config the main study already has or queued is skipped by Optuna."""
    scored = [t for t in ranked_by if t.state == TrialState.COMPLETE and t.value is not None
              and math.isfinite(t.value)]
    scored.sort(key=lambda t: -t.value)
    seen: set[str] = set()
    for trial in scored:
        key = trial.user_attrs.get("architecture") or json.dumps(trial.params, sort_keys=True, default=str)
        if key in seen:
            continue
        seen.add(key)
        main.enqueue_trial(trial.params, user_attrs={score_attr: trial.value, "proxy_trial": trial.number},
                           skip_if_exists=True)
        if len(seen) == k:
            break
