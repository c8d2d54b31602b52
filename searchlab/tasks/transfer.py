"""Transfer learning: initial weights from timm, a file, an export or a run; freezing; lr per block.

Weights are matched by name. The classifier head is always new (the task's classes differ); a first
convolution trained on RGB is adapted to grayscale by summing over its input channels (and back by
spreading), as timm does; any other shape mismatch fails the trial naming the layers.

Frozen blocks keep requires_grad False; under "cutoff" their batch-norm statistics still follow the new
data in training mode (torchvision's usual fine-tuning), while "features" computes the features once in
eval mode, with the source's statistics.
"""
from __future__ import annotations

import functools
import json
import os
import re
import socket
import urllib.parse
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn

from searchlab.errors import TrialFailure
from searchlab.export.weights_origin import file_sha256
from searchlab.models.standalone import read_safetensors
from searchlab.tasks.classify_config import TimmSpec
from searchlab.tasks.transfer_config import TransferFields
from searchlab.tasks.train import ParamGroups


def apply_transfer(model: nn.Module, spec: TransferFields, base_dir: Path,
                   on_source: Callable[[dict[str, Any]], None] | None = None) -> ParamGroups:
    """Load `spec.weights` into `model` and freeze per `spec.transfer`; returns the optimiser groups.
    `on_source` is told which trial a run folder's weights came from (its best one when this trial started)."""
    if spec.transfer == "scratch":
        return [{"params": list(model.parameters())}]
    assert spec.weights is not None   # TransferFields guarantees it
    load_matching(model, source_state(spec, model, base_dir, on_source), spec.weights,
                  lambda: architectures_note(spec, base_dir))
    blocks = model.parameter_blocks()
    head = [p for n, p in model.named_parameters() if n.startswith(model.head_prefix)]
    if spec.transfer == "features":
        _freeze(p for block in blocks for _, p in block)
        return [{"params": head}]
    if spec.transfer == "cutoff":
        if spec.cutoff > len(blocks):
            raise TrialFailure(f"cut-off block {spec.cutoff} is beyond the depth of {_model_name(model)}: it has "
                               f"{len(blocks)} blocks (use cutoff 1..{len(blocks)})")
        _freeze(p for block in blocks[:spec.cutoff] for _, p in block)
        return [{"params": [p for block in blocks[spec.cutoff:] for _, p in block] + head}]
    n = len(blocks)   # full: the deepest block trains at lr x decay, the input block at lr x decay^n
    return [{"params": [p for _, p in block], "lr_scale": spec.layer_decay ** (n - i)} for i, block in enumerate(blocks)] \
        + [{"params": head, "lr_scale": 1.0}]


def architectures_note(spec: TransferFields, base_dir: Path) -> str | None:
    """This model's and, for a searchlab export or run, the weights' own architecture: what to make equal."""
    path = Path(str(spec.weights))
    path = path if path.is_absolute() else base_dir / path
    source = None
    try:
        if (path / "config.json").is_file():
            source = json.loads((path / "config.json").read_text())["model"]
        elif (path / "searchlab.json").is_file():
            from searchlab.engine.rundir import open_run
            from searchlab.export.picking import pick_trial

            source = pick_trial(open_run(path).study, None).user_attrs.get("model_spec")
    except Exception:   # best effort: the mismatch itself is already said
        source = None
    if not isinstance(source, dict) or "architecture" not in source:
        return None
    name, args = spec.architecture()   # type: ignore[attr-defined]
    return (f"this model: {name} {short_args(args)}; the weights' model: {source['architecture']} "
            f"{short_args(source.get('args', {}))}")


def short_args(args: dict[str, Any]) -> str:
    """Settings first, then structured ones (a Zen net's blocks, a cell's nodes) as compact JSON: two networks
    that differ only there must not read alike."""
    plain = [f"{k}={v}" for k, v in args.items() if not isinstance(v, (dict, list))]
    nested = [f"{k}={json.dumps(v, separators=(',', ':'), default=str)}" for k, v in args.items()
              if isinstance(v, (dict, list))]
    text = ", ".join(plain + nested)
    return f"({text[:600]}{'...' if len(text) > 600 else ''})"


def _freeze(params: Any) -> None:
    for p in params:
        p.requires_grad_(False)


def source_state(spec: TransferFields, model: nn.Module, base_dir: Path,
                 on_source: Callable[[dict[str, Any]], None] | None = None) -> dict[str, torch.Tensor]:
    assert spec.weights is not None
    if spec.weights == "timm":
        assert isinstance(spec, TimmSpec)
        return _timm_hub_state(spec)
    path = Path(spec.weights)
    path = path if path.is_absolute() else base_dir / path
    if path.is_dir() and (path / "config.json").is_file():
        tell_source(on_source, "export", path / "weights.safetensors")
        return read_safetensors(path / "weights.safetensors")
    if path.is_dir() and (path / "searchlab.json").is_file():
        return _best_trial_state(path, on_source)
    if path.is_file():
        tell_source(on_source, "file", path)
        return _file_state(path, model)
    if path.is_dir():
        raise TrialFailure(f"weights '{spec.weights}': {path} {NOT_A_WEIGHTS_FOLDER[0]}. "
                           f"Fix: {NOT_A_WEIGHTS_FOLDER[1]}")
    raise TrialFailure(f"weights '{spec.weights}' not found (looked for {path}: a weights file, an export folder "
                       "with config.json, or a run folder with searchlab.json)")


