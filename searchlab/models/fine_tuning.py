"""Saving fine-tuned weights of an export as a folder that `load()` and `searchlab predict` take: part of every
classifier export's model.py (below the body marker, after standalone.py, whose helpers it calls), not of searchlab.
Fine-tuned weights saved beside a copy of the export's config.json were refused by load() (their sha256 is not
the exported weights'), and the copied test metrics described the exported weights, not the new ones."""
from __future__ import annotations

import datetime
import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import torch
from torch import nn

from searchlab.models.standalone import _DTYPES, _LOADED_FROM, _NOT_DESCRIBED, build_export_model
from searchlab.models.whole_folder import (TRAINED_ON, _let_other_saves_in, _through_link, _wait_for_other_saves,
                                          _write_whole_folder)

# ---- model.py body ----
# config.json keys that scored the exported weights, their test split and how their threshold was chosen: beside
# fine-tuned weights they would be read as theirs (a youden threshold "chosen on val" for weights it never saw)
_SCORES_OF_WEIGHTS = ("validation_metrics", "model_validation_metrics", "test_", "ensemble_below_member",
                      "tta_below_plain", "threshold_choice")
KEPT_THRESHOLD = {"rule": "kept from the weights before fine-tuning",
                  "note": "chosen for those weights (before_fine_tuning.threshold_choice), not for these: choose one "
                          "anew on validation images of your own and set config['threshold']"}
BEFORE_FINE_TUNING = "before_fine_tuning"


def save(net: nn.Module, config: dict[str, Any], out_dir: str | Path, replace_export: bool = False) -> Path:
    """Fine-tuned weights of `net` (built by load() from `config`) as a folder that load() and `searchlab
    predict` take: weights.safetensors, a copy of this model.py, the trained_on.json of the folder the weights
    were loaded from, and config.json with the new weights' sha256, `fine_tuned_from` (the sha256 of the
    weights they started from) and the metrics that scored those moved under `before_fine_tuning`. A folder
    save() wrote is overwritten (a training loop saving every epoch); an export is not, unless
    `replace_export`; other files (a notebook folder's own model.py) never are. The folder is written beside
    out_dir and swapped in whole (other files there kept, those written while it saves too): a failed or
    interrupted save leaves the earlier one as it was. Saves into one folder (every DDP rank's) wait for each
    other. Returns out_dir."""
    out_dir = _through_link(Path(out_dir))
    source = _own_source()
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in net.state_dict().items()}
    _check_fits_config(state, config)
    weights = safetensors_bytes(state)
    lock = _wait_for_other_saves(out_dir)   # every DDP rank saving: one at a time, each over the one before
    try:
        _refuse_to_overwrite(out_dir, replace_export)
        learned, fine_tuned_on = _trained_on_of(config)   # read first: out_dir may be the folder they came from
        fine_tuned = fine_tuned_config(config, hashlib.sha256(weights).hexdigest())
        fine_tuned["fine_tuned_on"] = fine_tuned_on
        files: dict[str, str | bytes] = {"weights.safetensors": weights, "model.py": source}
        if learned is not None:
            files[TRAINED_ON] = learned
        files["config.json"] = json.dumps(fine_tuned, indent=2, ensure_ascii=False) + "\n"
        _write_whole_folder(out_dir, files)
    finally:
        _let_other_saves_in(out_dir, lock)
    return out_dir


def fine_tuned_config(config: dict[str, Any], weights_sha256: str) -> dict[str, Any]:
    """config.json of fine-tuned weights: the metrics of the weights they started from moved aside, once (a
    second fine-tuning keeps the exported weights' metrics, and `fine_tuned_from` names its own start)."""
    scored = {key: value for key, value in config.items() if key.startswith(_SCORES_OF_WEIGHTS)}
    new = {key: value for key, value in config.items() if key not in scored}
    if new.get("task") != "multiclass" and "threshold" in new:   # predict applies it: said for what it is
        new["threshold_choice"] = KEPT_THRESHOLD
    if scored and BEFORE_FINE_TUNING not in config:
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


