"""The generate task: train one GAN from a sampled config, score it by MedFID (plus KID, precision, recall,
density, coverage, and the copying, duplicates and label_agreement checks a distance to the train set misses).

Reads the train split (what the GAN learns from, and MedFID's reference) and the validation split (the
real-vs-real floors, e.g. `medfid_floor` = MedFID of the validation images against the train images). A diverging
(non-finite loss) or collapsed (all samples identical) run fails with that reason; the study goes on.
Per trial, of its best evaluation (`best_iteration`): a PNG grid of samples (a row per class when conditional)
and the EMA generator's weights (safetensors) in the artifact store; the generator's spec in user attr
`generator`, the feature network's digest in `medfid_features`, and in `suspect` why the samples look copied,
collapsed or deaf to their labels.
"""
from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import save_image

from searchlab.config.load import Study
from searchlab.config.schema import MedMNISTData, ObjectiveConfig, TaskConfig
from searchlab.config.yamlsrc import KeyPath, Located
from searchlab.data import load_dataset
from searchlab.data.loading import data_advice
from searchlab.data.recorded_split import listing_unchanged, relist_of, split_as_recorded
from searchlab.data.types import ImageDataset
from searchlab.engine.context import TrialContext
from searchlab.errors import ConfigError
from searchlab.gan.features import (CACHE_DIR, PenultimateFeatures, feature_network, kept_network_note,
                                   trained_feature_count)
from searchlab.gan.metrics import Reference, SampleStats, min_real_images
from searchlab.gan.train import RealImages, build_pair, sample_unit, to_signed, train_gan
from searchlab.space import probe_configs, searchable_params
from searchlab.space.unused import describe, unused_settings
from searchlab.tasks.direction import objective_direction
from searchlab.tasks.generate_config import GenerateTrialConfig, stylegan2_trained_before_its_adam
from searchlab.tasks.generate_usage import generate_setting_default, generate_setting_used
from searchlab.tasks.gan_pace import gan_time_warning
from searchlab.tasks.parse import parse_trial
from searchlab.weights_file import save_weights

METRICS = {"medfid": "minimize", "kid": "minimize", "precision": "maximize", "recall": "maximize",
           "density": "maximize", "coverage": "maximize", "copying": "minimize", "duplicates": "minimize",
           "label_agreement": "maximize", "train_seconds": "minimize"}
COST_METRICS = ("train_seconds",)   # an objective, but not what picks a trial's best evaluation
GRID_COLUMNS = 8
# How far above what real images show a trial's copying or duplicates may be before it is flagged: 0.05 of the
# samples (27 of BreastMNIST's 546). Measured (gan/metrics.py): real images 0-0.026, trained GANs 0, a copy of
# the train set 1, ten train images repeated 1 (copying and duplicates alike).
SUSPECT_MARGIN = 0.05
# label_agreement this close to chance (1 / classes) reads as a generator ignoring its label: samples asked for
# with shuffled labels score 0.47, real validation images 0.88, trained conditional DCGANs 0.58-0.65.
CHANCE_MARGIN = 0.05