def _timm_hub_state(spec: TimmSpec) -> dict[str, torch.Tensor]:
    import timm

    unreachable = hub_unreachable()
    try:   # RGB weights as published; load_matching adapts the first convolution to the data's channels
        if unreachable:   # huggingface_hub would retry for ~45 s per trial before giving up
            raise OSError(unreachable)
        hub = timm.create_model(spec.backbone, pretrained=True)
    except Exception as exc:   # offline, unknown tag, hub error: the fix is the same
        raise TrialFailure(
            f"timm could not fetch pretrained weights for '{spec.backbone}' ({str(exc).splitlines()[0][:200]}). "
            f"Fix (offline): on a machine with internet save them with timm.create_model('{spec.backbone}', "
            f"pretrained=True) and safetensors.torch.save_file(model.state_dict(), '{spec.backbone}.safetensors'), "
            "then set weights: <that file> (or copy that machine's Hugging Face cache, ~/.cache/huggingface/hub, "
            "and set HF_HUB_OFFLINE=1 so timm reads them from there)") from None
    return {f"net.{k}": v for k, v in hub.state_dict().items()}


@functools.lru_cache(maxsize=1)
def hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the Hugging Face hub cannot be reached from here, or None to let timm try (reachable, a proxy
    configured, or HF_HUB_OFFLINE set: timm then reads its cache). Checked once per process."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        return None
    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None   # the hub may be reachable through the proxy only: a direct probe would say nothing
    endpoint = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        return f"cannot reach {host}:{port}: {exc.strerror or exc}"
    return None


def tell_source(on_source: Callable[[dict[str, Any]], None] | None, kind: str, file: Path, **about: Any) -> None:
    """Which file the weights came from, with its SHA-256 (a path alone may name other weights later), and
    what else `about` it is known (entries that are None left out)."""
    if on_source is None:
        return
    on_source({kind: str(file.parent.resolve() if kind == "export" else file.resolve()),
               "sha256": file_sha256(file), **{key: value for key, value in about.items() if value is not None}})


def _best_trial_state(run_dir: Path, on_source: Callable[[dict[str, Any]], None] | None) -> dict[str, torch.Tensor]:
    """The weights of a run's best trial, as `searchlab export RUN` would pick and read them. The best trial
    may change while that run goes on, so which one was read is told to `on_source` (recorded per trial)."""
    from searchlab.engine.rundir import open_run
    from searchlab.errors import ExportError
    from searchlab.export.exporter import trial_checkpoint
    from searchlab.export.picking import pick_trial

    run = open_run(run_dir)
    try:
        trial = pick_trial(run.study, None)
        state = trial_checkpoint(run, trial)
        if on_source is not None:
            on_source({"run": str(run_dir), "study": run.study.study_name, "trial": trial.number})
        return state
    except ExportError as exc:
        raise TrialFailure(f"weights from run {run_dir}: {exc}. Or export the trial you want "
                           "(searchlab export RUN --trial N --out DIR) and set weights: DIR") from None


SAVE_A_STATE_DICT = ("save the weights alone, e.g. safetensors.torch.save_file(model.state_dict(), "
                     "'weights.safetensors'), or torch.save(model.state_dict(), 'weights.pth')")
NOT_A_WEIGHTS_FOLDER = ("is a folder but neither an export (no config.json) nor a run (no searchlab.json)",
                        "name the weights file itself, or the folder `searchlab export` wrote")


def weights_problem(path: Path) -> tuple[str, str] | None:
    """Why a named weights path cannot be read, as (rule, fix), or None: checked before any trial
    (classify.prepare), so an unusable file is one error, not one failed trial each."""
    if path.is_dir():
        is_source = (path / "config.json").is_file() or (path / "searchlab.json").is_file()
        return None if is_source else (f"{path} {NOT_A_WEIGHTS_FOLDER[0]}", NOT_A_WEIGHTS_FOLDER[1])
    try:
        state = _unwrapped(_read_checkpoint(path), path)
    except TrialFailure as exc:
        rule, _, fix = str(exc).partition(". Fix: ")
        return rule, fix
    return None if state else (f"weights file {path} holds no tensors", SAVE_A_STATE_DICT)


