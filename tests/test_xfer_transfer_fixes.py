"""Transfer learning: one source trial per target trial, two-head timm models, dropout on cached features,
non-finite source weights, neutral settings written under transfer: features."""
from __future__ import annotations

import optuna
import pytest
import torch
from optuna.trial import TrialState
from safetensors.torch import save_file

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError, TrialFailure
from searchlab.models.standalone import PlainCNN
from searchlab.models.timm_backbone import TimmClassifier
from searchlab.tasks.classify_config import PlainCNNSpec, TimmSpec
from searchlab.tasks.transfer import NonFiniteWeights, apply_transfer
from tiny_runs import run_on_breastmnist

SOURCE = """
name: source
task: classify
space:
  model: {kind: cnn, depth: 2, width: 8}
  optim: {lr: {float: [1.0e-3, 5.0e-3], log: true}}
  train: {batch_size: 128}
strategy: random
pruner: none
budget: {n_trials: 2, epochs: 1}
"""


@pytest.fixture(scope="module")
def source_run(tmp_path_factory, breastmnist_root):
    """A finished run of two trials (two checkpoints to start from)."""
    return run_on_breastmnist(tmp_path_factory.mktemp("xfer_source"), SOURCE, breastmnist_root)


def _source_study(run_dir) -> optuna.Study:
    return optuna.load_study(study_name="source", storage=f"sqlite:///{run_dir / 'study.db'}")


def _add_better_trial(study: optuna.Study, like: optuna.trial.FrozenTrial) -> int:
    """A trial better than any, holding `like`'s checkpoint: what a source run still going on may add."""
    best = max(t.value for t in study.get_trials(states=(TrialState.COMPLETE,)))
    study.add_trial(optuna.trial.create_trial(params=like.params, distributions=like.distributions,
                                              value=best + 1.0, user_attrs=like.user_attrs))
    return study.trials[-1].number


def test_every_fold_of_a_target_trial_starts_from_the_source_trial_it_first_drew(source_run, tmp_path):
    """Finding 1: a better source trial added while a target trial runs changes nothing for that trial (its
    folds, refit and repeats hand apply_transfer the same spec); the next target trial takes the new best."""
    run_dir = tmp_path / "run"
    import shutil

    shutil.copytree(source_run, run_dir)   # this test adds trials: the module's run stays as it was
    study = _source_study(run_dir)
    first = study.best_trial
    other = next(t for t in study.trials if t.number != first.number)
    spec = PlainCNNSpec(depth=2, width=8, weights=str(run_dir), transfer="full")
    told: list[dict] = []
    nets = [PlainCNN(1, 2, depth=2, width=8) for _ in range(3)]
    apply_transfer(nets[0], spec, tmp_path, on_source=told.append)
    newest = _add_better_trial(study, other)
    apply_transfer(nets[1], spec, tmp_path, on_source=told.append)   # the same trial's next fold
    assert [t["trial"] for t in told] == [first.number, first.number]
    assert torch.equal(nets[0].features[0].weight, nets[1].features[0].weight)
    next_trial = PlainCNNSpec(depth=2, width=8, weights=str(run_dir), transfer="full")
    apply_transfer(nets[2], next_trial, tmp_path, on_source=told.append)
    assert told[-1]["trial"] == newest


def test_cross_validation_folds_record_the_one_source_they_all_started_from(write_study, source_run, monkeypatch):
    """Finding 1 end to end: the best trial of the source run changes between folds (as the picking sees it)."""
    import searchlab.export.picking as picking

    real = picking.pick_trial
    numbers = [t.number for t in _source_study(source_run).trials]
    drawn: list[int] = []

    def changing_best(study, number):
        if number is not None:
            return real(study, number)
        drawn.append(numbers[len(drawn) % len(numbers)])   # each call a different best
        return real(study, drawn[-1])

    monkeypatch.setattr(picking, "pick_trial", changing_best)
    text = f"""
name: target
task: classify
space:
  model: {{kind: cnn, depth: 2, width: 8, weights: '{source_run}', transfer: cutoff, cutoff: 1}}
  train: {{batch_size: 128, cv_folds: 2, cv_model: bag}}
strategy: random
pruner: none
budget: {{n_trials: 1, epochs: 1}}
"""
    path = write_study(text)
    trial = run_study(load_study(path), progress=False).study.trials[-1]
    assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("error")
    from searchlab.engine.rundir import open_run
    from searchlab.export.exporter import trial_checkpoint

    bag = trial_checkpoint(open_run(path.parent / "run"), trial)
    source = trial_checkpoint(open_run(source_run), real(_source_study(source_run), trial.user_attrs["weights_from"]
                                                         ["trial"]))
    # the frozen first block is the source's as loaded: both members hold the one the trial records
    for member in (0, 1):
        assert torch.equal(bag[f"members.{member}.features.0.weight"], source["features.0.weight"])


