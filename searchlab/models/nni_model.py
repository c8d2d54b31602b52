"""Networks from an NNI model space (searchlab[nni]): the user's ModelSpace class, frozen to sampled choices.

The architecture's code is the user's own, so an NNI export's model.py rebuilds it by importing that class
(it needs `nni` and the user's module, besides torch). Which classes it may import is written into model.py
at export time (`_nni_allowed_spaces`), never read from config.json: a config file cannot make the loader
import a module. Inside searchlab the set starts empty and holds the spaces a study file named
(searchlab/nni_space.py `allow_nni_space`) or the user trusted on the command line (`--trust-space
module:Class` of export and report): a config.json (a MedFID feature network) or a trial's stored model spec
(export, report) naming "os:system" imported and called it, and a study database edited to name
"subprocess:Popen" as both its space and a trial's ran a command.

Everything below the body marker is concatenated into an export's model.py (torch, nn, math, Any only at
module level; helper names carry an `_nni_` prefix).
"""
from __future__ import annotations

from typing import Any

from torch import nn


def spaces_named_here() -> frozenset[str]:
    """The NNI spaces ("module:Class") this process may build: those a study file it loaded named (a run, or a
    study file given to export/report in place of its run folder) and those the user trusted (--trust-space).
    Never one a database or a config.json names alone (export/exporter.py refuse_untrusted_spaces)."""
    return frozenset(_nni_allowed_spaces)


# ---- model.py body ----
_nni_allowed_spaces: set[str] = set()   # "module:Class" of the NNI spaces this process may import


def _nni_import():
    """Import nni's model-space classes; the bridge needs none of NNI's trainers, so where pytorch_lightning
    (NNI 3's PyTorch trainer) is missing, NNI's framework is set to "none" instead of failing."""
    import importlib.util
    import os
    import warnings

    if importlib.util.find_spec("pytorch_lightning") is None:
        os.environ.setdefault("NNI_FRAMEWORK", "none")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # NNI 3 warns about every torch.nn class newer than itself
            import nni
            if importlib.util.find_spec("pytorch_lightning") is None:
                nni.set_default_framework("none")   # nni was imported before the variable was set
            import nni.nas.nn.pytorch  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"an NNI model space needs NNI ({exc}). Fix: pip install 'searchlab[nni]' "
                          "(or pip install nni)") from None
    return nni


def _nni_space_class(space: str) -> type:
    import importlib

    if space not in _nni_allowed_spaces:
        raise ValueError(f"only the NNI spaces {sorted(_nni_allowed_spaces)} may be rebuilt here, not {space!r}: "
                         "a module is imported only when a study file names it")
    _nni_import()
    module_name, _, attr = space.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise   # the user's module imports a missing package: that one is to install, not this path
        raise ModuleNotFoundError(_nni_missing_space_module(space, module_name), name=module_name) from None
    return getattr(module, attr)


def _nni_missing_space_module(space: str, module_name: str) -> str:
    """A model.py loaded where the user's space module is not on the path ended in a bare "No module named
    'my_spaces'", with nothing saying that the export holds the choices and weights but not the space's code."""
    import os

    here = globals().get("__file__")
    exported = __name__ != "searchlab.models.nni_model" and here   # this code runs as an export's model.py
    where = f" (export {os.path.dirname(os.path.abspath(here))})" if exported else ""
    holder = module_name.replace(".", "/") + ".py"
    return (f"the NNI model space {space!r} is rebuilt by importing its module {module_name!r}, which is not "
            f"importable here{where}: an NNI export holds the space's choices and weights, not its code. Fix: put "
            f"the folder holding {holder} on sys.path (sys.path.insert(0, folder)) or PYTHONPATH before loading")


def nni_space_instance(space: str, init: dict[str, Any], in_channels: int, num_outputs: int,
                       choices: dict[str, Any] | None = None) -> nn.Module:
    """The ModelSpace, constructed with `init` plus in_channels / num_classes when its constructor takes them
    and `init` does not set them; with `choices` (label -> value) constructed frozen to them, inside NNI's
    model_context, as NNI itself rebuilds a sampled model: a plain nn.Module of the user's classes."""
    import inspect

    cls = _nni_space_class(space)
    params = inspect.signature(cls.__init__).parameters
    given = {"in_channels": in_channels, "num_classes": num_outputs}
    kwargs = {**init, **{k: v for k, v in given.items() if k in params and k not in init}}
    if choices is None:
        return cls(**kwargs)
    from nni.nas.space import model_context

    with model_context(dict(choices)):
        return cls(**kwargs)


def NNIModel(in_channels: int, num_outputs: int, space: str, init: dict[str, Any],
             choices: dict[str, Any]) -> nn.Module:
    """The space's network for one sample of its choices."""
    return nni_space_instance(space, dict(init), in_channels, num_outputs, choices)
