"""Multi-label export warnings that say what the user will see: an ensemble's member scored as `--trial N` exports
it, a TTA drop in a cost said as a rise, and a label flagged on no test image told the fixes its trial lacks."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from searchlab.imbalance import ImbalanceSpec, choose_threshold
from searchlab.metrics import compute_metrics

NAMES = ["malignant", "bright", "rare", "dark"]
SPLITS = {"train": {"images": 200, "per_class": {"malignant": 47, "bright": 133, "rare": 10, "dark": 15}},
          "val": {"images": 60, "per_class": {"malignant": 15, "bright": 41, "rare": 2, "dark": 0}}}
# per label [tn, fp, fn, tp]: 'rare' and 'dark' each on in 6 test images, flagged on none
NEVER = [[24, 16, 7, 13], [20, 1, 4, 35], [54, 0, 6, 0], [54, 0, 6, 0]]


def _hamming(labels: np.ndarray, probs: np.ndarray, rule: str) -> float:
    threshold = choose_threshold(ImbalanceSpec(threshold=rule), "multilabel", labels, probs)
    return compute_metrics(labels, probs, "multilabel", 2, threshold=threshold)["hamming_loss"]


def test_an_ensemble_member_is_scored_at_its_own_threshold_rule_as_trial_n_exports_it(monkeypatch, capsys):
    from searchlab.export import selection
    from searchlab.export.export_notes import warn_about_export

    rng = np.random.default_rng(1)
    labels = (rng.random((30, 2)) < [0.5, 0.2]).astype(float)
    weak = rng.random((30, 2))   # ranked first (its rule, youden, is the ensemble's); the f1 member is better
    good = np.clip(labels * 0.3 + 0.35 + rng.normal(0, 0.15, (30, 2)), 0, 1)
    trials = [SimpleNamespace(number=n, params={}, user_attrs={"config": {"imbalance": {"threshold": rule}}})
              for n, rule in ((2, "youden"), (1, "f1"))]
    run = SimpleNamespace(record={"objectives": [["hamming_loss", "minimize"]]})
    monkeypatch.setattr(selection, "held_out_per_trial", lambda *a: (labels, [weak, good], "val"))
    record = selection.weaker_than_a_member(run, None, {"task": "multilabel", "class_names": ["a", "b"]}, trials)
    own = _hamming(labels, good, "f1")   # what `--trial 1` chooses and records as its val hamming_loss
    assert own != pytest.approx(_hamming(labels, good, "youden"))   # the best trial's rule gives another number
    assert record == {"metric": "hamming_loss", "split": "val", "member": 1, "member_value": pytest.approx(own),
                      "ensemble": pytest.approx(_hamming(labels, (weak + good) / 2, "youden"))}
    warn_about_export({"task": "multilabel", "class_names": ["a", "b"], "threshold": [0.4, 0.5], "tta": "flip",
                       "ensemble_below_member": record})
    assert "or --trial 1 --tta flip\n" in capsys.readouterr().err   # --trial 1 alone would score without flips


def test_a_tta_drop_in_a_cost_is_said_as_a_rise(capsys):
    from searchlab.export.export_notes import warn_about_export

    config = {"task": "multilabel", "class_names": NAMES, "threshold": [0.5] * 4, "test_size": 60}
    cost = {"metric": "hamming_loss", "split": "val", "tta": "flip", "with_tta": 0.17917, "without_tta": 0.17083}
    warn_about_export({**config, "tta_below_plain": cost})
    err = capsys.readouterr().err
    assert "--tta flip raises hamming_loss (lower is better) on the val split to 0.1792, from 0.1708 without it" in err
    assert "lowers" not in err
    score = {**cost, "metric": "auc", "with_tta": 0.8203, "without_tta": 0.8362}
    warn_about_export({**config, "tta_below_plain": score})
    assert "--tta flip lowers auc on the val split to 0.8203, from 0.8362 without it" in capsys.readouterr().err


def _never_line(capsys) -> str:
    return next(line for line in capsys.readouterr().err.splitlines() if "flags none" in line)


def _export(imbalance: dict, **more) -> dict:
    return {"task": "multilabel", "class_names": NAMES, "threshold": [0.49, 0.47, 0.46, 0.5], "test_size": 60,
            "test_confusion": NEVER, "data_splits": SPLITS,
            "threshold_choice": {"rule": imbalance.get("threshold", "fixed"), "split": "val"},
            "trials": [{"number": 2, "config": {"imbalance": imbalance}}], **more}


def test_a_label_without_validation_positives_is_named_with_the_fix_for_its_unchosen_threshold(capsys):
    from searchlab.export.export_notes import warn_about_export

    warn_about_export(_export({"threshold": "youden"}))
    said = _never_line(capsys)
    assert "with label(s) 'rare' (6), 'dark' (6), though that many images have them" in said
    assert "'dark' is on in none of the 60 validation images, so no threshold could be chosen for 'dark' there " \
           "and 0.5 was kept; 'rare' has not been learned" in said
    assert "Fix: put images with 'dark' in the validation split (a larger data.val_fraction, or a " \
           "data.split_column that marks some of them val); for 'rare': train longer" in said
    assert "imbalance.threshold: youden" not in said   # the trial chose by youden already
    # a bag chooses on out-of-fold train+val, where 'dark' has 15 positives: not the cause then
    bag = _export({"threshold": "youden"}, threshold_choice={"rule": "youden", "split": "out-of-fold train+val"})
    warn_about_export(bag)
    assert "'dark' is on in none" not in _never_line(capsys)


def test_a_label_not_learned_is_told_only_the_fixes_its_trial_did_not_use(capsys):
    from searchlab.export.export_notes import warn_about_export

    seen = {**SPLITS, "val": {"images": 60, "per_class": {**SPLITS["val"]["per_class"], "dark": 3}}}
    warn_about_export(_export({"threshold": "youden"}, data_splits=seen))
    said = _never_line(capsys)
    assert said.endswith("it has not learned them (sensitivity 0). Fix: train longer (budget.epochs), weigh rare "
                         "labels (imbalance.loss: weighted_ce or focal, imbalance.sampler: balanced), or drop them "
                         "from data.label_columns")
    warn_about_export(_export({"threshold": "f1", "loss": "focal", "sampler": "balanced"}, data_splits=seen))
    assert _never_line(capsys).endswith("Fix: train longer (budget.epochs), or drop them from data.label_columns")
    warn_about_export(_export({"loss": "weighted_ce", "class_weight_power": 0.0}, data_splits=seen))
    said = _never_line(capsys)   # a power of 0 weighs nothing; a fixed 0.5 was tuned on nothing
    assert "imbalance.loss: weighted_ce or focal, imbalance.sampler: balanced" in said
    assert "let the search choose thresholds (imbalance.threshold: youden)" in said
