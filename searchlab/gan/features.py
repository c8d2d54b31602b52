"""The MedFID feature network: a classifier of the same medical images, read at its last layer's input.

Either a searchlab export for the same data (`task.features: path/to/export`), or, by default, a plain CNN
trained for the purpose on the study's train split (validation split for its best epoch), cached in
`<run_dir>/medfid_features/` as an export-like folder (config.json + weights.safetensors) and reused by every
trial and every resume. Its input is images in [0, 1], normalised with the classifier's own training statistics.
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from searchlab.data.types import ImageDataset
from searchlab.errors import ConfigError
from searchlab.export.damaged import UNLOADABLE, unloadable
from searchlab.models.standalone import build_model, load, normalize
from searchlab.weights_file import save_weights

CACHE_DIR = "medfid_features"
# The purpose-trained extractor: a small plain CNN whose 32 features (its last stage's width) stay well below
# the image counts of small validation splits (MedFID needs more images than features; BreastMNIST val: 78).
EXTRACTOR_MODEL = {"kind": "cnn", "depth": 3, "width": 8}
EXTRACTOR_EPOCHS = 30


class PenultimateFeatures(nn.Module):
    """A trained classifier's input to its last linear layer, for images in [0, 1]."""

    def __init__(self, net: nn.Module, preprocessing: dict[str, Any]) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.preprocessing = preprocessing
        linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ConfigError("the MedFID feature network has no linear output layer to read features before",
                              key="task.features", got=type(net).__name__, fix="use a classifier export")
        self.last = linears[-1]
        self.num_features = self.last.in_features     # torchmetrics reads this

    @torch.no_grad()
    def forward(self, images01: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []
        handle = self.last.register_forward_hook(lambda _m, inputs, _out: captured.append(inputs[0]))
        try:
            self.net(normalize(images01.float(), self.preprocessing))
        finally:
            handle.remove()
        return captured[0].flatten(1)


def feature_network(features: str | None, base_dir: Path, run_dir: Path, data: ImageDataset,
                    seed: int) -> PenultimateFeatures:
    """The study's MedFID feature network, checked against the data's image shape."""
    if features is not None:
        net = _from_export((base_dir / features).resolve(), data)
    else:
        net = _cached_or_trained(run_dir / CACHE_DIR, data, seed)
    _check_fits(net, data, features)
    return net


def _from_export(path: Path, data: ImageDataset) -> PenultimateFeatures:
    if not (path / "config.json").is_file():
        raise ConfigError("the MedFID feature network must be a searchlab export folder (config.json, "
                          "weights.safetensors)", key="task.features", got=str(path),
                          fix="export a classifier of this data set (searchlab export RUN --out DIR) and name DIR")
    try:
        net, config = load(path)
    except UNLOADABLE as exc:   # a generator's config.json, too, has no "model" to load
        if _is_generator(path):
            raise ConfigError("this is a generator export; MedFID's feature network is a classifier of the same "
                              "images", key="task.features", got=str(path), fix="export a classifier trial of "
                              "this data set and name it, or leave task.features unset to train one") from None
        raise ConfigError(f"the MedFID feature network: {unloadable(path, exc)}", key="task.features",
                          got=str(path), fix="export a classifier of this data set again (searchlab export RUN "
                          "--out DIR) and name DIR, or leave task.features unset to train one") from None
    channels = config["model"].get("in_channels")
    if channels != data.channels:   # checked here: normalising would silently broadcast 1 channel to 3
        h, w = data.image_size
        raise ConfigError(f"the MedFID feature network does not take this data's {data.channels}x{h}x{w} images "
                          f"(it was trained on {channels}-channel images)", key="task.features", got=str(path),
                          fix="use a classifier trained on this data (or leave task.features unset to train one)")
    if config["model"]["architecture"] == "ensemble":
        raise ConfigError("an ensemble has no single feature space", key="task.features", got=str(path),
                          fix="export one trial (searchlab export RUN --trial N)")
    return PenultimateFeatures(net, config["preprocessing"])


def _is_generator(path: Path) -> bool:
    try:
        return "generator" in json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False


def _check_fits(net: PenultimateFeatures, data: ImageDataset, features: str | None) -> None:
    shape = (1, data.channels, *data.image_size)
    try:
        net(torch.zeros(shape))
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"the MedFID feature network does not take this data's {data.channels}x"
                          f"{data.image_size[0]}x{data.image_size[1]} images ({first})", key="task.features",
                          got=features, fix="use a classifier trained on this data (or leave task.features "
                          "unset to train one)") from None


