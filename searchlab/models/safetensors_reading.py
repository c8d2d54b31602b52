"""Reading an export's files: weights.safetensors (a plain reader, no pickle, with the check of the sha256 its
config.json records) and config.json (torch only). Every export's model.py holds its body: a classifier's where
standalone.py imports it, a generator's after gan_sampling.py's opening (searchlab/models/__init__.py)."""
from __future__ import annotations

import hashlib
import json
import struct
import warnings
from pathlib import Path
from typing import Any

import torch

# ---- model.py body ----
_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}


class WeightsNotDescribed(ValueError):
    """weights.safetensors is not the file its export's config.json records (sha256): replaced or damaged."""


# (what config.json then misstates, the fix) for a classifier's weights; a generator's loader passes its own
CLASSIFIER_NOT_ITS = ("test metrics, thresholds and provenance in config.json are not its", "export the run again, or "
                      "keep these weights by loading them with the export's model.py and saving them with "
                      "model.save(net, config, NEW_FOLDER), which records their sha256 and sets the old metrics aside")


def read_safetensors(path: str | Path, sha256: str | None = None,
                     not_its: tuple[str, str] = CLASSIFIER_NOT_ITS) -> dict[str, torch.Tensor]:
    """A plain reader of the safetensors format (no pickle, no extra package): header JSON + raw bytes.

    With `sha256` (an export's config.json records its weights' digest), other bytes are not taken silently:
    weights copied in from another export or trial (same shapes), or a truncated copy, would otherwise load and
    carry this export's metrics and provenance (_not_described, saying `not_its`: what they misstate, the fix)."""
    data = Path(path).read_bytes()
    if sha256 is not None and (found := hashlib.sha256(data).hexdigest()) != sha256:
        _not_described(Path(path), found, sha256, not_its)
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len])
    body = memoryview(data)[8 + header_len:]
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        dtype = _DTYPES[meta["dtype"]]
        flat = torch.frombuffer(bytearray(body[start:end]), dtype=dtype) if end > start else torch.empty(0, dtype=dtype)
        tensors[name] = flat.reshape(meta["shape"])
    return tensors


def not_described_message(path: Path, found: str, recorded: str, not_its: tuple[str, str]) -> str:
    misstated, fix = not_its   # one "Fix:", the export kind's own (a generator's model.py has no save())
    return (f"{path} is not the weights file its config.json was exported with (sha256 {found[:16]}..., recorded "
            f"{recorded[:16]}...): replaced (e.g. copied from another trial or export) or damaged, so the "
            f"{misstated}. Fix: {fix}")


_NOT_DESCRIBED: set[Path] = set()   # weights files load() warned of: save() takes no lineage from their folder


def _not_described(path: Path, found: str, recorded: str, not_its: tuple[str, str]) -> None:
    """Refused by searchlab's own copy (predict, a study's weights, a generator's images), whose commands would
    report config.json's numbers for other weights; in an export's model.py (plain PyTorch) a warning, and loaded."""
    message = not_described_message(path, found, recorded, not_its)
    if __name__ == "searchlab.models.safetensors_reading":
        raise WeightsNotDescribed(message)
    _NOT_DESCRIBED.add(path.resolve())
    warnings.warn(message, stacklevel=4)   # at the user's load() call


def export_config(export_dir: Path) -> dict[str, Any]:
    """config.json of an export, or a FileNotFoundError that says what folder to give instead."""
    path = export_dir / "config.json"
    if not path.is_file():
        hint = (" (that is a run folder: give the folder `searchlab export` wrote, e.g. its best/)"
                if (export_dir / "searchlab.json").is_file() else "")
        raise FileNotFoundError(f"{export_dir} is not a searchlab export: it has no config.json{hint}")
    return json.loads(path.read_text())
