"""Which trial an export (or a transfer from a run) takes: light, so `searchlab export --trial N` refuses a
trial that is not COMPLETE before the exporter's torch and data imports (seconds) are paid."""
from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from searchlab.errors import ExportError


def pick_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    if number is not None:
        return _numbered_trial(study, number)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise ExportError(f"study '{study.study_name}' has no completed trial to export yet{_why_none(study)}")
    if len(study.directions) > 1:
        front = ", ".join(str(t.number) for t in study.best_trials)
        raise ExportError(f"this study has {len(study.directions)} objectives, so there is no single best "
                          f"trial. Fix: pick one of the Pareto front with --trial N (front: {front})")
    return study.best_trial


def _numbered_trial(study: optuna.Study, number: int) -> FrozenTrial:
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in by_number:
        span = f"trials 0..{len(by_number) - 1}" if by_number else "no trials"
        raise ExportError(f"trial {number} does not exist (the study has {span}). Fix: "
                          f"{_pick_another(study)}")
    trial = by_number[number]
    if trial.state != TrialState.COMPLETE:
        raise ExportError(f"trial {number} is {trial.state.name}{_why_not_complete(trial)}; only COMPLETE trials "
                          f"can be exported. Fix: {_pick_another(study)}")
    return trial


def _why_not_complete(trial: FrozenTrial) -> str:
    """Why a trial has no model to export, as it recorded it: its error, or why it was pruned (over the
    architecture budget, before training; or by the pruner or the clock)."""
    attrs = trial.user_attrs
    for key in ("error", "over_budget", "pruned"):
        if isinstance(attrs.get(key), str) and attrs[key]:
            return f" ({attrs[key]})"
    return ""


def _pick_another(study: optuna.Study) -> str:
    """Which trial to export instead. With several objectives there is no best to fall back on (leaving out
    --trial is refused there): the Pareto front's members are the choices."""
    if len(study.directions) == 1:
        return ("pick a completed trial (searchlab status RUN lists the best, searchlab trials RUN all), or leave "
                "out --trial for the best")
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return "no trial of this study completed yet: run it until some do (searchlab status RUN says why not)"
    front = ", ".join(str(t.number) for t in sorted(study.best_trials, key=lambda t: t.number))
    return f"pick a trial of the Pareto front with --trial N (front: {front}; searchlab status RUN shows them)"


def _why_none(study: optuna.Study) -> str:
    """The study's trial states and its latest failure's reason: what to fix before there is a model."""
    trials = study.get_trials(deepcopy=False)
    if not trials:
        return " (it has no trials). Fix: run the study first"
    states: dict[str, int] = {}
    for trial in trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    failed = [t for t in trials if t.state == TrialState.FAIL and t.user_attrs.get("error")]
    last = f"; the latest failure, trial {failed[-1].number}: {failed[-1].user_attrs['error']}" if failed else ""
    if any(t.state == TrialState.RUNNING for t in trials):   # a search going on: not one to fix and run again
        return f" ({counts}{last}). Fix: wait until a trial completes (searchlab status RUN shows how it goes)"
    return f" ({counts}{last}). Fix: see why with searchlab status RUN, fix that and run the study again"


def dominated_by_front(study: optuna.Study, trial: FrozenTrial) -> list[int]:
    """The Pareto front's trial numbers when `trial` is not on it (another trial is as good in every
    objective and better in one), else []."""
    front = [t.number for t in study.best_trials]
    return [] if trial.number in front else front
