"""The classify task: train one model from a sampled config, report per epoch, store the checkpoint.

Reads the train and validation splits only; the test split is opened by `searchlab export` alone.
"""
from __future__ import annotations

import math
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch

from searchlab.augment.synthetic import generator_doubt, generator_mismatch, with_synthetic
from searchlab.config.load import Study
from searchlab.config.schema import ObjectiveConfig, TaskConfig
from searchlab.config.yamlsrc import KeyPath, Located
from searchlab.data import check_test_images, data_advice, load_dataset
from searchlab.data.common import UnreadableImages
from searchlab.data.recorded_split import listing_unchanged, relist_of, split_as_recorded
from searchlab.data.loading import data_kind
from searchlab.data.types import ImageDataset
from searchlab.engine.context import TrialContext
from searchlab.errors import ConfigError, RegistryError
from searchlab.imbalance import choose_threshold
from searchlab.metrics import METRICS, metric_info
from searchlab.models.standalone import build_model
from searchlab.nni_space import allow_nni_space
from searchlab.space import Group, cheapest_config, probe_configs, searchable_params
from searchlab.space.point_usage import unused_point_settings
from searchlab.space.sample import UsedRule
from searchlab.suggest import did_you_mean
from searchlab.tasks.direction import objective_direction
from searchlab.tasks.classify_config import ClassifyTrialConfig
from searchlab.tasks.classify_usage import classify_setting_used, multiclass_setting_used, unused_setting_warnings
from searchlab.tasks.costs import (COST_METRICS, analytic_costs, budget_excess, check_budget, draws_over_budget_warning,
                                   measure_costs)
from searchlab.tasks.augment_advice import (double_correction_warning, neural_augment_warning,
                                            patch_curriculum_warning, unweighted_warning)
from searchlab.tasks.bagging import bag_model_spec, bag_record, bag_result
from searchlab.tasks.crossval import (CrossFoldThresholds, CVResult, cross_validate, cv_splits, progress_steps,
                                      repeated_splits)
from searchlab.tasks.data_checks import (check_folds_within_classes, check_metric_fits_data,
                                         check_objectives_defined_on_val, number_named_class_warning)
from searchlab.tasks.pace import timed_config, trial_time_warning
from searchlab.tasks.cells_checks import (cells_limits, check_reductions_within_cells, check_same_cell_nodes,
                                          outputs_constant)
from searchlab.tasks.parse import check_searched_values, parse_trial
from searchlab.tasks.selection_advice import (best_epoch_cv_warning, one_sided_objective_warning, positive_class_note,
                                              small_validation_warning, threshold_selection_warning,
                                              unchoosable_threshold_warning, untrainable_class_warning)
from searchlab.tasks.shape_advice import too_deep_warning
from searchlab.tasks.speed import resolve_precision
from searchlab.tasks.train import Batches, Selection, TrainResult, make_recipe, normalisation, train
from searchlab.tasks.transfer import apply_transfer, weights_problem
from searchlab.tasks.transfer_checks import transfer_warnings
from searchlab.weights_file import save_weights

# A per-class metric written with the class's name (f1_class_carcinoma, or auc_malignant): the data (read
# later) says its index
_PER_CLASS_BY_NAME = re.compile(r"(f1|auc|recall)_(class_.*\D.*|(?!class_).+)")
# other tools' names for metrics searchlab has under another name
_ALIASES = {"exact_match": "accuracy (multi-label accuracy is exact match)", "subset_accuracy": "accuracy",
            "hamming": "hamming_loss", "roc_auc": "auc", "auroc": "auc", "bacc": "balanced_accuracy",
            "ap": "average_precision", "tpr": "sensitivity", "tnr": "specificity", "recall_macro": "recall"}
_UNION_TAGS = ("cnn", "timm", "rnn", "zen", "cells", "nni")   # model kinds: in pydantic's locations, not the YAML's
_NOT_COUNTED = " (cells networks whose last cell has only `none` ops are not counted: they output a constant)"
BUDGET_PROBES = 100    # configs probed for one that fits the architecture budgets before any trial


