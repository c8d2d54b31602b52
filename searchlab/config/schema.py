"""The typed, frozen study configuration: every default is written here once, with why.

`load_study_file` (config/load.py) is the only place that turns YAML into these objects; nothing downstream
reads raw dicts. The search space is compiled separately (space/compile.py) because its shape is the user's.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StrictStr,
                      ValidationInfo, field_validator, model_validator)

from searchlab.config.scalars import YAML_BOOLEANS, scalar_refused
from searchlab.errors import AtKey
from searchlab.suggest import models_in


class Frozen(BaseModel):
    """Immutable, strict about unknown keys (a typo must never be silently ignored)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False, arbitrary_types_allowed=True)


class Section(Frozen):
    """A study file's section: a boolean or text where a number is wanted is refused by name (scalar_refused)."""

    @model_validator(mode="before")   # not a field validator: pydantic refuses one on `source`, a discriminator
    @classmethod
    def _no_boolean_or_text_for_a_number(cls, data: Any) -> Any:
        for name, field in cls.model_fields.items() if isinstance(data, dict) else ():
            key = next((key for key in (field.alias, name) if key in data), None)
            message = key and scalar_refused(key, data[key], field)
            if message:
                raise AtKey(key, message)
        return data


# ---------------------------------------------------------------- data
DATA_ROOT_ENV = "SEARCHLAB_DATA"   # where MedMNIST files are when the study gives no root
# How an image file becomes image_size x image_size: stretched to it (aspect ratio lost), or with the aspect
# kept, the whole image padded with black borders (nothing cut off) or its centre cropped (no borders).
ImageFit = Literal["stretch", "pad", "crop"]
# Integer images of more than 8 bits map 0..2^bit_depth - 1 to black..white; None: the file type's whole range
# (65535 for 16-bit). X-ray/CT exports often store 12-bit values in 16-bit files: bit_depth 12, or they
# decode nearly black.
BitDepth = Annotated[int, Field(ge=9, le=32)] | None


def _class_name_or_index(value: Any) -> Any:
    """A class by name or index, said once (pydantic listed each member of the union it failed)."""
    rule = "a class name as text, or a class index as a whole number"
    if isinstance(value, bool):   # strict: `true` is not class 1
        raise ValueError(f"{rule}, not {str(value).lower()} ({YAML_BOOLEANS}). Fix: if a class is named so, quote "
                         f"the word as written, e.g. positive_class: \"{str(value).lower()}\"; else write the class "
                         "name or index, e.g. positive_class: 1")
    if value is not None and not isinstance(value, (str, int)):
        raise ValueError(f"{rule}. Fix: write the class name (quoted if it looks like a number) or its index, "
                         "e.g. positive_class: malignant or positive_class: 1")
    return value


# Two-class sets: the class that counts as positive (sensitivity, specificity, average precision, the probability
# a binary model outputs); by name or index. None: the second class (index 1). BreastMNIST's class 1 is "normal,
# benign", so a malignancy study sets positive_class: malignant.
PositiveClass = Annotated[StrictStr | StrictInt | None, BeforeValidator(_class_name_or_index)]


class MedMNISTData(Section):
    source: Literal["medmnist"] = "medmnist"
    name: str                                 # medmnist flag, e.g. "breastmnist"
    size: Literal[28, 64, 128, 224] = 28      # MedMNIST+ sizes; 28 is the classic MNIST-like set
    root: Path | None = None                  # None: $SEARCHLAB_DATA, else ~/.medmnist (medmnist's own default)
    download: bool = True                     # online users get the official download when the file is absent
    positive_class: PositiveClass = None


