"""The run-start note on which class a two-class objective is of. Binary precision, recall and f1 are macro means
over both classes (searchlab/metrics.py), so they are of no one class: the note named them "of class 'normal,
benign' (the positive class)" and told the user to set data.positive_class, which does not change them."""
from __future__ import annotations

import pytest

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from test_run import TINY_CLASSIFY

ONE_TRIAL = TINY_CLASSIFY.replace("budget: {n_trials: 2, epochs: 2}", "budget: {n_trials: 1, epochs: 1}")


def _run_start_notes(write_study, capsys, objective: str) -> list[str]:
    run_study(load_study(write_study(ONE_TRIAL + f"objective: {objective}\n")), progress=False)
    return [line for line in capsys.readouterr().err.splitlines() if "the positive class" in line]


@pytest.mark.parametrize("objective", ["f1", "precision", "recall"])
def test_a_macro_averaged_objective_gets_no_positive_class_note(write_study, capsys, objective):
    assert _run_start_notes(write_study, capsys, objective) == []


def test_sensitivity_still_gets_the_note(write_study, capsys):
    notes = _run_start_notes(write_study, capsys, "sensitivity")
    assert len(notes) == 1 and "sensitivity is of class 'normal, benign'" in notes[0]
    assert "data.positive_class: 'malignant'" in notes[0]


def test_the_note_says_the_threshold_rule_of_a_thresholded_one_class_metric():
    from types import SimpleNamespace

    from searchlab.tasks.selection_advice import positive_class_note
    data = SimpleNamespace(kind="binary", class_names=("malignant", "normal, benign"))
    note = positive_class_note(["specificity", "f1"], data, chosen=False, rules={"fixed", "youden"})
    assert note.startswith("specificity is of class 'normal, benign' (class 1, the positive class); specificity is "
                           "scored at the threshold each trial's rule chooses (fixed, youden)")
