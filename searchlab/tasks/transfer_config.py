"""Where a model's initial weights come from and how much of it trains: fields every model kind shares."""
from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from searchlab.config.schema import Frozen


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

    @field_validator("weights", mode="before")
    @classmethod
    def _none_means_none(cls, value: object) -> object:
        """`weights: none` (as `policy: none` is written) means no weights, not a file named none."""
        return None if isinstance(value, str) and value.strip().lower() == "none" else value

    @model_validator(mode="after")
    def _weights_for_transfer(self) -> "TransferFields":
        if self.transfer != "scratch" and self.weights is None:
            raise ValueError(f"transfer '{self.transfer}' needs weights (a file, an export, a run, or 'timm'). Fix: "
                             "add weights: PATH (a .safetensors file, an export folder or a run folder), or "
                             "transfer: scratch")
        if self.weights == "timm" and not self.hub_weights:
            raise ValueError("weights 'timm' is for timm backbones; this model takes a file, an export or a run. "
                             "Fix: weights: PATH (a .safetensors file, an export folder or a run folder)")
        return self

    def architecture_args(self) -> dict[str, object]:
        """The model's constructor arguments: everything but the kind and how it was initialised."""
        return self.model_dump(exclude={"kind", *TransferFields.model_fields})
