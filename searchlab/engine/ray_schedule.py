"""How long a study's trials can run, in the scheduler's unit (Tune's training_iteration: one per report), and
the check of executor.scheduler.grace_period against it, done when the study loads (no Ray import); what one
report of a trial is called (an epoch, a GAN's evaluation, a fold or repeat) and how far a stopped trial got."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from searchlab.errors import ConfigError
from searchlab.space.params import Branch, CategoricalParam, FixedParam, FloatParam, Group, IntParam
from searchlab.tasks import pruner_steps

if TYPE_CHECKING:
    from searchlab.config.load import Study


RUN_UNITS = ("fold", "repeat")   # what a classify trial under train.cv_folds / train.repeats reports once per


def report_unit(task_kind: str, config: dict[str, Any] | None = None) -> str:
    """What one report of a trial is, as a user reads it in a reason or an error: a GAN (generate) reports at
    its evaluations (checkpoints of train.iterations) and has no epochs; a classify trial whose sampled `config`
    has train.cv_folds reports once per fold it trains, with train.repeats alone once per repeat (repeated_runs);
    the other trials report per epoch. The one choice of the unit, shared by the Optuna pruner's reason
    (context.py) and the Ray scheduler's (both through reports_said), the grace_period check (longest_trial)
    and the all-pruned advice (summary_pruned.py)."""
    if task_kind == "generate":
        return "evaluation"
    runs = repeated_runs(task_kind, config)
    return runs[1] if runs else "epoch"


def repeated_runs(task_kind: str, config: dict[str, Any] | None) -> tuple[int, str, str] | None:
    """(runs, unit, how they are made up) of a classify trial that trains train.cv_folds x train.repeats models
    and reports once per run (tasks/classify.py _select_by_repeats); None for a trial reporting per epoch. Read
    from the trial's sampled config: what it leaves out is the schema's default (cv_folds None, repeats 1)."""
    train = (config or {}).get("train") if task_kind == "classify" else None
    folds = train.get("cv_folds") if isinstance(train, dict) else None
    repeats = (train.get("repeats") if isinstance(train, dict) else None) or 1
    if not folds and repeats <= 1:
        return None
    made_of = f" ({folds} folds x {repeats} repeats)" if folds and repeats > 1 else ""
    return (folds or 1) * repeats, "fold" if folds else "repeat", made_of


def reports_said(study: Study, config: dict[str, Any] | None, step: int) -> str:
    """How far a trial got when it was stopped at its report `step` (0-based, as the pruner and the Ray scheduler
    receive it), in its unit: "3 epoch(s)", "2 evaluation(s)". A trial of repeated runs reports its running mean
    after each run at a step on the epoch scale (crossval.progress_steps: after run 2 of 3 of a 4-epoch budget,
    step 2), so its step is counted back in runs: "2 of 3 folds", not "3 epoch(s)"."""
    kind = study.config.task.kind
    runs = repeated_runs(kind, config)
    if runs is None:
        return f"{step + 1} {report_unit(kind)}(s)"
    total, unit, made_of = runs
    from searchlab.tasks.crossval import progress_steps   # here: it brings torch, which loading a study does not need

    step_of = progress_steps(total, study.config.budget.epochs)
    done = next((run + 1 for run in range(total) if step_of(run) >= step), total)
    return f"{done} of {total} {unit}s{made_of}"


def longest_trial(study: Study) -> tuple[int, str, str]:
    """The most epoch reports one trial of the study can send the scheduler (Tune counts them as its
    training_iteration, the unit of max_t and grace_period), the setting that allows that many, and what one
    report is called (report_unit)."""
    kind = study.config.task.kind
    if kind == "classify":
        return _longest_classify_trial(study)
    # generate: its MedFID checkpoints (the most the space's train.evaluations gives); callable: budget.epochs
    setting = "space.train.evaluations" if kind == "generate" else "budget.epochs"
    return pruner_steps(study), setting, report_unit(kind)


def _longest_classify_trial(study: Study) -> tuple[int, str, str]:
    """A classify trial reports once per epoch of its train.epochs (budget.epochs where the space leaves it
    out), or, under train.cv_folds or repeats, once per run (a fold, or a repeat: report_unit). Read from the
    space itself, every value it can take: the load-time probes stop at a few hundred configs, before a large
    space's train settings."""
    budget = study.config.budget.epochs
    epochs = max([value or budget for value in _space_values(study.space, ("train", "epochs"))] or [budget])
    fold_values = [value or 1 for value in _space_values(study.space, ("train", "cv_folds"))] or [1]
    repeat_values = [value or 1 for value in _space_values(study.space, ("train", "repeats"))] or [1]
    folds, repeats = max(fold_values), max(repeat_values)
    # every trial repeats its runs: none reports per epoch, so epochs are no measure (3 folds of 5 epochs let a
    # grace_period of 4 pass, where a scheduler judges one report of such a trial)
    every_trial_repeats = min(fold_values) > 1 or min(repeat_values) > 1
    if folds * repeats > epochs or every_trial_repeats:
        unit = report_unit("classify", {"train": {"cv_folds": folds if folds > 1 else None, "repeats": repeats}})
        return folds * repeats, "space.train.cv_folds x space.train.repeats", unit
    return epochs, "budget.epochs" if epochs == budget else "space.train.epochs", report_unit("classify")


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
    any. A trial's last report is not judged (it has finished), so the scheduler sees at most longest - 1 of
    them, and a trial of repeated runs (`unit` a fold or repeat) not its first either (one run is noise:
    crossval.cross_validate): a grace_period past what it judges stops no trial, and is refused before Ray
    starts. `unit` names a report (report_unit): a GAN's are its evaluations, and "epochs" named a setting it
    does not have."""
    unjudged = 2 if unit in RUN_UNITS else 1
    if grace_period > longest - unjudged:
        judged = f"{longest - unjudged} {unit}" + ("" if longest - unjudged == 1 else "s")
        why = "the first and last are not judged: one run is noise, after the last" if unjudged == 2 else \
            "the last is not judged"
        raise ConfigError(f"the scheduler judges at most {judged} of the longest trial ({setting}: "
                          f"{longest}; {why}, the trial has finished): no trial could ever be stopped",
                          key="executor.scheduler.grace_period", got=grace_period,
                          fix=(f"grace_period: {longest - unjudged} or less, or " if longest > unjudged else "") +
                          f"train longer ({setting}: {grace_period + unjudged} or more)")