@dataclass(frozen=True)
class Candidate:
    build: Callable[[], torch.nn.Module]      # a fresh, untrained network each call
    channels: int
    image_size: tuple[int, int]
    costs: dict[str, float]                   # params, flops, depth
    description: str                          # the readable architecture, "" for fixed models
    outputs: int                              # the classifier's outputs


class ClassifyTask:
    setting_used = staticmethod(classify_setting_used)   # settings without effect are not sampled
    trial_schema = ClassifyTrialConfig   # what a setting the space leaves out runs at

    def __init__(self, cfg: TaskConfig) -> None:
        self.cfg = cfg

    @staticmethod
    def setting_used_for(study: Study) -> UsedRule:
        """Multi-class data leaves imbalance.threshold out too (read from the data's description, once)."""
        kind = data_kind(study.config.data, study.config.seed, study.base_dir)
        return multiclass_setting_used if kind == "multiclass" else classify_setting_used

    def resolve_objective(self, objective: ObjectiveConfig, src: Located, at: KeyPath) -> tuple[str, str]:
        name = objective.metric
        if name in COST_METRICS:
            natural = COST_METRICS[name]
        else:
            try:
                natural = metric_info(name).direction
            except RegistryError as exc:
                if _PER_CLASS_BY_NAME.fullmatch(name):   # e.g. f1_class_carcinoma: prepare names the index
                    return name, objective.direction or "maximize"
                alias = _ALIASES.get(name.lower())
                close = did_you_mean(name, [*METRICS, *COST_METRICS])   # AUC: auc
                raise src.error(at, f"{exc}; or a cost: {', '.join(COST_METRICS)}", got=name,
                                fix=f"{alias}, as searchlab names it" if alias else close or "name one of the "
                                "metrics listed") from None
        return name, objective_direction(name, natural, objective, src, at)

    def validate_space(self, study: Study, src: Located) -> None:
        """Every choice and both ends of every range, through the trial schema, before any training."""
        searched = {param.name: param for param, _ in searchable_params(study.space)}
        probes = list(probe_configs(study.space, seed=study.config.seed))
        # each setting's own values first: a check spanning settings would blame another key for them
        check_searched_values(ClassifyTrialConfig, "classify", probes, src, searched, _UNION_TAGS, study.space,
                              across=cells_limits(searched, probes))
        check_reductions_within_cells(searched, src)
        check_same_cell_nodes(probes, src, study.space)
        for config in probes:
            parse_trial_config(config, src, searched, study.space)

    def prepare(self, study: Study) -> None:
        """Load train/val once (a missing or corrupt file stops the run here, not in every trial)."""
        try:
            data = _train_val(study)
        except UnreadableImages as unreadable:   # with the test split's, all in one message
            check_test_images(study.config.data, study.config.seed, study.base_dir, found=unreadable)
            raise
        for metric, _ in study.objectives:
            if metric not in COST_METRICS:
                check_metric_fits_data(metric, data)
        doubts = self._check_named_files_exist(study, data)
        self._check_some_candidate_fits(study)
        probes = list(probe_configs(study.space, seed=study.config.seed))
        specs = [parse_trial_config(config, None) for config in probes]
        folds = [spec.train.cv_folds for spec in specs if spec.train.cv_folds]
        check_objectives_defined_on_val(study, data, cross_validated=bool(folds))
        check_folds_within_classes(data, folds)
        check_test_images(study.config.data, study.config.seed, study.base_dir)
        warnings: list[str | None] = [*data_advice(study.config.data, study.config.seed, study.base_dir), *doubts]
        warnings += unused_setting_warnings(study.space, classify_setting_used, study.config.seed)
        warnings += unused_point_settings(study.config.strategy.points_to_evaluate, study.space,
                                          {param.name for param, _ in searchable_params(study.space)},
                                          self.setting_used_for(study))
        objectives = [metric for metric, _ in study.objectives if metric not in COST_METRICS]
        chosen_on_val = any(s.imbalance.threshold != "fixed" and not s.train.cv_folds for s in specs)
        warnings += transfer_warnings(study, data, specs, model_spec_for)
        warnings += [number_named_class_warning(metric, data.class_names) for metric in objectives]
        warnings += [too_deep_warning(probes, data.image_size),
                     small_validation_warning(data, cross_validated=all(spec.train.cv_folds for spec in specs)),
                     threshold_selection_warning(objectives, chosen_on_val and data.kind != "multiclass"),
                     one_sided_objective_warning(objectives, data.kind), neural_augment_warning(specs),
                     untrainable_class_warning(data, cross_validated=all(s.train.cv_folds for s in specs)),
                     unweighted_warning(specs), double_correction_warning(specs),
                     patch_curriculum_warning(specs, study.config.budget.epochs),
                     best_epoch_cv_warning([s.train.checkpoint for s in specs if s.train.cv_folds]),
                     unchoosable_threshold_warning(data, *_choosing_thresholds(specs)),
                     _trial_time_warning(study, data, timed_config(specs))]
        if data.kind == "multiclass" and any((c.get("imbalance") or {}).get("threshold", "fixed") != "fixed"
                                             for c in probes):
            warnings.append("space.imbalance.threshold has no effect on multi-class data (the most probable class "
                            "is predicted); it is for binary and multi-label tasks, so trials leave it out. Fix: "
                            "nothing needed; to silence this, write threshold: fixed beside the space's imbalance "
                            "include, or drop it")
        for text in filter(None, warnings):
            print(f"warning: {text}", file=sys.stderr)
        note = positive_class_note(objectives, data, study.config.data.positive_class is not None,
                                   {s.imbalance.threshold for s in specs})
        if note:
            print(f"note: {note}", file=sys.stderr)

    def _check_named_files_exist(self, study: Study, data: ImageDataset) -> list[str]:
        """Weights and generator folders the space names: a missing or unusable one (a pickled model, a
        generator that cannot make this data's images) would fail every trial that draws it. Checked when a
        run starts, not at load: `status` on a study file must work after they are gone. Returns the doubts
        of usable ones: a generator its GAN study marked suspect."""
        doubts = []
        named: dict[tuple[str, str], None] = {}   # each path once: probes repeat them
        for config in probe_configs(study.space, seed=study.config.seed):
            spec = parse_trial_config(config, None)
            if spec.augment.synthetic and spec.augment.synthetic_per_class:
                named["space.augment.synthetic", spec.augment.synthetic] = None
            if spec.model.transfer != "scratch" and spec.model.weights not in (None, "timm"):
                named["space.model.weights", spec.model.weights] = None
        for key, value in named:
            if key == "space.augment.synthetic" and data.kind == "multilabel":
                raise ConfigError("adds generated images of one class each, and this data set is multi-label (an "
                                  f"image has any of the labels {', '.join(data.class_names)}), which a "
                                  "class-conditional generator cannot make", key=key, got=value,
                                  fix="remove augment.synthetic (or synthetic_per_class: 0) for multi-label data")
            path = study.base_dir / value
            if not path.exists():
                raise ConfigError(f"{path} does not exist", key=key, got=value, fix="give a path that exists "
                                  "(relative paths are resolved against the study file's folder); run the study "
                                  "that makes it first")
            problem = generator_mismatch(path.resolve(), (data.channels, *data.image_size), data.class_names,
                                         _how_read(study.config.data)) \
                if key == "space.augment.synthetic" else weights_problem(path)
            if problem:
                raise ConfigError(problem[0], key=key, got=value, fix=problem[1])
            if key == "space.augment.synthetic" and (doubt := generator_doubt(path.resolve())):
                doubts.append(doubt)
        return doubts

    def _check_some_candidate_fits(self, study: Study) -> None:
        """With architecture budgets, some config must fit them; otherwise every trial would be pruned, so say
        so now, with the cheapest candidate's costs. Refused only when neither the probes nor a descent from
        the cheapest of them (space/sample.py's cheapest_config) finds one that fits."""
        budget = study.config.budget
        if all(v is None for v in (budget.max_flops, budget.max_params, budget.max_depth)):
            return
        costs: list[dict[str, float]] = []
        constant = []   # cells networks whose last cell is all `none` (depth 1): no network, so they fit nothing

        def excess(config: dict[str, Any]) -> float:
            if outputs_constant(parse_trial_config(config, None).model):
                constant.append(config)
                return math.inf
            costs.append(self.candidate(study, config).costs)
            return budget_excess(costs[-1], budget)

        _, least, costed = cheapest_config(study.space, excess, seed=study.config.seed, probes=BUDGET_PROBES)
        if least <= 0:
            said = draws_over_budget_warning(study, self.candidate)
            if said:
                print(f"warning: {said}", file=sys.stderr)
            return
        limits = ", ".join(f"max_{k} {v:.4g}" for k, v in (("flops", budget.max_flops), ("params", budget.max_params),
                                                             ("depth", budget.max_depth)) if v is not None)
        if not costs:
            raise ConfigError(f"no architecture found in this space fits the budget ({limits}): every one of the "
                              f"{costed} tried has a last cell of `none` ops only, which outputs a constant",
                              key="space.model", fix="leave `none` out of some op's choices")
        cheapest = min(costs, key=lambda c: budget_excess(c, budget))
        not_counted = _NOT_COUNTED if constant else ""
        raise ConfigError(f"no architecture found in this space fits the budget ({limits}): the cheapest of "
                          f"{costed} costed (the extremes of every setting, then a descent from the cheapest) has "
                          f"flops {cheapest['flops']:.4g}, params {cheapest['params']:.4g}, depth "
                          f"{cheapest['depth']:.0f}{not_counted}", key=f"budget.{_tightest(cheapest, budget)}",
                          fix="raise the budget or search smaller architectures (narrower widths, fewer blocks)")

    def candidate(self, study: Study, config: dict[str, Any]) -> Candidate:
        """A sampled config's network without training: for training-free scoring (Zen-NAS proxy search)."""
        spec = parse_trial_config(config, None)
        data = _train_val(study)
        model_spec = model_spec_for(spec, data)
        costs = analytic_costs(model_spec, data) or measure_costs(build_model(model_spec), data)
        return Candidate(build=lambda: build_model(model_spec), channels=data.channels, image_size=data.image_size,
                         costs=costs, description=_description(spec).get("architecture", ""),
                         outputs=model_spec["num_outputs"])

    def run(self, config: dict[str, Any], ctx: TrialContext) -> dict[str, float]:
        spec = parse_trial_config(config, None)
        data = _train_val(ctx.study)
        # this process listed data.path itself (at its first trial; relist: as it is now): as the run recorded?
        record = _run_record(ctx)
        listing_unchanged(data, record, relist_of(ctx.study))
        split_as_recorded(data, record)
        batches = make_batches(data)
        torch.manual_seed(ctx.seed)
        model_spec = model_spec_for(spec, data)
        model = build_model(model_spec)
        costs = measure_costs(model, data)
        ctx.record(model_spec=model_spec, preprocessing=batches.preprocessing, class_names=list(data.class_names),
                   task_kind=data.kind, device=str(ctx.device),
                   train_precision=resolve_precision(spec.train.precision, ctx.device), **costs, **_description(spec))
        check_budget(costs, ctx.study.config.budget, ctx)
        epochs = spec.train.epochs or ctx.study.config.budget.epochs
        # every setting as it ran, defaults included (cv_model, checkpoint, loss...) and the epochs asked of it
        # (budget.epochs may change between resumed runs): the model card's methods section
        as_run = spec.model_dump(mode="json")
        ctx.record(config_with_defaults={**as_run, "train": {**as_run["train"], "epochs": epochs}})
        # the epoch kept: best on the study's objectives that are not costs (their mean, when several)
        select = tuple((m, d) for m, d in ctx.study.objectives if m not in COST_METRICS) or (("auc", "maximize"),)
        result, cv = _train_trial(model, data, batches, model_spec, spec, ctx, select, epochs)
        seconds = result.train_seconds + (cv.train_seconds if cv else 0.0)
        seen = result.images_seen + (cv.images_seen if cv else 0)
        metrics = {**result.metrics, **costs, "best_epoch": result.best_epoch, "epochs_trained": result.epochs_trained,
                   "train_seconds": seconds, "images_per_second": seen / max(seconds, 1e-9), **(cv.metrics if cv else {})}
        chosen = {} if result.threshold is None else {"threshold": result.threshold}   # none on multi-class data
        ctx.record(checkpoint=store_checkpoint(result.state, ctx), confusion=result.confusion,
                   **chosen)   # validation, best epoch: readable in the dashboard
        if cv is not None and spec.train.cv_model != "bag":   # its metrics are the runs' mean, not this model's
            ctx.record(model_metrics={**result.metrics, "best_epoch": result.best_epoch,
                                      "epochs_trained": result.epochs_trained})
        if result.cut_short:
            ctx.record(cut_short=f"stopped by budget.timeout after {result.epochs_trained} of {epochs} epochs (kept "
                                 f"its best, best_epoch {result.best_epoch}, counted from 0)")
        return metrics


