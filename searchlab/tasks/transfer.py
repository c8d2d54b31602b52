"""Transfer learning: initial weights from timm, a file, an export or a run; freezing; lr per block.

Weights are matched by name. The classifier head is always new (the task's classes differ); a first
convolution trained on RGB is adapted to grayscale by summing over its input channels (and back by
spreading), as timm does; an absolute position embedding (ViT, DeiT) trained at another image size is
resampled to this model's patch grid, as timm's own loaders do; any other shape mismatch fails the trial
naming the layers. Checkpoint files are read in checkpoint_files.py (Lightning's and timm's included).

Frozen blocks keep requires_grad False; under "cutoff" their batch-norm statistics still follow the new
data in training mode (torchvision's usual fine-tuning), while "features" computes the features once in
eval mode, with the source's statistics.
"""
from __future__ import annotations

import functools
import json
import math
import os
import re
import socket
import sys
import urllib.parse
import weakref
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from searchlab.errors import TrialFailure
from searchlab.export.weights_origin import file_sha256
from searchlab.models.standalone import read_safetensors
from searchlab.tasks.checkpoint_files import (SAVE_A_STATE_DICT, cached_hub_file, dropped_prefix, hub_source,
                                              read_checkpoint, state_sha256, unwrapped)
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
    origin: dict[str, Any] = {}
    state = source_state(spec, model, base_dir, origin.update)
    try:
        adapted = load_matching(model, state, spec.weights, lambda: architectures_note(spec, base_dir))
        origin.update({"adapted": adapted} if adapted else {})
    finally:   # told even when the weights do not fit: which weights failed is worth recording too
        if on_source is not None and origin:
            on_source(origin)
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
    return [{"params": [p for _, p in block], "lr_scale": spec.layer_decay ** (n - i)}
            for i, block in enumerate(blocks)] + [{"params": head, "lr_scale": 1.0}]


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

            # the source trial this trial started from, when picked already (else the run's best now)
            source = pick_trial(open_run(path).study, _PICKED.get(id(spec))).user_attrs.get("model_spec")
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
        return _timm_hub_state(spec, on_source)
    path = Path(spec.weights)
    path = path if path.is_absolute() else base_dir / path
    if path.is_dir() and (path / "config.json").is_file():
        _refuse_a_generator_export(path, spec.weights)
        tell_source(on_source, "export", path / "weights.safetensors")
        return read_safetensors(path / "weights.safetensors")
    if path.is_dir() and (path / "searchlab.json").is_file():
        return _best_trial_state(path, on_source, spec)
    if path.is_file():
        state, about = _file_state(path, model)
        tell_source(on_source, "file", path, **about)
        return state
    if path.is_dir():
        raise TrialFailure(f"weights '{spec.weights}': {path} {NOT_A_WEIGHTS_FOLDER[0]}. "
                           f"Fix: {NOT_A_WEIGHTS_FOLDER[1]}")
    raise TrialFailure(f"weights '{spec.weights}' not found (looked for {path}: a weights file, an export folder "
                       "with config.json, or a run folder with searchlab.json)")


def _timm_hub_state(spec: TimmSpec, on_source: Callable[[dict[str, Any]], None] | None = None
                    ) -> dict[str, torch.Tensor]:
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
    state = hub.state_dict()
    if on_source is not None:
        on_source(hub_origin(spec.backbone, getattr(hub, "pretrained_cfg", None) or {}, state))
    return {f"net.{k}": v for k, v in state.items()}


