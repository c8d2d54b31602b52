"""Which epoch a trial keeps when the study has several objectives, and what a run start says of a two-class
objective's class. A multi-objective study kept the epoch best on its first objective alone: with sensitivity and
specificity (at a fixed threshold) every trial of the Pareto front was a trivial classifier, (1, 0) or (0, 1)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import searchlab.tasks.train as train_module
from searchlab.config.load import load_study
from searchlab.data.types import ImageSplit
from searchlab.engine.run import run_study
from searchlab.tasks.selection_advice import positive_class_note
from test_run import TINY_CLASSIFY

# per epoch: sensitivity 1 at specificity 0 (every image called positive), then a model that separates the classes
EPOCHS = [{"sensitivity": 1.0, "specificity": 0.0}, {"sensitivity": 0.474, "specificity": 0.762},
          {"sensitivity": 0.30, "specificity": 0.80}]


@pytest.fixture
def scripted_metrics(monkeypatch):
    calls = []

    def compute_metrics(labels, probs, kind, n_classes, threshold=None):
        calls.append(1)
        return {**EPOCHS[(len(calls) - 1) % len(EPOCHS)], "auc": 0.5}

    monkeypatch.setattr(train_module, "compute_metrics", compute_metrics)


def _train(select):
    from searchlab.augment import AugmentSpec
    from searchlab.imbalance import ImbalanceSpec
    from searchlab.tasks.classify_config import OptimSpec, TrainSpec

    split = ImageSplit(torch.randint(0, 255, (8, 1, 4, 4), dtype=torch.uint8), torch.tensor([0, 1] * 4))
    batches = train_module.Batches(split, split, "binary", 2, {"mean": [0.0], "std": [1.0]})
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    recipe = train_module.make_recipe(batches, AugmentSpec(), ImbalanceSpec(), TrainSpec())
    return train_module.train(model, batches, recipe, OptimSpec(), TrainSpec(batch_size=4), 3, 0, select,
                              lambda *a: None)


def test_several_objectives_keep_the_epoch_best_on_their_mean(scripted_metrics):
    both = (("sensitivity", "maximize"), ("specificity", "maximize"))
    assert _train(both).best_epoch == 1                           # mean 0.618 beats 0.5 and 0.55
    assert _train(("sensitivity", "maximize")).best_epoch == 0    # one objective: as before


def test_a_multi_objective_study_keeps_that_epoch(write_study, scripted_metrics):
    text = TINY_CLASSIFY.replace("budget: {n_trials: 2, epochs: 2}", "budget: {n_trials: 2, epochs: 3}") + \
        "objective: [sensitivity, specificity]\n"
    study = run_study(load_study(write_study(text)), progress=False).study
    assert [t.user_attrs["metrics"]["best_epoch"] for t in study.trials] == [1, 1]
    assert [t.values for t in study.trials] == [[0.474, 0.762]] * 2
    # optuna-dashboard labels plots and columns by these ("Objective 0" and "Objective 1" without them)
    assert study.metric_names == ["sensitivity", "specificity"]


def _data(kind="binary"):
    return SimpleNamespace(kind=kind, class_names=("malignant", "normal, benign"))


def test_a_run_start_says_which_class_sensitivity_is_of_and_at_what_threshold():
    note = positive_class_note(["sensitivity", "auc"], _data(), chosen=False, rules={"fixed"})
    assert note == ("sensitivity is of class 'normal, benign' (class 1, the positive class); sensitivity is scored at "
                    "threshold 0.5. Fix: if the class that matters is 'malignant', set data.positive_class: "
                    "'malignant'")
    chosen = positive_class_note(["specificity"], _data(), chosen=False, rules={"fixed", "youden"})
    assert "scored at the threshold each trial's rule chooses (fixed, youden)" in chosen
    assert positive_class_note(["sensitivity"], _data(), chosen=True, rules={"fixed"}) is None   # the study said
    assert positive_class_note(["auc"], _data(), chosen=False, rules={"fixed"}) is None
    assert positive_class_note(["f1"], _data("multiclass"), chosen=False, rules={"fixed"}) is None
