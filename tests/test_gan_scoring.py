"""What a GAN trial's scores must not hide: copying the train set, collapse onto a few images, labels ignored,
a last checkpoint worse than the best, an outlier making recall jump, and a feature space that changed under a
run. Tiny networks and one-epoch feature networks: the file runs in well under a minute."""
from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
import torch
from optuna.trial import TrialState
from torch import nn

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError
from searchlab.gan import features as gan_features
from searchlab.gan import train as gan_train
from searchlab.gan.features import CACHE_DIR, PenultimateFeatures
from searchlab.gan.metrics import Reference, SampleStats, density_coverage, precision_recall
from searchlab.tasks.generate import _check_enough_images, _check_same_features, suspicions
from searchlab.tasks.generate_config import GenerateTrialConfig

STUDY = """
name: gan
task: generate
space:
  gan: {family: dcgan, latent: {choice: [16, 17]}, g_width: 16, d_width: 16, conditional: true}
  train: {batch_size: 16, iterations: 40, evaluations: 2, ema: 0.9}
strategy: random
pruner: none
budget: {n_trials: 1}
seed: 0
"""


@pytest.fixture(autouse=True)
def _one_thread_and_a_quick_feature_network(monkeypatch):
    """One epoch: these tests check what is measured and recorded, not how good the feature space is."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr(gan_features, "EXTRACTOR_EPOCHS", 1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def images(breastmnist_root):
    """BreastMNIST's train and val images in [0, 1] and their labels."""
    npz = np.load(breastmnist_root / "breastmnist.npz")
    unit = {split: torch.from_numpy(npz[f"{split}_images"]).float().unsqueeze(1) / 255 for split in ("train", "val")}
    labels = {split: torch.from_numpy(npz[f"{split}_labels"][:, 0]).long() for split in ("train", "val")}
    return unit, labels


def brightness_classifier() -> PenultimateFeatures:
    """A fixed 'classifier' of 28x28 images whose head calls an image class 1 when its mean is above 0.5, with
    16 random (but fixed) features before the head."""
    torch.manual_seed(0)
    body = nn.Sequential(nn.Flatten(), nn.Linear(784, 16))
    head = nn.Linear(16, 2)
    with torch.no_grad():   # the head reads the image mean through a 17th feature: the first body unit
        body[1].weight[0] = 1.0 / 784
        body[1].bias[0] = -0.5
        head.weight.zero_()
        head.bias.zero_()
        head.weight[1, 0] = 100.0
    return PenultimateFeatures(nn.Sequential(body, head), {"mean": [0.0], "std": [1.0]}, class_order=[0, 1])


# ------------------------------------------------------------------ A: copying and collapse
def test_copies_of_the_train_set_and_collapse_are_measured_and_flagged(images):
    """A copy of the train set scored MedFID 0 and precision = recall = 1, the best of any trial; ten train
    images repeated 546 times beat every real trial's MedFID. Both must show, against what real images show."""
    unit, labels = images
    features = PenultimateFeatures(nn.Sequential(nn.Flatten(), nn.Linear(784, 16), nn.Tanh(), nn.Linear(16, 2)),
                                   {"mean": [0.3], "std": [0.2]})
    reference = Reference(features, unit["train"])
    floors = reference.floors(unit["val"], labels["val"])
    assert floors["copying_floor"] < 0.5 and floors["duplicates_floor"] < 0.5   # real images: some near-copies

    copy = reference.score(unit["train"])
    assert copy.medfid < 1e-3 and copy.copying == 1.0   # the distance to the train set rewards it; copying does not
    assert "copies training images: 100% of its samples" in suspicions(copy, floors, 2)
    torch.manual_seed(1)
    blur = 0.002 * torch.randn(546, 1, 28, 28)            # near-copies, not exact ones: as a GAN would copy
    assert reference.score((unit["train"] + blur).clamp(0, 1)).copying > 0.9

    collapsed = reference.score((unit["train"][:10].repeat(55, 1, 1, 1)[:546] + blur).clamp(0, 1))
    assert collapsed.duplicates == 1.0
    assert "collapses: 100% of its samples are near-duplicates" in suspicions(collapsed, floors, 2)
    assert suspicions(reference.score(unit["train"].flip(-1)), floors, 2) == ""   # mirrored: new images