def _train_trial(model: torch.nn.Module, data: ImageDataset, batches: Batches, model_spec: dict[str, Any],
                 spec: ClassifyTrialConfig, ctx: TrialContext, select: Selection,
                 epochs: int) -> tuple[TrainResult, CVResult | None]:
    """The trial's model, and the repeated runs (CV folds or seeds) its selection signal came from, if any."""
    cv = _select_by_repeats(data, batches, model_spec, spec, ctx, select, epochs) if _repeated(spec) else None
    if cv is not None and spec.train.cv_model == "bag":
        result = bag_result(cv, spec.imbalance, data.kind, len(data.class_names))
        ctx.record(model_spec=bag_model_spec(model_spec, len(cv.models)),
                   preprocessing=[m.preprocessing for m in cv.models],
                   bag=bag_record(cv, ctx.study.config.seed, spec.train.cv_folds))
    elif cv is not None and spec.train.cv_folds:
        # The CV mean is the selection signal. The exported model is one more, trained on the official
        # training split for the folds' median best epoch + 1 epochs (its last epoch kept), so that the
        # official val split stays untouched by training (it only sets the decision threshold, as without
        # CV) and the test split stays untouched for the final scoring by `searchlab export`.
        torch.manual_seed(ctx.seed)
        result = fit(model, batches, spec, ctx, select, cv.final_epochs, ctx.seed, _no_report, keep_last=True)
        if result.cut_short:
            _stop_as_refit_cut_short(ctx, result, cv.final_epochs)
    elif cv is not None:
        # Repeats on the official split: the first run (seed + 0) is exactly the single-run trial; the
        # others only move the selection signal to their mean. Adding them to the trial's model would be
        # an ensemble, which `searchlab export --top-k` offers across trials instead.
        assert cv.first is not None
        result = cv.first
        cv.train_seconds -= result.train_seconds   # run() counts it once, as the trial's own training
        cv.images_seen -= result.images_seen
    else:
        # not judged after the last epoch: pruning a trained model saves nothing and throws its result away
        result = fit(model, batches, spec, ctx, select, epochs, ctx.seed,
                     lambda step, metrics: ctx.report(step, metrics, judge=step < epochs - 1))
    return result, cv


