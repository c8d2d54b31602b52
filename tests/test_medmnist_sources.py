"""A model of the study's own MedMNIST set as weights: MedMNIST's official splits never move, so no split of the
study holds images of another split, but cross-validation deals the train images those weights learned into
held-out folds, and weights whose trials cross-validated learned the val images that select this study's
trials. Both went unsaid (trained_on.json lists no files for MedMNIST)."""
from __future__ import annotations

import pytest

from searchlab.export.exporter import export_run
from searchlab.export.medmnist_sources import learned_of_same_set, medmnist_set
from tiny_runs import run_on_breastmnist

STUDY = """
name: {name}
task: classify
space:
  model: {{kind: cnn, depth: 1, width: 4{weights}}}
  optim: {{lr: 1.0e-3}}
  train: {{batch_size: 64{folds}}}
strategy: random
pruner: none
budget: {{n_trials: 1, epochs: 1}}
"""


def study(name, weights=None, folds=None):
    return STUDY.format(name=name, weights=f", transfer: full, weights: '{weights}'" if weights else "",
                        folds=f", cv_folds: {folds}" if folds else "")


@pytest.fixture(scope="module")
def sources(tmp_path_factory, breastmnist_root):
    """An export of a plain BreastMNIST study, and the run folder of one that cross-validated."""
    tmp = tmp_path_factory.mktemp("medmnist_sources")
    (tmp / "plain").mkdir(), (tmp / "folded").mkdir()
    export_run(run_on_breastmnist(tmp / "plain", study("plain"), breastmnist_root), tmp / "plain_best", bootstrap=10)
    run_on_breastmnist(tmp / "folded", study("folded", folds=2), breastmnist_root)
    return tmp


def started_with(tmp_path, text, root, capsys):
    capsys.readouterr()
    run_on_breastmnist(tmp_path, text, root)
    return capsys.readouterr().err


def test_what_a_model_of_the_set_learned_is_its_train_split_and_val_when_it_cross_validated(sources):
    assert medmnist_set("breastmnist_224.npz") == medmnist_set("breastmnist.npz") == "breastmnist"
    assert learned_of_same_set(sources / "plain_best", "breastmnist.npz") == ("train",)
    assert learned_of_same_set(sources / "plain_best", "breastmnist_64.npz") == ("train",)   # the same images
    assert learned_of_same_set(sources / "folded" / "run", "breastmnist.npz") == ("train", "val")
    assert learned_of_same_set(sources / "plain_best", "pneumoniamnist.npz") == ()


def test_folds_over_images_the_weights_learned_are_warned_with_the_count(sources, tmp_path, breastmnist_root,
                                                                        capsys):
    err = started_with(tmp_path, study("cv", sources / "plain_best", folds=2), breastmnist_root, capsys)
    assert f"space.model.weights '{sources / 'plain_best'}': train.cv_folds deals this study's train and val " \
           "images into folds, and 546 of the 624 are images the weights' run trained on" in err, err


def test_weights_whose_trials_cross_validated_are_warned_of_for_the_val_split(sources, tmp_path, breastmnist_root,
                                                                             capsys):
    err = started_with(tmp_path, study("val", sources / "folded" / "run"), breastmnist_root, capsys)
    assert "trained on all 78 of this study's val images, which select its trials" in err, err
    assert "did not cross-validate" in err


def test_weights_of_the_set_that_learned_its_train_split_only_are_no_leak_without_folds(sources, tmp_path,
                                                                                       breastmnist_root, capsys):
    err = started_with(tmp_path, study("plain_again", sources / "plain_best"), breastmnist_root, capsys)
    assert "space.model.weights" not in err, err
