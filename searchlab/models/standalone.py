"""Model definitions that need only torch (and timm for timm backbones).

This file opens every classifier export's `model.py` (then the searched architectures' code, see
searchlab/models/__init__.py), so searchlab trains and users load the very same code. Its one searchlab import,
safetensors_reading.py, is replaced by that file's body in model.py: keep it free of others. Usage of an export:

    import model                                   # this file, next to config.json
    net, config = model.load("best/")              # weights.safetensors + config.json
    probs = model.predict_proba(net, config, images_uint8_NCHW)
    images_uint8_NCHW = model.load_images(["a.png", "b.png"], config)   # image files, as training read them
    model.save(net, config, "tuned/")              # fine-tuned weights as a folder load() and `searchlab predict` take
"""
from __future__ import annotations

import datetime  # noqa: F401  (used by fine_tuning.py's body, appended to a classifier export's model.py)
import hashlib  # noqa: F401  (hashlib, json, struct, warnings: used by the safetensors_reading.py body and others)
import json  # noqa: F401
import math  # noqa: F401  (used by the architecture bodies appended to an export's model.py)
import os  # noqa: F401  (used by the image_files.py and whole_folder.py bodies of a classifier export's model.py)
import struct  # noqa: F401
import time  # noqa: F401  (used by the whole_folder.py body of a classifier export's model.py)
import warnings  # noqa: F401
from pathlib import Path
from typing import Any

import torch
from torch import nn

from searchlab.models.safetensors_reading import (CLASSIFIER_NOT_ITS, _DTYPES, _NOT_DESCRIBED,  # noqa: F401
                                                  WeightsNotDescribed, export_config, not_described_message,
                                                  read_safetensors)


# ------------------------------------------------------------------ architectures
def _activation(name: str) -> nn.Module:
    table = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "leaky_relu": nn.LeakyReLU}
    return table[name]()


def _norm(name: str, channels: int) -> nn.Module:
    if name == "batch":
        return nn.BatchNorm2d(channels)
    if name == "group":
        return nn.GroupNorm(min(8, channels), channels)
    return nn.Identity()


