"""What `run` prints when no trial completed because every one was pruned: why, and what lets some finish, in
the words of the study's task (a GAN trains train.iterations, judged at its train.evaluations; no epochs) and of
its trials (one under train.cv_folds or train.repeats is judged after its runs, not its epochs)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:
    from searchlab.config.load import Study


def print_all_pruned(ostudy: optuna.Study, study: Study) -> None:
    """Why no trial completed when all were pruned: over the architecture budget is not the pruner's doing."""
    pruned = ostudy.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    over = [t for t in pruned if "over_budget" in t.user_attrs]
    if over:
        print(f"no trial completed: {len(over)} of {len(pruned)} pruned trials were over the architecture budget "
              f"before training (e.g. trial {over[0].number}: {over[0].user_attrs['over_budget']}); raise "
              "budget.max_flops / max_params / max_depth or search smaller architectures. Each counts toward "
              "budget.n_trials")
    # cut by budget.timeout (a cross-validated trial whose folds it cut, or a refit): not a pruner's doing either
    timed_out = [t for t in pruned if str(t.user_attrs.get("pruned", "")).startswith("stopped by budget.timeout")]
    if timed_out:
        print(f"no trial completed: {len(timed_out)} of {len(pruned)} pruned trials were stopped by budget.timeout "
              f"(e.g. trial {timed_out[0].number}: {timed_out[0].user_attrs['pruned']}); a longer budget.timeout, "
              "or shorter trials, lets some finish")
    not_judged = {t.number for t in over + timed_out}
    judged = [t for t in pruned if t.number not in not_judged]
    if judged:
        print("no trial completed: every finished trial was pruned (each trial's `pruned` attribute or the "
              f"dashboard's intermediate values say when); {_train_longer_said(study, judged)} or a gentler pruner "
              "lets some finish")


def _train_longer_said(study: Study, pruned: list[FrozenTrial]) -> str:
    """What to train longer: a GAN has no epochs (it trains train.iterations and is judged at each of its
    train.evaluations checkpoints but the last), so "more epochs" named a setting it does not read; a classify
    trial of repeated runs is judged after each run but its first and last (ray_schedule.report_unit), so more
    epochs per run gave it no more room: fewer runs do."""
    from searchlab.engine.objective import config_of
    from searchlab.engine.ray_schedule import repeated_runs

    kind = study.config.task.kind
    if kind == "generate":
        return "more space.train.iterations, fewer space.train.evaluations (at 1 none is judged before the trial ends)"
    repeated = [bool(repeated_runs(kind, config_of(t))) for t in pruned if "over_budget" not in t.user_attrs]
    runs = ("fewer runs per trial (space.train.cv_folds x space.train.repeats: at 2 none is judged, neither the "
            "first run nor the last)")
    if repeated and all(repeated):
        return runs
    return f"more epochs (for trials without train.cv_folds or repeats), {runs}" if any(repeated) else "more epochs"
