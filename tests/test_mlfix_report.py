"""report.html of a multi-label study: per-label thresholds named by label, accuracy said to be exact match."""
import html
from types import SimpleNamespace

import optuna

NAMES = ["mass", "calc", "rare"]


def _multilabel_run() -> SimpleNamespace:
    study = optuna.create_study(direction="maximize")
    for value, threshold in ((0.83, [0.5059079527854919, 0.43297505378723145, 0.5347348749637604]),
                             (0.80, [0.5, 0.5, 0.5])):
        study.add_trial(optuna.trial.create_trial(value=value, user_attrs={
            "metrics": {"accuracy": 0.56, "auc": value, "hamming_loss": 0.2}, "task_kind": "multilabel",
            "threshold": threshold, "class_names": NAMES}))
    return SimpleNamespace(study=study, record={"objectives": [["auc", "maximize"]]})


def test_the_trial_table_names_each_label_threshold_before_the_metrics_and_marks_exact_match_accuracy():
    from searchlab.report.build import top_table
    from searchlab.summary import best_trials

    run = _multilabel_run()
    body = html.unescape(top_table(run, best_trials(run.study), 20).body)
    assert "mass=0.506 calc=0.433 rare=0.535" in body and "mass=0.5 calc=0.5 rare=0.5" in body
    assert "[0.5059079527854919" not in body   # not the raw, unnamed list
    headers = [h.split("</th>")[0] for h in body.split("<th>")[1:]]
    assert "metrics.accuracy (exact match)" in headers and "metrics.accuracy" not in headers
    assert headers.index("threshold") < headers.index("metrics.accuracy (exact match)")   # beside what it cut


def test_the_intro_and_the_confusion_heading_say_what_multilabel_scores_are_at():
    from searchlab.report.best_model import thresholds_said
    from searchlab.report.build import scored_on_said

    intro = scored_on_said(_multilabel_run().study)
    assert "accuracy is <b>exact match</b>" in intro and "hamming_loss" in intro
    assert thresholds_said([0.5059, 0.433, 0.5347], NAMES) == "thresholds mass=0.506 calc=0.433 rare=0.535"
    assert thresholds_said(0.42, ["benign", "malignant"]) == "threshold"   # binary: as before