def _repeated(spec: ClassifyTrialConfig) -> bool:
    return spec.train.cv_folds is not None or spec.train.repeats > 1


def _select_by_repeats(data: ImageDataset, batches: Batches, model_spec: dict[str, Any], spec: ClassifyTrialConfig,
                       ctx: TrialContext, select: Selection, epochs: int) -> CVResult:
    """(Repeated) k-fold CV over train+val, or repeated seeds on the official split; reported run by run."""
    def fit_run(run_batches: Batches, seed: int) -> TrainResult:
        torch.manual_seed(seed)
        return fit(build_model(model_spec), run_batches, spec, ctx, select, epochs, seed, _no_report)

    k, repeats = spec.train.cv_folds, spec.train.repeats
    splits = cv_splits(data, k, ctx.study.config.seed, repeats) if k else repeated_splits(batches, repeats)
    runs = (k or 1) * repeats
    thresholds = CrossFoldThresholds(lambda y, p: choose_threshold(spec.imbalance, data.kind, y, p), data.kind,
                                     len(data.class_names)) if k else None
    step_of = progress_steps(runs, ctx.study.config.budget.epochs)
    last = step_of(runs - 1)   # after the last run the trial is done: nothing left to save by pruning it

    def report(step: int, metrics: dict[str, float], judge: bool) -> None:
        ctx.report(step, metrics, judge=judge and step < last)

    cv = cross_validate(splits, ctx.seed, select[0][0], fit_run, report, ctx.out_of_time, step_of=step_of,
                        keep_models=spec.train.cv_model == "bag", thresholds=thresholds)
    ctx.record(**{"cv_folds" if k else "repeats": cv.folds})
    if cv.cut_short or len(cv.folds) < runs:
        _stop_as_cut_short(ctx, cv, runs, epochs)
    return cv