class GenerateTask:
    setting_used = staticmethod(generate_setting_used)   # another family's settings are not sampled
    trial_schema = GenerateTrialConfig   # what a setting the space leaves out runs at
    reads_budget_epochs = False   # a GAN trains train.iterations

    def __init__(self, cfg: TaskConfig) -> None:
        self.cfg = cfg
        # per process and run folder: data, reference, what real images score
        self._cache: dict[str, tuple[ImageDataset, Reference, dict[str, float]]] = {}

    def resolve_objective(self, objective: ObjectiveConfig, src: Located, at: KeyPath) -> tuple[str, str]:
        written = isinstance(src.data, dict) and "objective" in src.data
        name = objective.metric if written else "medfid"   # the schema's default (auc) is classify's
        if name not in METRICS:
            raise src.error(at, "not a metric of the generate task", got=objective.metric,
                            fix=f"one of {', '.join(METRICS)}")
        return name, objective_direction(name, METRICS[name], objective, src, at)

    @staticmethod
    def pruner_steps(study: Study) -> int:
        """The most MedFID checkpoints a trial of the space reports (train.evaluations; budget.epochs, which a GAN
        never reads, sized the pruner's warm-up past every checkpoint, so it never pruned)."""
        default = GenerateTrialConfig().train.evaluations
        return max(config.get("train", {}).get("evaluations", default)
                   for config in probe_configs(study.space, seed=study.config.seed))

    def validate_space(self, study: Study, src: Located) -> None:
        searched = {param.name: param for param, _ in searchable_params(study.space)}
        for config in probe_configs(study.space, seed=study.config.seed):
            spec = parse_trial(GenerateTrialConfig, "generate", config, src, searched, space=study.space)
            if not spec.gan.conditional and "label_agreement" in dict(study.objectives):
                raise ConfigError("label_agreement (samples in the class asked for) is measured of "
                                  "class-conditional generators only; this space makes unconditional ones",
                                  key="objective", got="label_agreement",
                                  fix="set space.gan.conditional: true, or drop label_agreement from objective")

    def prepare(self, study: Study) -> None:
        """Data, the feature network (trained once and cached when none is given) and every family the space
        can pick checked against the images, before any trial."""
        # The data's own checks first: training the feature network takes a minute, wasted on a refusal
        data = load_dataset(study.config.data, splits=("train", "val"), seed=study.config.seed,
                            base_dir=study.base_dir)
        if data.kind == "multilabel":
            raise ConfigError("the generate task needs single-label data (conditioning is on one class)",
                              key="data", got=data.kind, fix="use a binary or multi-class data set")
        # what the data's files say (copies under two labels, colour read as grey, a misspelt class), as a
        # classify run says it: a GAN learns them, and its images carry them into a classifier's training
        for advice in data_advice(study.config.data, study.config.seed, study.base_dir):
            print(f"warning: {advice}", file=sys.stderr)
        for unused in unused_settings(study.space, generate_setting_used, study.config.seed):
            print(f"warning: {describe(unused, generate_setting_default)}", file=sys.stderr)
        size_key = "data.size" if isinstance(study.config.data, MedMNISTData) else "data.image_size"
        specs = [parse_trial(GenerateTrialConfig, "generate", config, None)
                 for config in probe_configs(study.space, seed=study.config.seed, limit=50)]
        _check_resolutions(specs, data, size_key)
        if self.cfg.features is None and not (study.run_dir / CACHE_DIR / "config.json").is_file():
            _check_enough_images(trained_feature_count(data), data)   # a refusal is not announced as training
            print("MedFID: training its feature network on this data once (about a minute on a CPU core; "
                  "cached in the run folder, or name an export with task.features)", file=sys.stderr)
        _, reference, floors = self._reference(study)
        if reference.features.class_order is None:   # here, once per run: each worker opens the network too
            classes = ", ".join(map(repr, data.class_names))
            print(f"note: label_agreement is not measured: the MedFID feature network ({self.cfg.features}) "
                  f"has no output per class of this data ({classes})", file=sys.stderr)
        if blind := judge_at_chance_warning(floors, len(data.class_names), self.cfg.features):
            print(f"warning: {blind}", file=sys.stderr)
        earlier = _earlier_trials(study)
        _check_same_features(earlier, reference.features, self.cfg.features)
        if kept := kept_network_note(reference.features, study.run_dir, study.config.seed, bool(earlier)):
            print(f"note: {kept}", file=sys.stderr)   # here, once per run: workers open the network too
        if older := stylegan2_trained_before_its_adam(earlier):
            print(f"warning: {older}", file=sys.stderr)
        if slow := gan_time_warning(study, _real_images(data), specs):
            print(f"warning: {slow}", file=sys.stderr)

    def run(self, config: dict[str, Any], ctx: TrialContext) -> dict[str, float]:
        spec = parse_trial(GenerateTrialConfig, "generate", config, None)
        data, reference, floors = self._reference(ctx.study)
        # listed here (at this process's first trial; relist: as it is now): as the run recorded?
        record = ctx.trial.study.user_attrs.get("searchlab")
        listing_unchanged(data, record, relist_of(ctx.study))
        split_as_recorded(data, record)
        # another process of the run (a worker, a resume) may have scored its trials with another network
        _check_same_features(_finished(ctx.trial.study), reference.features, self.cfg.features)
        real = _real_images(data)
        _check_resolution(spec, data)
        # the Adam settings as they ran: left unset, they are the family's defaults, which a searchlab may change
        ctx.record(generator=_generator_spec(spec, data), medfid_features=reference.features.digest,
                   adam={net: spec.adam(net) for net in ("g", "d")})
        select = next(((m, d) for m, d in ctx.study.objectives if m not in COST_METRICS), ("medfid", "minimize"))
        device = ctx.device   # a cuda trial that sees no GPU fails here, saying why
        ctx.record(device=str(device))
        result = train_gan(spec, real, reference, ctx.seed, ctx.report, ctx.out_of_time, select, device)
        if result.iterations < spec.train.iterations:   # a shorter GAN scores worse, never better by luck: kept
            ctx.record(cut_short=f"stopped by budget.timeout at iteration {result.iterations} of "
                                 f"{spec.train.iterations}")
        if suspect := suspicions(result.stats, floors, len(data.class_names)):
            print(f"warning: trial {ctx.trial.number}: {suspect}", file=sys.stderr)
            ctx.record(suspect=suspect)
        ctx.record(samples=_store_grid(result.generator, spec, data, ctx), evaluations=result.evaluations,
                   checkpoint=_store_generator(result.generator, ctx))
        shown = {k: v for k, v in floors.items() if spec.gan.conditional or k != "label_agreement_floor"}
        # as many samples as train images (gan/train.py evaluate): beside medfid_floor_images, which FID depends on
        return {**result.stats.as_dict(), **shown, "medfid_samples": float(len(real.labels)),
                "train_seconds": result.train_seconds,
                "iterations": float(result.iterations), "best_iteration": float(result.best_iteration)}

    def _reference(self, study: Study) -> tuple[ImageDataset, Reference, dict[str, float]]:
        key = str(study.run_dir.resolve())
        if key not in self._cache:
            data = load_dataset(study.config.data, splits=("train", "val"), seed=study.config.seed,
                                base_dir=study.base_dir)
            if self.cfg.features is None:   # before training the feature network a minute for nothing
                _check_enough_images(trained_feature_count(data), data)
            # a network trained here is checked against the run's scored trials before it is cached
            features = feature_network(self.cfg.features, study.base_dir, study.run_dir, data, study.config.seed,
                                       accept=lambda net: _check_same_features(_earlier_trials(study), net, None))
            _check_enough_images(features.num_features, data)
            reference = Reference(features, _unit(data, "train"))
            floors = reference.floors(_unit(data, "val"), data.splits["val"].labels.long())
            self._cache[key] = (data, reference, floors)
        return self._cache[key]


