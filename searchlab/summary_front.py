"""What `status`, a run's summary and the report say about trials that did not train (over the architecture
budget) or trained less (cut short), failed trials by reason, a Pareto front (which trials are listed, in which
order), and what a GAN study's scores are measured with."""
from __future__ import annotations

import re
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from searchlab.engine.progress import final_trials


def over_budget_said(study: optuna.Study, run_dir: Path) -> str | None:
    """How many pruned trials were over the architecture budget, and which limit most of them broke: "1
    complete, 11 pruned" read as the pruner's doing, or a search that went well, when 11 configs never trained."""
    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    over = [t for t in pruned if isinstance(t.user_attrs.get("over_budget"), str)]
    if not over:
        return None
    # the reasons differ in their numbers ("flops 1.5e+08 > max_flops 3e+07"): the limit broken is what recurs
    broke = Counter(limit for t in over for limit in dict.fromkeys(_limits_broken(t.user_attrs["over_budget"])))
    limit, count = broke.most_common(1)[0] if broke else ("*", len(over))   # "*": a reason of another form
    example = next((t for t in over if f"max_{limit}" in t.user_attrs["over_budget"]), over[0])
    reason = example.user_attrs["over_budget"].removeprefix("over budget: ")
    most = f"most often over budget.max_{limit} ({count} of them, e.g." if broke else "e.g."
    return (f"  ({len(over)} of the {len(pruned)} pruned trials were over the architecture budget, so never "
            f"trained; {most} trial {example.number}: {reason}). Fix: loosen budget.max_{limit} or narrow the "
            f"space to smaller architectures; `searchlab trials {shlex.quote(str(run_dir))}` shows each one's "
            "reason in its over_budget column)")


def cut_short_said(study: optuna.Study, run_dir: Path) -> str | None:
    """How many completed trials budget.timeout cut short, with one's reason: listed only among the best
    trials, a GAN run of 1 full and 5 cut-short trials read as 6 trials trained alike, ranked alike."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    cut = [t for t in complete if isinstance(t.user_attrs.get("cut_short"), str)]
    if not cut:
        return None
    example = cut[0]
    less = ("less than the others" if len(cut) < len(complete) else
            "less than its config asked" if len(cut) == 1 else "less than their configs asked")
    which = (f"{len(cut)} of the {len(complete)} complete trials were" if len(complete) > 1 else
             "the 1 complete trial was")
    return (f"  ({which} cut short by budget.timeout, so trained {less}, e.g. trial {example.number}: "
            f"{example.user_attrs['cut_short']}; "
            f"`searchlab trials {shlex.quote(str(run_dir))}` shows each one's in its cut_short column)")


def _limits_broken(reason: str) -> list[str]:
    """The costs an `over_budget` reason names ("over budget: flops 3.1e+07 > max_flops 2e+07; params ...")."""
    return re.findall(r"> max_(\w+)", reason)


def front_by_first_objective(study: optuna.Study, front: list[FrozenTrial]) -> list[FrozenTrial]:
    """The Pareto front best first by the first objective (ties by the next): in trial-number order, "the
    best 3 of 4" shown were the first 3 run, not the best by anything."""
    signs = [-1 if d == optuna.study.StudyDirection.MAXIMIZE else 1 for d in study.directions]
    return sorted(front, key=lambda t: (*(s * v for s, v in zip(signs, t.values)), t.number))


def front_heading(front: list[FrozenTrial], shown: int, objectives: Any, run_dir: Path | None = None) -> str:
    """What the trial list below it is: the Pareto front, how much of it, in which order."""
    first = _first_objective(objectives)
    more = (f"; all: searchlab status {shlex.quote(str(run_dir))} --top {len(front)}"
            if run_dir is not None and shown < len(front) else "")
    return f"Pareto front: {shown} of its {len(front)} trial(s) shown, by {first}, best first{more}"


def setup_objectives(record: Any) -> Any:
    """The objectives a study's `searchlab` record names ([[metric, direction], ...]), or () when it has none."""
    return record.get("objectives", ()) if isinstance(record, dict) else ()


def _first_objective(objectives: Any) -> str:
    """"auc (the first objective)" from [(metric, direction), ...] or [metric, ...]; unnamed when unrecorded."""
    try:
        first = objectives[0]
        name = first[0] if isinstance(first, (list, tuple)) else first
    except (IndexError, KeyError, TypeError):
        return "first objective"
    return f"{name} (the first objective)" if isinstance(name, str) else "first objective"