class SplitFractions(Section):
    """The shares of a folder or CSV set searchlab splits off for validation and test (stratified, seeded by
    the study seed). A folder with train/ (and val/, test/) folders: val_fraction carves val out of train when
    there is no val/, and test_fraction carves test out of it when there is no test/ and it is set explicitly
    (written in the study: by default such a folder has no test split)."""

    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.15
    test_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.15

    @model_validator(mode="after")
    def _training_images_left(self) -> "SplitFractions":
        if self.val_fraction + self.test_fraction >= 1:
            raise AtKey("test_fraction", f"val_fraction ({self.val_fraction}) + test_fraction ({self.test_fraction}) "
                        "leave no images to train on: both are shares of the same images. Fix: lower them to a sum "
                        "below 1, e.g. 0.15 + 0.15")
        return self


class FolderData(SplitFractions):
    source: Literal["folder"]
    path: Path                                # one sub-folder per class, or train/val/test each holding those
    image_size: Annotated[int, Field(ge=8, le=1024)] = 28   # small sets: 28x28 trains in seconds on a CPU
    channels: Literal[1, 3] = 1               # most X-ray/ultrasound data is grayscale
    fit: ImageFit = "stretch"
    bit_depth: BitDepth = None
    positive_class: PositiveClass = None


class CsvData(SplitFractions):
    source: Literal["csv"]
    path: Path                                # CSV file; image paths are relative to its folder
    image_column: str = "path"
    label_columns: tuple[str, ...] = ("label",)   # one column: binary/multi-class; several 0/1: multi-label
    split_column: str | None = None           # optional column holding train/val/test
    group_column: str | None = None           # optional column of patient ids: a patient's rows stay together
    # multi-label rows split by searchlab (no split column): each split its share of every label's positives,
    # or at random as searchlab did before (runs recorded without this key were split so)
    multilabel_split: Literal["stratified", "random"] = "stratified"
    image_size: Annotated[int, Field(ge=8, le=1024)] = 28
    channels: Literal[1, 3] = 1
    fit: ImageFit = "stretch"
    bit_depth: BitDepth = None
    positive_class: PositiveClass = None

    @field_validator("label_columns", mode="before")
    @classmethod
    def _one_column_as_a_list(cls, columns: Any) -> Any:
        return (columns,) if isinstance(columns, str) else columns   # label_columns: diagnosis

    @field_validator("label_columns", mode="after")
    @classmethod
    def _distinct_label_columns(cls, columns: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if not columns:
            raise ValueError("empty: no column says what an image shows. Fix: name the "
                             "label column (label_columns: [label]), or several 0/1 columns for multi-label")
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ValueError(f"names {', '.join(map(repr, repeated))} more than once: one "
                             "label would be learned and scored twice. Fix: list each label column once")
        joined = [c for c in columns if ";" in c] if len(columns) > 1 else []
        if joined:
            raise ValueError(f"label {joined[0]!r} holds ';', which joins the labels an image has in predict's "
                             "'predicted' column, so that column could not be read back. Fix: rename the "
                             "column in the CSV and here")
        if info.data.get("image_column") in columns:
            raise ValueError(f"includes the image column {info.data['image_column']!r}: it "
                             "holds file paths, not labels. Fix: list only label columns (data.image_column "
                             "names the column of image paths)")
        return columns

    @field_validator("split_column", mode="after")
    @classmethod
    def _split_column_apart(cls, column: str | None, info: ValidationInfo) -> str | None:
        if column is not None and column in (info.data.get("image_column"), *info.data.get("label_columns", ())):
            raise ValueError(f"{column!r} is also the image column or a label column. Fix: "
                             "name the column that holds train/val/test")
        return column

    @field_validator("group_column", mode="after")
    @classmethod
    def _group_column_apart(cls, column: str | None, info: ValidationInfo) -> str | None:
        others = (info.data.get("image_column"), *info.data.get("label_columns", ()), info.data.get("split_column"))
        if column is not None and column in others:
            raise ValueError(f"{column!r} is also the image, a label or the split column. Fix: name the column "
                             "that holds each row's patient (or study) id")
        return column


DataConfig = Annotated[MedMNISTData | FolderData | CsvData, Field(discriminator="source")]


# ---------------------------------------------------------------- task, objective, budget
class TaskConfig(Section):
    kind: Literal["classify", "generate", "callable"] = "classify"
    function: str | None = None               # "module:function" for kind=callable: f(config, ctx) -> metrics
    # generate: MedFID's feature network, a searchlab export of a classifier for the same data (relative to
    # the study file); None trains one for the purpose and caches it in <run_dir>/medfid_features/.
    features: str | None = None

    @model_validator(mode="after")
    def _function_only_for_callable(self) -> "TaskConfig":
        if (self.kind == "callable") != (self.function is not None):
            raise ValueError("task.function ('module:function') is required for kind 'callable' and only there. "
                             "Fix: task: {kind: callable, function: 'my_module:train'}, or remove task.function")
        if self.features is not None and self.kind != "generate":
            raise ValueError("task.features (MedFID's feature network) is for kind 'generate' only. Fix: remove "
                             "task.features")
        return self


class ObjectiveConfig(Section):
    metric: str = "auc"                        # ROC AUC: threshold-free, robust to the class imbalance we expect
    direction: Literal["maximize", "minimize"] | None = None   # None: the metric's natural direction


class BudgetConfig(Section):
    n_trials: Annotated[int, Field(ge=1)] = 20          # total over resumes (finished = complete + pruned)
    timeout: Annotated[float, Field(gt=0)] | None = None  # seconds of wall time for this invocation
    # per trial; also the pruner's step range (a GAN trial's steps: its train.evaluations)
    epochs: Annotated[int, Field(ge=1)] = 20
    max_failed: Annotated[int, Field(ge=1)] | None = None  # stop after this many failed trials (None: n_trials)
    # Wall-clock seconds one trial may run; past it the trial's worker process is killed and the trial FAILED
    # with the reason, not retried (local executor: trials then run in supervised worker processes; Ray: the
    # trial's actor kills itself, engine/ray_timeout.py).
    trial_timeout: Annotated[float, Field(gt=0)] | None = None
    # Architecture budgets, checked on the built model before any training: a config over one is PRUNED
    # at once with the reason in user attr `over_budget`. flops: forward FLOPs per image (torch's counter,
    # a multiply-add = 2); params: parameters; depth: conv + linear layers on the longest path.
    max_flops: Annotated[float, Field(gt=0)] | None = None
    max_params: Annotated[float, Field(gt=0)] | None = None
    max_depth: Annotated[int, Field(ge=1)] | None = None


class PrunerConfig(Section):
    kind: Literal["none", "median", "successive_halving", "hyperband"] = "median"  # cheap, safe default
    args: dict[str, Any] = Field(default_factory=dict)   # keyword arguments of the Optuna pruner class


class StrategyConfig(Section):
    name: str | None = "tpe"                   # a registered strategy (an unknown name lists them)
    preset: str | None = None                  # a file in strategies/ (name or path)
    class_: str | None = Field(default=None, alias="class")  # "module:Class": any Optuna BaseSampler
    args: dict[str, Any] = Field(default_factory=dict)
    # Configs tried first, in order, before the strategy proposes any (Ray Tune's points_to_evaluate, Optuna's
    # enqueue_trial): {searched parameter name: value}; parameters a point leaves out are sampled as usual.
    # Queued once, when the study has no trials yet, so a resumed run does not try them again.
    points_to_evaluate: list[dict[str, Any]] = Field(default_factory=list)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _one_source(self) -> "StrategyConfig":
        # `name` has a default (tpe), so it counts only when written: {name: random, class: ...} ran the class
        given = [k for k in ("name", "preset", "class_") if k in self.model_fields_set and getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of 'name', 'preset' or 'class', not several (got "
                             f"{', '.join(k.rstrip('_') for k in given)}). Fix: keep one of them")
        return self


class TrialResources(Section):
    cpu: Annotated[float, Field(gt=0)] = 1.0
    gpu: Annotated[float, Field(ge=0)] = 0.0      # fractions share a GPU (e.g. 0.5: two trials per GPU)


class RaySchedulerConfig(Section):
    """A Ray Tune scheduler stopping trials early (PRUNED) from their per-epoch reports, instead of the pruner.
    asha: asynchronous successive halving; hyperband: its multi-bracket form (Ray's AsyncHyperBandScheduler:
    synchronous HyperBand pauses trials, which would restart ours from scratch); median: the median stopping rule."""

    kind: Literal["asha", "hyperband", "median"]
    # epochs every trial gets before it may be stopped; at most the longest trial's epochs (checked at load by
    # engine/ray_schedule.py: it depends on the space's train.epochs)
    grace_period: Annotated[int, Field(ge=1)] = 1
    reduction_factor: Annotated[float, Field(gt=1)] = 3.0  # asha/hyperband: keep 1/reduction_factor per rung
    brackets: Annotated[int, Field(ge=1)] = 3              # hyperband only (asha is one bracket)

    @model_validator(mode="after")
    def _keys_of_the_kind(self) -> "RaySchedulerConfig":
        # Ray's class for the kind never receives a key of another kind: written, it was silently ignored
        only_for = {"reduction_factor": ("asha", "hyperband"), "brackets": ("hyperband",)}
        why_not = {"median": "the median rule compares a trial with the others' median, it has no rungs or brackets",
                   "asha": "asha is HyperBand's one-bracket form"}
        for key, kinds in only_for.items():
            if key in self.model_fields_set and self.kind not in kinds:
                raise AtKey(key, f"{key} is a setting of kind {' or '.join(kinds)} only, not of {self.kind!r}: "
                            f"{why_not[self.kind]}. Fix: remove {key}, or use kind: {' or '.join(kinds)}")
        return self


class ExecutorConfig(Section):
    kind: Literal["local", "ray"] = "local"
    workers: Annotated[int, Field(ge=1, le=256)] = 1    # local: processes sharing the storage
    threads_per_worker: Annotated[int, Field(ge=1)] | None = None  # None: cores // workers (never oversubscribe)
    # ray: None starts a Ray on this machine (127.0.0.1, no dashboard); "auto" or "host:port" joins a cluster
    address: str | None = None
    resources_per_trial: TrialResources = TrialResources()
    max_concurrent: Annotated[int, Field(ge=1)] | None = None     # None: as many as the resources allow
    # ray: early stopping by a Ray scheduler (None: the pruner); a name alone is its kind: `scheduler: asha`
    scheduler: Annotated[RaySchedulerConfig | None,
                         BeforeValidator(lambda v: {"kind": v} if isinstance(v, str) else v)] = None
    # Where classify trials train: auto = a CUDA GPU when the trial sees one (under Ray: the GPUs its
    # resources_per_trial.gpu share names, Ray sets CUDA_VISIBLE_DEVICES), else the CPU.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # A trial whose worker process or node died (not one whose code raised) is failed with that reason and
    # its config queued again as a new trial, at most this many times.
    max_retries: Annotated[int, Field(ge=0)] = 2

    @field_validator("address")
    @classmethod
    def _address_form(cls, v: str | None) -> str | None:
        # Ray's own parser ends a malformed address in a traceback, and a ray:// (Ray Client) driver cannot
        # pin trials to nodes or read their resources as the executor does: say so at load instead.
        if v is None or v == "auto":
            return v
        if v.startswith("ray://"):
            raise ValueError("Ray Client addresses (ray://) are not supported: run searchlab on a node of the "
                             "cluster, with the head's GCS address (host:6379) or 'auto'")
        host, _, port = v.rpartition(":")
        if not host or not port.isdigit() or "/" in host:
            raise ValueError("a Ray address is 'host:port' (the head's GCS port, 6379 unless `ray start "
                             "--port` said otherwise), or 'auto' for the cluster started on this machine. Fix: e.g. "
                             "address: headnode:6379, or auto")
        return v

    @model_validator(mode="after")
    def _ray_only_options(self) -> "ExecutorConfig":
        # Never read by the local executor: a study that forgot kind: ray ran every trial here without a word.
        # Keys written only (model_fields_set); null, or resources {}, is the default: nothing is lost.
        for key in ("scheduler", "address", "max_concurrent", "resources_per_trial") if self.kind != "ray" else ():
            value = getattr(self, key)
            if key in self.model_fields_set and getattr(value, "model_fields_set", value):
                also = " and use pruner (e.g. pruner: successive_halving)" if key == "scheduler" else ""
                raise AtKey(key, f"executor.{key} is a Ray setting and needs kind: ray (kind {self.kind} never reads "
                            f"it). Fix: executor.kind: ray, or remove {key}{also}")
        return self

    @property
    def local_threads(self) -> int:
        """Torch threads of each local worker: workers x threads never exceeds the cores (oversubscribed BLAS
        threads make everyone slower)."""
        return self.threads_per_worker or max(1, usable_cores() // self.workers)

    @property
    def ray_threads(self) -> int:
        """Torch threads of each Ray trial: the whole CPUs Ray reserves for it, unless set."""
        return self.threads_per_worker or max(1, math.floor(self.resources_per_trial.cpu))


def usable_cores() -> int:
    """The cores this process may run on (taskset, a container's cpuset), not all the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def _home_expanded(path: Path) -> Path:
    try:
        return path.expanduser()
    except RuntimeError:   # ~someone this machine has no user of (or no HOME): a traceback otherwise
        raise ValueError(f"{path}: '~' names a home folder this machine cannot find. Fix: write the folder's "
                         "whole path") from None


# A folder the study names: `~` is the home folder, as in storage and data paths (it made a folder named `~`)
HomePath = Annotated[Path, AfterValidator(_home_expanded)]


class ExportConfig(Section):
    after_run: bool = False                    # export the best trial when `run` finishes
    dir: HomePath | None = None                # None: <run_dir>/best
    bootstrap: Annotated[int, Field(ge=100)] = 2000     # resamples for the test-metric 95% CIs
    # The exported module: the best trial (1), or the k best as one ensemble averaging their probabilities;
    # with test-time augmentation averaged over flips ("flip") or all 8 flips/rotations ("dihedral").
    top_k: Annotated[int, Field(ge=1, le=50)] = 1
    tta: Literal["none", "flip", "dihedral"] = "none"
    # "top": all top_k; "greedy": those of the top_k that forward selection on held-out predictions keeps
    # (a member joins only if the ensemble's objective improves; export/selection.py).
    select: Literal["top", "greedy"] = "top"
    # Weights kept in <run_dir>/artifacts: None keeps every completed trial's; K keeps the K best trials'
    # (with several objectives, those dominated by fewer than K) and deletes the rest as the run goes
    # (engine/retention.py): a few hundred timm trials at ~100 MB each otherwise fill the disk.
    keep_checkpoints: Annotated[int, Field(ge=1)] | None = None

    @model_validator(mode="after")
    def _greedy_has_candidates_and_members_keep_their_weights(self) -> "ExportConfig":
        if self.select == "greedy" and self.top_k < 2:
            raise ValueError("export.select greedy chooses members among the top_k best trials, and top_k is 1. "
                             "Fix: top_k: 5 (or more) with it")
        if self.keep_checkpoints is not None and self.keep_checkpoints < self.top_k:
            raise ValueError(f"export.keep_checkpoints ({self.keep_checkpoints}) is below export.top_k "
                             f"({self.top_k}): the ensemble needs the weights of its {self.top_k} members. "
                             f"Fix: keep_checkpoints: {self.top_k} or more")
        return self


# ---------------------------------------------------------------- the study
class StudyConfig(Section):
    # The run directory is runs/<name>, so a name is one plain folder name: no separators, not . or ..
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]*[A-Za-z0-9_\-][A-Za-z0-9_.\-]*$")]
    data: DataConfig | None = None             # every task but callable needs it (load_study says so)
    task: TaskConfig = TaskConfig()
    space: Any = None                          # compiled into a Space by space/compile.py
    strategy: StrategyConfig = StrategyConfig()
    objective: tuple[ObjectiveConfig, ...] = (ObjectiveConfig(),)
    budget: BudgetConfig = BudgetConfig()
    pruner: PrunerConfig = PrunerConfig()
    executor: ExecutorConfig = ExecutorConfig()
    storage: str | None = None                 # any Optuna URL, or journal:///path; None: sqlite in run_dir
    run_dir: HomePath | None = None            # None: runs/<name> under the current directory
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 0    # numpy's and Optuna's samplers take 32-bit seeds
    export: ExportConfig = ExportConfig()

    @field_validator("objective", mode="before")
    @classmethod
    def _objective_shorthand(cls, v: Any) -> Any:
        v = [v] if isinstance(v, (str, dict)) else v
        if isinstance(v, (list, tuple)) and not v:
            raise ValueError("at least one objective is needed. Fix: e.g. objective: auc")
        return [{"metric": x} if isinstance(x, str) else x for x in v] if isinstance(v, list) else v

    @field_validator("strategy", "pruner", "task", mode="before")
    @classmethod
    def _name_shorthand(cls, v: Any, info: Any) -> Any:
        key = {"strategy": "name", "pruner": "kind", "task": "kind"}[info.field_name]
        return {key: v} if isinstance(v, str) else v

    @model_validator(mode="after")
    def _one_early_stopper(self) -> "StudyConfig":
        if self.executor.scheduler is None:
            return self
        if len(self.objective) > 1:
            raise AtKey("executor.scheduler", "executor.scheduler stops trials by one metric; a multi-objective "
                        "study cannot use it. Fix: remove executor.scheduler")
        if "pruner" in self.model_fields_set and self.pruner.kind != "none":
            raise AtKey("pruner", f"give either pruner ({self.pruner.kind!r}, Optuna's, on the worker) or "
                        f"executor.scheduler ({self.executor.scheduler.kind!r}, Ray's), not both. Fix: pruner: "
                        "none to stop trials by the Ray scheduler")
        return self

    @model_validator(mode="after")
    def _one_best_to_ensemble(self) -> "StudyConfig":
        # an ensemble of the top_k best needs a ranking; several objectives have only a Pareto front, so the
        # after-run export was skipped once the search was done, the hours spent before saying so
        if len(self.objective) > 1 and self.export.top_k > 1:
            raise AtKey("export.top_k", f"an ensemble of the top_k best trials needs one objective to rank them "
                        f"by, and this study has {len(self.objective)} ({', '.join(o.metric for o in self.objective)})"
                        ": its best trials are a Pareto front. Fix: remove export.top_k, and export one member of "
                        "the front after the run with searchlab export RUN --trial N")
        return self

    @property
    def resolved_run_dir(self) -> Path:
        return self.run_dir if self.run_dir is not None else Path("runs") / self.name


_SECTION_MODELS: dict[str, type[BaseModel]] = {
    "task": TaskConfig, "objective": ObjectiveConfig, "budget": BudgetConfig, "pruner": PrunerConfig,
    "strategy": StrategyConfig, "executor": ExecutorConfig, "export": ExportConfig, "medmnist": MedMNISTData,
    "folder": FolderData, "csv": CsvData}


def valid_keys(loc: tuple[Any, ...]) -> list[str]:
    """The keys of the section at a pydantic error's `loc` (to list them when one is unknown)."""
    model: type[BaseModel] = StudyConfig
    for part in loc[:-1]:
        inner = models_in(model.model_fields[part].annotation) if part in model.model_fields else []
        if len(inner) == 1:   # a nested section, e.g. executor.resources_per_trial
            model = inner[0]
        elif isinstance(part, str) and part in _SECTION_MODELS:
            model = _SECTION_MODELS[part]
    return sorted(f.alias or name for name, f in model.model_fields.items())
