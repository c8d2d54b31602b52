"""The MedFID feature network: a classifier of the same medical images, read at its last layer's input.

Either a searchlab export for the same data (`task.features: path/to/export`), or, by default, a plain CNN
trained for the purpose on the study's train split (validation split for its best epoch), cached in
`<run_dir>/medfid_features/` as an export-like folder (config.json + weights.safetensors) and reused by every
trial and every resume. Its input is images in [0, 1], normalised with the classifier's own training statistics.

The network is part of what a score means (seed 0's network puts real-vs-real MedFID at 0.108, seed 1's at
0.179 on BreastMNIST): its `digest` (of weights and preprocessing) is recorded per trial, and a run keeps the
network its first trials were scored with. The cache is keyed by the data and the recipe, not by the study
seed, so resuming with another `seed` reuses it instead of training (and overwriting) another one.
"""
from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
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

    def __init__(self, net: nn.Module, preprocessing: dict[str, Any], class_order: list[int] | None = None) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.preprocessing = preprocessing
        # the head's output index of each data class (an export may order them otherwise); None: no usable head
        self.class_order = class_order
        self.digest = network_digest(net, preprocessing)
        self.trained_seed: int | None = None   # the seed the run folder's own network was trained with
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

    @torch.no_grad()
    def classify(self, images01: torch.Tensor) -> torch.Tensor | None:
        """The classifier head's class (the data's index) of each image, or None when the head is not usable."""
        if self.class_order is None:
            return None
        logits = torch.cat([self.net(normalize(images01[i:i + 256].float(), self.preprocessing))
                            for i in range(0, len(images01), 256)])
        return logits[:, self.class_order].argmax(dim=1)


def network_digest(net: nn.Module, preprocessing: dict[str, Any]) -> str:
    """What identifies a feature space: the weights (names, shapes, values) and the input normalisation."""
    digest = hashlib.sha256(json.dumps(preprocessing, sort_keys=True).encode())
    for name, tensor in sorted(net.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def feature_network(features: str | None, base_dir: Path, run_dir: Path, data: ImageDataset, seed: int,
                    accept: Callable[[PenultimateFeatures], None] | None = None) -> PenultimateFeatures:
    """The study's MedFID feature network, checked against the data's image shape. `accept` checks a network
    trained here before it is cached (raising to refuse it): a refused one must not replace the cache."""
    if features is not None:
        net, class_names = _from_export((base_dir / features).resolve(), data)
    else:
        net, class_names = _cached_or_trained(run_dir / CACHE_DIR, data, seed, accept), list(data.class_names)
    outputs = _check_fits(net, data, features)
    net.class_order = _class_order(class_names, list(data.class_names), outputs)
    return net


def _class_order(head_names: list[str] | None, data_names: list[str], outputs: int) -> list[int] | None:
    """Each data class's output index in the head, when the head has one output per class of the data."""
    if not head_names or outputs != len(head_names) or sorted(head_names) != sorted(data_names):
        return None   # label_agreement is then not measured (a multi-label export, a head of other classes)
    return [head_names.index(name) for name in data_names]


def _from_export(path: Path, data: ImageDataset) -> tuple[PenultimateFeatures, list[str] | None]:
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
    names = config.get("class_names") if config.get("task") in ("binary", "multiclass") else None
    return PenultimateFeatures(net, config["preprocessing"]), names


def _is_generator(path: Path) -> bool:
    try:
        return "generator" in json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False


def _check_fits(net: PenultimateFeatures, data: ImageDataset, features: str | None) -> int:
    """The head's outputs per image, once the network took the data's images."""
    shape = (1, data.channels, *data.image_size)
    try:
        net(torch.zeros(shape))
        return int(net.net(torch.zeros(shape)).flatten(1).shape[1])
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"the MedFID feature network does not take this data's {data.channels}x"
                          f"{data.image_size[0]}x{data.image_size[1]} images ({first})", key="task.features",
                          got=features, fix="use a classifier trained on this data (or leave task.features "
                          "unset to train one)") from None


def _fingerprint(data: ImageDataset, seed: int | None = None) -> str:
    """The images and the recipe the cached network was trained from. Not the study seed: a resume with another
    seed retrained it, and its later trials were scored in another feature space than the earlier ones (a seed
    is given only to recognise a cache written when the seed was part of the key: that run's network is kept)."""
    digest = hashlib.sha256()
    for split in ("train", "val"):
        digest.update(data.splits[split].images.numpy().tobytes())
        digest.update(data.splits[split].labels.numpy().tobytes())
    digest.update(("" if seed is None else f"{seed}:").encode() + f"{EXTRACTOR_MODEL}:{EXTRACTOR_EPOCHS}".encode())
    return digest.hexdigest()[:16]


def _cached_or_trained(folder: Path, data: ImageDataset, seed: int,
                       accept: Callable[[PenultimateFeatures], None] | None = None) -> PenultimateFeatures:
    fingerprint = _fingerprint(data)
    config_path = folder / "config.json"
    cached = _cached(folder, (fingerprint, _fingerprint(data, seed)), seed)
    if cached is not None:
        return cached
    net, config = _train_extractor(data, seed)
    features = PenultimateFeatures(net, config["preprocessing"])
    features.trained_seed = seed
    if accept is not None:
        # checked before writing: a network the run refuses (its trials were scored with another) once replaced
        # the cache, so a resume with the original seed found the refused one there and was refused as well
        accept(features)
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(net.state_dict(), folder / "weights.safetensors")
    config_path.write_text(json.dumps({**config, "fingerprint": fingerprint, "seed": seed}, indent=2) + "\n")
    return features


def _cached(folder: Path, fingerprints: tuple[str, ...], seed: int) -> PenultimateFeatures | None:
    """The network cached for these images, or None: none, another's, or damaged (a disk filled up while it was
    written, a copy cut short), which is trained again instead of failing every later run."""
    try:
        stored = json.loads((folder / "config.json").read_text())
        if stored.get("fingerprint") not in fingerprints:
            return None
        net, config = load(folder)
        features = PenultimateFeatures(net, config["preprocessing"])
        features.trained_seed = stored.get("seed", seed)   # a note at the run's start says when it is not `seed`
        return features
    except FileNotFoundError:
        return None
    except UNLOADABLE as exc:
        print(f"warning: the cached MedFID feature network: {unloadable(folder, exc)}; training it again",
              file=sys.stderr)
        return None


def kept_network_note(features: PenultimateFeatures, run_dir: Path, seed: int, earlier_trials: bool) -> str | None:
    """What a run whose cached network was trained with another seed says once, at its start (GenerateTask.prepare,
    not where the network is opened: each worker process opens it too, which printed the note once per process).
    A new run folder given a copied medfid_features/ has no earlier trials to speak of."""
    if features.trained_seed is None or features.trained_seed == seed:
        return None
    if earlier_trials:
        return (f"MedFID keeps this run's feature network (trained with seed {features.trained_seed}), so trials "
                f"of seed {seed} are scored in the same feature space as the run's earlier ones")
    return (f"MedFID uses the feature network already in {run_dir / CACHE_DIR} (trained with seed "
            f"{features.trained_seed}) instead of training one with seed {seed}, so this run's trials are scored in "
            "that network's feature space, as are those of any run it was copied from")


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
              "task": data.kind, "class_names": list(data.class_names),   # the head's order, read as an export's
              "validation_metrics": result.metrics, "best_epoch": result.best_epoch}
    return net.eval(), config