def hub_origin(backbone: str, cfg: dict[str, Any], state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Which published weights a trial started from, as a file source records its path and SHA-256: the timm
    name, its pretrained tag and hub id (a name alone follows timm's default tag, which new releases change),
    and the SHA-256 of the cached file timm read (the one the hub lists for it), else of the tensors."""
    origin: dict[str, Any] = {"timm": backbone, **hub_source(cfg)}
    file = cached_hub_file(backbone)
    if file is not None:
        origin.update(cached_file=str(file), sha256=file_sha256(file))   # not `file`: no path the user named
    else:
        origin["state_sha256"] = state_sha256(state)
    return origin


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


def _best_trial_state(run_dir: Path, on_source: Callable[[dict[str, Any]], None] | None,
                      spec: TransferFields | None = None) -> dict[str, torch.Tensor]:
    """The weights of a run's best trial, as `searchlab export RUN` would pick and read them. The best trial
    may change while that run goes on, so which one was read is told to `on_source` (recorded per trial), and
    it is picked once per `spec`: every fold, refit and repeat of one target trial starts from the same one."""
    from searchlab.engine.rundir import open_run
    from searchlab.errors import ExportError
    from searchlab.export.exporter import trial_checkpoint
    from searchlab.export.picking import pick_trial

    run = open_run(run_dir)
    try:
        number = _picked_source(spec, lambda: pick_trial(run.study, None).number)
        state = trial_checkpoint(run, pick_trial(run.study, number))
        if on_source is not None:
            on_source({"run": str(run_dir), "study": run.study.study_name, "trial": number})
        return state
    except ExportError as exc:
        raise TrialFailure(f"weights from run {run_dir}: {exc}. Or export the trial you want "
                           "(searchlab export RUN --trial N --out DIR) and set weights: DIR") from None


# The source trial each target trial drew, by the identity of its parsed model spec: classify parses a trial's
# config once and hands that spec to every fold, refit and repeat, so a better source trial completing meanwhile
# cannot make one fold start from trial A and the next from B while the trial records only the last.
# An entry goes with its spec (weakref.finalize), before its id can be reused by the next trial's.
_PICKED: dict[int, int] = {}


def _picked_source(spec: TransferFields | None, pick: Callable[[], int]) -> int:
    if spec is None:
        return pick()
    key = id(spec)
    if key not in _PICKED:
        _PICKED[key] = pick()
        weakref.finalize(spec, _PICKED.pop, key, None)
    return _PICKED[key]


class GeneratorWeights(TrialFailure):
    """A generator export given as a classifier's weights."""


def _refuse_a_generator_export(export_dir: Path, written: str) -> None:
    """A GAN's export as model.weights: its tensors were listed as not fitting the classifier, with the fix "weights
    of the same architecture", where predict, sample and augment.synthetic say what the folder is."""
    try:
        config = json.loads((export_dir / "config.json").read_text())
    except (OSError, ValueError):
        return   # read_safetensors and the shape check say what is wrong with it
    if isinstance(config, dict) and "generator" in config and "model" not in config:
        raise GeneratorWeights(f"model.weights '{written}' is a generator export (a GAN's, with no classifier). "
                           "Fix: give a classifier export, a classifier study's run folder or a weights file; a "
                           "generator's images join training with augment.synthetic: DIR")


class EnsembleWeights(TrialFailure):
    """Weights of several networks: no searched network's architecture fits them, whatever it is."""


class NonFiniteWeights(TrialFailure):
    """Weights holding NaN or inf: whatever trains on them diverges, at any learning rate."""


def _check_finite(loaded: dict[str, torch.Tensor], source: str) -> None:
    """Refuse weights with NaN or inf values (a damaged checkpoint, or one saved after training diverged): the
    frozen features or the first loss would be non-finite, and the trial failed blaming the learning rate."""
    bad = [name.removeprefix("net.") for name, value in loaded.items()
           if value.is_floating_point() and not bool(torch.isfinite(value).all())]
    if bad:
        shown = ", ".join(bad[:6]) + (f" and {len(bad) - 6} more" if len(bad) > 6 else "")
        raise NonFiniteWeights(
            f"weights '{source}' hold non-finite values (NaN or inf) in {len(bad)} of {len(loaded)} tensors "
            f"({shown}): a network started from them gives non-finite features and losses at any learning rate. "
            "Fix: use weights saved before their training diverged (a timm checkpoint whose EMA copy, "
            "state_dict_ema, is damaged: re-save checkpoint['state_dict'] alone), or other weights")


NOT_A_WEIGHTS_FOLDER = ("is a folder but neither an export (no config.json) nor a run (no searchlab.json)",
                        "name the weights file itself, or the folder `searchlab export` wrote")


def weights_problem(path: Path) -> tuple[str, str] | None:
    """Why a named weights path cannot be read, as (rule, fix), or None: checked before any trial
    (classify.prepare), so an unusable file is one error, not one failed trial each."""
    if path.is_dir():
        if (path / "searchlab.json").is_file() and not (path / "config.json").is_file():
            return _run_problem(path)
        is_source = (path / "config.json").is_file()
        return None if is_source else (f"{path} {NOT_A_WEIGHTS_FOLDER[0]}", NOT_A_WEIGHTS_FOLDER[1])
    try:
        state, _ = unwrapped(read_checkpoint(path), path)
    except TrialFailure as exc:
        rule, _, fix = str(exc).partition(". Fix: ")
        return rule, fix
    return None if state else (f"weights file {path} holds no tensors", SAVE_A_STATE_DICT)


def _run_problem(run_dir: Path) -> tuple[str, str] | None:
    """A run whose study has no completed trial and none running can give no weights: each trial would fail
    saying so until max_failed stopped the run. (One still running may complete a trial before ours start.)"""
    from optuna.trial import TrialState

    from searchlab.engine.rundir import open_run

    study = open_run(run_dir).study
    states = {t.state for t in study.get_trials(deepcopy=False)}
    if states & {TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING}:
        return None
    return (f"run {run_dir} (study '{study.study_name}') has no completed trial, and none running, whose weights "
            "a trial could start from", "run that study until a trial completes (searchlab status RUN says why "
            "its trials did not), or name an export or a weights file")


def _file_state(path: Path, model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A checkpoint's tensors named as this model's, and what was done to find them (recorded and said once): the
    key they were under when it was the EMA copy, a prefix common to every key that was dropped."""
    state, taken = unwrapped(read_checkpoint(path), path)
    target = set(model.state_dict())
    prefix = dropped_prefix(state, target, lambda keys: _fits_names(keys, target))
    if prefix:   # Lightning's `model.`, a wrapper's `backbone.`: without it, the names are this model's
        state = {k.removeprefix(prefix): v for k, v in state.items()}
        _note(f"weights file {path}: every tensor name began with '{prefix}', which was dropped to match this "
              "model's names (a PyTorch Lightning module or another wrapper's attribute)")
    if taken and "ema" in taken:
        _note(f"weights file {path}: its EMA weights ('{taken}') were taken, as timm's load_checkpoint does; timm's "
              "train.py picks model_best by them when EMA is on. Fix (for the raw weights): re-save "
              "checkpoint['state_dict'] alone")
    return _as_ours(state, target), {"tensors": taken if taken and "ema" in taken else None, "prefix_dropped": prefix}


def _as_ours(state: dict[str, torch.Tensor], target: Iterable[str]) -> dict[str, torch.Tensor]:
    """A plain timm state dict under the wrapper's `net.`, as this model names it."""
    if any(k.startswith("net.") for k in target) and not any(k.startswith("net.") for k in state):
        return {f"net.{k}": v for k, v in state.items()}
    return state


def _fits_names(keys: set[str], target: set[str]) -> bool:
    """Whether names, read as this model's, cover most of its tensors: a shape mismatch is load_matching's to say."""
    ours = set(_as_ours(dict.fromkeys(keys), target))   # type: ignore[arg-type]
    return 2 * len(ours & target) > len(target)


@functools.cache
def _note(text: str) -> None:
    """Said once per process: the run-start check and each trial would repeat it."""
    print(f"note: {text}", file=sys.stderr)


def load_matching(model: nn.Module, state: dict[str, torch.Tensor], source: str,
                  note: Callable[[], str | None] = lambda: None) -> list[str]:
    """Copy every non-head tensor by name; adapt RGB<->gray first convolutions and resample absolute position
    embeddings to this model's patch grid; name every misfit, after `note()`: both architectures, when the
    weights' own is known (what to make equal comes first). Returns what was resampled (said once too)."""
    if state and all(k.startswith("members.") for k in state):
        members = len({k.split(".")[1] for k in state})
        raise EnsembleWeights(f"weights '{source}' are an ensemble of {members} networks (a --top-k export, or "
                              "a trial of a study with train.cv_model: bag); transfer starts from one network. Fix: "
                              "export one trial (searchlab export RUN --trial N) and give that export; a trial of "
                              "a study with train.cv_model: bag is itself an ensemble: export from one with "
                              "cv_model: refit")
    target = model.state_dict()
    missing, misfits, loaded, resampled = [], [], {}, []
    for name, tensor in target.items():
        if name.startswith(model.head_prefix):
            continue
        if name not in state:
            missing.append(name)
            continue
        value = _adapt_channels(state[name], tensor.shape)
        if value is None and (value := _resampled_pos_embed(model, name, state[name], tensor.shape)) is not None:
            resampled.append(f"{name.removeprefix('net.')} {tuple(state[name].shape)} -> {tuple(tensor.shape)}")
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
    _check_finite(loaded, source)
    model.load_state_dict(loaded, strict=False)
    if resampled:
        _note(f"weights '{source}': position embeddings resampled to this model's patch grid (timm's "
              f"resample_abs_pos_embed, bicubic, as timm does for another img_size): {', '.join(resampled)}")
    return [f"resampled {text}" for text in resampled]


POSITION_EMBEDDINGS = ("pos_embed",)   # timm's absolute position embeddings: ViT, DeiT, EVA, BEiT v2 with abs. pos.


def _resampled_pos_embed(model: nn.Module, name: str, value: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """An absolute position embedding trained on another image size, resampled to this model's patch grid as
    timm's own checkpoint filters do; None unless only the number of patch tokens differs (the prefix tokens and
    width must match: another width or token layout is another architecture, refused by the caller)."""
    inner = getattr(model, "net", model)
    grid = getattr(getattr(inner, "patch_embed", None), "grid_size", None)
    if name.rsplit(".", 1)[-1] not in POSITION_EMBEDDINGS or grid is None or value.ndim != 3 or len(shape) != 3 \
            or value.shape[0] != shape[0] or value.shape[2] != shape[2]:
        return None
    prefix = 0 if getattr(inner, "no_embed_class", False) else int(getattr(inner, "num_prefix_tokens", 1))
    side = math.isqrt(max(value.shape[1] - prefix, 0))
    if shape[1] != prefix + grid[0] * grid[1] or side * side != value.shape[1] - prefix or side == 0:
        return None   # a non-square source grid cannot be told from its token count alone
    from timm.layers import resample_abs_pos_embed

    return resample_abs_pos_embed(value.float(), new_size=list(grid), old_size=[side, side],
                                  num_prefix_tokens=prefix, verbose=False).to(value.dtype)


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