def _refuse_to_overwrite(out_dir: Path, replace_export: bool) -> None:
    """A folder save() did not write is not written over: an export (whose test metrics are of the weights
    there) only when asked to, a user's own files (another config.json, a notebook folder's model.py) never."""
    path = out_dir / "config.json"
    ran = [name for name in ("searchlab.json", "study.db") if (out_dir / name).exists()]
    if ran:   # saved there, the run folder would act as an export of these weights (predict RUN, model.weights)
        raise ValueError(f"{out_dir} is a run folder (it holds {ran[0]}): saving there would make it read as an "
                         "export of these weights. Fix: save into a new folder, e.g. "
                         f"{str(out_dir.resolve() / 'tuned')!r}")
    if not path.is_file():
        _refuse_own_files(out_dir)
        return
    try:
        there = json.loads(path.read_text())
    except ValueError:
        there = None
    if isinstance(there, dict) and "fine_tuned_from" in there:
        return   # an earlier save(): a newer epoch of the same fine-tuning
    if not isinstance(there, dict) or not str(there.get("format", "")).startswith("searchlab-"):
        raise ValueError(f"{path} is not the config.json of a searchlab export or of save() (not a JSON object "
                         "with a searchlab 'format'): saving there would overwrite it. Fix: save into a new "
                         f"folder, e.g. {str(out_dir.resolve() / 'tuned')!r}")
    if not replace_export:
        raise ValueError(f"{out_dir} holds an export (its config.json was not written by save()): saving there "
                         "would replace the exported weights its test metrics are of. Fix: save into a new folder, "
                         f"e.g. {str(out_dir.resolve()) + '_tuned'!r}, or pass replace_export=True to replace "
                         "them on purpose")


def _refuse_own_files(out_dir: Path) -> None:
    """A folder without config.json is no export and no save(): files there with the names save() writes are
    someone's own (a notebook's folder holding a model.py, or weights of its own)."""
    for name in ("model.py", "weights.safetensors", "test_predictions.json", TRAINED_ON):
        path = out_dir / name
        if path.is_file() and not (name == "model.py" and path.read_bytes() == Path(__file__).read_bytes()):
            raise ValueError(f"{path} was not written by save() ({out_dir} has no config.json, which save() "
                             "writes) and saving there would overwrite it. Fix: save into a new folder, e.g. "
                             f"{str(out_dir.resolve() / 'tuned')!r}")


def _trained_on_of(config: dict[str, Any]) -> tuple[bytes | None, str]:
    """The trained_on.json of the folder `config`'s weights were loaded from, and what config.json says of the
    images the fine-tuned weights learned: those their start learned, and the fine-tuning's own, which save() is
    not told. Without it a study starting from them was not warned of test images the exported weights trained on."""
    unknown = "not recorded: save() is not told which images the weights were fine-tuned on; "
    folder = _loaded_from(config)
    if folder is None:
        return None, unknown + (
            "nor was the folder of the weights they started from (fine_tuned_from) found (config did not come "
            "from load() of this model.py, or that folder holds other weights now). Fix: copy that folder's "
            f"{TRAINED_ON} here, so that a study starting from these weights is checked against it")
    if not (folder / TRAINED_ON).is_file():
        return None, unknown + (f"{folder}, whose weights they started from, lists none either (MedMNIST data, "
                                f"whose splits never move; an export from before {TRAINED_ON}; or weights saved "
                                "without it)")
    return (folder / TRAINED_ON).read_bytes(), unknown + (
        f"{TRAINED_ON} here is that of {folder}, whose weights they started from: the images those trained and "
        "were selected on, which a study starting from these weights is checked against")


def _loaded_from(config: dict[str, Any]) -> Path | None:
    """The folder holding the weights `config` is of: where load() read them, else this model.py's folder."""
    sha = config.get("weights_sha256")
    found = (_LOADED_FROM.get(str(sha)), Path(__file__).parent)
    # not a folder whose weights load() warned are not its config.json's: its trained_on.json is of other weights
    return next((folder for folder in found if folder is not None and sha and _weights_sha256(folder) == sha
                 and (folder / "weights.safetensors").resolve() not in _NOT_DESCRIBED), None)


def _weights_sha256(folder: Path) -> Any:
    """The weights' sha256 that the config.json in `folder` records (None when it records none)."""
    try:
        return json.loads((folder / "config.json").read_text()).get("weights_sha256")
    except (OSError, ValueError, AttributeError):
        return None


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
