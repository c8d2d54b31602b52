"""A zen_nas or deepmad run trains its stage's top_k designs first; a reused stage whose best are over this run's
budget queued fewer, and the trials after them were random draws with no word at the run's start (the start
warning counts the designs as top_k). Now the run says how many designs it queued, how many trials are random
draws, and the fix; and nothing when every trial to run is a queued design."""
from __future__ import annotations

import optuna

from searchlab.config.load import load_study
from searchlab.engine.run import create_or_load, run_study
from searchlab.strategy import prepare_strategy
from test_deepmad import STUDY

SHORT = "warning: dm.deepmad: 1 design(s) queued, not top_k=2 (the others it scored are over this run's budget)"


def _stage_reused_under_a_lower_budget(write_study, tmp_path, capsys, n_trials):
    """The study, once its deepmad stage was recorded under a budget its 2 best designs fit (both queued: a full
    queue, no warning) and its main study deleted (the stage's kept, as the stage's own fix says), written again
    with a max_flops only its smallest scored network fits."""
    text = STUDY.replace("n_trials: 2", f"n_trials: {n_trials}")
    study = load_study(write_study(text.replace("FLOPS", "4.0e+6")))
    (tmp_path / "run").mkdir()
    main = create_or_load(study)
    prepare_strategy(study, main, None)
    assert sum(t.state == optuna.trial.TrialState.WAITING for t in main.get_trials()) == 2
    assert "design(s) queued" not in capsys.readouterr().err
    storage = f"sqlite:///{tmp_path / 'run' / 'study.db'}"
    scored = optuna.load_study(study_name="dm.deepmad", storage=storage).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,))
    smallest, next_one = sorted({t.user_attrs["flops"] for t in scored})[:2]
    optuna.delete_study(study_name="dm", storage=storage)
    return write_study(text.replace("FLOPS", repr((smallest + next_one) / 2)))


def test_a_short_queue_of_designs_is_said_with_the_random_draws_and_the_fix(write_study, tmp_path, capsys):
    path = _stage_reused_under_a_lower_budget(write_study, tmp_path, capsys, n_trials=2)
    result = run_study(load_study(path), progress=False)
    err = capsys.readouterr().err
    assert (f"{SHORT}, and this run has 2 trial(s) to run: 1 of them is a random draw, not a design (until 3 trials "
            "complete, the population its evolution starts from). Fix: raise the architecture budget "
            "(budget.max_params, max_flops, max_depth) so more designs fit, lower budget.n_trials to 1, or widen the "
            "space so the stage finds more distinct networks within the budget") in err
    # said before the first trial: kept with the run's start warnings, for `status` and the report
    assert any(line.startswith(SHORT) for line in result.study.user_attrs["searchlab_runs"][-1]["start_warnings"])
    trials = result.study.get_trials()
    assert len(trials) == 2 and "entropy" in trials[0].user_attrs and "entropy" not in trials[1].user_attrs


def test_no_warning_when_every_trial_to_run_is_a_queued_design(write_study, tmp_path, capsys):
    path = _stage_reused_under_a_lower_budget(write_study, tmp_path, capsys, n_trials=1)
    result = run_study(load_study(path), progress=False)
    assert "design(s) queued" not in capsys.readouterr().err
    [trial] = result.study.get_trials()
    assert "entropy" in trial.user_attrs   # the one design it queued


def test_a_zen_nas_stage_that_scored_fewer_networks_than_top_k_says_so(write_study, tmp_path, capsys):
    """24 drawable configs of 4 networks (tests/test_nas_stage.py ROUNDING): top_k 5 cannot be queued."""
    from test_nas_stage import ROUNDING

    text = ROUNDING.replace("candidates: 6, top_k: 3, population_size: 4",
                            "candidates: 4, top_k: 5, population_size: 8")
    study = load_study(write_study(text.replace("n_trials: 1", "n_trials: 5")))
    (tmp_path / "run").mkdir()
    main = create_or_load(study)
    prepare_strategy(study, main, None)   # what `run` does before its first trial
    designs = sum(t.state == optuna.trial.TrialState.WAITING for t in main.get_trials())
    assert 1 <= designs < 5
    said = (f"warning: zen.zen_proxy: {designs} design(s) queued, not top_k=5 (the stage scored no more distinct "
            f"networks), and this run has 5 trial(s) to run: {5 - designs} of them ")
    assert said in capsys.readouterr().err
