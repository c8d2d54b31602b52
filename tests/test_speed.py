"""train.precision (bfloat16 autocast) and train.channels_last: faster arithmetic, the same checkpoints."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from searchlab.tasks.speed import as_input, training_precision
from test_cv import _run

LAST = ", epochs: 2, checkpoint: last"


def test_bf16_runs_the_training_forward_in_bfloat16_only_inside_its_block():
    conv = torch.nn.Conv2d(1, 4, 3)
    x = torch.randn(2, 1, 8, 8)
    with training_precision("bf16", torch.device("cpu")):
        assert conv(x).dtype == torch.bfloat16
    with training_precision("fp32", torch.device("cpu")):
        assert conv(x).dtype == torch.float32
    assert conv(x).dtype == torch.float32 and conv.weight.dtype == torch.float32


def test_auto_precision_is_bf16_only_where_the_cpu_computes_it_natively(monkeypatch):
    from searchlab.tasks import speed

    cpu = torch.device("cpu")
    monkeypatch.setattr(speed, "_cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert speed.resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(speed, "_cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert speed.resolve_precision("auto", cpu) == "fp32"
    assert speed.resolve_precision("bf16", cpu) == "bf16" and speed.resolve_precision("fp32", cpu) == "fp32"


def test_bf16_on_a_gpu_without_bfloat16_fails_the_trial_with_the_fix(monkeypatch):
    from searchlab.errors import TrialFailure

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla V100")
    with pytest.raises(TrialFailure, match=r"precision is bf16, but this GPU \(Tesla V100\).*Fix: precision: auto"):
        with training_precision("bf16", torch.device("cuda")):
            pass


def test_channels_last_applies_to_image_batches_only():
    assert as_input(torch.zeros(2, 3, 4, 4), True).is_contiguous(memory_format=torch.channels_last)
    assert as_input(torch.zeros(2, 5), True).is_contiguous()
    assert as_input(torch.zeros(2, 3, 4, 4), False).is_contiguous()


def _train(breastmnist_root, **train) -> tuple[dict[str, torch.Tensor], float]:
    """One 2-epoch training from seed 0 (weights, last validation AUC): the same draws whatever the options."""
    from searchlab.config.schema import MedMNISTData
    from searchlab.data import load_dataset
    from searchlab.models.standalone import build_model
    from searchlab.tasks.classify import make_batches, model_spec_for, parse_trial_config
    from searchlab.tasks.train import make_recipe, train as run_training

    spec = parse_trial_config({"model": {"kind": "cnn", "depth": 2, "width": 8}, "optim": {"lr": 3e-3},
                               "train": {"batch_size": 64, "checkpoint": "last", **train}}, None)
    data = load_dataset(MedMNISTData(source="medmnist", name="breastmnist", root=breastmnist_root, download=False),
                        splits=("train", "val"), seed=0)
    batches = make_batches(data)
    torch.manual_seed(0)
    model = build_model(model_spec_for(spec, data))
    result = run_training(model, batches, make_recipe(batches, spec.augment, spec.imbalance, spec.train), spec.optim,
                          spec.train, 2, 0, ("auc", "maximize"), lambda epoch, metrics: None)
    return result.state, result.metrics["auc"]


def test_channels_last_trains_the_same_network_up_to_rounding(breastmnist_root):
    (plain, plain_auc), (nhwc, nhwc_auc) = _train(breastmnist_root), _train(breastmnist_root, channels_last=True)
    assert plain.keys() == nhwc.keys()
    for key in plain:
        assert nhwc[key].is_contiguous(), key   # checkpoints are NCHW whatever layout trained them
        torch.testing.assert_close(nhwc[key], plain[key], rtol=1e-2, atol=5e-3, msg=key)   # measured <= 1.3e-3
    assert nhwc_auc == pytest.approx(plain_auc, abs=1e-3)


def test_bf16_changes_the_arithmetic_not_the_weights_format(breastmnist_root):
    (plain, plain_auc), (mixed, mixed_auc) = _train(breastmnist_root), _train(breastmnist_root, precision="bf16")
    assert all(mixed[k].dtype == plain[k].dtype for k in plain)   # weights and optimiser stay float32
    drift = max((mixed[k] - plain[k]).abs().max().item() for k in plain if plain[k].is_floating_point())
    assert 1e-2 < drift < 0.5   # measured 0.03: 20x channels_last's rounding, yet the same training
    assert mixed_auc == pytest.approx(plain_auc, abs=0.1)


def test_a_bf16_channels_last_study_exports_a_float32_model_that_reproduces_its_validation(write_study, tmp_path):
    from sklearn.metrics import roc_auc_score

    from searchlab.config.load import load_study
    from searchlab.data import load_dataset
    from searchlab.export.exporter import export_run
    from searchlab.models.standalone import load, predict_proba

    trial = _run(write_study, tmp_path, LAST + ", precision: bf16, channels_last: true", run="bf16")
    assert trial.user_attrs["train_precision"] == "bf16"
    export_run(tmp_path / "bf16", tmp_path / "best", bootstrap=20)
    assert all(t.dtype == torch.float32 for t in load_file(str(tmp_path / "best" / "weights.safetensors")).values()
               if t.is_floating_point())
    net, config = load(tmp_path / "best")
    val = load_dataset(load_study(tmp_path / "bf16.yaml").config.data, splits=("val",), base_dir=tmp_path).splits["val"]
    auc = roc_auc_score(val.labels.numpy(), predict_proba(net, config, val.images).numpy())
    assert auc == pytest.approx(trial.user_attrs["curve"][-1]["auc"], abs=1e-6)   # validated in float32
