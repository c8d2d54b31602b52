"""The generate task: train one GAN from a sampled config, score it by MedFID (plus KID, precision, recall).

Reads the train split (what the GAN learns from, and MedFID's reference) and the validation split (the
real-vs-real floor, `medfid_floor` = MedFID of the validation images against the train images). A diverging
(non-finite loss) or collapsed (all samples identical) run fails with that reason; the study goes on.
Per trial: a PNG grid of samples (a row per class when conditional) and the EMA generator's weights
(safetensors) in the artifact store, the generator's spec in user attr `generator`.
"""
from __future__ import annotations

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
from searchlab.data.types import ImageDataset
from searchlab.engine.context import TrialContext
from searchlab.errors import ConfigError
from searchlab.gan.features import CACHE_DIR, feature_network, trained_feature_count
from searchlab.gan.metrics import Reference, min_real_images
from searchlab.gan.train import RealImages, build_pair, sample_unit, to_signed, train_gan
from searchlab.space import probe_configs, searchable_params
from searchlab.space.unused import describe, unused_settings
from searchlab.tasks.direction import objective_direction
from searchlab.tasks.generate_config import GenerateTrialConfig
from searchlab.tasks.generate_usage import generate_setting_default, generate_setting_used
from searchlab.tasks.parse import parse_trial
from searchlab.weights_file import save_weights

METRICS = {"medfid": "minimize", "kid": "minimize", "precision": "maximize", "recall": "maximize",
           "train_seconds": "minimize"}
GRID_COLUMNS = 8


class GenerateTask:
    setting_used = staticmethod(generate_setting_used)   # another family's settings are not sampled
    trial_schema = GenerateTrialConfig   # what a setting the space leaves out runs at
    reads_budget_epochs = False   # a GAN trains train.iterations

    def __init__(self, cfg: TaskConfig) -> None:
        self.cfg = cfg
        self._cache: dict[str, tuple[ImageDataset, Reference, float]] = {}   # per process: data, reference, floor

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
            parse_trial(GenerateTrialConfig, "generate", config, src, searched)

    def prepare(self, study: Study) -> None:
        """Data, the feature network (trained once and cached when none is given) and every family the space
        can pick checked against the images, before any trial."""
        # The data's own checks first: training the feature network takes a minute, wasted on a refusal
        data = load_dataset(study.config.data, splits=("train", "val"), seed=study.config.seed,
                            base_dir=study.base_dir)
        if data.kind == "multilabel":
            raise ConfigError("the generate task needs single-label data (conditioning is on one class)",
                              key="data", got=data.kind, fix="use a binary or multi-class data set")
        for unused in unused_settings(study.space, generate_setting_used, study.config.seed):
            print(f"warning: {describe(unused, generate_setting_default)}", file=sys.stderr)
        size_key = "data.size" if isinstance(study.config.data, MedMNISTData) else "data.image_size"
        for config in probe_configs(study.space, seed=study.config.seed, limit=50):
            _check_resolution(parse_trial(GenerateTrialConfig, "generate", config, None), data, size_key)
        if self.cfg.features is None and not (study.run_dir / CACHE_DIR / "config.json").is_file():
            print("MedFID: training its feature network on this data once (about a minute on a CPU core; "
                  "cached in the run folder, or name an export with task.features)", file=sys.stderr)
        self._reference(study)

    def run(self, config: dict[str, Any], ctx: TrialContext) -> dict[str, float]:
        spec = parse_trial(GenerateTrialConfig, "generate", config, None)
        data, reference, floor = self._reference(ctx.study)
        train_split = data.splits["train"]
        real = RealImages(to_signed(train_split.images), train_split.labels.long(), len(data.class_names))
        _check_resolution(spec, data)
        ctx.record(generator=_generator_spec(spec, data))
        result = train_gan(spec, real, reference, ctx.seed, ctx.report, ctx.out_of_time)
        if result.iterations < spec.train.iterations:   # a shorter GAN scores worse, never better by luck: kept
            ctx.record(cut_short=f"stopped by budget.timeout at iteration {result.iterations} of "
                                 f"{spec.train.iterations}")
        ctx.record(samples=_store_grid(result.generator, spec, data, ctx), evaluations=result.evaluations,
                   checkpoint=_store_generator(result.generator, ctx))
        return {**result.stats.as_dict(), "medfid_floor": floor, "train_seconds": result.train_seconds,
                "iterations": float(result.iterations)}

    def _reference(self, study: Study) -> tuple[ImageDataset, Reference, float]:
        key = str(study.run_dir.resolve())
        if key not in self._cache:
            data = load_dataset(study.config.data, splits=("train", "val"), seed=study.config.seed,
                                base_dir=study.base_dir)
            if self.cfg.features is None:   # before training the feature network a minute for nothing
                _check_enough_images(trained_feature_count(data), data)
            features = feature_network(self.cfg.features, study.base_dir, study.run_dir, data, study.config.seed)
            _check_enough_images(features.num_features, data)
            reference = Reference(features, _unit(data, "train"))
            floor = reference.score(_unit(data, "val")).medfid
            self._cache[key] = (data, reference, floor)
        return self._cache[key]


def _unit(data: ImageDataset, split: str) -> torch.Tensor:
    return data.splits[split].images.float() / 255.0


def _check_enough_images(num_features: int, data: ImageDataset) -> None:
    need = min_real_images(num_features)
    for split in ("train", "val"):
        have = len(data.splits[split])
        if have < need:
            raise ConfigError(f"MedFID in a {num_features}-dimensional feature space needs at least {need} "
                              f"real images per split (a full-rank covariance); the {split} split has {have}",
                              key="data", got=have, fix=f"use more images (or a larger data.{split}_fraction, when "
                              "searchlab draws the split), or a feature network with fewer features (task.features)")


def _check_resolution(spec: GenerateTrialConfig, data: ImageDataset, size_key: str = "data.size") -> None:
    h, w = data.image_size
    try:
        if h != w:
            raise ValueError(f"the images are {h}x{w}; the GAN families make square images")
        build_pair(spec, h, data.channels, len(data.class_names))
    except ValueError as exc:
        raise ConfigError(f"{spec.gan.family} cannot generate this data's {h}x{w} images: {exc}",
                          key="space.gan.family", got=spec.gan.family,
                          fix=f"resize the data ({size_key}) to e.g. 28, 32 or 64 px") from None


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