def suspicions(stats: SampleStats, floors: dict[str, float], n_classes: int) -> str:
    """Why a trial's samples look copied from the train set, collapsed onto a few images, or made without
    regard to their label ("" when none): each score against what real images show (the floors)."""
    said = []
    if stats.copying > floors["copying_floor"] + SUSPECT_MARGIN:
        said.append(f"copies training images: {stats.copying:.0%} of its samples are near-copies of one (real "
                    f"held-out images: {floors['copying_floor']:.0%}); a privacy risk on patients' images, and "
                    "MedFID, KID, precision and recall reward it")
    if stats.duplicates > floors["duplicates_floor"] + SUSPECT_MARGIN:
        said.append(f"collapses: {stats.duplicates:.0%} of its samples are near-duplicates of another sample "
                    f"(real images: {floors['duplicates_floor']:.0%})")
    agreement = stats.label_agreement
    # a judge at chance on real images cannot tell a deaf generator from one that heeds its labels (said at start)
    if agreement is not None and _at_chance(agreement, n_classes) and not _judge_at_chance(floors, n_classes):
        said.append(f"ignores its labels: the feature network's classifier puts {agreement:.0%} of its samples "
                    f"in the class asked for (chance: {1 / n_classes:.0%}; real validation images: "
                    f"{floors.get('label_agreement_floor', math.nan):.0%})")
    return "; ".join(said)


def _at_chance(agreement: float, n_classes: int) -> bool:
    return agreement <= 1 / n_classes + CHANCE_MARGIN


