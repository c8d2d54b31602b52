"""The classify task: train one model from a sampled config, report per epoch, store the checkpoint.

Reads the train and validation splits only; the test split is opened by `searchlab export` alone.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from safetensors.torch import save_file
from torch.utils.flop_counter import FlopCounterMode

from searchlab.config.load import Study
from searchlab.config.schema import ObjectiveConfig, TaskConfig
from searchlab.config.yamlsrc import KeyPath, Located, dotted
from searchlab.data import load_dataset
from searchlab.data.types import ImageDataset
from searchlab.engine.context import TrialContext
from searchlab.errors import RegistryError, TrialFailure
from searchlab.metrics import metric_info
from searchlab.models.standalone import build_model
from searchlab.space import probe_configs, searchable_params
from searchlab.tasks.classify_config import ClassifyTrialConfig
from searchlab.tasks.train import Batches, make_recipe, train
from searchlab.tasks.transfer import apply_transfer

# Costs measured for every trial; objectives may name them (e.g. maximise auc, minimise flops).
COST_METRICS = {"params": "minimize", "flops": "minimize", "train_seconds": "minimize",
                "images_per_second": "maximize"}


class ClassifyTask:
    def __init__(self, cfg: TaskConfig) -> None:
        self.cfg = cfg

    def resolve_objective(self, objective: ObjectiveConfig, src: Located, at: KeyPath) -> tuple[str, str]:
        name = objective.metric
        if name in COST_METRICS:
            natural = COST_METRICS[name]
        else:
            try:
                natural = metric_info(name).direction
            except RegistryError as exc:
                raise src.error(at, f"{exc}; or a cost: {', '.join(COST_METRICS)}", got=name,
                                fix="name one of the metrics listed") from None
        return name, objective.direction or natural

    def validate_space(self, study: Study, src: Located) -> None:
        """Every choice and both ends of every range, through the trial schema, before any training."""
        searched = {param.name: param for param, _ in searchable_params(study.space)}
        for config in probe_configs(study.space, seed=study.config.seed):
            parse_trial_config(config, src, searched)

    def prepare(self, study: Study) -> None:
        """Load train/val once (a missing or corrupt file stops the run here, not in every trial)."""
        data = _train_val(study)
        for metric, _ in study.objectives:
            if metric not in COST_METRICS:
                metric_info(metric, data.kind)   # e.g. sensitivity on a multi-class set: a clear error

    def run(self, config: dict[str, Any], ctx: TrialContext) -> dict[str, float]:
        spec = parse_trial_config(config, None)
        data = _train_val(ctx.study)
        batches = make_batches(data)
        torch.manual_seed(ctx.seed)
        model_spec = model_spec_for(spec, data)
        model = build_model(model_spec)
        costs = measure_costs(model, data)
        ctx.record(model_spec=model_spec, preprocessing=batches.preprocessing, class_names=list(data.class_names),
                   task_kind=data.kind, **costs)
        epochs = spec.train.epochs or ctx.study.config.budget.epochs
        select = next(((m, d) for m, d in ctx.study.objectives if m not in COST_METRICS), ("auc", "maximize"))
        groups = apply_transfer(model, spec.model, ctx.study.base_dir)
        recipe = make_recipe(batches, spec.augment, spec.imbalance, spec.train.label_smoothing)
        result = train(model, batches, recipe, spec.optim, spec.train, epochs, ctx.seed, select, ctx.report,
                       ctx.out_of_time, groups=groups, cached_features=spec.model.transfer == "features")
        metrics = {**result.metrics, **costs, "best_epoch": result.best_epoch, "epochs_trained": result.epochs_trained,
                   "train_seconds": result.train_seconds,
                   "images_per_second": result.images_seen / max(result.train_seconds, 1e-9)}
        ctx.record(checkpoint=store_checkpoint(result.state, ctx), threshold=result.threshold)
        return metrics


def _train_val(study: Study) -> ImageDataset:
    return load_dataset(study.config.data, splits=("train", "val"), seed=study.config.seed, base_dir=study.base_dir)


def parse_trial_config(config: dict[str, Any], src: Located | None,
                       searched: dict[str, Any] | None = None) -> ClassifyTrialConfig:
    """The sampled dict through the classify schema; errors name the space key and the value."""
    try:
        return ClassifyTrialConfig.model_validate(config)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = list(err["loc"])
        if len(loc) > 1 and loc[0] == "model" and loc[1] in ("cnn", "timm"):
            del loc[1]   # pydantic's union tag, not a key the user wrote
        key = dotted(tuple(loc))
        rule = f"not a valid classify config: {err['msg'].removeprefix('Value error, ')}"
        fix = "check this parameter's range or choices in the space"
        param = (searched or {}).get(key)
        if param is not None:
            span = param.choices if hasattr(param, "choices") else [param.low, param.high]
            fix = f"the space searches {list(span)} for '{key}'; keep it within what the classify task accepts"
        if err["type"] == "extra_forbidden":
            rule, fix = "the classify task has no such setting", "remove it or fix its spelling"
        if src is None:
            raise TrialFailure(f"space.{key}: {rule} (got {err.get('input')!r})") from None
        raise src.error(("space",) + tuple(key.split(".")), rule, got=err.get("input", ...), fix=fix) from None


def make_batches(data: ImageDataset) -> Batches:
    train_split = data.splits["train"]
    x = train_split.images.to(torch.float32) / 255.0
    mean = x.mean(dim=(0, 2, 3)).tolist()
    std = x.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist()
    return Batches(train=train_split, val=data.splits["val"], kind=data.kind, n_classes=len(data.class_names),
                   preprocessing={"mean": mean, "std": std})


def model_spec_for(spec: ClassifyTrialConfig, data: ImageDataset) -> dict[str, Any]:
    architecture, args = spec.model.architecture()
    outputs = 2 if data.kind == "binary" else len(data.class_names)
    return {"architecture": architecture, "args": args, "in_channels": data.channels, "num_outputs": outputs}


def measure_costs(model: torch.nn.Module, data: ImageDataset) -> dict[str, float]:
    """Parameters and forward FLOPs per image (torch's own counter; a multiply-add counts as 2)."""
    params = sum(p.numel() for p in model.parameters())
    h, w = data.image_size
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, data.channels, h, w))
    return {"params": float(params), "flops": float(counter.get_total_flops())}


def store_checkpoint(state: dict[str, torch.Tensor], ctx: TrialContext) -> str:
    """Best-epoch weights as safetensors in the artifact store (never a pickle)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"trial-{ctx.trial.number}.safetensors"
        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
        return ctx.store_file(path)