def failed_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The failed configs; an attempt a retry took over (an interrupted trial run again) is not one: its
    retry's outcome is the config's."""
    return [t for t in final_trials(study) if t.state == TrialState.FAIL]


def failure_reason(trial: FrozenTrial) -> str:
    return str(trial.user_attrs.get("error", "no reason stored"))


def retried_failures(study: optuna.Study) -> list[tuple[FrozenTrial, FrozenTrial]]:
    """Each failed trial whose config ran again, with the trial that ran it: the retry names it (user attr
    `retry_of`, or Optuna's retry callback's system attr `failed_trial`). `status` and the report say them."""
    trials = study.get_trials(deepcopy=False)
    retry_of = {t.user_attrs.get("retry_of", t.system_attrs.get("failed_trial")): t for t in trials}
    return [(t, retry_of[t.number]) for t in trials if t.state == TrialState.FAIL and t.number in retry_of]


def retry_said(failed: FrozenTrial, retry: FrozenTrial) -> str:
    """"trial 8: interrupted (SIGTERM); its config re-ran as trial 11": one failed attempt and its retry."""
    again = {TrialState.WAITING: "is queued to run again", TrialState.RUNNING: "is running again"}
    return (f"trial {failed.number}: {failure_reason(failed)}; its config {again.get(retry.state, 're-ran')} as "
            f"trial {retry.number}")


def failures_by_reason(study: optuna.Study) -> list[tuple[str, list[int]]]:
    """Each reason the failed configs gave with their trial numbers, the most frequent first: 6 trials killed
    by budget.trial_timeout read as one line, not six. Reasons that differ only in their numbers are one
    (out of memory "Tried to allocate 548 MiB" and "... 715 MiB", loss nan "at epoch 3" and "at epoch 7"),
    said by the first trial's words."""
    return _by_reason((failure_reason(t), t.number) for t in failed_trials(study))


def prune_reason(trial: FrozenTrial) -> str:
    """Why a trial was pruned: over the architecture budget (never trained), or stopped by the pruner or a Ray
    scheduler (each stores its reason), as `searchlab trials` shows them in its over_budget and pruned columns."""
    for key in ("over_budget", "pruned"):
        if isinstance(trial.user_attrs.get(key), str):
            return trial.user_attrs[key]
    return "no reason stored"


def pruned_by_reason(study: optuna.Study) -> list[tuple[str, list[int]]]:
    """The pruned trials' reasons grouped as failures_by_reason groups failures: "pruned by the pruner after 3
    epoch(s), at auc=0.7123" and "... after 5 epoch(s), at auc=0.6410" are one reason."""
    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    return _by_reason((prune_reason(t), t.number) for t in pruned)


def _by_reason(reasons_of: Any) -> list[tuple[str, list[int]]]:
    """(reason, trial number) pairs grouped by the reason without its numbers, the most frequent first."""
    grouped: dict[str, tuple[list[str], list[int]]] = {}
    for reason, number in reasons_of:
        reasons, numbers = grouped.setdefault(_NUMBERS.sub("#", reason), ([], []))
        reasons.append(reason)
        numbers.append(number)
    said = [(reasons[0] + (" (their numbers differ)" if len(set(reasons)) > 1 else ""), numbers)
            for reasons, numbers in grouped.values()]
    return sorted(said, key=lambda item: -len(item[1]))


_NUMBERS = re.compile(r"\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def feature_network_said(study: optuna.Study) -> str | None:
    """What a GAN study's MedFID and KID are measured with (None for other studies): a classifier of the
    study's own images, not Inception, so its numbers read as published FIDs were compared with them."""
    record = study.user_attrs.get("searchlab")
    task = record.get("task") if isinstance(record, dict) else None
    generate = isinstance(task, dict) and task.get("kind") == "generate"
    if not generate and not any("medfid_features" in t.user_attrs for t in study.get_trials(deepcopy=False)):
        return None
    given = task.get("features") if isinstance(task, dict) else None
    network = (f"the classifier export task.features names ({given})" if given else
               "a small classifier trained on this study's own images (cached in the run folder's medfid_features/)")
    return (f"MedFID, KID, precision and recall are measured in the feature space of {network}, not ImageNet's "
            "Inception: not comparable with published FID/KID values, nor with another study's unless it used "
            "the same feature network")
