"""status and run's summary: multi-label accuracy headed as exact match, a label's undefined AUC shown as n/a
with why."""
import optuna

from searchlab.trial_said import describe_trial


def _trial(**attrs):
    metrics = {"auc": 0.8, "accuracy": 0.55, "auc_class_0": 0.9, "recall_class_0": 0.4, "auc_class_1": 0.7,
               "recall_class_1": 0.5, "recall_class_2": 0.6}   # label 2 always on: no AUC; label 3 never on
    return optuna.trial.create_trial(value=0.8, params={}, distributions={}, user_attrs={
        "metrics": metrics, "task_kind": "multilabel", "class_names": ["malignant", "bright", "full", "dark"],
        "threshold": [0.4, 0.5, 0.5, 0.5], **attrs})


def test_multilabel_accuracy_is_said_to_be_exact_match_and_undefined_labels_are_shown_with_why():
    text = describe_trial(None, _trial())
    assert "validation: auc=0.8, accuracy (exact match)=0.55, thresholds" in text
    assert ("AUC per class: malignant 0.9, bright 0.7, full n/a (on in every image in the validation split), dark n/a "
            "(never on in the validation split)\n") in text
    assert "sensitivity per class: malignant 0.4, bright 0.5, full 0.6, dark n/a (never on in the validation split)" \
        in text


def test_cross_validated_multilabel_thresholds_are_said_to_be_the_exported_models():
    text = describe_trial(None, _trial(cv_folds=[]))
    assert "thresholds malignant=0.4 bright=0.5 full=0.5 dark=0.5 (the exported model's, chosen on val)" in text
    assert "dark n/a (never on in some held-out fold)" in text
