"""Weights as people have them: checkpoint files as training scripts save them (torch.save, safetensors, timm's
train.py, PyTorch Lightning, DataParallel), and timm's published weights in the local Hugging Face cache.

Nothing here unpickles code: torch.load(weights_only=True) only. A checkpoint that needs more is refused with
torch's own reason (it names the class) and the one-liner that re-saves its tensors, to run where it is trusted.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from searchlab.errors import TrialFailure

SAVE_A_STATE_DICT = ("save the weights alone, e.g. safetensors.torch.save_file(model.state_dict(), "
                     "'weights.safetensors'), or torch.save(model.state_dict(), 'weights.pth')")
# Where checkpoints keep their tensors, most preferred first. timm's train.py saves the EMA copy beside the raw
# weights and, with EMA on, picks model_best by the EMA's validation score: the EMA weights are the ones that
# scored best, and timm's own load_checkpoint takes them by default (use_ema=True). So do we, and say so.
STATE_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model", "model_state_dict")


def read_checkpoint(path: Path) -> Any:
    """The checkpoint's contents, never unpickling code; a file that cannot be read fails naming why."""
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)   # never unpickles code
    except Exception as exc:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()   # torch colours its message
        first = text.splitlines()[0] if text else type(exc).__name__
        if path.suffix != ".safetensors" and not _looks_like_torch_save(path):
            raise TrialFailure(f"weights file {path} is not a torch checkpoint (.pt/.pth from torch.save) or a "
                               f".safetensors file: an image, text or other file? Fix: {SAVE_A_STATE_DICT}") from None
        if runner := _code_runner(text):
            raise TrialFailure(f"weights file {path} holds a pickle that calls {runner} when loaded (it runs "
                               "commands or code), which no checkpoint of weights needs; it was not unpickled. "
                               "Fix: do not load this file with weights_only=False; ask its source for the "
                               "weights as a .safetensors file (or a torch.save of a state_dict)") from None
        if "Weights only load failed" in first or "Unsupported global" in text:
            raise TrialFailure(f"weights file {path} holds a pickled object (torch: {_torch_reason(text)}), not "
                               "tensors alone; it is not unpickled, as that could run code. Fix: "
                               f"if you trust the file, re-save its tensors alone in your own environment: "
                               f"{resave_command(path)} and set weights to the new file") from None
        raise TrialFailure(f"cannot read weights file {path} ({type(exc).__name__}: {first}): a truncated or "
                           f"damaged file? Fix: {SAVE_A_STATE_DICT}") from None


# Modules whose functions run commands or code when a pickle calls them (torch blocks os/posix/nt/sys itself,
# named here too for a torch that words it otherwise); Python 2 pickles name subprocess `commands`, builtins
# `__builtin__`
RUNS_CODE = {"subprocess", "commands", "shutil", "socket", "pty", "runpy", "importlib", "ctypes", "code", "codeop",
             "pickle", "marshal", "webbrowser", "pdb", "timeit", "multiprocessing", "os", "posix", "nt", "sys"}
RUNS_CODE_BUILTINS = {"eval", "exec", "compile", "__import__", "getattr", "setattr", "open", "breakpoint", "input"}


def _code_runner(text: str) -> str | None:
    """The function a pickle calls that runs commands or code (`posix.system`, `commands.check_output`, `eval`),
    as torch names it; None for a class (argparse.Namespace, a model's own class), whose re-save is offered."""
    if blocked := re.search(r"unsupported GLOBAL ([\w.]+) whose module [\w.]+ is blocked", text):
        return blocked.group(1)
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
    module, _, function = found.group(1).rpartition(".") if found else ("", "", "")
    builtin = module in ("", "builtins", "__builtin__") and function in RUNS_CODE_BUILTINS
    if module.split(".")[0] in RUNS_CODE or builtin:
        return found.group(1)
    return None


def _torch_reason(text: str) -> str:
    """torch's line naming the class it would not unpickle (e.g. 'Unsupported global: GLOBAL argparse.Namespace
    was not an allowed global by default'): which object is in the way, not a guess at it."""
    found = re.search(r"Unsupported global: GLOBAL [\w.]+[^.\n]*", text) or \
        re.search(r"WeightsUnpickler error:\s*[^\n]+", text)   # e.g. 'Unsupported operand 149' on the next line
    return " ".join(found.group(0).split())[:300] if found else "it did not name the object"