@pytest.mark.parametrize("backbone,size", [("deit_tiny_distilled_patch16_224", 32), ("levit_128s", 64)])
def test_a_two_head_timm_model_takes_its_own_weights_and_classifies_cached_features(backbone, size, tmp_path):
    """Finding 2: pretrained_cfg['classifier'] is ('head', 'head_dist'); both heads are new, and classify
    averages them as timm's forward does (distilled DeiT: each head on its own token)."""
    import timm

    torch.manual_seed(0)
    source = timm.create_model(backbone, pretrained=False, in_chans=1, img_size=size)   # 1000 classes
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(tmp_path / "w.safetensors"))
    net = TimmClassifier(1, 2, backbone, input_size=size)
    spec = TimmSpec(kind="timm", backbone=backbone, input_size=size, weights=str(tmp_path / "w.safetensors"),
                    transfer="features")
    groups = apply_transfer(net, spec, tmp_path)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(("net.head", "net.head_dist")) for n in trainable)
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(p.numel() for p in net.parameters()
                                                                      if p.requires_grad)
    assert torch.equal(net.net.patch_embed.proj.weight if backbone.startswith("deit") else
                       net.net.stem.conv1.linear.weight,
                       source.patch_embed.proj.weight if backbone.startswith("deit") else
                       source.stem.conv1.linear.weight)
    net.eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(net(x), net.classify(net.embed(x)), atol=1e-5)
    assert not any(n.startswith(net.head_prefix) for block in net.parameter_blocks() for n, _ in block)


def test_drop_rate_acts_on_cached_features_in_training_only():
    """Finding 3: under transfer: features the head trains on features computed once in eval mode, so timm's
    head dropout never ran; classify applies it while training, and forward (timm's own) is unchanged."""
    torch.manual_seed(0)
    net = TimmClassifier(1, 2, "test_resnet", input_size=32, drop_rate=0.5)
    x = torch.randn(8, 1, 28, 28)
    z = net.eval().embed(x).detach()
    net.train()
    assert not torch.allclose(net.classify(z), net.classify(z))   # dropped out, differently each call
    dropped = net.classify(z)
    kept = torch.nn.functional.linear(z, net.net.fc.weight, net.net.fc.bias)
    assert not torch.allclose(dropped, kept)
    net.eval()
    assert torch.allclose(net.classify(z), kept, atol=1e-6)
    torch.manual_seed(1)
    via_wrapper = net.train()(x)
    torch.manual_seed(1)
    assert torch.allclose(via_wrapper, net.net(net._resize(x)))   # the image path drops once, in timm's head
    plain = TimmClassifier(1, 2, "test_resnet", input_size=32).train()
    assert torch.allclose(plain.classify(z), plain.classify(z))


def _nan_weights(path) -> None:
    torch.manual_seed(0)
    state = PlainCNN(1, 2, depth=2, width=8).state_dict()
    state["features.0.weight"][0, 0, 0, 0] = float("nan")
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))