def _stop_as_cut_short(ctx: TrialContext, cv: CVResult, runs: int, epochs: int) -> None:
    """PRUNE a trial whose runs the study's timeout cut: a mean over fewer or shorter runs than the others' is
    noisier, and would win the selection by luck (one 208-image fold's AUC beating every 3-fold mean)."""
    last = cv.folds[-1]
    cut = f", the last cut at epoch {last['epochs_trained']} of {epochs}" if cv.cut_short else ""
    reason = (f"stopped by budget.timeout after {len(cv.folds)} of {runs} runs{cut}: not comparable with "
              "trials that finished every run")
    ctx.record(pruned=reason)
    raise optuna.TrialPruned(reason)


def _stop_as_refit_cut_short(ctx: TrialContext, result: TrainResult, epochs: int) -> None:
    """PRUNE a trial whose folds finished but whose exported model the timeout cut: the trial would rank by
    its folds' mean while `searchlab export` shipped a model trained for a fraction of the epochs that mean
    was measured at (seen: fold AUC 0.83, the 1-epoch model's own 0.71)."""
    reason = (f"stopped by budget.timeout after {result.epochs_trained} of {epochs} epochs of the model trained "
              "on the training split (the one exported), after every cross-validation run had finished: its "
              "folds' mean is not this model's")
    ctx.record(pruned=reason)
    raise optuna.TrialPruned(reason)


