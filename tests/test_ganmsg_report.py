"""`searchlab report` of a GAN run printed 11 pairs of raw Optuna "Some regimes ... have less than 2 trials"
UserWarnings on stderr: ranking the parallel coordinates' axes by importance ran outside the block that
records what Optuna warns while drawing a plot."""
from __future__ import annotations

import warnings

import optuna

from searchlab.report.figures import MAX_AXES, parallel_section


def _study_of_many_sparse_params() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:   # a branch one trial took: its parameters' regimes are sparse
        branch = "common" if trial.number < 5 else "rare"
        width = MAX_AXES + 1 if branch == "common" else 2
        return sum(trial.suggest_float(f"{branch}.p{i:02d}", 0.0, 1.0) for i in range(width))

    study.optimize(objective, n_trials=6)
    return study


def test_ranking_the_axes_warns_nothing_on_the_terminal_and_says_it_under_the_plot():
    study = _study_of_many_sparse_params()
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        section = parallel_section(study, "value")
    raw = [str(w.message) for w in escaped if "regimes" in str(w.message)]
    assert raw == [], raw   # before: one UserWarning per sparse parameter, printed by the report command
    assert f"{MAX_AXES} of {MAX_AXES + 3} parameters" in section.title
    assert "Some regimes for parameter" in section.body and "less than 2 trials" in section.body
