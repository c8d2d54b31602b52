"""Weights as people have them: ViT weights at another input size, Lightning and timm training checkpoints,
timm hub weights (their origin recorded, their absence from the cache said at run start), patch grids that
leave pixels unseen. All weights are made here (pretrained=False); the hub is monkeypatched, never reached."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
import timm
import torch
from safetensors.torch import save_file

from searchlab.config.load import load_study
from searchlab.errors import TrialFailure
from searchlab.models.timm_backbone import TimmClassifier
from searchlab.tasks import get_task, transfer
from searchlab.tasks.checkpoint_files import state_sha256
from searchlab.tasks.classify_config import TimmSpec
from searchlab.tasks.transfer import apply_transfer, source_state

VIT = "vit_tiny_patch16_224"


def spec(weights: str, backbone: str = "resnet18", **more) -> TimmSpec:
    return TimmSpec(kind="timm", backbone=backbone, weights=weights, transfer="full", **more)


def plain(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.contiguous() for k, v in model.state_dict().items()}


@pytest.fixture(autouse=True)
def _notes_said_again():
    if hasattr(transfer, "_note"):
        transfer._note.cache_clear()   # each test sees its own notes


def test_vit_weights_from_224_load_at_another_input_size_resampled_as_timm_does(tmp_path, capsys):
    """(1, 197, 192) weights into a 32-px ViT (1, 5, 192) were refused as another architecture."""
    from timm.layers import resample_abs_pos_embed

    torch.manual_seed(0)
    source = timm.create_model(VIT, pretrained=False)
    save_file(plain(source), str(tmp_path / "vit.safetensors"))
    model = TimmClassifier(1, 2, VIT, input_size=32)
    told = []
    apply_transfer(model, spec("vit.safetensors", VIT, input_size=32), tmp_path, told.append)
    expected = resample_abs_pos_embed(source.pos_embed.detach(), new_size=[2, 2], num_prefix_tokens=1)
    assert torch.allclose(model.net.pos_embed, expected)
    assert torch.equal(model.net.cls_token, source.cls_token)
    assert torch.allclose(model.net.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)
    assert told[0]["adapted"] == ["resampled pos_embed (1, 197, 192) -> (1, 5, 192)"]
    assert "position embeddings resampled to this model's patch grid" in capsys.readouterr().err
    # another width is another architecture: still refused, naming the tensor
    save_file(plain(timm.create_model("vit_small_patch16_224", pretrained=False)), str(tmp_path / "small.safetensors"))
    with pytest.raises(TrialFailure, match=r"do not fit this model .*pos_embed: weights \(1, 197, 384\)"):
        apply_transfer(TimmClassifier(1, 2, VIT, input_size=32), spec("small.safetensors", VIT, input_size=32),
                       tmp_path)


def fake_hub(monkeypatch, cached=None):
    """timm.create_model(..., pretrained=True) as if the hub answered: seeded random weights, nothing fetched."""
    real = timm.create_model
    made = {}

    def create(name, pretrained=False, **kwargs):
        if pretrained:
            torch.manual_seed(1)
            made["model"] = real(name, pretrained=False, **kwargs)
            return made["model"]
        return real(name, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", create)
    # in the module apply_transfer runs in (a test that re-imports searchlab leaves `transfer` naming another)
    monkeypatch.setitem(apply_transfer.__globals__, "hub_unreachable", lambda: None)
    monkeypatch.setitem(apply_transfer.__globals__, "cached_hub_file", lambda backbone: cached)
    return made


def test_hub_vit_weights_load_at_another_input_size_and_record_their_origin(tmp_path, monkeypatch):
    made = fake_hub(monkeypatch)
    model = TimmClassifier(3, 2, VIT, input_size=48)
    told = []
    apply_transfer(model, spec("timm", VIT, input_size=48), tmp_path, told.append)
    assert model.net.pos_embed.shape == (1, 10, 192)
    hub_state = made["model"].state_dict()
    assert told == [{"timm": VIT, "pretrained_tag": "augreg_in21k_ft_in1k",
                     "hf_hub_id": "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k",
                     "url": made["model"].pretrained_cfg["url"], "state_sha256": state_sha256(hub_state),
                     "adapted": ["resampled pos_embed (1, 197, 192) -> (1, 10, 192)"]}]


def test_hub_weights_read_from_the_cache_record_that_files_sha256(tmp_path, monkeypatch):
    import hashlib

    (tmp_path / "model.safetensors").write_bytes(b"cached weights")
    fake_hub(monkeypatch, cached=tmp_path / "model.safetensors")
    told = []
    apply_transfer(TimmClassifier(3, 2, "resnet18"), spec("timm"), tmp_path, told.append)
    assert told[0]["timm"] == "resnet18" and told[0]["hf_hub_id"].startswith("timm/resnet18.")
    assert told[0]["cached_file"] == str(tmp_path / "model.safetensors")
    assert told[0]["sha256"] == hashlib.sha256(b"cached weights").hexdigest()


@pytest.mark.parametrize("prefix", ["model.", "backbone.", "model.encoder."])
def test_a_prefix_every_key_shares_is_dropped_and_said(tmp_path, capsys, prefix):
    """PyTorch Lightning saves {'state_dict': {'model.conv1.weight': ...}}: refused as another architecture."""
    model = TimmClassifier(3, 2, "resnet18")
    state = plain(model.net)
    torch.save({"state_dict": {f"{prefix}{k}": v for k, v in state.items()}, "epoch": 3}, tmp_path / "last.ckpt")
    told = []
    apply_transfer(model, spec("last.ckpt"), tmp_path, told.append)
    assert told[0]["prefix_dropped"] == prefix
    assert f"every tensor name began with '{prefix}', which was dropped" in capsys.readouterr().err
    assert torch.equal(model.net.conv1.weight, state["conv1.weight"])


def test_a_lightning_checkpoint_of_a_searchlab_model_drops_only_lightnings_prefix(tmp_path):
    model = TimmClassifier(3, 2, "resnet18")
    state = plain(model)   # `net.conv1.weight`: the wrapper's own names, which fit as they are
    torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}}, tmp_path / "last.ckpt")
    told = []
    apply_transfer(model, spec("last.ckpt"), tmp_path, told.append)
    assert told[0]["prefix_dropped"] == "model."


def test_keys_that_fit_after_no_prefix_are_still_another_architecture(tmp_path):
    state = plain(timm.create_model("resnet10t", pretrained=False))
    torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}}, tmp_path / "other.ckpt")
    with pytest.raises(TrialFailure, match="do not fit this model"):
        apply_transfer(TimmClassifier(3, 2, "mobilenetv3_small_050"), spec("other.ckpt", "mobilenetv3_small_050"),
                       tmp_path)


def test_a_timm_training_checkpoint_names_torchs_reason_and_the_resave_line(tmp_path):
    """timm's model_best.pth.tar holds `args`, an argparse.Namespace: not unpickled, and said so, by name."""
    state = plain(TimmClassifier(3, 2, "resnet18").net)
    torch.save({"epoch": 9, "arch": "resnet18", "state_dict": state, "args": argparse.Namespace(lr=0.1)},
               tmp_path / "model_best.pth.tar")
    with pytest.raises(TrialFailure) as caught:
        source_state(spec("model_best.pth.tar"), TimmClassifier(3, 2, "resnet18"), tmp_path)
    text = str(caught.value)
    assert "argparse.Namespace" in text and "a whole model" not in text
    assert f"python -c 'import torch; c = torch.load(\"{tmp_path / 'model_best.pth.tar'}\"" in text
    assert "weights_only=False" in text and "it is not unpickled" in text


