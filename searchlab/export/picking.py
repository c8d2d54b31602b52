"""Which trial an export (or a transfer from a run) takes: light, so `searchlab export --trial N` refuses a
trial that is not COMPLETE before the exporter's torch and data imports (seconds) are paid."""
from __future__ import annotations

from datetime import datetime

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
    running = [t for t in trials if t.state == TrialState.RUNNING]
    if running and _left_by_ended_runs(study, running):   # no run finishes them: waiting would be for good
        return f" ({counts}{last}; {_left_said(running)}"
    if running:   # a search going on: not one to fix and run again
        return f" ({counts}{last}). Fix: wait until a trial completes (searchlab status RUN shows how it goes)"
    return f" ({counts}{last}). Fix: see why with searchlab status RUN, fix that and run the study again"


def _left_said(running: list[FrozenTrial]) -> str:
    """What a run killed mid-trial left, and the fix: export told the user to wait for a trial never to end."""
    shown = ", ".join(str(t.number) for t in running[:5]) + (", ..." if len(running) > 5 else "")
    if len(running) == 1:
        left, then = f"trial {shown} was", "the trial is failed and its config runs again"
    else:
        left, then = f"trials {shown} were", "the trials are failed and their configs run again"
    return (f"{left} left RUNNING by a run that ended without a word (killed -9, out of memory, a lost machine), "
            f"and no run is finishing {'it' if len(running) == 1 else 'them'}). Fix: run the study again "
            f"(searchlab run STUDY resumes: {then}), then export")


def _left_by_ended_runs(study: optuna.Study, running: list[FrozenTrial]) -> bool:
    """Whether the RUNNING trials were started by runs of the study that are over, as `status` tells (the run
    history of engine/run_history.py runs_line, the heartbeats of summary.py _running_elsewhere): no recorded
    run may be alive (one without an end whose process is gone on this machine was killed -9), no trial sent a
    heartbeat lately (a runner on another machine of a server storage), and each started while a recorded run
    went on. One started after them all (an Optuna script driving the study, say) may be running: it waits."""
    from searchlab.engine.run_history import KEY, others_alive
    from searchlab.engine.storage import GRACE_SECONDS, heartbeat_ages

    runs = study.user_attrs.get(KEY)
    # started=0: no run of the history is this process's own (an export runs no trials)
    if not isinstance(runs, list) or not runs or others_alive(study, started=0.0):
        return False
    if any(age < GRACE_SECONDS for age in heartbeat_ages(study._storage, running).values()):
        return False
    spans = [_span(run) for run in runs if isinstance(run, dict)]
    return all(any(start <= trial.datetime_start.timestamp() <= end for start, end in spans)
               for trial in running if trial.datetime_start is not None)


def _span(run: dict) -> tuple[float, float]:
    """When a recorded run went on: from its start to its end, or for good when it has none (killed). Its start is
    kept to the second, cut down: the end may come out up to a second early, and a trial its last second started
    is then not said left (export says to wait, as before), rather than one started just after it said so."""
    try:
        start = datetime.fromisoformat(str(run.get("started_utc"))).timestamp()
    except ValueError:
        return (0.0, 0.0)
    seconds = run.get("seconds")
    return (start, start + seconds) if isinstance(seconds, (int, float)) else (start, float("inf"))


def dominated_by_front(study: optuna.Study, trial: FrozenTrial) -> list[int]:
    """The Pareto front's trial numbers when `trial` is not on it (another trial is as good in every
    objective and better in one), else []."""
    front = [t.number for t in study.best_trials]
    return [] if trial.number in front else front