# ------------------------------------------------------------------ B: label agreement
def test_label_agreement_is_balanced_and_read_against_real_images(images):
    unit, labels = images
    features = brightness_classifier()
    reference = Reference(features, unit["train"])
    dark, bright = torch.full((60, 1, 28, 28), 0.2), torch.full((60, 1, 28, 28), 0.8)
    asked = torch.tensor([0] * 60 + [1] * 60)
    assert reference.score(torch.cat([dark, bright]), asked).label_agreement == 1.0
    # a generator deaf to its label (bright whatever was asked): chance, 0.5, though 83% of its samples would be
    # "right" if the labels asked for were mostly 1 (balanced, not overall)
    deaf = reference.score(torch.cat([bright] * 2), asked).label_agreement
    assert deaf == 0.5
    mostly_ones = torch.tensor([0] * 20 + [1] * 100)
    assert reference.score(torch.cat([bright] * 2), mostly_ones).label_agreement == 0.5
    floors = {"copying_floor": 1.0, "duplicates_floor": 1.0, "label_agreement_floor": 0.9}
    said = suspicions(SampleStats(1, 0, 1, 1, 1, 1, 0, 0, deaf), floors, 2)
    assert "ignores its labels" in said and "real validation images: 90%" in said
    assert reference.score(torch.cat([dark, bright])).label_agreement is None   # unconditional: not measured