@pytest.mark.parametrize("name", ["deit_best.pth", "dr o'brien $HOME `x`.pth"])
def test_the_resave_line_keeps_the_weights_of_a_model_key_checkpoint_at_any_path(tmp_path, name):
    """DeiT/MAE/DINO save {'model': state_dict, 'args': Namespace}: the line kept no key of those and wrote an
    empty file, and a path with a quote broke it (a $ or backtick in it was run by the shell)."""
    state = plain(TimmClassifier(3, 2, "resnet18").net)
    path = tmp_path / name
    torch.save({"model": state, "args": argparse.Namespace(lr=0.1), "epoch": 3}, path)
    with pytest.raises(TrialFailure) as caught:
        source_state(spec(name), TimmClassifier(3, 2, "resnet18"), tmp_path)
    line = str(caught.value).split("re-save its tensors alone in your own environment: ")[1].split(" and set ")[0]
    done = subprocess.run(["bash", "-c", line.replace("python -c", f"{sys.executable} -c", 1)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    saved = torch.load(path.with_name(f"{name.split('.')[0]}_weights.pth"), weights_only=True)
    assert set(saved) == set(state) and all(torch.equal(saved[k], state[k]) for k in state)


def test_the_ema_weights_of_a_timm_checkpoint_are_taken_and_recorded(tmp_path, capsys):
    model = TimmClassifier(3, 2, "resnet18")
    raw = plain(model.net)
    ema = {k: v + 1 if v.is_floating_point() else v for k, v in raw.items()}
    torch.save({"epoch": 9, "state_dict": raw, "state_dict_ema": ema}, tmp_path / "checkpoint.pth.tar")
    told = []
    apply_transfer(model, spec("checkpoint.pth.tar"), tmp_path, told.append)
    assert torch.equal(model.net.conv1.weight, ema["conv1.weight"])
    assert told[0]["tensors"] == "state_dict_ema"
    assert "its EMA weights ('state_dict_ema') were taken" in capsys.readouterr().err


STUDY = """
name: s
task: classify
space:
  model: {{kind: timm, backbone: {backbone}, input_size: {size}, weights: {weights}, transfer: {transfer}}}
  train: {{batch_size: 64}}
strategy: random
pruner: none
budget: {{n_trials: 1, epochs: 1}}
"""


def run_start(write_study, capsys, **fields) -> str:
    """What a run says when it starts (the task's prepare), without running a trial."""
    study = load_study(write_study(STUDY.format(**fields)))
    capsys.readouterr()
    get_task(study.config.task).prepare(study)
    return capsys.readouterr().err


def test_a_vit_input_size_off_its_patch_grid_is_warned_at_run_start(write_study, capsys):
    err = run_start(write_study, capsys, backbone=VIT, size=40, weights="none", transfer="scratch")
    assert "space.model.input_size is not a multiple of the patch size: timm vit_tiny_patch16_224 at input_size 40 " \
           "with 16-px patches sees 32 px of each 40 (fix: input_size 32 or 48)" in err
    assert "not a multiple" not in run_start(write_study, capsys, backbone=VIT, size=48, weights="none",
                                             transfer="scratch")


def test_hub_weights_not_in_the_local_cache_are_warned_at_run_start(write_study, capsys, monkeypatch, tmp_path):
    from searchlab.tasks import transfer_checks

    def no_network(*args, **kwargs):
        raise AssertionError("a network call at run start")

    monkeypatch.setattr("socket.create_connection", no_network)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))   # nothing cached
    monkeypatch.setattr(transfer_checks, "cached_hub_file", lambda name: None, raising=False)
    err = run_start(write_study, capsys, backbone="resnet18", size=32, weights="timm", transfer="features")
    assert "timm's published weights for resnet18 are not in this machine's cache" in err
    assert "safetensors.torch.save_file" in err
    monkeypatch.setattr(transfer_checks, "cached_hub_file", lambda name: tmp_path / "model.safetensors",
                        raising=False)
    assert "not in this machine's cache" not in run_start(write_study, capsys, backbone="resnet18", size=32,
                                                           weights="timm", transfer="features")


def test_the_cache_lookup_finds_timms_file_in_a_hugging_face_cache(tmp_path, monkeypatch):
    """The layout huggingface_hub writes: models--timm--NAME/snapshots/REV/model.safetensors, refs/main."""
    from huggingface_hub import constants

    from searchlab.tasks.checkpoint_files import cached_hub_file, pretrained_cfg

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert cached_hub_file("resnet18") is None
    repo = pretrained_cfg("resnet18")["hf_hub_id"]
    folder = tmp_path / f"models--{repo.replace('/', '--')}"
    (folder / "snapshots" / "abc").mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("abc")
    (folder / "snapshots" / "abc" / "model.safetensors").write_bytes(b"x")
    assert cached_hub_file("resnet18") == folder / "snapshots" / "abc" / "model.safetensors"


def test_the_state_digest_covers_every_tensor_batch_norm_counters_included():
    state = plain(timm.create_model("resnet18", pretrained=False))
    first = state_sha256(state)
    assert state_sha256(dict(reversed(list(state.items())))) == first   # key order aside
    state["bn1.num_batches_tracked"] = state["bn1.num_batches_tracked"] + 1   # a 0-dim tensor
    assert state_sha256(state) != first
