"""The Optuna objective every executor runs: sample a config, run the task, record everything.

A failure fails only its own trial: the error and traceback are stored on the trial (user attrs `error`
and `traceback`) and the study goes on.
"""
from __future__ import annotations

import hashlib
import json
import math
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.artifacts import FileSystemArtifactStore
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial

from searchlab.config.load import Study
from searchlab.engine.numbers import is_truth_value, plain_number
from searchlab.engine.signals import interruption_message
from searchlab.errors import TrialFailure
from searchlab.space import Group, searchable_params, within
from searchlab.tasks import sample_trial_config
from searchlab.space.params import SEARCHABLE
from searchlab.space.sample import put_at
from searchlab.tasks import Task


# Settings applied only after training (a decision threshold rule): left out of the seed, so configs that
# differ only in them train the same network and a comparison of them is not one of seeds
AFTER_TRAINING = (("imbalance", "threshold"),)


def trial_seed(study_seed: int, config: dict[str, object]) -> int:
    """The same config under the same study seed trains identically, whichever trial number it gets."""
    trained = _without(config, AFTER_TRAINING)
    digest = hashlib.sha256(json.dumps([study_seed, trained], sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def _without(config: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    out = dict(config)
    for *parents, last in paths:
        node = out
        for part in parents:
            if not isinstance(node.get(part), dict):
                break
            node[part] = dict(node[part])   # a copy: the trial's own config is stored as sampled
            node = node[part]
        else:
            node.pop(last, None)
    return out


def make_objective(study: Study, task: Task, artifacts: FileSystemArtifactStore, deadline: float | None = None,
                   on_epoch: Callable[[int, float], None] | None = None,
                   ) -> Callable[[optuna.Trial], Sequence[float] | float]:
    # Each user attribute is one storage write (~2 ms on SQLite, as much as a trivial trial's own work), so
    # nothing the study already holds is written twice: a config made only of searched parameters is its
    # params (config_of rebuilds it), and metrics that are only the objectives are the trial's values.
    params_are_config = params_only(study.space)
    searched = {param.name: param.distribution() for param, _ in searchable_params(study.space)}
    objective_names = {metric for metric, _ in study.objectives}
    # here, not at the top: the context brings torch, which read-only commands (status, trials) never need
    from searchlab.engine.context import TrialContext

    def objective(trial: optuna.Trial) -> Sequence[float] | float:
        try:
            _check_within_space(trial, searched)   # a retry's values, before Optuna warns of their distribution
            config = sample_trial_config(trial, study)
            _check_within_space(trial, searched)   # and an enqueued design's, which only sampling sets
            if not params_are_config:
                trial.set_user_attr("config", config)
            ctx = TrialContext(trial, study, artifacts, trial_seed(study.config.seed, config), deadline,
                               on_epoch=on_epoch)
            trial.set_user_attr("ran_with", ran_with(ctx.seed, study.config.seed))
            metrics = task.run(config, ctx)
            values = objective_values(study, metrics)
        except optuna.TrialPruned:
            raise
        except BaseException as exc:   # includes Ctrl-C and SIGTERM: the trial is failed with why, then re-raised
            _record_failure(trial, exc)
            if isinstance(exc, (Exception, KeyboardInterrupt, SystemExit)):
                raise
            # asyncio.CancelledError, GeneratorExit, a BaseException of the user's: Optuna catches Exception
            # only, so it ended the run with the trial left RUNNING, then marked interrupted and run again
            raise TrialFailure(f"{type(exc).__name__}: {exc}") from exc
        if not set(metrics) <= objective_names:
            trial.set_user_attr("metrics", {k: v for k, v in metrics.items() if _jsonable(v)})
        return values[0] if len(values) == 1 else values

    return objective


def _check_within_space(trial: optuna.Trial, searched: dict[str, BaseDistribution]) -> None:
    """A queued config (a retry of an interrupted trial, a strategy's design) keeps the values it was drawn
    with: after the space was narrowed on resume it ran outside it, and could become the study's best."""
    for name, value in trial.params.items():
        distribution = searched.get(name)
        if distribution is not None and not within(distribution, value):
            from searchlab.engine.resume import describe   # resume imports this module

            raise TrialFailure(f"this queued config has {name}={value!r}, outside the space's {describe(distribution)}"
                               " (the study file changed since it was queued). Fix: nothing to do, the search goes "
                               "on inside the space; widen the range again to try that config")


def ran_with(seed: int, study_seed: int) -> dict[str, int]:
    """What a trial's numbers depend on beyond its config: its own seed (drawn from the study's `seed:` and its
    config), the study's `seed:` it ran under (a resume may since have changed it: the one a rerun must set),
    and torch's CPU threads (reductions sum in another order on another count: up to 0.06 validation AUC apart
    after 3 epochs on BreastMNIST, 1 vs 2 threads)."""
    import torch   # here: a trial runs with torch loaded; status and trials never call this

    return {"seed": seed, "study_seed": study_seed, "torch_threads": torch.get_num_threads()}


def params_only(group: Group) -> bool:
    """True when every value of a sampled config is a searched parameter named by its dotted path."""
    return all(isinstance(node, SEARCHABLE) or (isinstance(node, Group) and params_only(node))
               for _, node in group.entries)


def config_of(trial: FrozenTrial) -> dict[str, Any]:
    """The trial's whole sampled config: stored as a user attr, or rebuilt from params (see make_objective)."""
    if "config" in trial.user_attrs:
        return trial.user_attrs["config"]
    config: dict[str, Any] = {}
    for name, value in trial.params.items():
        put_at(config, tuple(name.split(".")), value)
    return config



def objective_values(study: Study, metrics: dict[str, float]) -> list[float]:
    values = []
    for metric, _ in study.objectives:
        if metric not in metrics:
            raise TrialFailure(f"the task returned no '{metric}' (it returned: {', '.join(sorted(metrics))}). Fix: "
                               f"return {metric!r} among the metrics, or name one of those as the objective")
        raw = metrics[metric]
        if _truth_or_text(raw):
            raise TrialFailure(f"objective '{metric}' is {raw!r}, a {type(raw).__name__}, not a number. Fix: return "
                               f"the number itself as {metric!r} (e.g. float(score), not str(score) or score > 0.5)")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise TrialFailure(f"objective '{metric}' is {raw!r}, not a number. Fix: return a number "
                               f"as {metric!r}") from None
        if not math.isfinite(value):
            raise TrialFailure(f"objective '{metric}' is {value}{_why_not_finite(study, metrics)}")
        values.append(value)
    return values


def _truth_or_text(value: object) -> bool:
    """A bool or text, which float() takes: {"score": True} completed as 1.0 and became the study's best trial,
    {"score": "0.7"} as 0.7. numpy's bool_ and a bool tensor too (plain_number leaves them as they are)."""
    value = plain_number(value)
    return is_truth_value(value) or isinstance(value, (str, bytes, bytearray))


def _why_not_finite(study: Study, metrics: dict[str, float]) -> str:
    if study.config.task.kind != "classify":
        return ". Fix: return a finite number"
    if "cv_folds_done" in metrics:   # the mean over folds: some held-out fold lacked a class or a label's positives
        return (" (undefined on a held-out fold: one without an image of some class, or multi-label, without "
                "positives of some label). Fix: lower space.train.cv_folds, or add images of the rarest class "
                "(label)")
    return (" (undefined on this validation split, e.g. a single class present). Fix: a validation split with "
            "every class (data.val_fraction), or space.train.cv_folds")


def _record_failure(trial: optuna.Trial, exc: BaseException) -> None:
    message = interruption_message(exc) if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
    try:
        trial.set_user_attr("error", message)
        trial.set_user_attr("traceback", "".join(traceback.format_exception(exc))[-20000:])
    except Exception:  # the storage itself may be what failed; Optuna still marks the trial FAIL
        pass


def _jsonable(value: object) -> bool:
    return isinstance(value, (int, float, str, bool)) and not (isinstance(value, float) and not math.isfinite(value))
