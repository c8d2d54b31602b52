"""Run-start warnings and typo hints added by lowfix: a patch curriculum that rounds to no patch epoch, a class with
one training image, class weights on top of the balanced sampler, did-you-mean for a searched policy's step, a bag
trial's epochs_trained, a CSV split value quoted as written, and a preset's unknown arg named in the preset file."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from searchlab.augment.spec import AugmentSpec
from searchlab.config.load import load_study
from searchlab.config.schema import CsvData
from searchlab.data import load_dataset
from searchlab.data.types import ImageDataset, ImageSplit
from searchlab.errors import ConfigError, DataError
from searchlab.imbalance import ImbalanceSpec
from searchlab.tasks.augment_advice import (double_correction_warning, patch_curriculum_warning, patch_epoch_count,
                                            unweighted_warning)
from searchlab.tasks.bagging import bag_result
from searchlab.tasks.classify_config import ClassifyTrialConfig
from searchlab.tasks.crossval import CVResult, FoldModel
from searchlab.tasks.selection_advice import untrainable_class_warning
from test_data import _fresh_cache, png  # noqa: F401  (_fresh_cache: autouse fixture)


def _spec(**sections) -> ClassifyTrialConfig:
    return ClassifyTrialConfig.model_validate(sections)


def test_a_patch_fraction_that_rounds_to_no_patch_epoch_is_said():
    specs = [_spec(train={"patch_epochs": 0.3})]
    said = patch_curriculum_warning(specs, budget_epochs=1)
    assert said and "patch_epochs 0.3 of 1 epoch rounds to 0 patch epochs" in said and "Fix:" in said
    assert patch_curriculum_warning(specs, budget_epochs=5) is None            # 1.5 -> 2 patch epochs
    assert patch_curriculum_warning([_spec(train={"patch_epochs": 0.3, "epochs": 1})], budget_epochs=9)
    assert patch_curriculum_warning([_spec()], budget_epochs=1) is None       # no curriculum asked for
    assert patch_epoch_count(0.3, 1) == 0 and patch_epoch_count(0.3, 5) == 2   # what train.fit runs


def _data(train_labels: list[int]) -> ImageDataset:
    def split(labels):
        return ImageSplit(images=torch.zeros(len(labels), 1, 4, 4, dtype=torch.uint8), labels=torch.tensor(labels))

    return ImageDataset(splits={"train": split(train_labels), "val": split([0, 1] * 10)},
                        class_names=("benign", "malignant"), kind="binary")


def test_a_class_with_one_training_image_is_warned_about():
    said = untrainable_class_warning(_data([0] * 30 + [1]), cross_validated=False)
    assert said and "'malignant' have only one of the 31 images in the training split" in said
    assert "balanced" in said and "Fix:" in said
    assert untrainable_class_warning(_data([0] * 30 + [1, 1]), cross_validated=False) is None
    assert untrainable_class_warning(_data([0] * 30 + [1]), cross_validated=True) is None   # too few folds: refused
    both = untrainable_class_warning(ImageDataset(splits=_data([0, 0, 0, 1]).splits, class_names=("a", "b", "c"),
                                                  kind="multiclass"), cross_validated=False)
    assert "'c' have none" in both and "'b' have only one" in both


def test_class_weights_with_the_balanced_sampler_are_said_to_correct_twice():
    both = [_spec(imbalance={"loss": "weighted_ce", "sampler": "balanced"})]
    said = double_correction_warning(both)
    assert said and "weighted_ce with sampler: balanced" in said and "Fix:" in said
    focal = double_correction_warning([_spec(imbalance={"loss": "focal", "sampler": "balanced"})])
    assert focal and "focal (focal_alpha: balanced)" in focal
    assert double_correction_warning([_spec(imbalance={"loss": "ce", "sampler": "balanced"}),
                                      _spec(imbalance={"loss": "weighted_ce"})]) is None
    unweighted_focal = _spec(imbalance={"loss": "focal", "focal_alpha": "none", "sampler": "balanced"})
    assert double_correction_warning([unweighted_focal]) is None
    # searched (imbalance.yaml: the search decides): a space that can also draw one correction is not warned of
    assert double_correction_warning([*both, _spec(imbalance={"loss": "weighted_ce", "sampler": "shuffle"})]) is None
    # power 0 everywhere: still the unweighted warning
    assert "plain CE" in unweighted_warning([_spec(imbalance={"loss": "weighted_ce", "class_weight_power": 0})])


STUDY = """name: typo
task: classify
space:
  model: {kind: cnn, depth: 1, width: 4, convs_per_stage: 1}
  augment: {policy: searched, sub_policies: {a: STEP}}
strategy: random
pruner: none
budget: {n_trials: 1, epochs: 1}
"""


@pytest.mark.parametrize("step, hint", [("{op: rotat, prob: 0.5}", "did you mean rotate"),
                                        ("{op: rotate, probability: 0.5}", "did you mean prob?")])
def test_a_searched_policys_typo_gets_a_did_you_mean(write_study, step, hint):
    with pytest.raises(ConfigError) as err:
        load_study(write_study(STUDY.replace("STEP", step)))
    assert hint in str(err.value) and "study.yaml:5" in str(err.value)
    AugmentSpec(policy="searched", sub_policies={"a": {"op": "rotate", "prob": 0.5}})   # the right one loads


def test_a_bag_records_the_epochs_its_members_trained():
    rng = np.random.default_rng(0)
    models = [FoldModel(where={"repeat": 0, "fold": f}, state={"w": torch.zeros(1)}, preprocessing={},
                        val_labels=np.array([0, 1, 0, 1]), val_probs=rng.uniform(size=4)) for f in range(3)]
    folds = [{"repeat": 0, "fold": f, "best_epoch": 1, "epochs_trained": 2} for f in range(3)]
    cv = CVResult(metrics={}, folds=folds, final_epochs=2, models=models)
    result = bag_result(cv, ImbalanceSpec(), "binary", 2)
    assert result.best_epoch == 1 and result.epochs_trained == 2


def test_an_unknown_split_value_is_quoted_as_the_file_writes_it(tmp_path):
    with (tmp_path / "s.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "split"])
        for i, split in enumerate(["train", "val", "test", "train", "Holdout", "train"]):
            writer.writerow([png(tmp_path / f"{i}.png").name, i % 2, split])
    with pytest.raises(DataError) as err:
        load_dataset(CsvData(source="csv", path=tmp_path / "s.csv", split_column="split"))
    assert "'Holdout' in row 6 (did you mean test?)" in str(err.value)


def test_an_unknown_arg_in_a_preset_is_said_at_the_preset_file(write_study, tmp_path):
    (tmp_path / "mine.yaml").write_text("name: tpe\nargs: {n_startup_trial: 5}\n")
    with pytest.raises(ConfigError) as err:
        load_study(write_study(STUDY.replace("STEP", "{op: rotate}").replace("strategy: random",
                                                                             "strategy: {preset: mine.yaml}")))
    assert f"{tmp_path / 'mine.yaml'}:2" in str(err.value) and "did you mean n_startup_trials" in str(err.value)
