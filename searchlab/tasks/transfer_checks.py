"""Transfer settings checked when a run starts, on the networks the space's probes build: a setting that every
trial drawing it would fail on is refused; one that only some draws fail on (a cut-off range deeper than one
backbone, weights that fit one backbone of a choice) is warned about, since those trials fail alone. Models
the trials learn from (weights, and a generator whose images join their training data) are checked for this
study's test and validation images among theirs."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from searchlab.augment.synthetic import generator_used
from searchlab.config.load import Study
from searchlab.data.loading import files_by_split, medmnist_path
from searchlab.data.types import ImageDataset
from searchlab.errors import ConfigError, TrialFailure
from searchlab.tasks.checkpoint_files import cached_hub_file
from searchlab.export import trained_on
from searchlab.export.medmnist_sources import SPLITS, learners_of_same_set
from searchlab.models.standalone import build_model
from searchlab.tasks.classify_config import ClassifyTrialConfig
from searchlab.tasks.transfer import (EnsembleWeights, GeneratorWeights, NonFiniteWeights, architectures_note,
                                      load_matching, short_args, source_state)

SpecFor = Callable[[ClassifyTrialConfig, ImageDataset], dict[str, Any]]
MAX_BUILDS = 8   # distinct networks built to check weights against (each a few tenths of a second)


def transfer_warnings(study: Study, data: ImageDataset, specs: list[ClassifyTrialConfig],
                      spec_for: SpecFor) -> list[str]:
    networks = _Networks(spec_for, data)
    found = (_cutoff_warning(specs, networks), _weights_warning(study, specs, networks),
             *_seen_by_sources(study, data, specs), _patch_grid_warning(specs, networks), _hub_cache_warning(specs))
    return [text for text in found if text]


class _Networks:
    """Each probed network built once (by its spec), as the trial would build it."""

    def __init__(self, spec_for: SpecFor, data: ImageDataset) -> None:
        self.spec_for, self.data, self.built = spec_for, data, {}

    def key(self, spec: ClassifyTrialConfig) -> str:
        return repr(self.spec_for(spec, self.data))

    def get(self, spec: ClassifyTrialConfig) -> tuple[str, nn.Module]:
        model_spec = self.spec_for(spec, self.data)
        key = repr(model_spec)
        if key not in self.built:
            self.built[key] = build_model(model_spec)
        return _name(model_spec), self.built[key]


def _name(model_spec: dict[str, Any]) -> str:
    """'timm resnet18', or the architecture with its settings (two plain CNNs differ by width, not name)."""
    backbone = model_spec["args"].get("backbone")
    return f"{model_spec['architecture']} {backbone}" if backbone else \
        f"{model_spec['architecture']} {short_args(model_spec['args'])}"


def _cutoff_warning(specs: list[ClassifyTrialConfig], networks: _Networks) -> str | None:
    """Every drawn cut-off beyond its network: refused (the smallest named); some: warned."""
    fits, too_deep = False, []
    for spec in specs:
        if spec.model.transfer != "cutoff":
            continue
        name, model = networks.get(spec)
        depth = len(model.parameter_blocks())
        if spec.model.cutoff <= depth:
            fits = True
        else:
            too_deep.append((spec.model.cutoff, depth, name))
    if not too_deep:
        return None
    cutoff, depth, name = min(too_deep)
    if not fits:
        raise ConfigError(f"cut-off block {cutoff} (the smallest this space draws) is beyond the depth of the "
                          f"{name} network, which has {depth} blocks", key="space.model.cutoff", got=cutoff,
                          fix=f"use cut-offs from 1 to {depth}, or a deeper network")
    deepest = max(too_deep)
    return (f"space.model.cutoff: some drawn cut-offs are beyond their network's depth (e.g. {deepest[0]} on "
            f"{deepest[2]}, which has {deepest[1]} blocks): those trials fail. Fix: draw cut-offs from 1 to "
            f"{min(d for _, d, _ in too_deep)}")


def _weights_warning(study: Study, specs: list[ClassifyTrialConfig], networks: _Networks) -> str | None:
    """Weights (a file, an export, a run) loaded into each probed network: none fit, refused; some, warned."""
    fit: dict[str, set[str]] = {}
    misfit: dict[str, dict[str, str]] = {}
    states: dict[tuple[str, bool], Any] = {}   # a plain timm file reads with the wrapper's `net.` prefix or not
    checked: set[tuple[str, str]] = set()   # (weights, network): each pair loaded once
    builds = 0   # networks this check built: those the cut-off check built are checked at no cost
    for spec in specs:
        weights = spec.model.weights
        if spec.model.transfer == "scratch" or weights in (None, "timm"):
            continue
        network = networks.key(spec)
        fresh = network not in networks.built
        if (weights, network) in checked or (fresh and builds >= MAX_BUILDS):
            continue
        builds += fresh
        checked.add((weights, network))
        name, model = networks.get(spec)
        key = (weights, next(iter(model.state_dict()), "").startswith("net."))
        if key not in states:
            try:
                states[key] = source_state(spec.model, model, study.base_dir)
            except GeneratorWeights as exc:
                raise _refused(exc, weights) from None
            except TrialFailure:   # an unreadable source is checked on its own, or fails its trials saying why
                states[key] = None
        if states[key] is None:
            continue
        try:
            load_matching(model, states[key], weights, lambda: architectures_note(spec.model, study.base_dir))
            fit.setdefault(weights, set()).add(name)
        # their own fixes (export one trial; weights saved before divergence), not another architecture's
        except (EnsembleWeights, NonFiniteWeights) as exc:
            raise _refused(exc, weights) from None
        except TrialFailure as exc:
            misfit.setdefault(weights, {})[name] = str(exc).split(". Fix:")[0]
    for weights, failed in misfit.items():
        first = next(iter(failed.values()))
        if not fit.get(weights):
            raise ConfigError(first, key="space.model.weights", got=weights, fix="weights of the same architecture "
                              "and settings as the searched networks (a file per backbone: one study each)")
        return (f"space.model.weights {weights!r} fit {', '.join(sorted(fit[weights]))} but not "
                f"{', '.join(sorted(failed))}: trials of those fail ({first}). Fix: search only the networks the "
                "weights were trained as, or one study per backbone with its own weights")
    return None


def _refused(exc: TrialFailure, weights: str) -> ConfigError:
    """Weights no searched network can start from whatever it is, refused before any trial with their own fix."""
    rule, _, fix = str(exc).partition(". Fix: ")
    return ConfigError(rule, key="space.model.weights", got=weights, fix=fix)


def _patch_grid_warning(specs: list[ClassifyTrialConfig], networks: _Networks) -> str | None:
    """A patch model (ViT, DeiT, ...) whose input_size is not a multiple of its patch size: its patch convolution
    (stride = patch) never sees the last input_size % patch rows and columns (40 px, 16-px patches: a 2x2 grid, 36 %
    of the pixels unseen). Warned, not refused: such trials run and their scores honestly measure a model that
    saw less of each image; refusing is for settings that cannot work (the module's rule), and a searched
    input_size may draw a few such sizes among good ones. The warning names the nearest sizes that lose nothing."""
    lossy: dict[tuple[str, int, int], None] = {}
    builds = 0
    for spec in specs:
        size = getattr(spec.model, "input_size", None)
        if getattr(spec.model, "kind", None) != "timm" or size is None:
            continue
        fresh = networks.key(spec) not in networks.built
        if fresh and builds >= MAX_BUILDS:
            continue
        builds += fresh
        name, model = networks.get(spec)
        patch = _patch_size(model)
        if patch and size % patch:
            lossy[name, size, patch] = None
    if not lossy:
        return None
    said = "; ".join(f"{name} at input_size {size} with {patch}-px patches sees {size // patch * patch} px of each "
                     f"{size} (fix: input_size {size // patch * patch or patch} or {(size // patch + 1) * patch})"
                     for name, size, patch in lossy)
    return (f"space.model.input_size is not a multiple of the patch size: {said}; the rest of each image is never "
            "seen (a band along its right and bottom edges). Fix: an input_size that is a multiple of the patch size, "
            "as named")


def _patch_size(model: nn.Module) -> int | None:
    """A timm patch model's patch size when its patch embedding drops the remainder (no dynamic padding)."""
    embed = getattr(getattr(model, "net", model), "patch_embed", None)
    patch = getattr(embed, "patch_size", None)
    if patch is None or getattr(embed, "dynamic_img_pad", False):
        return None
    return int(patch[0] if isinstance(patch, (tuple, list)) else patch)


def _hub_cache_warning(specs: list[ClassifyTrialConfig]) -> str | None:
    """Hub weights (`weights: timm`) that are not in the local Hugging Face or torch hub cache: each trial drawing
    them downloads them, and offline fails a few seconds in. Read from the cache alone: no network call here."""
    backbones = sorted({spec.model.backbone for spec in specs   # type: ignore[attr-defined]
                        if spec.model.transfer != "scratch" and spec.model.weights == "timm"})
    absent = [name for name in backbones if _not_cached(name)]
    if not absent:
        return None
    names = ", ".join(absent)
    return (f"space.model.weights: timm's published weights for {names} are not in this machine's cache (Hugging "
            "Face hub cache, torch hub checkpoints): trials drawing them download them, and offline every one of "
            "them fails. Fix (offline): on a machine with internet save them with timm.create_model(NAME, "
            "pretrained=True) and safetensors.torch.save_file(model.state_dict(), 'NAME.safetensors'), then set "
            "model.weights to that file (a file per backbone: one study each), or copy that machine's Hugging "
            "Face cache here")


def _not_cached(backbone: str) -> bool:
    try:
        return cached_hub_file(backbone) is None
    except Exception:   # a cache layout this timm/huggingface_hub does not know: the trial will say what fails
        return False


def _seen_by_sources(study: Study, data: ImageDataset, specs: list[ClassifyTrialConfig]) -> list[str]:
    """Models (a searchlab export or run) the trials learn from whose run trained or selected on this study's
    test images, or trained on its validation images: the same data set split with another seed or other
    fractions (export/trained_on.py), or images an ancestor of the weights learned; of a MedMNIST set, a model
    of the same set or one with such a model in its lineage, when folds or a cross-validated model's val images
    meet (export/medmnist_sources.py). An export's own weights file is read as that export. One warning per
    model (and kind of leak)."""
    mine: trained_on.StudyFiles | None = None
    warnings = []
    for key, value, folded in _sources(specs):
        path = Path(value) if Path(value).is_absolute() else study.base_dir / value
        path = trained_on.export_of_file(path) or path   # an export's own weights file: what that export learned
        parts = trained_on.lineage(path) if path.is_dir() else None   # a run folder: its best, as trials take
        if key == trained_on.WEIGHTS and (unknown := trained_on.not_recorded(path)):
            warnings.append(_not_recorded_warning(value, unknown))
        # MedMNIST images are in no record of files: a lineage of folder data can hold a run of this set too
        warnings += _medmnist_leaks(study, data, key, value, path, folded) if path.is_dir() else []
        if not parts:
            continue
        if mine is None:   # files read (digested) only when some model lists what it learned
            mine = trained_on.StudyFiles(files_by_split(study.config.data, study.config.seed, study.base_dir,
                                                        ("train", "val", "test")))
        seen = {split: by for split, by in (("test", trained_on.seen_by(parts, mine, "test", trained_on.SPLITS)),
                                            ("val", trained_on.seen_by(parts, mine, "val", ("train",)))) if by}
        if seen:
            warnings.append(_leak_warning(key, value, seen, mine, study.base_dir))
        if folded and (held_out := sum(len(paths) for split in ("train", "val")
                                       for paths in trained_on.seen_by(parts, mine, split, ("train",)).values())):
            warnings.append(_folds_leak(key, value, held_out, len(mine.files["train"]) + len(mine.files["val"])))
    return warnings


def _leak_warning(key: str, value: str, seen: dict[str, dict[str | None, list[Path]]],
                  mine: trained_on.StudyFiles, base_dir: Path) -> str:
    """This study's files of each split a model learned, counted as files; for weights, by who trained on them:
    an ancestor (weights their run started from) is named, since splitting as the weights' own study did
    cannot move images that another run learned."""
    said = " and ".join(f"{sum(map(len, by.values()))} of its {len(mine.files[split])} {split} images"
                        for split, by in seen.items())
    ancestors: dict[str, dict[str, list[Path]]] = {}
    for split, by in seen.items():
        for who, paths in by.items():
            if who is not None:
                ancestors.setdefault(who, {})[split] = paths
    if key != trained_on.WEIGHTS or not ancestors:
        return _LEAK[key].format(value=value, said=said)
    own = sum(len(by.get(None, [])) for by in seen.values())
    named = "; ".join(f"{who} ({' and '.join(f'{len(paths)} {split}' for split, paths in splits.items())} images, "
                      f"e.g. {_shown(next(iter(splits.values()))[0], base_dir)})" for who, splits in ancestors.items())
    split_alike = ("for those their own run learned, in another split of it, split this study as the weights' "
                   "study did (the same seed and fractions, or split folders or a split column); for the others, ")
    return (f"{trained_on.WEIGHTS} {value!r} were trained or selected on {said}: "
            + (f"{own} by their own run, and the others " if own else "")
            + f"by models in their lineage (weights they started from, or a generator whose images they trained "
            f"on: trained_on.json {trained_on.INHERITED}), whose run learned them: "
            f"{named}. Test metrics of this study's exports would be optimistic (and selection on validation "
            "too). Fix: " + (split_alike if own else "") + "keep those images out of this study's test and "
            "validation splits (in its train split, e.g. with split folders, or out of the data), or start from "
            "weights of other data")


def _shown(path: Path, base_dir: Path) -> str:
    """A file as short as it can be named: relative to the study file's folder when inside it."""
    try:
        return str(path.resolve().relative_to(base_dir.resolve()))
    except ValueError:
        return str(path.resolve())


def _not_recorded_warning(value: str, unknown: list[dict[str, str]]) -> str:
    """Weights fine-tuned (themselves, or an ancestor) on images no record lists: the check of this study's
    splits against what they learned can only see the listed ones. Said, not refused: the run goes on."""
    return (f"{trained_on.WEIGHTS} {value!r} learned from images searchlab was not told of: "
            f"{trained_on.describe_not_recorded(unknown)}. Any count of this study's test images those weights "
            "trained or selected on (warned of apart) is a lower bound, and its test metrics may be optimistic. "
            "Fix: make sure the fine-tuning images are not among this study's test images, or start from weights "
            "whose images are recorded (a searchlab export)")


def _medmnist_leaks(study: Study, data: ImageDataset, key: str, value: str, path: Path, folded: bool) -> list[str]:
    """A model of this study's MedMNIST set (the one in `path`, or one in its lineage: a run of the set started
    from folder-trained weights has a lineage too) learned its train split (and val, when its trials
    cross-validated): said as for files when this study cross-validates, or selects on a val split those weights
    trained on."""
    file = medmnist_path(study.config.data, study.base_dir)
    learned = learners_of_same_set(path, file.name) if file is not None else {}
    sizes = {split: int(data.splits[split].images.shape[0]) for split in SPLITS if split in data.splits}
    if not learned or len(sizes) < len(SPLITS):
        return []
    if folded:
        return [_folds_leak(key, value, sum(sizes[split] for split in learned), sum(sizes.values()))]
    if "val" not in learned:   # the official splits: its train images are this study's train images, no leak
        return []
    ancestor = next((who for who in learned["val"] if who is not None), None)
    whose = "their trials" if None in learned["val"] else \
        (f"the trials of {ancestor}, in their lineage (weights their run started from, or a generator whose images "
         "it trained on),")
    return [f"{key} {value!r}: {whose} cross-validated over {file.name}'s train and val images, so they "
            f"trained on all {sizes['val']} of this study's val images, which select its trials: selection would be "
            "optimistic. Fix: start from weights of a run of this set that did not cross-validate (they learned its "
            "train split only) and has no such run in its lineage, or of other data"]


def _folds_leak(key: str, value: str, n: int, of: int) -> str:
    """Cross-validation deals train and val images into folds: one the model trained on, held out, grades a fold
    model that learned from it (its own image, or a generator's copies of it), even split as the model's study
    was."""
    whose, other = {trained_on.WEIGHTS: ("the weights' run", "start from weights of other data"),
                    trained_on.SYNTHETIC: ("the generator's GAN study", "use a generator trained on other data")}[key]
    return (f"{key} {value!r}: train.cv_folds deals this study's train and val images into folds, and {n} of the {of} "
            f"are images {whose} trained on: held out in a fold, they grade a fold model that learned from them, so "
            "these trials' fold scores are optimistic and the search favours them. Fix: drop train.cv_folds and "
            f"select on the validation split (split as that study was), or {other}")


def _sources(specs: list[ClassifyTrialConfig]) -> list[tuple[str, str, bool]]:
    """(space key, path, whether some of those trials cross-validate) of each model the probed trials learn
    from: the weights they start from, the generator export whose images they train on."""
    named: dict[tuple[str, str], bool] = {}
    for spec in specs:
        folded = spec.train.cv_folds is not None
        if spec.model.transfer != "scratch" and spec.model.weights not in (None, "timm"):
            key = (trained_on.WEIGHTS, str(spec.model.weights))
            named[key] = named.get(key, False) or folded
        if (generator := generator_used(spec.augment)) is not None:
            named[trained_on.SYNTHETIC, generator] = named.get((trained_on.SYNTHETIC, generator), False) or folded
    return sorted((key, value, folded) for (key, value), folded in named.items())


# splitting alike cannot move copies of those files that sit in another data set's own split folders
_OPTIMISTIC = ("Test metrics of this study's exports would be optimistic (and selection on validation too). Fix: "
               "split this study as the {whose} study did (the same seed and fractions, or split folders or a split "
               "column), or where the files are copies in another data set, keep them out of this study's test and "
               "validation splits, or {other}")
# Its test images anywhere in the model's run; its validation images among those the model trained on
_LEAK = {
    trained_on.WEIGHTS: "space.model.weights {value!r} were trained or selected on {said}: files of the same "
                        "content, in another split of the run that made them or copied from its data. "
                        + _OPTIMISTIC.format(whose="weights'", other="start from weights of other data"),
    trained_on.SYNTHETIC: "space.augment.synthetic {value!r}: this study has {said} among the images the generator's "
                          "GAN study trained or scored on (its val images: trained on), in another split of that run; "
                          "a GAN can reproduce its training images, which then join this study's training data. " +
                          _OPTIMISTIC.format(whose="GAN", other="use a generator trained on other data"),
}
