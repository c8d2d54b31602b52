"""The typed config of one classify trial: what a sampled space must turn into.

Each default is written once, here, with why. A space only needs to name what it searches or fixes.
"""
from __future__ import annotations

import difflib
from functools import lru_cache
from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from searchlab.augment import AugmentSpec
from searchlab.config.schema import Frozen
from searchlab.imbalance import ImbalanceSpec


class TransferFields(Frozen):
    """Where initial weights come from and how much of the network trains (searchlab/tasks/transfer.py)."""

    # None: random init. "timm": timm's pretrained weights (downloaded; online only). Otherwise a path,
    # relative to the study file: a weights file (.safetensors, or .pt/.pth loaded with weights_only=True),
    # a searchlab export folder, or a searchlab run folder (its best trial) for in-domain transfer.
    weights: str | None = None
    # scratch: ignore `weights`; features: frozen backbone, only the new head trains (on cached features);
    # cutoff: the first `cutoff` blocks frozen, the rest fine-tuned; full: everything fine-tuned, with
    # layer-wise lr decay. Small medical sets: features/cutoff overfit less, full adapts more.
    transfer: Literal["scratch", "features", "cutoff", "full"] = "scratch"
    cutoff: Annotated[int, Field(ge=1, le=64)] = 1          # blocks frozen by "cutoff", counted from the input
    layer_decay: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0   # "full": lr x decay^(blocks above); 1 = flat

    hub_weights: ClassVar[bool] = False   # only timm backbones have published weights to fetch

    @model_validator(mode="after")
    def _weights_for_transfer(self) -> "TransferFields":
        if self.transfer != "scratch" and self.weights is None:
            raise ValueError(f"transfer '{self.transfer}' needs weights (a file, an export, a run, or 'timm')")
        if self.weights == "timm" and not self.hub_weights:
            raise ValueError("weights 'timm' is for timm backbones; this model takes a file, an export or a run")
        return self

    def architecture_args(self) -> dict[str, object]:
        """The model's constructor arguments: everything but the kind and how it was initialised."""
        return self.model_dump(exclude={"kind", *TransferFields.model_fields})


class PlainCNNSpec(TransferFields):
    kind: Literal["cnn"] = "cnn"
    depth: Annotated[int, Field(ge=1, le=8)] = 3           # stages; 3 takes 28x28 down to 7x7
    width: Annotated[int, Field(ge=4, le=512)] = 32        # channels of the first stage, doubled per stage
    kernel: Literal[3, 5, 7] = 3
    convs_per_stage: Annotated[int, Field(ge=1, le=4)] = 2  # VGG-style pairs, as in the MedMNIST baselines
    norm: Literal["batch", "group", "none"] = "batch"
    activation: Literal["relu", "gelu", "silu", "leaky_relu"] = "relu"
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0

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
            close = difflib.get_close_matches(name, known, n=5)
            hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models()"
            raise ValueError(f"unknown timm model '{name}'; {hint}")
        return name

    def architecture(self) -> tuple[str, dict[str, object]]:
        return "timm", self.architecture_args()


class RowRNNSpec(TransferFields):
    """Rows of the image as a sequence (searchlab/models/standalone.py RowRNN): a cheap non-convolutional baseline."""

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
    batch_size: Annotated[int, Field(ge=1, le=4096)] = 64
    epochs: Annotated[int, Field(ge=1)] | None = None        # None: the study's budget.epochs
    label_smoothing: Annotated[float, Field(ge=0, lt=0.5)] = 0.0
    early_stopping: Annotated[int, Field(ge=1)] | None = 8    # patience in epochs on the validation objective
    # Select on the mean of K stratified folds over train+val (searchlab/tasks/crossval.py) instead of the
    # one validation split: on small sets (BreastMNIST val: 78 images) picking the best of many trials on a
    # single split overfits it. None: train once on train, select on val (K trainings cost K times more).
    cv_folds: Annotated[int, Field(ge=2, le=10)] | None = None


class ClassifyTrialConfig(Frozen):
    model: Annotated[PlainCNNSpec | TimmSpec | RowRNNSpec, Field(discriminator="kind")] = PlainCNNSpec()
    optim: OptimSpec = OptimSpec()
    train: TrainSpec = TrainSpec()
    augment: AugmentSpec = AugmentSpec()          # searchlab/augment/spec.py
    imbalance: ImbalanceSpec = ImbalanceSpec()    # searchlab/imbalance.py