def resave_command(path: Path) -> str:
    """A python one-liner keeping a checkpoint's weights (under STATE_KEYS, EMA first, as the reader takes them;
    a whole model's state_dict(); else the file's own tensors), written as a file torch.load(weights_only=True)
    reads. Quoted for a POSIX shell, whatever the path holds (quotes, $, backticks)."""
    out = path.with_name(f"{path.name.split('.')[0]}_weights.pth")
    keys = f"({', '.join(map(json.dumps, STATE_KEYS))})"   # double quotes throughout: one clean shell quoting
    code = (f"import torch; c = torch.load({json.dumps(str(path))}, map_location=\"cpu\", weights_only=False); "
            f"d = c if isinstance(c, dict) else {{}}; s = next((d[k] for k in {keys} if k in d), c); "
            "s = s.state_dict() if hasattr(s, \"state_dict\") else s; "
            f"torch.save({{n: t for n, t in s.items() if isinstance(t, torch.Tensor)}}, {json.dumps(str(out))})")
    return f"python -c {shlex.quote(code)}"


def _looks_like_torch_save(path: Path) -> bool:
    """torch.save writes a zip archive (PK), or before torch 1.6 a pickle (protocol 2+: byte 0x80)."""
    with path.open("rb") as fh:
        head = fh.read(2)
    return head == b"PK" or head[:1] == b"\x80"


def unwrapped(state: Any, path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """The tensors of a checkpoint as training scripts save them, and the key they were under (None: the file is
    the state dict itself): under STATE_KEYS (EMA first), and without the `module.` prefix DataParallel/DDP add."""
    taken = None
    while isinstance(state, dict) and (key := next((k for k in STATE_KEYS if isinstance(state.get(k), dict)), None)):
        state, taken = state[key], key if taken is None else f"{taken}.{key}"
    if not isinstance(state, dict):
        raise TrialFailure(f"weights file {path} holds no state dict. Fix: {SAVE_A_STATE_DICT}")
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state, taken


def dropped_prefix(state: dict[str, Any], wanted: set[str], fits: Any) -> str | None:
    """A dotted prefix common to every key (Lightning's `model.`, a wrapper's `net.`, `backbone.`,
    `encoder.`, ...) whose removal makes the keys fit `wanted`, as judged by `fits(stripped keys)`; None when
    the keys fit as they are, or no such prefix does. A prefix is only ever dropped from every key at once."""
    if not state or fits(set(state)):
        return None
    keys = [k.split(".") for k in state]
    common = 0
    while all(len(parts) > common + 1 and parts[common] == keys[0][common] for parts in keys):
        common += 1
    for depth in range(1, common + 1):   # the shortest that works: drop no more than the wrapper's own names
        prefix = ".".join(keys[0][:depth]) + "."
        if fits({k.removeprefix(prefix) for k in state}):
            return prefix
    return None


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """A digest of a state dict's names, dtypes, shapes and values (key order aside): which weights, when no
    file records them."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous().reshape(-1)   # 0-dim counters too
        digest.update(f"{name}|{state[name].dtype}|{tuple(state[name].shape)}|".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def hub_source(cfg: dict[str, Any]) -> dict[str, Any]:
    """Where timm takes published weights from, by their pretrained_cfg: hf_hub_id, the tag, the url."""
    keys = (("pretrained_tag", "tag"), ("hf_hub_id", "hf_hub_id"), ("hf_hub_filename", "hf_hub_filename"),
            ("url", "url"))
    return {ours: cfg[theirs] for ours, theirs in keys if cfg.get(theirs)}


def pretrained_cfg(backbone: str) -> dict[str, Any]:
    """timm's pretrained_cfg for a model name (its default tag when none is named), without building it."""
    import timm

    cfg = timm.models.get_pretrained_cfg(backbone)
    return cfg.to_dict() if cfg is not None else {}


def cached_hub_file(backbone: str) -> Path | None:
    """The weights file timm would read for `backbone` from the local cache (no network call): the Hugging Face
    cache for an hf_hub_id (its safetensors first, as timm tries them), else torch hub's checkpoints folder."""
    source = hub_source(pretrained_cfg(backbone))
    if source.get("hf_hub_id"):
        from huggingface_hub import try_to_load_from_cache

        own = source.get("hf_hub_filename")
        names = ([own[:-4] + ".safetensors"] if own and own.endswith(".bin") else []) + ([own] if own else []) + \
            ["model.safetensors", "pytorch_model.bin", "open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for name in dict.fromkeys(names):
            found = try_to_load_from_cache(source["hf_hub_id"].split("@")[0], name)
            if isinstance(found, str) and os.path.isfile(found):
                return Path(found)
    if source.get("url"):
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(source["url"].split("?")[0])
        if path.is_file():
            return path
    return None
