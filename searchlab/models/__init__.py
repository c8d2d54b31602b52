"""Model definitions, all torch-only (timm for timm backbones).

standalone.py holds the shared code (plain CNN, timm, RNN, ensembles, loading, prediction); the searched
architectures live in their own files (zen.py, cells.py) and register here. An export's model.py is
standalone.py followed by those files' bodies (`model_source()`): one file that rebuilds any exported model.
"""
from __future__ import annotations

from pathlib import Path

from searchlab.models import cells, standalone, zen

BODY_MARKER = "# ---- model.py body ----"
# architecture name -> (module, class name): what model.py must define and register
SEARCHED_ARCHITECTURES = {"zen": (zen, "ZenNet"), "cells": (cells, "CellNet")}

standalone.ARCHITECTURES.update({name: getattr(module, cls) for name, (module, cls) in SEARCHED_ARCHITECTURES.items()})


def model_source() -> str:
    """The text of an export's model.py: standalone.py, each architecture file's body, then their registration."""
    parts = [Path(standalone.__file__).read_text().rstrip() + "\n"]
    for name, (module, _) in SEARCHED_ARCHITECTURES.items():
        text = Path(module.__file__).read_text()
        if BODY_MARKER not in text:
            raise RuntimeError(f"{module.__file__} lacks the line {BODY_MARKER!r} that starts its model.py body")
        parts.append(f"# ---- {name} architecture (searchlab/models/{Path(module.__file__).name}) ----\n"
                     + text.split(BODY_MARKER, 1)[1].strip() + "\n")
    names = ", ".join(f'"{name}": {cls}' for name, (_, cls) in SEARCHED_ARCHITECTURES.items())
    parts.append(f"ARCHITECTURES.update({{{names}}})\n")
    return "\n\n".join(parts)
