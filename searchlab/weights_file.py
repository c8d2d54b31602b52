"""Writing weights as safetensors (never a pickle), with a failure that names the file.

safetensors reports a full disk or a missing folder as its own SafetensorError, whose text ends in
"(os error 28)": the CLI's one-line file message and a trial's stored reason need it as the OSError it is.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file


def save_weights(state: dict[str, torch.Tensor], path: str | Path) -> None:
    try:
        save_file({key: value.contiguous() for key, value in state.items()}, str(path))
    except SafetensorError as exc:
        code = re.search(r"os error (\d+)", str(exc))
        number = int(code.group(1)) if code else 0
        reason = os.strerror(number) if number else str(exc)
        raise OSError(number, f"{reason} (writing the weights)", str(path)) from None
