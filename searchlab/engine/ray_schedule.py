"""How long a study's trials can run, in the scheduler's unit (Tune's training_iteration: one per epoch report),
and the check of executor.scheduler.grace_period against it, done when the study loads (no Ray import)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from searchlab.errors import ConfigError
from searchlab.space.params import Branch, CategoricalParam, FixedParam, FloatParam, Group, IntParam
from searchlab.tasks import pruner_steps

if TYPE_CHECKING:
    from searchlab.config.load import Study


def report_unit(task_kind: str) -> str:
    """What one report of a trial is, as a user reads it in a reason or an error: a GAN (generate) reports at
    its evaluations (checkpoints of train.iterations) and has no epochs; the other tasks report per epoch.
    Shared by the Optuna pruner's reason (context.py), the Ray scheduler's, and the grace_period check."""
    return "evaluation" if task_kind == "generate" else "epoch"


def longest_trial(study: Study) -> tuple[int, str, str]:
    """The most epoch reports one trial of the study can send the scheduler (Tune counts them as its
    training_iteration, the unit of max_t and grace_period), the setting that allows that many, and what one
    report is called (report_unit)."""
    kind = study.config.task.kind
    if kind == "classify":
        return (*_longest_classify_trial(study), report_unit(kind))
    # generate: its MedFID checkpoints (the most the space's train.evaluations gives); callable: budget.epochs
    setting = "space.train.evaluations" if kind == "generate" else "budget.epochs"
    return pruner_steps(study), setting, report_unit(kind)


def _longest_classify_trial(study: Study) -> tuple[int, str]:
    """A classify trial reports once per epoch of its train.epochs (budget.epochs where the space leaves it
    out), or, under train.cv_folds or repeats, once per run. Read from the space itself, every value it can
    take: the load-time probes stop at a few hundred configs, before a large space's train settings."""
    budget = study.config.budget.epochs
    epochs = max([value or budget for value in _space_values(study.space, ("train", "epochs"))] or [budget])
    folds = max([value or 1 for value in _space_values(study.space, ("train", "cv_folds"))] or [1])
    repeats = max([value or 1 for value in _space_values(study.space, ("train", "repeats"))] or [1])
    if folds * repeats > epochs:
        return folds * repeats, "space.train.cv_folds x space.train.repeats"
    return epochs, "budget.epochs" if epochs == budget else "space.train.epochs"


def _space_values(node: Any, path: tuple[str, ...]) -> list[Any]:
    """Every value the setting at `path` of the config can take in the space (a range: its high end); none
    for a setting the space leaves out. Under a branch, each option's."""
    if not path:
        if isinstance(node, FixedParam):
            return [node.value]
        if isinstance(node, CategoricalParam):
            return list(node.choices)
        return [node.high] if isinstance(node, (IntParam, FloatParam)) else []
    if isinstance(node, Branch):
        return [value for _, option in node.options for value in _space_values(option, path)]
    if isinstance(node, Group) and (child := node.get(path[0])) is not None:
        return _space_values(child, path[1:])
    return []


def check_grace_period(grace_period: int, longest: int, setting: str, unit: str = "epoch") -> None:
    """Ray's asha and hyperband assert grace_period <= max_t once the run has started Ray; the median rule takes
    any. A trial's last epoch is not judged (it has finished), so the scheduler sees at most longest - 1 epochs:
    a grace_period of longest or more stops no trial, and is refused before Ray starts. `unit` names a report
    (report_unit): a GAN's are its evaluations, and "epochs" named a setting it does not have."""
    if grace_period >= longest:
        judged = f"{longest - 1} {unit}" + ("" if longest == 2 else "s")
        raise ConfigError(f"the scheduler judges at most {judged} of the longest trial ({setting}: "
                          f"{longest}; the last is not judged, the trial has finished): no trial could ever be stopped",
                          key="executor.scheduler.grace_period", got=grace_period,
                          fix=(f"grace_period: {longest - 1} or less, or " if longest > 1 else "") +   # it is >= 1
                          f"train longer ({setting}: {grace_period + 1} or more)")
