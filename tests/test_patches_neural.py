"""Patch curriculum (train.patch_epochs) and learned neural augmentation (augment.neural): units and trials."""
from __future__ import annotations

import pytest
import torch

from searchlab.augment import AugmentSpec
from searchlab.augment.neural import AugmentorNet, NeuralAugment, same_class_partners
from searchlab.augment.patches import random_patches
from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError
from searchlab.tasks import train as train_module


def test_patches_come_from_inside_each_image_at_the_asked_scale():
    torch.manual_seed(0)
    # left half 0, right half 1: a patch of half the side is all 0, all 1, or spans the boundary once
    x = torch.zeros(64, 1, 32, 32)
    x[..., 16:] = 1.0
    out = random_patches(x, 0.5)
    assert out.shape == x.shape and out.min() >= 0.0 and out.max() <= 1.0
    columns = out[:, 0].mean(dim=1)                         # (N, W): the column profile of each patch
    assert torch.all(columns[:, 1:] >= columns[:, :-1] - 1e-6)   # never decreases: no mirroring or wrapping
    zoomed = (columns > 0.99).sum(dim=1)
    # a half-side patch spanning the boundary shows it zoomed 2x: it moves by whole pixels over the batch
    assert len(set(zoomed.tolist())) > 5
    rows = torch.arange(32.0).view(1, 1, 32, 1).expand(8, 1, 32, 32)
    span = random_patches(rows, 0.25)[:, 0, :, 0]
    assert torch.all(span[:, -1] - span[:, 0] < 8.5)       # a quarter-side patch covers ~8 of 32 rows
    with pytest.raises(ValueError, match="fraction of the side"):
        random_patches(x, 1.5)


def test_patch_curriculum_uses_patches_only_in_its_first_epochs(write_study, monkeypatch):
    calls: list[int] = []
    real = train_module.random_patches

    def spy(x: torch.Tensor, size: float) -> torch.Tensor:
        calls.append(x.shape[0])
        assert size == 0.6
        return real(x, size)

    monkeypatch.setattr(train_module, "random_patches", spy)
    study = load_study(write_study(TRIAL.replace("EXTRA", "train: {batch_size: 128, patch_epochs: 0.5, patch_size: 0.6}")))
    trials = run_study(study, progress=False).study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"]
    assert sum(calls) == 2 * 546   # epochs 0 and 1 of 4 saw every training image once as a patch, no more


def test_augmentor_starts_as_the_identity_and_pairs_same_class_images():
    torch.manual_seed(0)
    net = AugmentorNet(channels=1, width=8)
    x = torch.rand(6, 1, 12, 12)
    assert torch.equal(net(x, x.flip(0)), x)
    y = torch.tensor([0, 1, 0, 1, 1, 2])
    for _ in range(20):
        partner = same_class_partners(y)
        assert torch.equal(y[partner], y) and partner[5] == 5   # class 2 has one image: its own partner
    multi = torch.tensor([[1, 0], [0, 1], [1, 0], [1, 1]])
    assert torch.equal(multi[same_class_partners(multi)], multi)   # the same label set


def test_neural_augment_learns_from_the_classifier_loss_and_replaces_its_share():
    torch.manual_seed(0)
    neural = NeuralAugment(AugmentSpec(neural=True, neural_share=0.5, neural_weight=0.1), channels=1)
    classifier = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    x, y = torch.rand(8, 1, 8, 8), torch.tensor([0, 1] * 4)
    before = [p.detach().clone() for p in neural.net.parameters()]
    out, content = neural(x, y)
    assert torch.equal(out[4:], x[4:]) and content.item() == 0.0   # identity at the start: no content loss yet
    loss = torch.nn.functional.cross_entropy(classifier(out), y) + content
    neural.zero_grad()
    loss.backward()
    neural.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, neural.net.parameters()))
    out, content = neural(x, y)
    assert not torch.equal(out[:4], x[:4]) and content.item() > 0.0
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_neural_augmentation_trial_runs_and_exports_no_augmentor(write_study, tmp_path):
    from safetensors.torch import load_file

    from searchlab.export.exporter import export_run

    study = load_study(write_study(TRIAL.replace("EXTRA", "augment: {neural: true, neural_width: 4, mix: mixup}")))
    trials = run_study(study, progress=False).study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"], trials[0].user_attrs.get("fail_reason")
    export_run(tmp_path / "run", tmp_path / "best", bootstrap=10)
    weights = load_file(str(tmp_path / "best" / "weights.safetensors"))
    assert weights and not any("body" in name for name in weights)   # training-time only: not in the export


@pytest.mark.parametrize("extra, key", [("train: {patch_epochs: 1.0}", "patch_epochs"),
                                        ("augment: {neural: true, neural_share: 0}", "neural_share")])
def test_bad_curriculum_or_neural_settings_are_named(write_study, extra, key):
    with pytest.raises(ConfigError) as err:
        load_study(write_study(TRIAL.replace("EXTRA", extra)))
    assert key in str(err.value)


TRIAL = """
name: patches_neural
task: classify
space:
  model: {kind: cnn, depth: 1, width: 4, convs_per_stage: 1}
  EXTRA
strategy: random
pruner: none
budget: {n_trials: 1, epochs: 4}
"""


def test_learned_augmentation_that_replaces_every_image_unheld_is_warned_about():
    from searchlab.tasks.augment_advice import neural_augment_warning
    from searchlab.tasks.classify_config import ClassifyTrialConfig

    def spec(**augment):
        return ClassifyTrialConfig.model_validate({"augment": {"neural": True, **augment}})

    assert neural_augment_warning([spec(neural_share=1.0, neural_weight=0.0)]).startswith(
        "space.augment.neural_share 1 with neural_weight 0")
    assert neural_augment_warning([spec(neural_share=0.9, neural_weight=0.0),
                                   spec(neural_share=1.0, neural_weight=0.1)]) is None
    off = ClassifyTrialConfig.model_validate({"augment": {"neural": False, "neural_share": 1.0,
                                                          "neural_weight": 0.0}})
    assert neural_augment_warning([off]) is None


def test_class_weights_at_power_0_are_warned_about_unless_the_power_is_searched():
    from searchlab.tasks.augment_advice import unweighted_warning
    from searchlab.tasks.classify_config import ClassifyTrialConfig

    def spec(**imbalance):
        return ClassifyTrialConfig.model_validate({"imbalance": imbalance})

    assert unweighted_warning([spec(loss="weighted_ce", class_weight_power=0.0)]).startswith(
        "space.imbalance.class_weight_power 0 makes every class weight 1")
    assert unweighted_warning([spec(loss="focal", class_weight_power=0.0), spec(loss="ce")]) is not None
    assert unweighted_warning([spec(loss="weighted_ce", class_weight_power=0.0),
                               spec(loss="weighted_ce", class_weight_power=1.0)]) is None   # searched
    assert unweighted_warning([spec(loss="focal", focal_alpha="none", class_weight_power=0.0)]) is None
