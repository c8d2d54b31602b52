"""A joining run's progress line said a "study best" one trial late: the other run's trials finished meanwhile were
read only after the line for this run's own trial was written (and never for its last one)."""
from __future__ import annotations

import optuna

from searchlab.engine.own_trials import OwnTrials
from searchlab.engine.progress import Progress


def test_the_line_for_a_trial_names_the_best_another_run_finished_before_it(capsys):
    study = optuna.create_study(direction="minimize")
    own = OwnTrials(study)
    own.beside = True   # this run joined another as it started
    bar = Progress(study, total=10, own=own)
    bar.as_lines = True
    capsys.readouterr()
    study.add_trial(optuna.trial.create_trial(value=0.1))   # the other run's trial 0, finished first
    mine = study.ask()
    study.tell(mine, 5.0)
    own.callback(study, study.trials[1])
    bar.callback(study, study.trials[1])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("trial 1 complete: 5.0000 [1 by this run") and "study best: 0.1000 (trial 0)" in line
