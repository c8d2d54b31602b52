"""RowRNN, the timm backbones the product names, and the backbones.yaml space fragment."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from searchlab.config.load import load_study
from searchlab.models.row_rnn import RowRNN
from searchlab.models.standalone import build_model
from searchlab.models.timm_backbone import TimmClassifier
from searchlab.space import searchable_params
from searchlab.tasks.classify_config import ClassifyTrialConfig


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_row_rnn_forward_embed_classify_and_blocks(cell, bidirectional):
    torch.manual_seed(0)
    net = RowRNN(1, 3, cell=cell, hidden=16, layers=2, bidirectional=bidirectional, dropout=0.2).eval()
    x = torch.randn(4, 1, 28, 28)
    z = net.embed(x)
    assert z.shape == (4, 16 * (2 if bidirectional else 1))
    assert net(x).shape == (4, 3) and torch.allclose(net(x), net.classify(z))
    blocks = net.parameter_blocks()
    assert len(blocks) == 2 and all(blocks)
    names = [n for block in blocks for n, _ in block]
    assert all(n.startswith("rnn.") for n in names) and not any(n.startswith(net.head_prefix) for n in names)
    assert {n for n, _ in net.named_parameters()} == set(names) | {"head.1.weight", "head.1.bias"}
    assert all("_l0" in n for n, _ in blocks[0]) and all("_l1" in n for n, _ in blocks[1])


def test_row_rnn_resizes_and_reads_channels():
    net = build_model({"architecture": "row_rnn", "args": {"input_size": 16, "hidden": 8}, "in_channels": 3,
                       "num_outputs": 2}).eval()
    assert net.rnn.input_size == 3 * 16 and net(torch.randn(2, 3, 28, 28)).shape == (2, 2)


def test_row_rnn_spec_defaults_and_refuses_hub_weights():
    spec = ClassifyTrialConfig.model_validate({"model": {"kind": "rnn", "cell": "lstm"}}).model
    assert spec.architecture() == ("row_rnn", {"cell": "lstm", "hidden": 64, "layers": 1, "bidirectional": False,
                                               "dropout": 0.0, "input_size": 28})
    with pytest.raises(ValueError, match="weights 'timm' is for timm backbones"):
        ClassifyTrialConfig.model_validate({"model": {"kind": "rnn", "weights": "timm"}})


def test_rnn_study_runs_exports_and_reloads(write_study, tmp_path):
    from searchlab.engine.run import run_study
    from searchlab.export.exporter import export_run

    text = ("name: rnn\ntask: classify\nspace:\n"
            "  model: {kind: rnn, cell: gru, hidden: 16, layers: 2, bidirectional: true, dropout: 0.1}\n"
            "  train: {batch_size: 128}\n"
            "strategy: random\npruner: none\nbudget: {n_trials: 1, epochs: 1}\n")
    run_study(load_study(write_study(text)), progress=False)
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=50)
    assert config["model"]["architecture"] == "row_rnn"
    spec = importlib.util.spec_from_file_location("exported_rnn_model", tmp_path / "best" / "model.py")
    standalone = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(standalone)
    net, loaded = standalone.load(tmp_path / "best")
    assert isinstance(net, standalone.RowRNN) and loaded["model"]["args"]["bidirectional"] is True
    source = (tmp_path / "best" / "model.py").read_text()   # the RNN's code, not every architecture's
    assert not any(f"class {name}" in source for name in ("TimmClassifier", "ZenNet", "CellNet", "NNIModel"))
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    probs = standalone.predict_proba(net, loaded, images)
    assert probs.shape == (5,) and bool(((probs >= 0) & (probs <= 1)).all())


# timm names for the backbones the product promises, with the input size each is built for (28x28 inputs are
# resized inside the model). Patch models (ViT, DeiT, BEiT, Swin) get img_size=input_size at construction.
BACKBONES = [
    ("convnext_tiny", 32),
    ("swin_tiny_patch4_window7_224", 56),     # patch 4 x window 7: 56 is a multiple of 28
    ("densenet121", 32),
    ("resnet18", 32),
    ("resnet50", 32),
    ("resnet152", 32),
    ("efficientnet_b0", 32),
    ("vit_tiny_patch16_224", 32),             # ViT-style; built for 32 instead of its native 224
    ("deit_tiny_patch16_224", 32),            # DeiT: the smallest BEiT/DeiT-style transformer
    ("beit_base_patch16_224", 32),            # BEiT: timm's smallest BEiT is base (86M parameters)
    ("vgg11", 32),                            # VGG's five max-pools need >= 32 pixels
    ("mobilenetv3_small_050", 32),            # timm has no SqueezeNet; MobileNetV3-Small 0.5 is the small-net stand-in
]


@pytest.mark.parametrize("name,size", BACKBONES, ids=[name for name, _ in BACKBONES])
def test_timm_backbone_on_28x28_grayscale(name, size):
    torch.manual_seed(0)
    net = TimmClassifier(1, 2, name, input_size=size).eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        logits = net(x)
        again = net.classify(net.embed(x))
    assert logits.shape == (2, 2)
    assert torch.allclose(logits, again, atol=1e-5)
    blocks = net.parameter_blocks()
    assert blocks and all(blocks)
    assert not any(n.startswith(net.head_prefix) for block in blocks for n, _ in block)


def test_backbones_space_compiles_and_fits_the_classify_task(write_study):
    text = ("name: s\ntask: classify\nspace:\n  include: optim.yaml\n  model: {include: backbones.yaml}\n"
            "  augment: {include: augmentation.yaml}\n  imbalance: {include: imbalance.yaml}\n")
    study = load_study(write_study(text))   # validates every choice and range end through the classify schema
    names = {p.name for p, _ in searchable_params(study.space)}
    assert {"model.kind", "model.cnn.depth", "model.rnn.cell", "model.rnn.bidirectional", "model.timm.backbone",
            "model.timm.input_size"} <= names


def test_recurrent_flops_are_counted_where_torchs_counter_cannot_see_them():
    """torch's counter sees a CPU GRU as matmuls but not an LSTM's fused kernel; the formula that fills in the
    LSTM must agree with the counter's own count of the GRU."""
    from types import SimpleNamespace

    from searchlab.tasks.costs import measure_costs, recurrent_flops

    data = SimpleNamespace(image_size=(28, 28), channels=1)
    gru = RowRNN(1, 2, cell="gru", hidden=16, layers=2, bidirectional=True, dropout=0.0)
    lstm = RowRNN(1, 2, cell="lstm", hidden=16, layers=2, bidirectional=True, dropout=0.0)
    head = 2 * 32 * 2                                     # the linear head on the last step's 2 x 16 features
    counted = measure_costs(gru, data)["flops"] - head
    assert counted == recurrent_flops(gru.rnn, torch.zeros(1, 28, 28)) > 0
    assert measure_costs(lstm, data)["flops"] - head == counted * 4 / 3   # four gates to the GRU's three
