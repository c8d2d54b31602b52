"""Model definitions, all torch-only (timm for timm backbones).

standalone.py holds the shared classifier code (plain CNN, ensembles, loading, prediction), safetensors_reading.py
how an export's weights and config.json are read, image_files.py how image files are read, fine_tuning.py how
fine-tuned weights are saved and whole_folder.py how their folder is written whole; the other architectures live
in their own files (timm_backbone.py, row_rnn.py, zen.py, cells.py, nni_model.py) and register here. A classifier
export's model.py is standalone.py (with the reader's body for its import of it) followed by the bodies of those
shared files and of the architectures its config.json names (`model_source()`); a generator export's holds the
reader, gan_common.py and its family's generator, and loading and sampling (`generator_source()`): one file,
torch only, that rebuilds that exported model and nothing else.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from searchlab.models import (cells, fine_tuning, gan, gan_common, gan_dcgan, gan_sampling, image_files, nni_model,
                              row_rnn, safetensors_reading, standalone, stylegan2, stylegan2_discriminator,
                              timm_backbone, whole_folder, zen)

BODY_MARKER = "# ---- model.py body ----"
# every GAN network file with a torch-only body, each after the ones it uses (the generators and discriminators)
GAN_BODIES = (("gan common", gan_common), ("dcgan generator", gan_dcgan), ("stylegan2 generator", stylegan2),
              ("stylegan2 discriminator", stylegan2_discriminator), ("gan", gan))
# family -> the body holding its generator: all a generator export's model.py needs beside gan_common's
# (sampling builds no discriminator)
GENERATOR_BODIES = {"dcgan": ("dcgan generator", gan_dcgan), "wgan_gp": ("dcgan generator", gan_dcgan),
                    "stylegan2": ("stylegan2 generator", stylegan2)}
# architecture name -> (module, class name): what the model.py of an export of that architecture must define
# and register (plain_cnn is standalone.py's own)
ARCHITECTURE_BODIES = {"timm": (timm_backbone, "TimmClassifier"), "row_rnn": (row_rnn, "RowRNN"),
                       "zen": (zen, "ZenNet"), "cells": (cells, "CellNet")}

standalone.ARCHITECTURES.update({name: getattr(module, cls) for name, (module, cls) in ARCHITECTURE_BODIES.items()})
standalone.ARCHITECTURES["nni"] = nni_model.NNIModel   # only in model.py of exports that hold an NNI model


def model_source(model_spec: dict[str, Any]) -> str:
    """The text of the model.py of an export whose config.json's "model" is `model_spec`: standalone.py (the
    reader's body for its import of safetensors_reading), the shared bodies, then the body of each architecture it
    (or an ensemble's members) names and their registration; for NNI members also the NNI builder, allowed to
    import exactly their spaces' classes ("module:Class").
    Only what the export needs: a plain CNN's model.py holds no timm, RNN, ZenNet or CellNet code."""
    parts = [_with_reader(standalone), _body("reading image files", image_files),
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


def generator_source(family: str | None = None) -> str:
    """The text of the model.py of a generator export of this GAN family (config.json's generator.family):
    gan_sampling.py's opening (docstring, imports), the safetensors reader, the shared GAN helpers, that family's
    generator (no discriminator: sampling needs none; no classifier code), then load_generator / sample_images.
    family None: every family's generator."""
    if family is not None and family not in GENERATOR_BODIES:
        raise ValueError(f"unknown GAN family {family!r} for a generator export's model.py; valid families: "
                         f"{', '.join(GENERATOR_BODIES)}. Fix: pass config.json's generator.family")
    generators = dict.fromkeys(GENERATOR_BODIES.values() if family is None else [GENERATOR_BODIES[family]])
    return "\n\n".join([_opening(gan_sampling), _body("reading an export's files", safetensors_reading),
                        _body("gan common", gan_common), *(_body(name, module) for name, module in generators),
                        _body("sampling", gan_sampling)])


def _with_reader(module: object) -> str:
    """The whole text of `module` (standalone.py) with its one searchlab import, of safetensors_reading, replaced
    by that file's body: a model.py imports no searchlab."""
    text = Path(module.__file__).read_text()
    return _replace_searchlab_imports(text, _body("reading an export's files", safetensors_reading).rstrip("\n"),
                                      expected=1).rstrip() + "\n"


def _opening(module: object) -> str:
    """The text of `module` above its body marker (docstring and imports), its searchlab imports left out: the
    names they import are defined by the bodies model.py holds."""
    return _replace_searchlab_imports(Path(module.__file__).read_text().split(BODY_MARKER, 1)[0], "").rstrip() + "\n"


def _replace_searchlab_imports(text: str, replacement: str, expected: int | None = None) -> str:
    """`text` with each module-level `from searchlab... import ...` statement (`expected` of them, if given: a
    body pasted once) replaced by the lines of `replacement`."""
    lines = text.splitlines(keepends=True)
    found = [node for node in ast.parse(text).body
             if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("searchlab")]
    if expected is not None and len(found) != expected:
        raise RuntimeError(f"{len(found)} searchlab imports where model.py assembly expects {expected}: "
                           f"{[node.module for node in found]}")
    for node in reversed(found):   # from the end, so earlier line numbers stay right
        lines[node.lineno - 1:node.end_lineno] = [replacement + "\n"] if replacement else []
    return "".join(lines)


def _body(name: str, module: object) -> str:
    text = Path(module.__file__).read_text()
    if BODY_MARKER not in text:
        raise RuntimeError(f"{module.__file__} lacks the line {BODY_MARKER!r} that starts its model.py body")
    return (f"# ---- {name} (searchlab/models/{Path(module.__file__).name}) ----\n"
            + text.split(BODY_MARKER, 1)[1].strip() + "\n")