def _judge_at_chance(floors: dict[str, float], n_classes: int) -> bool:
    """Whether the feature network's classifier is itself at chance on real validation images."""
    floor = floors.get("label_agreement_floor")
    return floor is not None and _at_chance(floor, n_classes)


def judge_at_chance_warning(floors: dict[str, float], n_classes: int, named: str | None) -> str:
    """Why a feature network whose classifier is at chance on real validation images ("" when it is not) makes
    label_agreement (and MedFID) say little: the audit's 1-epoch export scored real images 52% on two classes,
    and its trials were blamed for ignoring their labels at 50%."""
    if not _judge_at_chance(floors, n_classes):
        return ""
    source = f"task.features ({named})" if named else f"the network trained for MedFID ({CACHE_DIR}/ in the run folder)"
    fix = ("train the classifier exported as task.features longer (more budget.epochs) or name a better export"
           if named else "name as task.features a classifier export of this data that tells its classes apart")
    # below chance too (the 1-epoch export of tests/test_synthetic_leak.py: 0%): it would fail a generator that obeys
    return (f"the MedFID feature network, {source}, puts only {floors['label_agreement_floor']:.0%} of the real "
            f"validation images in their own class (label_agreement_floor), no more than "
            f"{CHANCE_MARGIN * 100:.0f} points above chance ({1 / n_classes:.0%}), so its label_agreement cannot "
            f"judge the generators (no trial is marked as ignoring its labels) and its MedFID means little. "
            f"Fix: {fix}")


def _finished(ostudy: Any) -> list[Any]:
    from optuna.trial import TrialState

    return ostudy.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def _earlier_trials(study: Study) -> list[Any]:
    """The run's scored trials before this run starts, or [] when it has no study yet (prepare runs first)."""
    import optuna

    from searchlab.engine.storage import close_connections, open_storage

    url = study.storage_url
    for prefix in ("sqlite:///", "journal://"):
        if url.startswith(prefix) and not Path(url.removeprefix(prefix)).is_file():
            return []   # no run yet (opening it would create the file)
    storage = open_storage(url)
    try:
        return _finished(optuna.load_study(study_name=study.config.name, storage=storage))
    except KeyError:   # a storage without this study
        return []
    finally:
        close_connections(storage)


def _check_same_features(trials: list[Any], features: PenultimateFeatures, named: str | None) -> None:
    """Trials scored in another feature space than this run's must not be ranked with its trials."""
    others = sorted({t.user_attrs["medfid_features"] for t in trials
                     if t.user_attrs.get("medfid_features", features.digest) != features.digest})
    if not others:
        return
    source = f"the export {named}" if named else f"the network cached in the run folder ({CACHE_DIR}/)"
    raise ConfigError(f"this run's trials were scored with MedFID feature network {', '.join(others)}, but "
                      f"{source} is {features.digest} now (retrained, or another export at that path): new "
                      "trials' MedFID, KID and the rest would be ranked against scores of another feature space",
                      key="task.features", got=named or features.digest,
                      fix="restore the feature network the trials used (the same task.features export, or the "
                          f"run's {CACHE_DIR}/ folder), or start a new run_dir for the new one")


def _real_images(data: ImageDataset) -> RealImages:
    """The train split as the GAN learns from it."""
    train_split = data.splits["train"]
    return RealImages(to_signed(train_split.images), train_split.labels.long(), len(data.class_names))


def _unit(data: ImageDataset, split: str) -> torch.Tensor:
    return data.splits[split].images.float() / 255.0


def _check_enough_images(num_features: int, data: ImageDataset) -> None:
    need = min_real_images(num_features)
    for split in ("train", "val"):
        have = len(data.splits[split])
        if have < need:
            larger = ("a larger data.val_fraction" if split == "val" else
                      "smaller data.val_fraction and data.test_fraction")   # train gets what they leave
            raise ConfigError(f"MedFID in a {num_features}-dimensional feature space needs at least {need} "
                              f"real images per split (a full-rank covariance); the {split} split has {have}",
                              key="data", got=have, fix=f"use more images (or {larger}, when searchlab draws "
                              "the splits of folder or csv data), or a feature network with fewer features "
                              "(task.features)")


