"""Bagged cross-validation models (train: {cv_folds: K, cv_model: bag}), checked against independent computations:
the trial's model is its K fold models averaged, its threshold is chosen on out-of-fold predictions, and exports
(one trial, top-k, TTA) choose theirs on out-of-fold predictions made again with the export's views."""
from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
import torch
from optuna.trial import TrialState
from sklearn.metrics import roc_auc_score

from searchlab.config.load import load_study
from searchlab.engine.rundir import open_run
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError, ExportError, TrialFailure
from searchlab.export.exporter import export_run
from searchlab.data.types import ImageSplit
from searchlab.export import out_of_fold
from searchlab.export.out_of_fold import bagged
from searchlab.imbalance import ImbalanceSpec, choose_threshold
from searchlab.models import standalone
from searchlab.report.best_model import model_sections
from searchlab.tasks.crossval import fold_indices
from searchlab.tasks.transfer import load_matching
from test_export_ensemble import _data

STUDY = """
name: bag
task: classify
space:
  model: {kind: cnn, depth: 1, width: 4, convs_per_stage: 1}
  optim: {lr: {float: [1.0e-3, 5.0e-3], log: true}}
  train: {batch_size: 128, cv_folds: 3, cv_model: bag}
  imbalance: {threshold: youden}
strategy: random
pruner: none
budget: {n_trials: 2, epochs: 2}
seed: 5
"""


def _pool(root):
    npz = np.load(root / "breastmnist.npz")
    images = np.concatenate([npz["train_images"], npz["val_images"]])[:, None]
    return torch.from_numpy(images.copy()), np.concatenate([npz["train_labels"], npz["val_labels"]]).reshape(-1)


def _held_out(net, config, images, labels, folds, tta="none"):
    """Each image scored by the member that held it out (member i held out fold i), computed here by hand."""
    probs = np.zeros(len(labels))
    for i, fold in enumerate(folds):
        member_config = {"preprocessing": config["preprocessing"][i], "task": "binary", "tta": tta}
        probs[fold] = standalone.predict_proba(net.members[i], member_config, images[fold]).numpy()
    return probs


@pytest.fixture(scope="module")
def bag_run(tmp_path_factory, breastmnist_root):
    tmp = tmp_path_factory.mktemp("bag")
    run_study(load_study(_data(breastmnist_root, tmp, STUDY, name="run.yaml")), progress=False)
    study = optuna.load_study(study_name="bag", storage=f"sqlite:///{tmp / 'run' / 'study.db'}")
    return tmp, sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: -t.value)


def test_a_bagged_trial_keeps_its_fold_models_and_chooses_its_threshold_out_of_fold(bag_run, breastmnist_root):
    tmp, trials = bag_run
    trial = trials[0]
    attrs = trial.user_attrs
    assert attrs["model_spec"]["architecture"] == "ensemble" and len(attrs["model_spec"]["members"]) == 3
    assert attrs["bag"] == {"cv_folds": 3, "fold_seed": 5, "fold_scheme": 2,
                            "members": [{"repeat": 0, "fold": f} for f in range(3)]}
    assert len({json.dumps(p) for p in attrs["preprocessing"]}) == 3        # each fold's own normalisation
    assert trial.value == pytest.approx(np.mean([f["auc"] for f in attrs["cv_folds"]]))   # selection: CV mean
    config = export_run(tmp / "run", tmp / "one", trial_number=trial.number, bootstrap=20)
    net, loaded = standalone.load(tmp / "one")
    images, labels = _pool(breastmnist_root)
    probs = _held_out(net, loaded, images, labels, fold_indices(labels, 3, seed=5))
    assert config["threshold"] == pytest.approx(choose_threshold(ImbalanceSpec(threshold="youden"), "binary",
                                                                 labels[np.concatenate(fold_indices(labels, 3, 5))],
                                                                 probs[np.concatenate(fold_indices(labels, 3, 5))]),
                                                abs=1e-6)
    # the export averages the three fold models
    test = torch.from_numpy(np.load(breastmnist_root / "breastmnist.npz")["test_images"][:, None].copy())
    members = [standalone.predict_proba(m, {"preprocessing": p, "task": "binary"}, test).numpy()
               for m, p in zip(net.members, loaded["preprocessing"])]
    assert np.allclose(standalone.predict_proba(net, loaded, test).numpy(), np.mean(members, axis=0), atol=1e-6)


def test_top_k_of_bags_with_tta_chooses_the_threshold_on_their_mean_out_of_fold(bag_run, breastmnist_root):
    tmp, trials = bag_run
    config = export_run(tmp / "run", tmp / "top2", top_k=2, tta="flip", bootstrap=20)
    assert len(config["model"]["members"]) == 6 and len(config["preprocessing"]) == 6
    assert config["threshold_choice"] == {"rule": "youden", "as_trial": trials[0].number,
                                          "split": "out-of-fold train+val", "val_size": 624}
    net, loaded = standalone.load(tmp / "top2")
    images, labels = _pool(breastmnist_root)
    folds = fold_indices(labels, 3, seed=5)
    per_trial = []
    for t in range(2):   # trial t's fold models are members 3t .. 3t + 2
        sub = torch.nn.Module()
        sub.members = net.members[3 * t:3 * t + 3]
        per_trial.append(_held_out(sub, {"preprocessing": loaded["preprocessing"][3 * t:]}, images, labels, folds,
                                   tta="flip"))
    expected = choose_threshold(ImbalanceSpec(threshold="youden"), "binary", labels, np.mean(per_trial, axis=0))
    assert config["threshold"] == pytest.approx(expected, abs=1e-6)
    assert [t["number"] for t in config["trials"]] == [t.number for t in trials[:2]]


