"""Saving fine-tuned weights of an export as a folder that `load()` and `searchlab predict` take: part of every
classifier export's model.py (below the body marker, after standalone.py, whose helpers it calls), not of
searchlab itself, which never fine-tunes an export.

Fine-tuned weights saved beside a copy of the export's config.json were refused by load() (their sha256 is not
the exported weights'), and the copied test metrics described the exported weights, not the new ones.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import torch
from torch import nn

from searchlab.models.standalone import _DTYPES, build_export_model

# ---- model.py body ----
# config.json keys that scored the exported weights: beside fine-tuned weights they would be read as theirs
_SCORES_OF_WEIGHTS = ("validation_metrics", "test_metrics", "test_confusion", "ensemble_below_member",
                      "tta_below_plain")
BEFORE_FINE_TUNING = "before_fine_tuning"


def save(net: nn.Module, config: dict[str, Any], out_dir: str | Path, replace_export: bool = False) -> Path:
    """Fine-tuned weights of `net` (built by load() from `config`) as a folder that load() and `searchlab
    predict` take: weights.safetensors, a copy of this model.py, and config.json with the new weights' sha256,
    `fine_tuned_from` (the sha256 of the weights they started from) and the metrics that scored those moved
    under `before_fine_tuning`. A folder save() wrote is overwritten (a training loop saving every epoch); an
    export is not, unless `replace_export`. Returns out_dir."""
    out_dir = Path(out_dir)
    source = _own_source()
    _refuse_an_export(out_dir, replace_export)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in net.state_dict().items()}
    _check_fits_config(state, config)
    weights = safetensors_bytes(state)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "test_predictions.json").unlink(missing_ok=True)   # the exported weights' predictions, if replaced
    (out_dir / "weights.safetensors").write_bytes(weights)
    if not (out_dir / "model.py").is_file() or (out_dir / "model.py").read_text() != source:
        (out_dir / "model.py").write_text(source)
    fine_tuned = fine_tuned_config(config, hashlib.sha256(weights).hexdigest())
    (out_dir / "config.json").write_text(json.dumps(fine_tuned, indent=2, ensure_ascii=False) + "\n")
    return out_dir


def fine_tuned_config(config: dict[str, Any], weights_sha256: str) -> dict[str, Any]:
    """config.json of fine-tuned weights: the metrics of the weights they started from moved aside, once (a
    second fine-tuning keeps the exported weights' metrics, and `fine_tuned_from` names its own start)."""
    scored = {key: value for key, value in config.items() if key.startswith(_SCORES_OF_WEIGHTS)}
    new = {key: value for key, value in config.items() if key not in scored}
    if scored:
        new[BEFORE_FINE_TUNING] = {
            "note": "these metrics scored the exported weights (weights_sha256 here), not the fine-tuned weights "
                    "of this folder, which nothing here has scored",
            "weights_sha256": config.get("weights_sha256"), **scored}
    new.update(fine_tuned_from=config.get("weights_sha256"), weights_sha256=weights_sha256,
               fine_tuned_at_utc=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    return new


def _own_source() -> str:
    """The text of the model.py this code runs from, which a saved folder needs beside its weights."""
    if __name__.startswith("searchlab.models."):
        raise ValueError("save() copies the model.py it runs from, and this is searchlab's source, not an "
                         "export's model.py. Fix: call save() of the export's model.py (import model; model.save)")
    return Path(__file__).read_text()


def _refuse_an_export(out_dir: Path, replace_export: bool) -> None:
    """An export's weights (and the test metrics beside them) are replaced only when asked to."""
    path = out_dir / "config.json"
    if replace_export or not path.is_file():
        return
    try:
        there = json.loads(path.read_text())
    except ValueError:
        there = None
    if isinstance(there, dict) and "fine_tuned_from" in there:
        return   # an earlier save(): a newer epoch of the same fine-tuning
    raise ValueError(f"{out_dir} holds an export (its config.json was not written by save()): saving there would "
                     "replace the exported weights its test metrics are of. Fix: save into a new folder, e.g. "
                     f"{str(out_dir.resolve()) + '_tuned'!r}, or pass replace_export=True to replace "
                     "them on purpose")


def _check_fits_config(state: dict[str, torch.Tensor], config: dict[str, Any]) -> None:
    """A ValueError when the network is not the one config["model"] builds: load() could not read it back."""
    expected = {name: tuple(t.shape) for name, t in build_export_model(config).state_dict().items()}
    got = {name: tuple(t.shape) for name, t in state.items()}
    differ = sorted(set(expected) ^ set(got)) + sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
    if differ:
        key = differ[0]
        raise ValueError(f"net is not the network config['model'] describes ({len(differ)} weights differ, e.g. "
                         f"{key!r}: {got.get(key, 'missing')} in net, {expected.get(key, 'missing')} in config), so "
                         "load() could not read the saved folder back. Fix: save the network load() built, with its "
                         "layers as they were (a changed head needs a new export)")


def safetensors_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    """The safetensors format (read_safetensors, safetensors.torch.load_file) of contiguous CPU tensors."""
    names = {dtype: name for name, dtype in _DTYPES.items()}
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    chunks, offset = [], 0
    for name, tensor in tensors.items():
        data = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        header[name] = {"dtype": names[tensor.dtype], "shape": list(tensor.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)   # the body starts 8-byte aligned, as the safetensors library writes it
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)