def _check_resolution(spec: GenerateTrialConfig, data: ImageDataset, size_key: str = "data.size") -> None:
    _check_resolutions([spec], data, size_key)


def _check_resolutions(specs: list[GenerateTrialConfig], data: ImageDataset, size_key: str) -> None:
    """Every family the space can pick, against the data's image size. Leaving a family out is offered only when
    another family of the space makes that size: all of them share one size rule (models/gan_common.py
    _gan_plan), so at 36 px dropping dcgan only brought the same refusal for stylegan2."""
    refused: dict[str, str] = {}
    for spec in specs:
        if spec.gan.family not in refused and (why := _why_refused(spec, data, data.image_size)):
            refused[spec.gan.family] = why
    if not refused:
        return
    h, w = data.image_size
    names = ", ".join(sorted(refused))
    takers = ", ".join(sorted({spec.gan.family for spec in specs} - set(refused)))
    refusing = [spec for spec in specs if spec.gan.family in refused]
    sizes = " or ".join(str(size) for size in _nearest_sizes(refusing, data, max(h, w)))
    rule = (f"the GAN {'family' if len(refused) == 1 else 'families'} {names} (space.gan.family) cannot generate "
            f"this data's {h}x{w} images: {next(iter(refused.values()))}")
    if takers:
        fix = (f"resize the data ({size_key}) to {sizes} px, or leave {names} out of space.gan.family ({takers} "
               f"can make {h}x{w} images)")
    else:
        rule += f"; no GAN family in the space ({names}) can make {h}x{w} images"
        fix = f"resize the data ({size_key}) to {sizes} px, the nearest sizes {names} can make"
    raise ConfigError(rule, key=size_key, got=h if h == w else f"{h}x{w}", fix=fix)


def _why_refused(spec: GenerateTrialConfig, data: ImageDataset, size: tuple[int, int]) -> str | None:
    """Why the spec's networks cannot be built for images of this size, or None when they can."""
    h, w = size
    if h != w:
        return f"the images are {h}x{w}; the GAN families make square images"
    try:
        build_pair(spec, h, data.channels, len(data.class_names))
    except ValueError as exc:
        return str(exc)
    return None


def _nearest_sizes(specs: list[GenerateTrialConfig], data: ImageDataset, size: int) -> list[int]:
    """The nearest square sizes below and above `size` that every one of these specs' families can make (found by
    building them, so a family with a rule of its own is asked, not assumed): 36 -> [32, 40]."""
    one_per_family = list({spec.gan.family: spec for spec in specs}.values())

    def makes(side: int) -> bool:
        return all(_why_refused(spec, data, (side, side)) is None for spec in one_per_family)

    if makes(size):   # non-square images whose longer side the families make
        return [size]
    below = next((side for side in range(size - 1, 0, -1) if makes(side)), None)
    above = next((side for side in range(size + 1, 2 * size + 9) if makes(side)), None)
    return [side for side in (below, above) if side is not None]


def _generator_spec(spec: GenerateTrialConfig, data: ImageDataset) -> dict[str, Any]:
    return {"family": spec.gan.family, "image_size": data.image_size[0], "channels": data.channels,
            "args": spec.gan.generator_args(len(data.class_names)), "class_names": list(data.class_names)}


def _store_grid(G: torch.nn.Module, spec: GenerateTrialConfig, data: ImageDataset, ctx: TrialContext) -> str:
    """A PNG of samples: 8 x 8, or 8 per class in a row per class when conditional."""
    classes = len(data.class_names) if spec.gan.conditional else 1
    labels = torch.arange(classes).repeat_interleave(GRID_COLUMNS) if classes > 1 else torch.zeros(64, dtype=torch.long)
    images = sample_unit(G, labels, spec.gan.conditional, ctx.seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"trial-{ctx.trial.number}-samples.png"
        save_image(images, str(path), nrow=GRID_COLUMNS, padding=2)
        return ctx.store_file(path, mimetype="image/png")


def _store_generator(G: torch.nn.Module, ctx: TrialContext) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"trial-{ctx.trial.number}-generator.safetensors"
        save_weights(G.state_dict(), path)
        return ctx.store_file(path)