class PlainCNN(nn.Module):
    """Stages of (conv, norm, activation) x convs_per_stage, halving resolution and doubling width."""

    def __init__(self, in_channels: int, num_outputs: int, depth: int = 3, width: int = 32, kernel: int = 3,
                 convs_per_stage: int = 2, norm: str = "batch", activation: str = "relu",
                 dropout: float = 0.0, max_width: int = 512, input_scale: int = 1) -> None:
        super().__init__()
        self.input_scale = input_scale
        layers: list[nn.Module] = []
        channels = in_channels
        self.stage_starts: list[int] = []   # index into `features` where each stage begins (transfer blocks)
        for stage in range(depth):
            out = min(width * 2 ** stage, max_width)
            self.stage_starts.append(len(layers))
            for _ in range(convs_per_stage):
                layers += [nn.Conv2d(channels, out, kernel, padding=kernel // 2, bias=norm == "none"),
                           _norm(norm, out), _activation(activation)]
                channels = out
            if stage < depth - 1:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(channels, num_outputs))

    head_prefix = "head."   # parameters re-initialised when transferring to a new task

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(self._scaled(x)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features before the classifier: forward(x) == classify(embed(x))."""
        return self.head[1](self.head[0](self.features(self._scaled(x))))

    def _scaled(self, x: torch.Tensor) -> torch.Tensor:
        """Bilinear upsampling by input_scale: at 28 px the first stages see few positions; at 2x, one more stage
        ends at the same 7x7 (on BreastMNIST +0.006 out-of-fold AUC for 1.8x the time, bench/recipe_cv.py)."""
        if self.input_scale == 1:
            return x
        return nn.functional.interpolate(x, scale_factor=self.input_scale, mode="bilinear", align_corners=False)

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        return self.head[3](self.head[2](z))

    def parameter_blocks(self) -> list[list[tuple[str, nn.Parameter]]]:
        """(name, parameter) per stage, input side first, head excluded: the unit of cut-off freezing."""
        ends = self.stage_starts[1:] + [len(self.features)]
        return [[(f"features.{i}.{n}", p) for i in range(start, end) for n, p in self.features[i].named_parameters()]
                for start, end in zip(self.stage_starts, ends)]


# A config.json can only ever name one of these: no imports by name. The other architectures (timm, row_rnn,
# zen, cells) are added by searchlab/models/__init__.py, and in an export's model.py by the bodies it holds.
ARCHITECTURES: dict[str, type[nn.Module]] = {"plain_cnn": PlainCNN}


def build_model(spec: dict[str, Any]) -> nn.Module:
    """spec = {"architecture": a name in ARCHITECTURES, "args": {...}, "in_channels": C, "num_outputs": K}."""
    arch = spec["architecture"]
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; this model.py knows {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch](int(spec["in_channels"]), int(spec["num_outputs"]), **spec["args"])


# ------------------------------------------------------------------ ensembles of exported trials
class Ensemble(nn.Module):
    """Several trained members whose probabilities are averaged (weights: `members.<i>.*`).

    forward takes float images in [0, 1], *not* normalised, and returns probabilities (as `probabilities()`
    gives them), not logits: each member normalises with its own training statistics, then its probabilities
    are averaged over members.
    """

    def __init__(self, members: list[nn.Module], preprocessing: list[dict[str, Any]], kind: str) -> None:
        super().__init__()
        if not members or len(members) != len(preprocessing):
            raise ValueError(f"an ensemble needs one preprocessing per member; got {len(members)} members and "
                             f"{len(preprocessing)} preprocessings")
        self.members = nn.ModuleList(members)
        self.preprocessing = [dict(p) for p in preprocessing]
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = [probabilities(member(normalize(x, prep)), self.kind)
                 for member, prep in zip(self.members, self.preprocessing)]
        return torch.stack(probs).mean(dim=0)


def build_export_model(config: dict[str, Any]) -> nn.Module:
    """The network a config.json describes: an "ensemble" of members (config["preprocessing"] is then one entry
    per member), otherwise the single architecture of build_model."""
    spec = config["model"]
    if spec["architecture"] != "ensemble":
        return build_model(spec)
    return Ensemble([build_model(member) for member in spec["members"]], config["preprocessing"], config["task"])


# ------------------------------------------------------------------ inputs and outputs
TTA_MODES = ("none", "flip", "dihedral")


def tta_views(x: torch.Tensor, mode: str) -> list[torch.Tensor]:
    """Test-time augmentation views of (N, C, H, W): none [x]; flip [x, horizontal flip]; dihedral the 8
    symmetries of the square (rotations by 0/90/180/270 degrees, each with and without the flip)."""
    if mode == "none":
        return [x]
    if mode == "flip":
        return [x, x.flip(-1)]
    if mode == "dihedral":
        if x.shape[-2] != x.shape[-1]:
            raise ValueError(f"tta 'dihedral' rotates by 90 degrees, which needs square images; got "
                             f"{x.shape[-2]}x{x.shape[-1]}. Fix: use tta 'flip' (or 'none') for these images")
        rotations = [torch.rot90(x, k, dims=(-2, -1)) for k in range(4)]
        return rotations + [r.flip(-1) for r in rotations]
    raise ValueError(f"unknown tta {mode!r}; this model.py knows {TTA_MODES}")


def preprocess(images: torch.Tensor, prep: dict[str, Any]) -> torch.Tensor:
    """uint8 (N, C, H, W) -> normalised float32, with the training split's per-channel mean and std."""
    return normalize(images.to(torch.float32) / 255.0, prep)


def normalize(x: torch.Tensor, prep: dict[str, Any]) -> torch.Tensor:
    """float32 images in [0, 1] -> zero mean, unit variance per channel (training-split statistics)."""
    mean = torch.tensor(prep["mean"], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(prep["std"], dtype=torch.float32).view(1, -1, 1, 1)
    return (x - mean) / std


def probabilities(logits: torch.Tensor, kind: str) -> torch.Tensor:
    """binary: P(class 1) as (N,); multiclass: softmax (N, K); multilabel: sigmoid (N, L)."""
    if kind == "multilabel":
        return torch.sigmoid(logits)
    probs = torch.softmax(logits, dim=1)
    return probs[:, 1] if kind == "binary" else probs


@torch.no_grad()
def predict_proba(net: nn.Module, config: dict[str, Any], images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Probabilities for uint8 images (N, C, H, W), averaged over the views of config["tta"] ("none" if absent):
    (N,) of class_names[1] for a binary task, else (N, classes). The network is scored in eval mode and left
    in the mode it was in, so a training loop may call this between steps."""
    _check_arguments(net, config, images)
    _check_images(images, config.get("input"))
    if images.shape[0] == 0:
        return torch.empty((0,) if config["task"] == "binary" else (0, len(config["class_names"])))
    was_training = net.training
    net.eval()
    try:
        chunks = [_batch_probabilities(net, config, images[i:i + batch_size])
                  for i in range(0, images.shape[0], batch_size)]
    finally:
        net.train(was_training)
    return torch.cat(chunks)


def _batch_probabilities(net: nn.Module, config: dict[str, Any], images: torch.Tensor) -> torch.Tensor:
    x = images.to(torch.float32) / 255.0
    probs = [_probabilities01(net, config, view) for view in tta_views(x, config.get("tta", "none"))]
    return probs[0] if len(probs) == 1 else torch.stack(probs).mean(dim=0)


def _check_arguments(net: Any, config: Any, images: Any) -> None:
    """A TypeError naming the order when the arguments are not (network, config dict, ...): swapped, they failed
    with an AttributeError from deep inside (a tensor has no .get)."""
    if not isinstance(net, nn.Module) or not isinstance(config, dict):
        got = ", ".join(type(value).__name__ for value in (net, config, images))
        raise TypeError(f"predict and predict_proba take (net, config, images), got ({got}). Fix: pass the network "
                        "and config that `net, config = load(folder)` gave, then the uint8 images")


def _check_images(images: torch.Tensor, spec: dict[str, Any] | None) -> None:
    """Images as the model was trained on them, or a ValueError: float images in [0, 1] would be divided by
    255 again and scored as near-black, and another size would be scored without complaint."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor, got {type(images).__module__}.{type(images).__name__}; "
                        "for a numpy array pass torch.from_numpy(array), or read files with load_images")
    if images.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 (0-255) as read from files, got {images.dtype}; "
                         f"{_uint8_fix(images, spec)}")
    if spec and tuple(images.shape[1:]) != (spec["channels"], spec["height"], spec["width"]):
        raise ValueError(f"images must be N x {spec['channels']} x {spec['height']} x {spec['width']} as in "
                         f"training (config['input']), got {' x '.join(map(str, images.shape))}; load_images(files, "
                         "config) reads and resizes files as training did")


def _uint8_fix(images: torch.Tensor, spec: dict[str, Any] | None) -> str:
    """How these values become the uint8 images training read, by their range: (x * 255) of values already in
    0-255 wraps around in uint8, and the corrupted images are scored without complaint."""
    files = "or read the files with load_images(files, config), which decodes them as training did"
    if images.numel() == 0 or images.dtype == torch.bool or images.is_complex():
        return f"convert them to 0-255 uint8 ({files})"
    values = images.detach().to(torch.float64)
    if not torch.isfinite(values).all():
        return "these hold NaN or infinite values, which no image file does: read the files with load_images"
    lo, hi = float(values.min()), float(values.max())
    if lo < 0:
        return (f"values from {lo:g} to {hi:g} are not 0-255 intensities (normalised images?): pass the images "
                f"before normalisation, as predict_proba normalises them with config['preprocessing'] itself, {files}")
    if images.is_floating_point() and hi <= 1:
        return f"these values are in [0, 1]: pass (x * 255).round().to(torch.uint8), {files}"
    if hi <= 255:
        rounded = "x.round().to(torch.uint8)" if images.is_floating_point() else "x.to(torch.uint8)"
        return f"these values are already 0-255: pass {rounded} (not x * 255, which wraps around), {files}"
    return _deep_fix(hi, (spec or {}).get("bit_depth"), files)


def _deep_fix(hi: float, bit_depth: int | None, files: str) -> str:
    """Values above 255: scaled to 8 bits as _to_8bit scales this export's files (bit_depth, else 16 bits)."""
    said = f"values up to {hi:g} look like data of more than 8 bits"
    if bit_depth:
        return (f"{said}; this export reads {bit_depth}-bit files scaled to 0-255 (config['input']['bit_depth']): "
                f"pass (x.double() / {2 ** bit_depth - 1} * 255).round().clamp(0, 255).to(torch.uint8), {files}")
    if hi > 65535:   # files beyond 16 bits were read by each image's own range, which a tensor formula cannot say
        return (f"{said} (beyond 16 bits), which this export scales by each image's own range: read the files "
                "with load_images(files, config)")
    return (f"{said}; this export (no bit_depth in config['input']) reads 16-bit files as value / 65535 * 255: "
            f"pass (x.double() / 65535 * 255).round().to(torch.uint8), {files}")


def _probabilities01(net: nn.Module, config: dict[str, Any], x: torch.Tensor) -> torch.Tensor:
    """Probabilities of float images in [0, 1]: an Ensemble normalises per member, one model with the config's."""
    if isinstance(net, Ensemble):
        return net(x)
    return probabilities(net(normalize(x, config["preprocessing"])), config["task"])


def predict(net: nn.Module, config: dict[str, Any], images: torch.Tensor) -> torch.Tensor:
    """Hard labels with the export's decision threshold(s): class index (N,), or 0/1 (N, L) for multi-label."""
    return labels_of(predict_proba(net, config, images), config)


def labels_of(probs: torch.Tensor, config: dict[str, Any]) -> torch.Tensor:
    """Hard labels of probabilities `predict_proba` gave (labels beside probabilities without a second pass)."""
    if config["task"] == "multiclass":
        return probs.argmax(dim=1)
    # compared in float64, as the export's test metrics were: a float32 threshold may round onto a probability
    threshold = torch.as_tensor(config["threshold"], dtype=torch.float64)
    return (probs.double() >= threshold).to(torch.int64)


# ------------------------------------------------------------------ loading an export
_LOADED_FROM: dict[str, Path] = {}   # where load() read weights (by sha256): save() copies its trained_on.json


def load(export_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the exported model from config.json and weights.safetensors; returns (model in eval mode, config)."""
    export_dir = Path(export_dir)
    config = export_config(export_dir)
    _check_same_model_py(export_dir, "model" not in config)   # first: a classifier's model.py has no load_generator
    if "model" not in config and "generator" in config:
        raise ValueError(f"{export_dir} is a generator export: load it with model.load_generator(dir) and "
                         "sample with model.sample_images")
    net = build_export_model(config)
    weights = export_dir / "weights.safetensors"
    _NOT_DESCRIBED.discard(weights.resolve())
    net.load_state_dict(read_safetensors(weights, config.get("weights_sha256")))
    if weights.resolve() not in _NOT_DESCRIBED:   # save() copies what this folder's (described) weights learned
        _LOADED_FROM[str(config.get("weights_sha256"))] = export_dir.resolve()
    return net.eval(), config


def _check_same_model_py(export_dir: Path, generator: bool = False) -> None:
    """A ValueError when the export's model.py holds other code than this one: Python imports a module named
    `model` once, so `import model` for a second export gives the first's, which may lack its architecture
    (an NNI model) or build another searchlab version's network from its config.json without a word."""
    here, theirs = globals().get("__file__"), export_dir / "model.py"
    if __name__ == "searchlab.models.standalone" or here is None or not theirs.is_file():
        return   # searchlab's own copy knows every architecture; no model.py there: nothing to differ from
    if Path(here).resolve() == theirs.resolve() or Path(here).read_bytes() == theirs.read_bytes():
        return
    raise ValueError(f"{theirs} is not the model.py this code was imported from ({here}) and its code differs "
                     "(Python imports a module named 'model' once: `import model` for a second export gave the "
                     f"first one's). Fix: load each export with its own module: "
                     + "; ".join(own_module(export_dir, generator)))


def own_module(export_dir: str | Path, generator: bool = False, name: str = "model_2") -> tuple[str, str]:
    """Two lines of Python that import an export's model.py under a module name of its own and load the export."""
    model_py, loaded = str(Path(export_dir) / "model.py"), ("G, config = m.load_generator" if generator else
                                                            "net, config = m.load") + f"({str(export_dir)!r})"
    return (f"import importlib.util; spec = importlib.util.spec_from_file_location({name!r}, {model_py!r})",
            f"m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); {loaded}")