def _fingerprint(data: ImageDataset, seed: int) -> str:
    digest = hashlib.sha256()
    for split in ("train", "val"):
        digest.update(data.splits[split].images.numpy().tobytes())
        digest.update(data.splits[split].labels.numpy().tobytes())
    digest.update(f"{seed}:{EXTRACTOR_MODEL}:{EXTRACTOR_EPOCHS}".encode())
    return digest.hexdigest()[:16]


def _cached_or_trained(folder: Path, data: ImageDataset, seed: int) -> PenultimateFeatures:
    fingerprint = _fingerprint(data, seed)
    config_path = folder / "config.json"
    cached = _cached(folder, fingerprint)
    if cached is not None:
        return cached
    net, config = _train_extractor(data, seed)
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(net.state_dict(), folder / "weights.safetensors")
    config_path.write_text(json.dumps({**config, "fingerprint": fingerprint}, indent=2) + "\n")
    return PenultimateFeatures(net, config["preprocessing"])


def _cached(folder: Path, fingerprint: str) -> PenultimateFeatures | None:
    """The network cached for these images, or None: none, another's, or damaged (a disk filled up while it was
    written, a copy cut short), which is trained again instead of failing every later run."""
    try:
        if json.loads((folder / "config.json").read_text()).get("fingerprint") != fingerprint:
            return None
        net, config = load(folder)
        return PenultimateFeatures(net, config["preprocessing"])
    except FileNotFoundError:
        return None
    except UNLOADABLE as exc:
        print(f"warning: the cached MedFID feature network: {unloadable(folder, exc)}; training it again",
              file=sys.stderr)
        return None


def trained_feature_count(data: ImageDataset) -> int:
    """The features of the network _train_extractor trains, known before training it (from its shape)."""
    from searchlab.tasks.classify import model_spec_for, parse_trial_config

    spec = parse_trial_config({"model": EXTRACTOR_MODEL}, None)
    return PenultimateFeatures(build_model(model_spec_for(spec, data)), {}).num_features


def _train_extractor(data: ImageDataset, seed: int) -> tuple[nn.Module, dict[str, Any]]:
    """The classify task's own training loop on train (best epoch by validation AUC)."""
    from searchlab.tasks.classify import make_batches, model_spec_for, parse_trial_config
    from searchlab.tasks.train import make_recipe, train

    spec = parse_trial_config({"model": EXTRACTOR_MODEL, "train": {"early_stopping": 10}}, None)
    batches = make_batches(data)
    model_spec = model_spec_for(spec, data)
    torch.manual_seed(seed)
    net = build_model(model_spec)
    recipe = make_recipe(batches, spec.augment, spec.imbalance, spec.train)
    select = ("auc", "maximize") if data.kind == "binary" else ("accuracy", "maximize")
    result = train(net, batches, recipe, spec.optim, spec.train, EXTRACTOR_EPOCHS, seed, select,
                   on_epoch=lambda _e, _m: None)
    net.load_state_dict(result.state)
    config = {"format": "searchlab-medfid-features/1", "model": model_spec, "preprocessing": batches.preprocessing,
              "task": data.kind, "validation_metrics": result.metrics, "best_epoch": result.best_epoch}
    return net.eval(), config
