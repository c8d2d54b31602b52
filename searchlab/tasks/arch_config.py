"""Typed configs of the searched architectures (NAS): Zen-NAS-style super-block networks and DARTS-style cells.

A space samples these keys (spaces/zen.yaml, spaces/cells.yaml); the builders are torch-only modules
(searchlab/models/zen.py, cells.py) that an export's model.py carries, so a winner is plain PyTorch code.
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from searchlab.config.schema import Frozen
from searchlab.errors import AtKey
from searchlab.tasks.transfer_config import TransferFields

CellOp = Literal["sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "max_pool_3x3", "avg_pool_3x3",
                 "skip_connect", "none"]


class ZenBlockSpec(Frozen):
    """One super-block: `depth` sub-layers of `type`; "none" leaves the slot out (a variable number of blocks)."""

    type: Literal["conv", "basic", "bottleneck", "inverted", "none"] = "basic"
    width: Annotated[int, Field(ge=8, le=2048)] = 32          # output channels
    depth: Annotated[int, Field(ge=1, le=8)] = 1              # sub-layers
    kernel: Literal[3, 5, 7] = 3
    # basic/bottleneck: bottleneck channels = width x ratio; inverted: the expansion factor (MobileNetV2: 6)
    ratio: Annotated[float, Field(ge=0.1, le=8.0)] = 1.0
    stride: Literal[1, 2] = 1


class ZenNetSpec(TransferFields):
    kind: Literal["zen"]
    stem: Annotated[int, Field(ge=4, le=512)] = 16            # channels of the 3x3 stem (no downsampling at 28 px)
    blocks: dict[str, ZenBlockSpec]                           # in insertion order, e.g. b1, b2, ...
    head: Annotated[int, Field(ge=8, le=4096)] | None = None  # a last 1x1 conv to this width (Zen-NAS's final layer)
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    # the settings describe() shows as built: drawn values that build alike (ratios rounding to the same channels,
    # a `none` block's width) are one network (samplers/budget.py config_identity)
    DESCRIBED: ClassVar[tuple[str, ...]] = ("stem", "blocks", "head")

    @model_validator(mode="after")
    def _some_block(self) -> "ZenNetSpec":
        if not any(block.type != "none" for block in self.blocks.values()):
            raise ValueError("blocks: every slot is 'none'; at least one super-block must remain. Fix: leave 'none' "
                             "out of one block's type choices")
        return self

    def architecture(self) -> tuple[str, dict[str, object]]:
        blocks = [b.model_dump() for b in self.blocks.values() if b.type != "none"]
        return "zen", {"stem": self.stem, "blocks": blocks, "head": self.head, "dropout": self.dropout}

    def describe(self) -> str:
        """One line a person can read in the dashboard, and the network's identity: zen_nas and deepmad tell
        candidates apart by it, so it shows each block as built, not as drawn. Stem, then each block's type,
        width, depth, kernel, inner channels and stride; the inner channels are those its ratio gives after
        rounding to a multiple of 8 (`btn` of basic/bottleneck; `mid` of inverted, relative to each unit's
        input, so two values when the first unit's input differs), and a conv block has none: it ignores its
        ratio. Drawn ratios 0.5 and 1 of an 8-wide basic block both build 8 inner channels, and were told
        apart here, so one network was scored and trained twice as two "distinct" designs."""
        channels, parts = self.stem, []
        for block in self.blocks.values():
            if block.type == "none":
                continue
            parts.append(f"{block.type} w{block.width} d{block.depth} k{block.kernel}{_inner(block, channels)} "
                         f"s{block.stride}")
            channels = block.width
        head = f" | head {self.head}" if self.head else ""
        return f"ZenNet(stem {self.stem} | " + " | ".join(parts) + head + ")"


def _inner(block: ZenBlockSpec, cin: int) -> str:
    """The inner channels a block builds from its ratio (searchlab/models/zen.py _zen_unit), as " btn16"."""
    from searchlab.models.zen import _zen_round8   # torch: imported when a description is asked for

    if block.type == "conv":
        return ""
    if block.type in ("basic", "bottleneck"):
        return f" btn{_zen_round8(block.width * block.ratio)}"
    inputs = [cin] + ([block.width] if block.depth > 1 else [])   # the first unit's input, then the later ones'
    mids = dict.fromkeys(_zen_round8(c * block.ratio) for c in inputs)   # in order, once each
    return " mid" + "/".join(str(m) for m in mids)


class CellNodeSpec(Frozen):
    """An intermediate node: op1(state in1) + op2(state in2); states 0, 1 are the cell's inputs."""

    op1: CellOp = "sep_conv_3x3"
    in1: Annotated[int, Field(ge=0, le=31)] = 0
    op2: CellOp = "skip_connect"
    in2: Annotated[int, Field(ge=0, le=31)] = 1


class CellNetSpec(TransferFields):
    kind: Literal["cells"]
    channels: Annotated[int, Field(ge=4, le=256)] = 16       # C of the first cells (doubles at each reduction)
    cells: Annotated[int, Field(ge=1, le=20)] = 5
    reductions: Annotated[int, Field(ge=0, le=4)] = 2        # reduction cells, spread evenly over the cells
    stem_multiplier: Annotated[int, Field(ge=1, le=4)] = 3   # DARTS's stem width: 3 x C
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    normal: dict[str, CellNodeSpec]                          # nodes in insertion order
    reduce: dict[str, CellNodeSpec]

    @model_validator(mode="after")
    def _wiring(self) -> "CellNetSpec":
        if len(self.normal) != len(self.reduce) or not self.normal:
            raise ValueError(f"normal and reduce cells need the same number of nodes (>= 1); got "
                             f"{len(self.normal)} and {len(self.reduce)}")
        if self.reductions > self.cells:
            raise AtKey("reductions", f"reductions ({self.reductions}) cannot exceed cells ({self.cells}). Fix: "
                        "lower reductions or raise cells")
        for cell_name, nodes in (("normal", self.normal), ("reduce", self.reduce)):
            for index, (key, node) in enumerate(nodes.items()):
                for field in ("in1", "in2"):
                    if getattr(node, field) >= index + 2:   # named at its key: its line, and its searched range
                        raise AtKey(f"{cell_name}.{key}.{field}", f"node {index} of the {cell_name} cell can only "
                                    f"read states 0..{index + 1} (the two inputs and earlier nodes). Fix: {field}: "
                                    f"{{int: [0, {index + 1}]}} at most")
        return self

    def nodes(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return ([n.model_dump() for n in self.normal.values()], [n.model_dump() for n in self.reduce.values()])

    def describe(self) -> str:
        """The genotype in DARTS's printed form, plus the macro settings."""
        from searchlab.models.cells import genotype_string

        return (f"{genotype_string(*self.nodes())}; C={self.channels}, cells={self.cells}, "
                f"reductions={self.reductions}")

    def architecture(self) -> tuple[str, dict[str, object]]:
        normal, reduce = self.nodes()
        return "cells", {"normal": normal, "reduce": reduce, "channels": self.channels, "cells": self.cells,
                         "reductions": self.reductions, "stem_multiplier": self.stem_multiplier,
                         "dropout": self.dropout}


class NNISpec(TransferFields):
    """A network from an NNI model space (searchlab[nni]; searchlab/nni_space.py compiles its choices)."""

    kind: Literal["nni"]
    space: Annotated[str, Field(pattern=r"^[\w.]+:[\w.]+$")]   # "module:Class", named explicitly by the study
    init: dict[str, Any] = {}                                  # the space's constructor arguments
    choices: dict[str, Any] = {}                               # NNI label -> sampled value

    def describe(self) -> str:
        picked = ", ".join(f"{label}={value:.3g}" if isinstance(value, float) else f"{label}={value}"
                           for label, value in sorted(self.choices.items()))
        return f"{self.space.rpartition(':')[2]}({picked})"

    def architecture(self) -> tuple[str, dict[str, object]]:
        return "nni", {"space": self.space, "init": dict(self.init), "choices": dict(self.choices)}
