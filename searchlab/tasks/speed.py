"""How a training step runs fast: mixed precision and memory format (`train.precision`, `train.channels_last`).

Both change only how the arithmetic is done, never what is trained: the weights and the optimiser state stay
float32, and checkpoints are stored NCHW-contiguous, so checkpoints and exports are the same format either way.
"""
from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from searchlab.errors import TrialFailure


def resolve_precision(precision: str, device: torch.device) -> str:
    """"auto": bf16 where the hardware computes it natively (GPUs that support it; CPUs with AVX-512 BF16 or
    AMX), else fp32 -- emulated bfloat16 is slower than float32."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if _cpu_flags() & {"avx512_bf16", "amx_bf16"} else "fp32"
    return "fp32"


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:   # not Linux: no cheap way to know, so the safe choice
        return frozenset()
    return frozenset(word for line in text.splitlines() if line.startswith("flags") for word in line.split())


@contextlib.contextmanager
def training_precision(precision: str, device: torch.device) -> Iterator[None]:
    """bfloat16 autocast around a training forward ("bf16"), or nothing ("fp32"; "auto" resolved for the
    device). bfloat16 keeps float32's exponent range, so no loss scaling is needed (unlike float16)."""
    if resolve_precision(precision, device) == "fp32":
        yield
        return
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise TrialFailure(f"train.precision is bf16, but this GPU ({torch.cuda.get_device_name(device)}) has no "
                           "bfloat16 arithmetic. Fix: precision: auto (bf16 only where supported) or fp32")
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        yield


def to_memory_format(model: nn.Module, channels_last: bool) -> nn.Module:
    """NHWC weights for conv nets; the model's parameters are the same objects, so optimisers built later
    see them (call before building the optimiser)."""
    return model.to(memory_format=torch.channels_last) if channels_last else model


def as_input(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A 4-D image batch in the model's memory format (other inputs pass as they are)."""
    return x.contiguous(memory_format=torch.channels_last) if channels_last and x.dim() == 4 else x