def _file_state(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    state = _unwrapped(_read_checkpoint(path), path)
    ours = next(iter(model.state_dict()))
    if ours.startswith("net.") and not any(k.startswith("net.") for k in state):
        state = {f"net.{k}": v for k, v in state.items()}   # a plain timm state dict
    return state


def _unwrapped(state: Any, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint as training scripts save them: under state_dict/model keys, and with the
    `module.` prefix nn.DataParallel and DDP add."""
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise TrialFailure(f"weights file {path} holds no state dict. Fix: {SAVE_A_STATE_DICT}")
    if state and all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    return state


def _read_checkpoint(path: Path) -> Any:
    try:
        if path.suffix == ".safetensors":
            return load_file(str(path))
        return torch.load(path, map_location="cpu", weights_only=True)   # never unpickles code
    except Exception as exc:
        first = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()[0]   # torch colours its message
        if path.suffix != ".safetensors" and not _looks_like_torch_save(path):
            raise TrialFailure(f"weights file {path} is not a torch checkpoint (.pt/.pth from torch.save) or a "
                               f".safetensors file: an image, text or other file? Fix: {SAVE_A_STATE_DICT}") from None
        if "Weights only load failed" in first or "Unsupported global" in str(exc):
            raise TrialFailure(f"weights file {path} holds a pickled object (e.g. a whole model), not tensors "
                               f"alone; it is not unpickled, as that could run code. Fix: {SAVE_A_STATE_DICT}") \
                from None
        raise TrialFailure(f"cannot read weights file {path} ({type(exc).__name__}: {first}): a truncated or "
                           f"damaged file? Fix: {SAVE_A_STATE_DICT}") from None


def _looks_like_torch_save(path: Path) -> bool:
    """torch.save writes a zip archive (PK), or before torch 1.6 a pickle (protocol 2+: byte 0x80)."""
    with path.open("rb") as fh:
        head = fh.read(2)
    return head == b"PK" or head[:1] == b"\x80"


def load_matching(model: nn.Module, state: dict[str, torch.Tensor], source: str,
                  note: Callable[[], str | None] = lambda: None) -> None:
    """Copy every non-head tensor by name; adapt RGB<->gray first convolutions; name every misfit, after
    `note()`: both architectures, when the weights' own is known (what to make equal comes first)."""
    if state and all(k.startswith("members.") for k in state):
        members = len({k.split(".")[1] for k in state})
        raise TrialFailure(f"weights '{source}' are an ensemble of {members} networks (a --top-k export, or a "
                           "trial of a study with train.cv_model: bag); transfer starts from one network. Fix: "
                           "export a single trial of a study with cv_model: refit, or give its weights file")
    target = model.state_dict()
    missing, misfits, loaded = [], [], {}
    for name, tensor in target.items():
        if name.startswith(model.head_prefix):
            continue
        if name not in state:
            missing.append(name)
            continue
        value = _adapt_channels(state[name], tensor.shape)
        if value is None:
            misfits.append(f"{name.removeprefix('net.')}: weights {tuple(state[name].shape)}, model "
                           f"{tuple(tensor.shape)}")
        else:
            loaded[name] = value
    # Layers the weights have and this model lacks (a deeper source): loading the rest would quietly drop them
    extra = [k for k in state if k not in target and not k.startswith(model.head_prefix)]
    if missing or misfits or extra:
        absent = (("missing", missing, state), ("not in this model:", extra, target))
        problems = misfits[:5] + ([f"{len(misfits) - 5} more of other shapes"] if len(misfits) > 5 else []) + \
            [f"{what} {_modules(names, other)}" for what, names, other in absent if names]
        about = "; ".join(filter(None, [_model_name(model), note()]))
        raise TrialFailure(f"weights '{source}' do not fit this model ({about}): {'; '.join(problems)}. Fix: use "
                           "weights of the same architecture and settings")
    model.load_state_dict(loaded, strict=False)


def _modules(names: list[str], other: Iterable[str], shown: int = 6) -> str:
    """Tensor names as the outermost modules the other side lacks ('layer3.2 ... (40 tensors)', or
    'layer1.0.conv3' where only that conv is new): a deeper network's extra blocks read at a glance, not as their
    batch-norm counters one by one; a tensor whose module both sides have is named itself."""
    held = {".".join(parts[:i]) for name in other for parts in [name.split(".")] for i in range(1, len(parts) + 1)}
    modules = sorted({_outermost_absent(name, held).removeprefix("net.") for name in names},
                     key=lambda m: [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", m)])   # 7 before 10
    rest = f" and {len(modules) - shown} more" if len(modules) > shown else ""
    return f"{', '.join(modules[:shown])}{rest} ({len(names)} tensors)"


def _outermost_absent(name: str, held: set[str]) -> str:
    parts = name.split(".")
    for depth in range(1, len(parts)):
        prefix = ".".join(parts[:depth])
        if prefix != "net" and prefix not in held:
            return prefix
    return name


def _model_name(model: nn.Module) -> str:
    """The backbone a timm wrapper holds (e.g. resnet18), else the network's class."""
    inner = getattr(model, "net", model)
    return (getattr(inner, "pretrained_cfg", None) or {}).get("architecture") or type(inner).__name__


def _adapt_channels(value: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    if value.shape == shape:
        return value
    if value.ndim == 4 and value.shape[0] == shape[0] and value.shape[2:] == shape[2:]:
        if shape[1] == 1:
            return value.sum(dim=1, keepdim=True)   # RGB -> gray: the same response to a gray image
        if value.shape[1] == 1:
            return value.repeat(1, shape[1], 1, 1) / shape[1]
    return None