def fit(model: torch.nn.Module, batches: Batches, spec: ClassifyTrialConfig, ctx: TrialContext,
        select: Selection, epochs: int, seed: int, on_epoch: Callable[[int, dict[str, float]], None],
        keep_last: bool = False) -> TrainResult:
    """Initial weights / frozen parts (transfer), the batch recipe, then the training loop."""
    groups = apply_transfer(model, spec.model, ctx.study.base_dir,
                            on_source=lambda origin: ctx.record(weights_from=origin))
    batches = with_synthetic(batches, spec.augment, ctx.study.base_dir, seed,
                             on_source=lambda origin: ctx.record(synthetic_from=origin))
    recipe = make_recipe(batches, spec.augment, spec.imbalance, spec.train)
    return train(model, batches, recipe, spec.optim, spec.train, epochs, seed, select, on_epoch, ctx.out_of_time,
                 groups=groups, cached_features=spec.model.transfer == "features",
                 keep_last=keep_last or spec.train.checkpoint == "last",
                 device=ctx.device)


def _tightest(costs: dict[str, float], budget: Any) -> str:
    """The budget key the cheapest architecture exceeds most, relatively (the one to raise first)."""
    limits = {f"max_{k}": (costs[k] / v if v else float("inf")) for k in ("flops", "params", "depth")
              if (v := getattr(budget, f"max_{k}")) is not None}
    return max(limits, key=limits.get)


