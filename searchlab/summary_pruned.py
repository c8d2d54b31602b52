"""What `run` prints when no trial completed because every one was pruned: why, and what lets some finish, in
the words of the study's task (a GAN trains train.iterations, judged at its train.evaluations; no epochs)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import optuna
from optuna.trial import TrialState

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
    if len(over) < len(pruned):
        print("no trial completed: every finished trial was pruned (each trial's `pruned` attribute or the "
              f"dashboard's intermediate values say when); {_train_longer_said(study)} or a gentler pruner lets "
              "some finish")


def _train_longer_said(study: Study) -> str:
    """What to train longer: a GAN has no epochs (it trains train.iterations and is judged at each of its
    train.evaluations checkpoints but the last), so "more epochs" named a setting it does not read."""
    if study.config.task.kind != "generate":
        return "more epochs"
    return "more space.train.iterations, fewer space.train.evaluations (at 1 none is judged before the trial ends)"