def test_greedy_select_keeps_the_second_bag_only_if_it_raises_the_out_of_fold_auc(bag_run, breastmnist_root):
    tmp, trials = bag_run
    top2 = export_run(tmp / "run", tmp / "top2-again", top_k=2, bootstrap=20)   # both bags, no TTA
    net, loaded = standalone.load(tmp / "top2-again")
    images, labels = _pool(breastmnist_root)
    folds = fold_indices(labels, 3, seed=5)
    per_trial = []
    for t in range(2):
        sub = torch.nn.Module()
        sub.members = net.members[3 * t:3 * t + 3]
        per_trial.append(_held_out(sub, {"preprocessing": loaded["preprocessing"][3 * t:]}, images, labels, folds))
    alone, both = roc_auc_score(labels, per_trial[0]), roc_auc_score(labels, np.mean(per_trial, axis=0))
    config = export_run(tmp / "run", tmp / "greedy", top_k=2, select="greedy", bootstrap=20)
    selection = config["selection"]
    assert selection["split"] == "out-of-fold train+val" and selection["held_out_size"] == 624
    assert selection["candidates"] == [t.number for t in trials[:2]] == [t["number"] for t in top2["trials"]]
    assert selection["steps"][0] == {"added": trials[0].number, "auc": pytest.approx(alone, abs=1e-9)}
    if both > alone:
        assert selection["steps"][1] == {"added": trials[1].number, "auc": pytest.approx(both, abs=1e-9)}
        assert [t["number"] for t in config["trials"]] == selection["candidates"]
    else:   # the best bag alone: a one-trial export, its own out-of-fold threshold
        assert len(selection["steps"]) == 1 and config["trial"]["number"] == trials[0].number
        assert len(config["model"]["members"]) == 3


def test_report_draws_a_bagged_trial_out_of_fold(bag_run):
    tmp, trials = bag_run
    titles = [section.title for section in model_sections(open_run(tmp / "run"), trials[0])]
    assert titles == [f"ROC out of fold (train+val): trial {trials[0].number}",
                      f"Confusion matrix out of fold (train+val) at the trial's threshold: trial {trials[0].number}"]


def test_bagged_and_refit_trials_are_not_mixed_in_one_export():
    def trial(bag):
        return optuna.trial.create_trial(value=0.5, user_attrs={"bag": {}} if bag else {})

    assert bagged([trial(True), trial(True)]) and not bagged([trial(False)])
    with pytest.raises(ExportError, match="mix bagged and refit"):
        bagged([trial(True), trial(False)])
    # the fix names an ensemble that works (the failing command was offered again), for the run's summary too
    with pytest.raises(ExportError, match=r"Fix: --top-k 2 \(the best, all refit\)") as exc:
        bagged([trial(False), trial(False), trial(True)])
    assert exc.value.top_k_that_works == 2
    with pytest.raises(ExportError, match=r"Fix: --trial -?\d+ \(the best alone\)") as exc:
        bagged([trial(True), trial(False)])
    assert exc.value.top_k_that_works == 1


def test_bag_needs_cv_folds_and_transfer_refuses_an_ensemble(write_study):
    text = STUDY.replace(", cv_folds: 3, cv_model: bag", ", cv_model: bag")
    with pytest.raises(ConfigError, match="cv_folds"):
        load_study(write_study(text))
    model = standalone.build_model({"architecture": "plain_cnn", "args": {"depth": 1, "width": 4}, "in_channels": 1,
                                    "num_outputs": 2})
    state = {f"members.{i}.{k}": v for i in range(3) for k, v in model.state_dict().items()}
    with pytest.raises(TrialFailure, match="ensemble of 3 networks"):
        load_matching(model, state, "run/")


@pytest.mark.parametrize("recorded, dealt", [({}, 1), ({"fold_scheme": 2}, 2)])
def test_an_export_deals_a_bags_folds_by_the_scheme_its_trial_recorded(monkeypatch, recorded, dealt):
    """A multi-label bag recorded before fold_scheme held out random folds: its export must re-deal those, not
    today's stratified ones (its members would score images they trained on)."""
    labels = torch.from_numpy((np.random.default_rng(0).random((30, 3)) < 0.4).astype(np.int64))
    pool = ImageSplit(images=torch.zeros(30, 1, 4, 4, dtype=torch.uint8), labels=labels)
    bag = {"cv_folds": 3, "fold_seed": 4, "members": [{"repeat": 0, "fold": f} for f in range(3)], **recorded}
    monkeypatch.setattr(standalone, "predict_proba",
                        lambda member, config, images: torch.full((len(images), 3), member))
    config = {"preprocessing": [{}] * 3, "task": "multilabel"}
    means, seen = out_of_fold._trial_out_of_fold(pool, bag, [0.0, 1.0, 2.0], config, 0)
    member_of = means[:, 0].astype(int)   # each image's probability is the number of the member that held it out
    folds = fold_indices(labels, 3, seed=4, scheme=dealt)
    assert seen.all() and all((member_of[fold] == f).all() for f, fold in enumerate(folds))
    assert not all(np.array_equal(a, b) for a, b in zip(folds, fold_indices(labels, 3, seed=4, scheme=3 - dealt)))
