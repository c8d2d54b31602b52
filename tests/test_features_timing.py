"""A frozen-backbone (`features`) trial's train_seconds include computing its cached features: left out, such a
trial recorded 0.7 s of an 8 s run, and an objective minimising train_seconds favoured the mode 10-40 times."""
from __future__ import annotations

import time

import torch
from safetensors.torch import save_file

import searchlab.tasks.train as train_module
from searchlab.augment import AugmentSpec
from searchlab.data.types import ImageSplit
from searchlab.imbalance import ImbalanceSpec
from searchlab.models.timm_backbone import TimmClassifier
from searchlab.tasks.classify_config import OptimSpec, TimmSpec, TrainSpec
from searchlab.tasks.transfer import apply_transfer

EMBEDDING_SECONDS = 0.5


def test_the_cached_features_are_timed_with_the_training(monkeypatch, tmp_path):
    embed_all = train_module.embed_all

    def slow_embed_all(*args, **kwargs):   # as a backbone over many images takes its time
        time.sleep(EMBEDDING_SECONDS / 2)
        return embed_all(*args, **kwargs)

    monkeypatch.setattr(train_module, "embed_all", slow_embed_all)
    split = ImageSplit(torch.randint(0, 255, (8, 1, 32, 32), dtype=torch.uint8), torch.tensor([0, 1] * 4))
    batches = train_module.Batches(split, split, "binary", 2, {"mean": [0.0], "std": [1.0]})
    net = TimmClassifier(1, 2, "resnet10t")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "w.safetensors"))
    groups = apply_transfer(net, TimmSpec(kind="timm", backbone="resnet10t", weights="w.safetensors",
                                          transfer="features"), tmp_path)
    recipe = train_module.make_recipe(batches, AugmentSpec(), ImbalanceSpec(), TrainSpec())
    result = train_module.train(net, batches, recipe, OptimSpec(), TrainSpec(batch_size=4), 1, 0,
                                ("auc", "maximize"), lambda *a: None, groups=groups, cached_features=True)
    assert result.train_seconds >= EMBEDDING_SECONDS
