"""NNI bridge (searchlab[nni]): an existing NNI model space searched by searchlab strategies.

A space names the ModelSpace class explicitly:

    space:
      model: {nni: "my_spaces:SmallNet", init: {base_width: 16}}

and compiles to `{kind: nni, space, init, choices: {<label>: <parameter>}}`: every mutable of the space
(`space.simplify()`: LayerChoice, InputChoice, nni.choice, MutableConv2d widths, Repeat depths, nni.uniform...)
becomes one searchlab parameter named `model.choices.<label>`, so random, TPE, evolution and any Optuna
sampler search it, and each trial trains `space.freeze(choices)` (searchlab/models/nni_model.py).
The space is built once here, with in_channels=1 / num_classes=2 stand-ins where its constructor takes them:
its choices must not depend on the data's channels or classes.
NNI is unmaintained and optional: nothing here is imported unless a study names an NNI space.
"""
from __future__ import annotations

import math
from typing import Any

from searchlab.errors import RegistryError
from searchlab.models import nni_model
from searchlab.models.nni_model import _nni_import, nni_space_instance
from searchlab.registry import import_object

# (kind, arguments) of one searchlab parameter: ("choice", values) or ("float", low, high, log, step)
Parameter = tuple[Any, ...]


def allow_nni_space(space: str) -> None:
    """Let this process build networks of `space` ("module:Class"): only for a space a study file names."""
    nni_model._nni_allowed_spaces.add(space)


def spaces_named(space_fixed: dict[str, Any]) -> set[str]:
    """The NNI spaces a study's recorded constants (setup_record.fixed_by_path) name as its model.space."""
    return {value for path, value in space_fixed.items() if path.partition(" [")[0] == "model.space"}


def space_parameters(space: str, init: dict[str, Any]) -> dict[str, Parameter]:
    """label -> parameter for every mutable of the NNI space `space` ("module:Class")."""
    nni = _nni_import_or_error()
    cls = import_object(space, "NNI model space")
    if not (isinstance(cls, type) and issubclass(cls, nni.nas.nn.pytorch.ModelSpace)):
        raise RegistryError(f"NNI model space '{space}' is not a subclass of nni.nas.nn.pytorch.ModelSpace")
    allow_nni_space(space)
    try:
        instance = nni_space_instance(space, init, in_channels=1, num_outputs=2)
    except TypeError as exc:
        raise RegistryError(f"NNI model space '{space}' cannot be built from init {init} ({exc}). Fix: give its "
                            "constructor's arguments under init") from None
    mutables = instance.simplify()
    if not mutables:
        raise RegistryError(f"NNI model space '{space}' has no mutables (nothing to search)")
    return {label: _parameter(label, mutable, space) for label, mutable in mutables.items()}


def _nni_import_or_error() -> Any:
    try:
        return _nni_import()
    except ImportError as exc:
        raise RegistryError(str(exc)) from None


def _parameter(label: str, mutable: Any, space: str) -> Parameter:
    from nni.mutable import Categorical, Numerical

    if "." in label:
        raise RegistryError(f"NNI model space '{space}': label '{label}' contains '.', which joins searchlab "
                            "parameter names. Fix: give the mutable an explicit label without dots")
    if isinstance(mutable, Categorical):
        return ("choice", list(mutable.values))
    if isinstance(mutable, Numerical) and math.isfinite(mutable.low) and math.isfinite(mutable.high):
        return ("float", float(mutable.low), float(mutable.high), bool(mutable.log_distributed),
                None if mutable.quantize is None else float(mutable.quantize))
    raise RegistryError(f"NNI model space '{space}': mutable '{label}' ({mutable!r}) has no searchlab "
                        "equivalent. Fix: use a choice or a bounded uniform/loguniform/quniform")