def _check_a_conditional_trial_records_label_agreement_its_best_evaluation_and_feature_digest(tmp_path):
    """Called after the first run of the seed test below: one GAN run (and its feature network) serves both."""
    trial = optuna.load_study(study_name="gan", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials[0]
    assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("error")
    metrics = trial.user_attrs["metrics"]
    assert 0 <= metrics["label_agreement"] <= 1 and 0 <= metrics["label_agreement_floor"] <= 1
    for name in ("copying", "duplicates", "density", "coverage", "copying_floor", "duplicates_floor"):
        assert name in metrics
    evaluations = trial.user_attrs["evaluations"]
    best = min(evaluations, key=lambda e: e["medfid"])
    assert trial.value == best["medfid"] and metrics["best_iteration"] == best["iteration"]
    config = json.loads((tmp_path / "run" / CACHE_DIR / "config.json").read_text())
    assert config["seed"] == 0 and len(trial.user_attrs["medfid_features"]) == 16


# ------------------------------------------------------------------ C: the best evaluation is kept
def test_a_trial_keeps_its_best_evaluations_generator_and_scores(images, monkeypatch):
    """Scored 27.8, 16.5, 32.1, 44.9 at its checkpoints, a trial was ranked (and its generator stored) at 44.9."""
    unit, labels = images
    scripted = iter([27.8, 16.5, 32.1, 44.9])
    snapshots = []

    def evaluate(G, real, reference, seed, when=""):
        snapshots.append({k: v.clone() for k, v in G.state_dict().items()})
        return SampleStats(next(scripted), 0.0, 0.5, 0.5)

    monkeypatch.setattr(gan_train, "evaluate", evaluate)
    spec = GenerateTrialConfig.model_validate({"gan": {"latent": 8, "g_width": 8, "d_width": 8},
                                               "train": {"batch_size": 8, "iterations": 8, "evaluations": 4}})
    real = gan_train.RealImages(unit["train"][:64] * 2 - 1, labels["train"][:64], 2)
    reports = []
    result = gan_train.train_gan(spec, real, None, 0, lambda step, m, judge: reports.append(m["medfid"]),
                                 lambda: False)
    assert reports == [27.8, 16.5, 32.1, 44.9]                 # the pruner still sees every evaluation
    assert result.stats.medfid == 16.5 and result.best_iteration == 4 and result.iterations == 8
    kept = result.generator.state_dict()
    assert all(torch.equal(kept[k], snapshots[1][k]) for k in kept)
    assert not all(torch.equal(kept[k], snapshots[3][k]) for k in kept)


# ------------------------------------------------------------------ D: robust to an outlying sample
def test_one_outlying_sample_cannot_make_coverage_jump_as_it_makes_recall():
    """An outlier's k-NN radius among generated samples spans the real set: recall 0.58 at one draw, ~0 at
    five others. Coverage uses the real images' radii only."""
    torch.manual_seed(0)
    real = torch.randn(200, 8, dtype=torch.float64)
    collapsed = real[0] + 0.01 * torch.randn(199, 8, dtype=torch.float64)   # one mode
    with_outlier = torch.cat([collapsed, torch.full((1, 8), 30.0, dtype=torch.float64)])
    _, recall = precision_recall(real, with_outlier)
    density, coverage = density_coverage(real, with_outlier)
    assert recall == 1.0                                       # Kynkaenniemi's recall: fooled
    assert coverage < 0.05 and density_coverage(real, collapsed)[1] == coverage
    assert density_coverage(real, real)[1] == 1.0


# ------------------------------------------------------------------ E: one feature space per run
def test_a_conditional_trial_is_recorded_then_another_seed_reuses_the_runs_feature_network_and_a_changed_one_is_refused(
        write_study, tmp_path, capsys):
    """`--set seed=1` on an existing run retrained the feature network (the seed was in its cache key) and scored
    later trials in another feature space than earlier ones."""
    run_study(load_study(write_study(STUDY)), progress=False)
    _check_a_conditional_trial_records_label_agreement_its_best_evaluation_and_feature_digest(tmp_path)
    cache = tmp_path / "run" / CACHE_DIR
    weights = (cache / "weights.safetensors").read_bytes()
    capsys.readouterr()
    run_study(load_study(write_study(STUDY.replace("seed: 0", "seed: 1").replace("n_trials: 1", "n_trials: 2"))),
              progress=False)
    assert (cache / "weights.safetensors").read_bytes() == weights   # not retrained
    assert "keeps this run's feature network (trained with seed 0)" in capsys.readouterr().err
    storage = f"sqlite:///{tmp_path / 'run' / 'study.db'}"
    digests = {t.user_attrs["medfid_features"] for t in optuna.load_study(study_name="gan", storage=storage).trials}
    assert len(digests) == 1

    shutil.rmtree(cache)   # gone (or another export at task.features' path): a new network would score new trials
    with pytest.raises(ConfigError, match="this run's trials were scored with MedFID feature network") as info:
        run_study(load_study(write_study(STUDY.replace("seed: 0", "seed: 1").replace("n_trials: 1", "n_trials: 3"))),
                  progress=False)
    assert info.value.key == "task.features" and "start a new run_dir" in info.value.fix


def test_trials_scored_with_another_feature_network_are_named():
    features = SimpleNamespace(digest="bbbb")
    _check_same_features([SimpleNamespace(user_attrs={"medfid_features": "bbbb"}), SimpleNamespace(user_attrs={})],
                         features, None)
    with pytest.raises(ConfigError, match="scored with MedFID feature network aaaa, but the export x.zip is bbbb"):
        _check_same_features([SimpleNamespace(user_attrs={"medfid_features": "aaaa"})], features, "x.zip")


# ------------------------------------------------------------------ F: too few images
def test_too_few_images_name_a_real_key_and_are_refused_before_announcing_training(write_study, tmp_path, capsys):
    from test_data import class_folder

    data = SimpleNamespace(splits={"train": [0] * 100, "val": [0] * 10})
    with pytest.raises(ConfigError) as info:
        _check_enough_images(32, data)
    assert "a larger data.val_fraction" in info.value.fix and "train_fraction" not in info.value.fix
    folder = class_folder(tmp_path / "images", {"a": 12, "b": 12})
    text = STUDY.replace("conditional: true", "conditional: false") + f"data: {{source: folder, path: '{folder}'}}\n"
    with pytest.raises(ConfigError, match="needs at least 33 real images per split"):
        run_study(load_study(write_study(text)), progress=False)
    assert "training its feature network" not in capsys.readouterr().err


def test_an_exports_head_is_read_in_the_datas_class_order():
    """An export may order the classes otherwise (positive_class): its head's outputs are mapped by name."""
    from searchlab.gan.features import _class_order

    assert _class_order(["malignant", "benign"], ["benign", "malignant"], 2) == [1, 0]
    assert _class_order(["a", "b", "c"], ["benign", "malignant"], 3) is None      # another data set's head
    assert _class_order(["benign", "malignant"], ["benign", "malignant"], 1) is None   # one logit: no argmax