def _no_report(step: int, metrics: dict[str, float]) -> None:
    """Per-epoch reports are off under repeated runs: the trial reports once per run (fold or seed) instead."""


def _trial_time_warning(study: Study, data: ImageDataset, timed: ClassifyTrialConfig | None) -> str | None:
    return trial_time_warning(study, make_batches(data), timed, model_spec_for(timed, data)) if timed else None


def _choosing_thresholds(specs: list[ClassifyTrialConfig]) -> tuple[bool, bool]:
    """Whether some trial chooses its thresholds on the validation split, and whether some chooses them by
    cross-validation (train.cv_folds): a label never on in val leaves only the former's metrics at 0.5."""
    choosing = [s for s in specs if s.imbalance.threshold != "fixed"]
    return any(not s.train.cv_folds for s in choosing), any(s.train.cv_folds for s in choosing)


def _run_record(ctx: TrialContext) -> dict[str, Any] | None:
    """The run's record in its study (engine/study_record.py), read from the storage: the same for a trial in
    another process or on another machine."""
    study = getattr(ctx.trial, "study", None)
    return study.user_attrs.get("searchlab") if study is not None else None


def _train_val(study: Study) -> ImageDataset:
    return load_dataset(study.config.data, splits=("train", "val"), seed=study.config.seed, base_dir=study.base_dir)


def parse_trial_config(config: dict[str, Any], src: Located | None,
                       searched: dict[str, Any] | None = None, space: Group | None = None) -> ClassifyTrialConfig:
    """The sampled dict through the classify schema; errors name the space key (in the option drawn, with
    `space`) and the value."""
    return parse_trial(ClassifyTrialConfig, "classify", config, src, searched, union_tags=_UNION_TAGS, space=space)


def _how_read(cfg: Any) -> dict[str, Any]:
    """A folder's or CSV's data.fit and data.bit_depth (MedMNIST's images are read as published)."""
    return {key: getattr(cfg, key) for key in ("fit", "bit_depth") if hasattr(cfg, key)}


def make_batches(data: ImageDataset) -> Batches:
    train_split = data.splits["train"]
    return Batches(train=train_split, val=data.splits["val"], kind=data.kind, n_classes=len(data.class_names),
                   preprocessing=normalisation(train_split), class_names=tuple(data.class_names))


def model_spec_for(spec: ClassifyTrialConfig, data: ImageDataset) -> dict[str, Any]:
    """The model spec of a config drawn from the study's space: an NNI space it names, the study named."""
    architecture, args = spec.model.architecture()
    if architecture == "nni":
        allow_nni_space(str(args["space"]))
    outputs = 2 if data.kind == "binary" else len(data.class_names)
    return {"architecture": architecture, "args": args, "in_channels": data.channels, "num_outputs": outputs}


def _description(spec: ClassifyTrialConfig) -> dict[str, str]:
    """A searched architecture's readable form (genotype, block list) as user attr `architecture`."""
    describe = getattr(spec.model, "describe", None)
    return {"architecture": describe()} if describe else {}


def store_checkpoint(state: dict[str, torch.Tensor], ctx: TrialContext) -> str:
    """Best-epoch weights as safetensors in the artifact store (never a pickle)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"trial-{ctx.trial.number}.safetensors"
        save_weights(state, path)
        return ctx.store_file(path)
