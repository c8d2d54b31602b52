"""timm families without a group_matcher (PiT, MetaFormer, CSATv2): parameter blocks in forward order (stem,
each stage, final norm; head excluded), so transfer: cutoff and layer-wise lr decay work on them too."""
from __future__ import annotations

import warnings

import pytest
import torch
from safetensors.torch import save_file

from searchlab.errors import TrialFailure
from searchlab.models.timm_backbone import TimmClassifier
from searchlab.tasks.classify_config import TimmSpec
from searchlab.tasks.transfer import apply_transfer

# (backbone, channels, input_size, the top-level parts of each block): the smallest sizes they build at (16 is
# TimmSpec's floor; CSATv2's DCT stem needs 64 px and RGB input). The classifier (head, head.fc) is in none.
STAGES = ["stages.0", "stages.1", "stages.2", "stages.3"]
FAMILIES = [
    ("pit_ti_224", 1, 16, ["cls_token patch_embed pos_embed", "transformers.0", "transformers.1", "transformers.2",
                           "norm"]),
    ("poolformer_s12", 1, 16, ["stem", *STAGES, "head.norm"]),
    ("csatv2", 3, 64, ["stem_dct", *STAGES, "head.norm"]),
]


def _build(backbone: str, channels: int, size: int) -> TimmClassifier:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # CSATv2 warns about anything but RGB; it is built for RGB here
        return TimmClassifier(channels, 2, backbone, input_size=size)


def _part(name: str) -> str:
    """'net.stages.2.blocks.0.mlp.fc1.weight' -> 'stages.2'; 'net.norm.weight' -> 'norm'."""
    parts = name.removeprefix("net.").split(".")
    return ".".join(parts[:2]) if parts[0] in ("transformers", "stages", "head") else parts[0]


@pytest.mark.parametrize("backbone,channels,size,parts", FAMILIES, ids=[f[0] for f in FAMILIES])
def test_blocks_in_forward_order_cover_every_non_head_parameter_once(backbone, channels, size, parts):
    net = _build(backbone, channels, size)
    assert not hasattr(net.net, "group_matcher")   # else this test tests timm's own groups
    blocks = net.parameter_blocks()
    names = [n for block in blocks for n, _ in block]
    assert [" ".join(sorted({_part(n) for n, _ in block})) for block in blocks] == parts
    assert len(names) == len(set(names))
    assert set(names) == {n for n, _ in net.named_parameters() if not n.startswith(net.head_prefix)}


def _timm_weights(net: TimmClassifier, tmp_path) -> str:
    """The network's own state as a plain timm weights file (what `weights:` reads)."""
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in net.net.state_dict().items()}, str(path))
    return str(path)


def test_pit_cutoff_freezes_the_blocks_below_it_and_refuses_a_deeper_one(tmp_path):
    net = _build("pit_ti_224", 1, 16)
    weights = _timm_weights(net, tmp_path)
    spec = TimmSpec(kind="timm", backbone="pit_ti_224", input_size=16, weights=weights, transfer="cutoff", cutoff=2)
    groups = apply_transfer(net, spec, tmp_path)
    frozen = [all(not p.requires_grad for _, p in block) for block in net.parameter_blocks()]
    trains = [all(p.requires_grad for _, p in block) for block in net.parameter_blocks()]
    assert frozen == [True, True, False, False, False] and trains == [False, False, True, True, True]
    trained = {id(p) for group in groups for p in group["params"]}
    assert trained == {id(p) for p in net.parameters() if p.requires_grad}
    assert not net.net.cls_token.requires_grad and net.net.head.weight.requires_grad
    with pytest.raises(TrialFailure, match=r"it has 5 blocks \(use cutoff 1\.\.5\)"):
        apply_transfer(net, spec.model_copy(update={"cutoff": 6}), tmp_path)


def test_pit_layer_decay_scales_each_block(tmp_path):
    net = _build("pit_ti_224", 1, 16)
    spec = TimmSpec(kind="timm", backbone="pit_ti_224", input_size=16, weights=_timm_weights(net, tmp_path),
                    transfer="full", layer_decay=0.5)
    groups = apply_transfer(net, spec, tmp_path)
    assert [g["lr_scale"] for g in groups] == [0.5 ** k for k in range(5, 0, -1)] + [1.0]   # 5 blocks, head
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))
