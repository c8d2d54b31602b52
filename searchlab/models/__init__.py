"""Model definitions, all torch-only (timm for timm backbones).

standalone.py holds the shared code (plain CNN, timm, RNN, ensembles, loading, prediction), image_files.py
how image files are read, fine_tuning.py how fine-tuned weights are saved and whole_folder.py how their folder
is written whole; the searched
architectures live in their own files (zen.py, cells.py) and register here. An export's model.py is
standalone.py followed by those files' bodies (`model_source()`): one file that rebuilds any exported model.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from searchlab.models import (cells, fine_tuning, gan, gan_common, gan_sampling, image_files, nni_model,
                              standalone, stylegan2, whole_folder, zen)

BODY_MARKER = "# ---- model.py body ----"
# the GAN network files whose bodies a generator export's model.py holds, each after the ones it uses
GAN_BODIES = (("gan common", gan_common), ("stylegan2", stylegan2), ("gan", gan))
# architecture name -> (module, class name): what model.py must define and register
SEARCHED_ARCHITECTURES = {"zen": (zen, "ZenNet"), "cells": (cells, "CellNet")}

standalone.ARCHITECTURES.update({name: getattr(module, cls) for name, (module, cls) in SEARCHED_ARCHITECTURES.items()})
standalone.ARCHITECTURES["nni"] = nni_model.NNIModel   # only in model.py of exports that hold an NNI model


def model_source(nni_spaces: Iterable[str] = ()) -> str:
    """The text of an export's model.py: standalone.py, each architecture file's body, then their registration;
    with `nni_spaces` ("module:Class" of the NNI model spaces the export holds) also the NNI builder, allowed
    to import exactly those classes."""
    parts = [Path(standalone.__file__).read_text().rstrip() + "\n", _body("reading image files", image_files),
             _body("writing a folder whole", whole_folder), _body("saving fine-tuned weights", fine_tuning)]
    parts += [_body(f"{name} architecture", module) for name, (module, _) in SEARCHED_ARCHITECTURES.items()]
    names = ", ".join(f'"{name}": {cls}' for name, (_, cls) in SEARCHED_ARCHITECTURES.items())
    parts.append(f"ARCHITECTURES.update({{{names}}})\n")
    spaces = sorted(set(nni_spaces))
    if spaces:
        parts.append(_body("nni architecture", nni_model) + f"_nni_allowed_spaces = {set(spaces)!r}\n"
                     'ARCHITECTURES["nni"] = NNIModel\n')
    return "\n\n".join(parts)


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
