"""Export notes that fit the case: a --tta drop when the trials trained on those views, an always-on common label
at a fixed 0.5, and a multi-label headline with hamming loss beside exact-match accuracy."""
from __future__ import annotations

NAMES = ["mass", "calc", "rare"]
SPLITS = {"train": {"images": 50, "per_class": {"mass": 21, "calc": 19, "rare": 7}},
          "val": {"images": 25, "per_class": {"mass": 11, "calc": 9, "rare": 3}}}


def _trial(policy: str) -> dict:
    return {"number": 0, "config": {"augment": {"policy": policy}},
            "config_with_defaults": {"augment": {"policy": policy, "rotate_degrees": 15.0, "sub_policies": {}}}}


def _multilabel(**more) -> dict:
    return {"task": "multilabel", "class_names": NAMES, "threshold": [0.5, 0.5, 0.5], "test_size": 25,
            "data_splits": SPLITS, **more}


WORSE = {"metric": "auc", "split": "val", "tta": "flip", "with_tta": 0.8203, "without_tta": 0.8362}


def test_a_tta_drop_says_unseen_views_only_when_a_trial_did_not_train_on_them(capsys):
    from searchlab.export.export_notes import warn_about_export

    warn_about_export(_multilabel(trials=[_trial("flip_shift"), _trial("affine")], tta_below_plain=WORSE))
    err = capsys.readouterr().err
    assert "--tta flip lowers auc on the val split to 0.8203, from 0.8362 without it, though every trial" in err
    assert "did not train" not in err and "on 25 images such a difference varies" in err
    warn_about_export(_multilabel(trials=[_trial("flip_shift"), _trial("randaugment")], tta_below_plain=WORSE))
    err = capsys.readouterr().err   # one member never saw a flip: the cause holds, and its policy is named
    assert "the trials did not train on those views (augment.policy randaugment has no left-right flips)" in err
    warn_about_export(_multilabel(trial=_trial("flip_shift"), tta_below_plain={**WORSE, "tta": "dihedral"}))
    assert "augment.policy flip_shift has no 90-degree turns" in capsys.readouterr().err   # flips, not turns


def test_a_common_label_flagged_on_every_image_at_a_fixed_threshold_is_not_told_to_weigh_the_rare_label(capsys):
    from searchlab.export.export_notes import warn_about_export

    confusion = [[0, 14, 0, 11], [16, 0, 0, 9], [18, 4, 1, 2]]   # mass flagged on all 25 test images
    warn_about_export(_multilabel(test_confusion=confusion, threshold_choice={"rule": "fixed"}))
    said = next(line for line in capsys.readouterr().err.splitlines() if "flags every one" in line)
    assert "of the 25 test images with label(s) 'mass'" in said
    assert "weigh the rare label" not in said and "imbalance.loss" not in said   # weighting would flag it more
    assert "imbalance.threshold: youden" in said and "'mass' is on in 42% of the training images" in said
    rare = [[8, 6, 7, 4], [16, 0, 0, 9], [0, 22, 0, 3]]
    warn_about_export(_multilabel(test_confusion=rare, threshold_choice={"rule": "f1"}))
    assert "weigh 'rare' (imbalance.loss: weighted_ce or focal)" in capsys.readouterr().err


def test_a_multilabel_headline_says_exact_match_accuracy_and_hamming_loss():
    from searchlab.export.export_notes import test_headline

    config = _multilabel(test_metrics={"auc": 0.78, "accuracy": 0.28, "hamming_loss": 0.24},
                         test_metrics_ci95={"auc": [0.62, 0.89]}, objectives=["auc"])
    assert test_headline(config) == "test auc 0.780 [0.620, 0.890], exact-match accuracy 0.280, hamming_loss 0.240 " \
        "(n=25)"
