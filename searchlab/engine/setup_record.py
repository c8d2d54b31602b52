"""The search as it was set up, kept in the study's record: what a methods section or a reviewer needs and a
run folder did not say (the space searched, the settings held fixed, strategy, pruner, budget, executor and
the `--set` overrides). The latest run's: a resumed study may have been run with another budget."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import searchlab
from searchlab.engine.changed_settings import fixed_settings
from searchlab.engine.resume import describe
from searchlab.errors import shown_value
from searchlab.space import searchable_params
from searchlab.space.params import Group
from searchlab.strategy import resolve
from searchlab.tasks import budget_epochs_read
from searchlab.versions import software_versions

if TYPE_CHECKING:
    from searchlab.config.load import Study


def search_setup(study: "Study") -> dict[str, Any]:
    cfg = study.config
    return {
        "space_searched": {param.name: describe(param.distribution()) for param, _ in searchable_params(study.space)},
        "space_fixed": fixed_by_path(study.space),
        "strategy": strategy_record(cfg.strategy),
        # a preset's file may change after the run: what it said then
        **({"strategy_preset_read": strategy_record(resolve(cfg.strategy, study.base_dir))}
           if cfg.strategy.preset else {}),
        "pruner": pruner_used(cfg),
        # without the epochs a task never reads (a GAN trains train.iterations): `status` said "epochs 20"
        "budget": cfg.budget.model_dump(mode="json", exclude_none=True,
                                        exclude=None if budget_epochs_read(study) else {"epochs"}),
        "executor": cfg.executor.model_dump(mode="json", exclude_none=True),
        "seed": cfg.seed,
        # a password in a value (`--set storage=postgresql://user:pw@host/db`) as ***: the record is served by
        # the dashboard and copied into every export's config.json
        "overrides": {f"--set {key}": shown_value(value) for key, value in study.overrides.items()},
        "searchlab": searchlab.__version__,
        "software": software_versions(),
    }


def strategy_record(strategy: Any) -> dict[str, Any]:
    """A StrategyConfig as written, with its name always: the default one (tpe) was dropped beside args, and
    the record then named no strategy (`status` said "search: None", a resume "preset None")."""
    written = strategy.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    if strategy.preset is None and strategy.class_ is None:
        written = {"name": strategy.name, **written}
    return written


def named_strategy(recorded: Any) -> dict[str, Any]:
    """A recorded strategy naming its strategy: records before the name was always kept (strategy_record)
    dropped the default, tpe, beside args, so one naming none ran tpe and equals a newer record of the same."""
    recorded = recorded if isinstance(recorded, dict) else {}
    return recorded if any(recorded.get(key) for key in ("name", "preset", "class")) else {**recorded, "name": "tpe"}


def pruner_used(cfg: Any) -> dict[str, Any]:
    """The Optuna pruner the trials ran under: none where a Ray scheduler stops them instead (the worker then
    prunes nothing, engine/ray_worker.py), not the default median the study file did not ask for."""
    if cfg.executor.scheduler is not None:
        return {"kind": "none", "args": {}, "ray_scheduler": cfg.executor.scheduler.kind}
    return cfg.pruner.model_dump(mode="json")


def fixed_by_path(space: Group) -> dict[str, Any]:
    """{dotted path: value} of the settings written as constants; one on a branch names it ("[model.kind=cnn]")."""
    out = {}
    for path, fixed, under in fixed_settings(space):
        branch = ", ".join(f"{'.'.join(p)}={label}" for p, label in under)
        out[".".join(path) + (f" [{branch}]" if branch else "")] = fixed.value
    return out
