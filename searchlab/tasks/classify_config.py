"""The typed config of one classify trial: what a sampled space must turn into.

Each default is written once, here, with why. A space only needs to name what it searches or fixes.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from searchlab.augment import AugmentSpec
from searchlab.config.schema import Frozen
from searchlab.imbalance import ImbalanceSpec
from searchlab.tasks.arch_config import CellNetSpec, NNISpec, ZenNetSpec
from searchlab.suggest import did_you_mean
from searchlab.tasks.transfer_config import TransferFields


class PlainCNNSpec(TransferFields):
    kind: Literal["cnn"] = "cnn"
    depth: Annotated[int, Field(ge=1, le=8)] = 3           # stages; 3 takes 28x28 down to 7x7
    width: Annotated[int, Field(ge=4, le=512)] = 32        # channels of the first stage, doubled per stage
    kernel: Literal[3, 5, 7] = 3
    convs_per_stage: Annotated[int, Field(ge=1, le=4)] = 2  # VGG-style pairs, as in the MedMNIST baselines
    norm: Literal["batch", "group", "none"] = "batch"
    activation: Literal["relu", "gelu", "silu", "leaky_relu"] = "relu"
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    input_scale: Annotated[int, Field(ge=1, le=4)] = 1     # bilinear upsampling inside the net (2: 28 -> 56 px)

    def architecture(self) -> tuple[str, dict[str, object]]:
        return "plain_cnn", self.architecture_args()


class TimmSpec(TransferFields):
    kind: Literal["timm"]
    backbone: str                                             # any timm model name (timm.list_models())
    input_size: Annotated[int, Field(ge=16, le=1024)] | None = None   # resize inside the model; None keeps 28x28
    drop_rate: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    hub_weights: ClassVar[bool] = True

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, name: str) -> str:
        known = _timm_models()
        if name not in known:
            # A family name (mobilenetv3, convnext) names no model: its members share it as a prefix
            family = [m for m in known if m.startswith(f"{name}_")][:6]
            hint = (f"it names a family; its models include {', '.join(family)}" if family else
                    did_you_mean(name, known, n=5) or "see timm.list_models()")
            raise ValueError(f"unknown timm model '{name}'; {hint}")
        return name

    def architecture(self) -> tuple[str, dict[str, object]]:
        return "timm", self.architecture_args()


class RowRNNSpec(TransferFields):
    """Rows of the image as a sequence (searchlab/models/row_rnn.py): a cheap non-convolutional baseline."""

    kind: Literal["rnn"]
    cell: Literal["gru", "lstm"] = "gru"                     # GRU: fewer parameters, trains as well on short sequences
    hidden: Annotated[int, Field(ge=4, le=1024)] = 64          # state size; small sets overfit large states
    layers: Annotated[int, Field(ge=1, le=4)] = 1              # stacked recurrent layers (transfer blocks)
    bidirectional: bool = False                                # also read bottom-up; doubles the features
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0     # before the head, and between stacked layers
    input_size: Annotated[int, Field(ge=4, le=256)] = 28       # rows resized to this; 28 = MedMNIST's native size

    def architecture(self) -> tuple[str, dict[str, object]]:
        return "row_rnn", self.architecture_args()


@lru_cache(maxsize=1)
def _timm_models() -> list[str]:
    import timm  # heavy; only when a study names a timm backbone

    return timm.list_models()


class OptimSpec(Frozen):
    name: Literal["adamw", "adam", "sgd"] = "adamw"          # AdamW: robust default for small CNNs
    lr: Annotated[float, Field(gt=0, le=10)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0, le=1)] = 1e-4
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9      # sgd only
    schedule: Literal["cosine", "constant", "step"] = "cosine"


class TrainSpec(Frozen):
    # at least 2: batch norm cannot train on one image, so a batch of one is skipped (a batch_size of 1 trained
    # nothing, and the trial completed on an untrained net)
    batch_size: Annotated[int, Field(ge=2, le=4096)] = 64
    epochs: Annotated[int, Field(ge=1)] | None = None        # None: the study's budget.epochs
    label_smoothing: Annotated[float, Field(ge=0, lt=0.5)] = 0.0
    early_stopping: Annotated[int, Field(ge=1)] | None = 8    # patience in epochs on the validation objective
    # Which weights a training keeps: "best", the epoch best on its validation data (stopping early on the
    # patience above); or "last", every epoch of the cosine schedule run and the final weights kept -- the
    # validation data then only measures the model, so under cv_model: bag its out-of-fold predictions are
    # not flattered by having chosen the epoch on the same images.
    checkpoint: Literal["best", "last"] = "best"
    # Select on the mean of K stratified folds over train+val (searchlab/tasks/crossval.py) instead of the
    # one validation split: on small sets (BreastMNIST val: 78 images) picking the best of many trials on a
    # single split overfits it. None: train once on train, select on val (K trainings cost K times more).
    cv_folds: Annotated[int, Field(ge=2, le=10)] | None = None
    # Train each config this many times and select on the mean: with cv_folds, repeated K-fold (repeat r
    # splits train+val with fold seed study seed + r, the same for every trial); without, r trainings on
    # the train split from seeds trial seed + r, all validated on val. Init and batch-order luck on a few
    # hundred images moves validation AUC by several points; the mean of R is what a config is worth.
    repeats: Annotated[int, Field(ge=1, le=10)] = 1
    # The trial's model under cv_folds (searchlab/tasks/bagging.py): "refit" trains one more model on the
    # official training split (the val split then only sets the threshold); "bag" keeps the K fold models
    # and averages them, with the threshold chosen on their out-of-fold predictions (no extra training).
    cv_model: Literal["refit", "bag"] = "refit"
    # Patch curriculum: the first `patch_epochs` fraction of the epochs trains on one random square patch
    # per image (side `patch_size` x the image side, resized back to the full size), the rest on whole images
    # (local texture first, then context, as lesion-patch pretraining does for mammograms). 0 = off.
    patch_epochs: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    patch_size: Annotated[float, Field(ge=0.2, le=0.95)] = 0.5   # below ~0.2 a 28 px patch is 5 px: noise
    # Training speed (searchlab/tasks/speed.py). "bf16": the network's training forward under bfloat16
    # autocast (weights, optimiser and loss stay float32; validation and exports run in float32). CPUs with
    # AVX-512 BF16 and recent GPUs run it ~1.7x faster; elsewhere it is emulated and slower, so "auto" picks
    # bf16 only where the hardware has it. channels_last: NHWC memory for conv nets, the layout oneDNN and
    # cuDNN convolve fastest; the same numbers up to rounding.
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    channels_last: bool = False

    @model_validator(mode="after")
    def _bag_needs_folds(self) -> "TrainSpec":
        if self.cv_model == "bag" and self.cv_folds is None:
            raise ValueError("cv_model 'bag' keeps the models of the cross-validation folds, so it needs "
                             "cv_folds. Fix: add cv_folds: 5, or cv_model: refit")
        return self


class ClassifyTrialConfig(Frozen):
    model: Annotated[PlainCNNSpec | TimmSpec | RowRNNSpec | ZenNetSpec | CellNetSpec | NNISpec,
                     Field(discriminator="kind")] = PlainCNNSpec()
    optim: OptimSpec = OptimSpec()
    train: TrainSpec = TrainSpec()
    augment: AugmentSpec = AugmentSpec()          # searchlab/augment/spec.py
    imbalance: ImbalanceSpec = ImbalanceSpec()    # searchlab/imbalance.py
