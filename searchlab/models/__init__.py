"""Model definitions, all torch-only (timm for timm backbones).

standalone.py holds the shared code (plain CNN, ensembles, loading, prediction), image_files.py how image files
are read, fine_tuning.py how fine-tuned weights are saved and whole_folder.py how their folder is written whole;
the other architectures live in their own files (timm_backbone.py, row_rnn.py, zen.py, cells.py, nni_model.py)
and register here. An export's model.py is standalone.py followed by the bodies of those shared files and of the
architectures its config.json names (`model_source()`): one file, torch only, that rebuilds that exported model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from searchlab.models import (cells, fine_tuning, gan, gan_common, gan_sampling, image_files, nni_model, row_rnn,
                              standalone, stylegan2, timm_backbone, whole_folder, zen)

BODY_MARKER = "# ---- model.py body ----"
# the GAN network files whose bodies a generator export's model.py holds, each after the ones it uses
GAN_BODIES = (("gan common", gan_common), ("stylegan2", stylegan2), ("gan", gan))
# architecture name -> (module, class name): what the model.py of an export of that architecture must define
# and register (plain_cnn is standalone.py's own)
ARCHITECTURE_BODIES = {"timm": (timm_backbone, "TimmClassifier"), "row_rnn": (row_rnn, "RowRNN"),
                       "zen": (zen, "ZenNet"), "cells": (cells, "CellNet")}

standalone.ARCHITECTURES.update({name: getattr(module, cls) for name, (module, cls) in ARCHITECTURE_BODIES.items()})
standalone.ARCHITECTURES["nni"] = nni_model.NNIModel   # only in model.py of exports that hold an NNI model


def model_source(model_spec: dict[str, Any]) -> str:
    """The text of the model.py of an export whose config.json's "model" is `model_spec`: standalone.py, the
    shared bodies, then the body of each architecture it (or an ensemble's members) names and their registration;
    for NNI members also the NNI builder, allowed to import exactly their spaces' classes ("module:Class").
    Only what the export needs: a plain CNN's model.py holds no timm, RNN, ZenNet or CellNet code."""
    parts = [Path(standalone.__file__).read_text().rstrip() + "\n", _body("reading image files", image_files),
             _body("writing a folder whole", whole_folder), _body("saving fine-tuned weights", fine_tuning)]
    members = members_of(model_spec)
    used = [name for name in ARCHITECTURE_BODIES if any(m.get("architecture") == name for m in members)]
    parts += [_body(f"{name} architecture", ARCHITECTURE_BODIES[name][0]) for name in used]
    if used:
        names = ", ".join(f'"{name}": {ARCHITECTURE_BODIES[name][1]}' for name in used)
        parts.append(f"ARCHITECTURES.update({{{names}}})\n")
    spaces = sorted(set(nni_spaces(model_spec)))
    if spaces:
        parts.append(_body("nni architecture", nni_model) + f"_nni_allowed_spaces = {set(spaces)!r}\n"
                     'ARCHITECTURES["nni"] = NNIModel\n')
    return "\n\n".join(parts)


def members_of(model_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The single models an exported model spec is made of: an ensemble's members, or the spec itself (a spec
    read from a run's database may be anything: what is not a dict is left out)."""
    members = model_spec.get("members", [model_spec])
    return [m for m in members if isinstance(m, dict)] if isinstance(members, list) else []


def nni_spaces(model_spec: dict[str, Any]) -> list[str]:
    """The NNI model spaces ("module:Class") an exported model (or ensemble) is built from."""
    return [m["args"]["space"] for m in members_of(model_spec) if m.get("architecture") == "nni"]


def generator_source() -> str:
    """The text of a generator export's model.py: standalone.py (the safetensors reader), the GAN networks
    (shared helpers, StyleGAN2, DCGAN and the builders, each file after what it uses), then load_generator /
    sample_images."""
    return "\n\n".join([Path(standalone.__file__).read_text().rstrip() + "\n",
                        *(_body(name, module) for name, module in GAN_BODIES), _body("sampling", gan_sampling)])


def _body(name: str, module: object) -> str:
    text = Path(module.__file__).read_text()
    if BODY_MARKER not in text:
        raise RuntimeError(f"{module.__file__} lacks the line {BODY_MARKER!r} that starts its model.py body")
    return (f"# ---- {name} (searchlab/models/{Path(module.__file__).name}) ----\n"
            + text.split(BODY_MARKER, 1)[1].strip() + "\n")