def test_non_finite_source_weights_are_refused_naming_them(tmp_path, write_study):
    """Finding 4: a damaged checkpoint (NaN in a loaded tensor) is named as the cause, not the learning rate:
    per trial, and at run start before any trial."""
    _nan_weights(tmp_path / "bad.safetensors")
    spec = PlainCNNSpec(depth=2, width=8, weights=str(tmp_path / "bad.safetensors"), transfer="features")
    with pytest.raises(NonFiniteWeights, match=r"bad.safetensors' hold non-finite values .*\(features\.0\.weight\)"):
        apply_transfer(PlainCNN(1, 2, depth=2, width=8), spec, tmp_path)
    text = f"""
name: t
task: classify
space:
  model: {{kind: cnn, depth: 2, width: 8, weights: '{tmp_path / "bad.safetensors"}', transfer: features}}
  optim: {{lr: 1.0e-8}}
strategy: random
pruner: none
budget: {{n_trials: 1, epochs: 1}}
"""
    with pytest.raises(ConfigError, match="non-finite values.*Fix: use weights saved before their training diverged"):
        run_study(load_study(write_study(text)), progress=False)


def _tiny_batches():
    from searchlab.data.types import ImageSplit
    from searchlab.tasks.train import Batches, normalisation

    gen = torch.Generator().manual_seed(0)
    split = ImageSplit(torch.randint(0, 256, (32, 1, 28, 28), dtype=torch.uint8, generator=gen),
                       torch.arange(32) % 2)
    return Batches(train=split, val=split, kind="binary", n_classes=2, preprocessing=normalisation(split))


@pytest.mark.parametrize("cached", [True, False])
def test_non_finite_output_before_any_step_blames_the_weights_not_the_lr(cached):
    """Finding 4: features (or a first output) that are non-finite before training come from the weights;
    the trial said "lower the upper end of space.optim.lr" even at lr 1e-8."""
    from searchlab.augment import AugmentSpec
    from searchlab.imbalance import ImbalanceSpec
    from searchlab.tasks.classify_config import OptimSpec, TrainSpec
    from searchlab.tasks.train import make_recipe, train

    torch.manual_seed(0)
    net = PlainCNN(1, 2, depth=2, width=8)
    with torch.no_grad():
        net.features[0].weight.fill_(float("inf"))   # as a damaged state_dict_ema loads (past the load check)
    batches, spec = _tiny_batches(), TrainSpec(batch_size=16)
    recipe = make_recipe(batches, AugmentSpec(), ImbalanceSpec(), spec)
    where = "frozen backbone gives non-finite features" if cached else "non-finite .* before any training step, so"
    with pytest.raises(TrialFailure, match=f"{where}.*initial weights are the cause.*not the learning rate"):
        train(net, batches, recipe, OptimSpec(lr=1e-8), spec, 1, 0, ("auc", "maximize"), lambda *_: None,
              cached_features=cached)


def test_a_neutral_value_written_where_it_has_no_effect_is_not_warned_of(write_study):
    """Finding 5: `augment: {policy: none}` beside transfer: features is not a mistake; a real policy is."""
    from searchlab.tasks.classify_usage import classify_setting_used, unused_setting_warnings

    def warnings(augment: str) -> list[str]:
        text = ("name: s\ntask: classify\nspace:\n  model: {kind: cnn, depth: 2, width: 8, weights: w.safetensors, "
                f"transfer: features}}\n  augment: {augment}\nbudget: {{n_trials: 1}}\n")
        study = load_study(write_study(text))
        return unused_setting_warnings(study.space, classify_setting_used, study.config.seed)

    assert warnings("{policy: none, mix: none}") == []
    assert any("space.augment.policy ('flip_rotate')" in w for w in warnings("{policy: flip_rotate}"))


def test_a_generator_export_as_model_weights_is_said_to_be_one(tmp_path):
    """A GAN's export given as model.weights got its tensors listed as not fitting, with the fix "weights of the
    same architecture"; predict, sample and augment.synthetic each say what the folder is."""
    import json

    from searchlab.tasks.transfer import source_state

    export = tmp_path / "gan_best"
    export.mkdir()
    (export / "config.json").write_text(json.dumps({"generator": {"family": "dcgan", "args": {}}}))
    save_file({"body.0.weight": torch.zeros(2, 2)}, str(export / "weights.safetensors"))
    spec = PlainCNNSpec(weights=str(export), transfer="full")
    with pytest.raises(TrialFailure, match="is a generator export .* Fix: give a classifier export"):
        source_state(spec, PlainCNN(1, 2), tmp_path)
