"""Tasks turn one sampled config into metrics. One registry; heavy task modules import lazily."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from searchlab.registry import Registry

if TYPE_CHECKING:
    from optuna.trial import BaseTrial

    from searchlab.config.load import Study
    from searchlab.config.schema import ObjectiveConfig, TaskConfig
    from searchlab.config.yamlsrc import KeyPath, Located
    from searchlab.engine.context import TrialContext


class Task(Protocol):
    def resolve_objective(self, objective: "ObjectiveConfig", src: "Located", at: "KeyPath") -> tuple[str, str]:
        """(metric, direction), the direction defaulting to the metric's natural one."""

    def validate_space(self, study: "Study", src: "Located") -> None:
        """Raise ConfigError if configs sampled from the space cannot be run by this task."""

    def prepare(self, study: "Study") -> None:
        """Check what every trial needs (e.g. the data) once, before any trial, so it fails fast."""

    def run(self, config: dict[str, Any], ctx: "TrialContext") -> dict[str, float]:
        """Run one trial; return its metrics (the objectives are looked up in them)."""


TASKS: Registry[Task] = Registry("task")
TASKS.register("classify", "searchlab.tasks.classify:ClassifyTask")
TASKS.register("generate", "searchlab.tasks.generate:GenerateTask")
TASKS.register("callable", "searchlab.tasks.callable_task:CallableTask")


def get_task(cfg: "TaskConfig") -> Task:
    return TASKS.get(cfg.kind)(cfg)


def pruner_steps(study: "Study") -> int:
    """How many steps a trial reports to the pruner (and a Ray scheduler): one per epoch, budget.epochs, unless
    its task counts its own (a GAN trial scores MedFID at train.evaluations checkpoints and has no epochs)."""
    own = getattr(TASKS.get(study.config.task.kind), "pruner_steps", None)
    return own(study) if own is not None else study.config.budget.epochs


def budget_epochs_read(study: "Study") -> int | None:
    """budget.epochs as the study's trials read it; None for a task that never does (a GAN trains
    train.iterations): its recorded value, compared on resume, warned of a change that trained nothing else."""
    reads = getattr(TASKS.get(study.config.task.kind), "reads_budget_epochs", True)
    return study.config.budget.epochs if reads else None


def sample_trial_config(trial: "BaseTrial", study: "Study") -> dict[str, Any]:
    """The trial's config from the study's space, leaving out settings the task would not use under the
    values drawn (a task's `setting_used` rule, space/sample.py): every search strategy samples through here."""
    from searchlab.space import sample_config

    return sample_config(trial, study.space, setting_used_of(study))


def setting_used_of(study: "Study") -> Any:
    """The task's rule of which settings have an effect (space/sample.py UsedRule), for this study's data where
    the task has one per data (`setting_used_for`: classify's threshold, unused on multi-class data)."""
    task = get_task(study.config.task)
    for_study = getattr(task, "setting_used_for", None)
    return for_study(study) if for_study is not None else getattr(task, "setting_used", None)
