"""The pruner in a run: trials that fall behind stop early, none is judged after its last epoch, and a
pruner with nothing to judge (several objectives) is warned about."""
from __future__ import annotations

import optuna
from optuna.trial import TrialState

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from test_run import TINY_CLASSIFY, callable_study, states


def test_pruner_stops_trials_that_fall_behind(write_study):
    extra = "\npruner: {kind: median, args: {n_startup_trials: 1, n_warmup_steps: 0}}\n"
    path = callable_study(write_study, n=10, extra=extra)
    path.write_text(path.read_text().replace("pruner: none\n", ""))
    study = run_study(load_study(path), progress=False).study
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert pruned and states(study).get("COMPLETE", 0) + len(pruned) == 10
    assert all(t.intermediate_values for t in pruned)


def test_a_pruner_in_a_multi_objective_study_is_warned_about(write_study, capsys):
    from searchlab.engine import run as run_module

    multi = TINY_CLASSIFY.replace("pruner: none", "pruner: median") + "objective: [auc, params]\n"
    run_module._warn_if_pruner_idle(load_study(write_study(multi)))
    assert capsys.readouterr().err.startswith("warning: pruner 'median' has no effect in a study of 2 objectives")
    run_module._warn_if_pruner_idle(load_study(write_study(TINY_CLASSIFY + "objective: [auc, params]\n")))
    run_module._warn_if_pruner_idle(load_study(write_study(TINY_CLASSIFY.replace("pruner: none", "pruner: median"))))
    assert capsys.readouterr().err == ""


def test_a_trial_is_never_pruned_after_its_last_epoch_and_a_pruned_one_says_why(write_study, monkeypatch):
    """A pruner that always prunes (AUC below 2): a one-epoch trial completes, since pruning it after its
    only epoch would throw a trained result away; a two-epoch trial is pruned after epoch 1, with the reason."""
    from searchlab.engine import worker

    monkeypatch.setattr(worker, "build_pruner", lambda cfg, epochs: optuna.pruners.ThresholdPruner(lower=2.0))
    one = run_study(load_study(write_study(TINY_CLASSIFY), {"budget.epochs": 1, "budget.n_trials": 1}),
                    progress=False).study
    assert [t.state.name for t in one.trials] == ["COMPLETE"] and list(one.trials[0].intermediate_values) == [0]
    two = run_study(load_study(write_study(TINY_CLASSIFY.replace("name: tiny", "name: tiny2")),
                               {"budget.epochs": 2, "budget.n_trials": 1}), progress=False).study
    [pruned] = two.trials
    assert pruned.state.name == "PRUNED" and list(pruned.intermediate_values) == [0]
    assert pruned.user_attrs["pruned"].startswith("pruned by the pruner after 1 epoch(s), at auc=")
