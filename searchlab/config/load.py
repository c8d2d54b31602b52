"""The one boundary where a study file becomes typed, validated objects.

Everything a user can get wrong is found here, before any trial runs, and reported with the file, line,
key path, rule, value given and fix (ConfigError). Downstream code receives a `Study` and trusts it.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from searchlab.config import schema
from searchlab.config.checks_places import (check_export_folder, check_journal_place, check_storage_is_a_url,
                                            check_unused_data_keys, storage_file_of)
from searchlab.config.yamlsrc import KeyPath, Located, dotted, read_yaml, remove_written, section_of
from searchlab.errors import (ConfigError, RegistryError, SearchlabError, error_loc, pydantic_fix, rule_and_fix,
                              shown_input)
from searchlab.space import Branch, Group, compile_space, within
from searchlab.study_modules import study_folder_first
from searchlab.suggest import did_you_mean


@dataclass(frozen=True)
class Study:
    """A validated study: its config, compiled space, and where it came from."""

    config: schema.StudyConfig
    space: Group
    file: Path
    objectives: tuple[tuple[str, str], ...]     # (metric, direction) in order; first one is primary
    # Absolute, fixed when loaded: Ray runs each trial in a working folder of its own, where relative paths
    # (the default runs/<name>, or storage: sqlite:///study.db) named another, empty study.db and failed
    # every trial.
    base_dir: Path      # the study file's folder: relative data paths in it are resolved against it
    run_dir: Path
    storage_url: str    # storage, or SQLite in run_dir; a relative SQLite or journal file made absolute
    # The --set overrides it was loaded with, recorded with the run (engine/setup_record.py)
    overrides: dict[str, Any] = field(default_factory=dict)
    # The file as compiled (which included fragment wrote which space key): errors found when a run starts,
    # once the data is read, name the fragment's line as errors found at load do
    source: Located | None = field(default=None, compare=False, repr=False)

    @property
    def directions(self) -> list[str]:
        return [direction for _, direction in self.objectives]


def load_study(path: str | Path, overrides: dict[str, Any] | None = None) -> Study:
    """Parse, validate and compile a study file. Raises SearchlabError (ConfigError) on any problem."""
    path = Path(path)
    src = read_yaml(path)
    make_study_folder_importable(path)
    data = src.data
    if not isinstance(data, dict):
        raise src.error((), "a study file is a mapping of sections (name, data, space, ...)", got=data,
                        fix="start from studies/quickstart.yaml, which has every section")
    included: list[str] = []   # space keys of included fragments that --set KEY=null removes
    if overrides:
        # The space is compiled from `src`, so the overridden data must replace it there too (space.* keys).
        overridden = {tuple(key.split(".")): f"--set {key}" for key in overrides}
        data, included = _apply_overrides(data, overrides, Located(data, src.file, src.lines, overridden=overridden))
        src = Located(data, src.file, src.lines, overridden=overridden)
    config = _validate(schema.StudyConfig, data, src)
    check_unused_data_keys(config, data, src, path.resolve().parent)
    _check_generate_study(config, data, src)
    space = _without_keys(compile_space(src, ("space",)), included)
    from searchlab.tasks import get_task   # tasks import the schema; keep this module import-light

    if config.data is None and config.task.kind != "callable":   # a callable task's function reads its own
        raise src.error(("data",), "required key is missing", fix="add 'data', e.g. data: {source: medmnist, name: "
                        "breastmnist, size: 28} (or a folder or CSV set: the README's Data section)")
    task = _task_of(config, src, get_task)
    # `objective: auc` is one metric, not a list: its errors are at `objective`, not `objective[0]`
    listed = isinstance(data.get("objective"), list)
    objectives = tuple(task.resolve_objective(obj, src, ("objective", i) if listed else ("objective",))
                       for i, obj in enumerate(config.objective))
    metrics = [metric for metric, _ in objectives]
    twice = next((metric for metric in metrics if metrics.count(metric) > 1), None)
    if twice:   # a two-objective study of one metric: no pruner, no single best, for nothing
        raise src.error(("objective",), f"lists {twice!r} more than once", got=metrics,
                        fix="list each metric once")
    run_dir = config.resolved_run_dir.resolve()
    if run_dir.exists() and not run_dir.is_dir():
        raise src.error(("run_dir",), f"the run folder is a file: {run_dir}", got=str(config.resolved_run_dir),
                        fix="name a folder (new or of an earlier run of this study), e.g. runs/<name>")
    check_export_folder(config, src)
    check_storage_is_a_url(config.storage, src)
    check_journal_place(config.storage, src)
    study = Study(config=config, space=space, file=path, objectives=objectives, base_dir=path.resolve().parent,
                  run_dir=run_dir, storage_url=_absolute_storage(config.storage, run_dir),
                  overrides=dict(overrides or {}), source=src)
    try:
        task.validate_space(study, src)
        _validate_points(study, src)
        _validate_something_to_search(study, src)
        _validate_executor_installed(study, src)
        _validate_ray_scheduler(study)
        _validate_strategy_and_pruner(study)
    except ConfigError as exc:
        raise _locate(exc, src) from None
    return study


def _task_of(config: schema.StudyConfig, src: Located, get_task: Any) -> Any:
    """The study's task; a callable task's function that cannot be imported is named at its line, as every
    other mistake in the file is."""
    try:
        return get_task(config.task)
    except RegistryError as exc:
        rule, _, fix = str(exc).partition(". Fix: ")
        raise src.error(("task", "function") if config.task.kind == "callable" else ("task",), rule,
                        fix=fix or None) from None


def make_study_folder_importable(path: Path) -> None:
    """A `module:Class` plug-in (strategy, callable task, NNI space) may sit beside its study file, as
    presets and space fragments may. Its modules come after the installed packages, so a stray `optuna.py`
    beside a study cannot shadow the real one, and before the caller's folder, PYTHONPATH and earlier
    studies' folders (study_modules.py). Ray workers inherit it (ray_cluster)."""
    study_folder_first(str(path.resolve().parent))


def _check_generate_study(config: schema.StudyConfig, data: dict[str, Any], src: Located) -> None:
    """What a GAN study would silently not do: train for budget.epochs (a GAN trains train.iterations), keep
    within budget.max_params / max_flops / max_depth (a generator is not costed), or
    export an ensemble or TTA (they average a classifier's probabilities; found after the run, the export was
    skipped and the command it suggested failed the same way)."""
    if config.task.kind != "generate":
        return
    budget = data.get("budget")
    if isinstance(budget, dict) and "epochs" in budget:
        raise src.error(("budget", "epochs"), "a GAN trial trains train.iterations generator steps and never reads "
                        "budget.epochs", got=budget["epochs"], fix="remove budget.epochs and set the training "
                        "length in the space as train.iterations, e.g. {choice: [500, 1000]}")
    for key in ("max_params", "max_flops", "max_depth"):
        if isinstance(budget, dict) and budget.get(key) is not None:
            # else a trial over it completed unpruned (max_params 1000: a 109,059-parameter generator)
            raise src.error(("budget", key), "GAN trials are not costed (no params, flops or depth is measured of a "
                            "generator), so this limit would be ignored", got=budget[key], fix=f"remove "
                            f"budget.{key}; to prefer fast generators add train_seconds as a second objective, "
                            "e.g. objective: [medfid, train_seconds]")
    for key, value, alone in (("top_k", config.export.top_k, 1), ("tta", config.export.tta, "none")):
        if value != alone:
            raise src.error(("export", key), "a GAN study exports its best generator alone: top_k and tta are "
                            "for classifiers (an ensemble or test-time augmentation averages class "
                            "probabilities)", got=value, fix=f"remove export.{key}")


def with_data_root_pinned(study: Study) -> Study:
    """The study with $SEARCHLAB_DATA read here and made absolute against this process's folder, for trials
    run elsewhere: Ray runs each trial in a working folder of its own (where the README's
    `SEARCHLAB_DATA=../shared/data` named no data) and other nodes may not have the variable at all.
    Not done at load: the study's record keeps `root` unset, so a later export reads the variable then."""
    data = study.config.data
    env = os.environ.get(schema.DATA_ROOT_ENV)
    if not isinstance(data, schema.MedMNISTData) or data.root is not None or not env:
        return study
    pinned = data.model_copy(update={"root": Path(env).expanduser().absolute()})
    return replace(study, config=study.config.model_copy(update={"data": pinned}))


def _absolute_storage(url: str | None, run_dir: Path) -> str:
    """The storage URL with a relative SQLite or journal file path resolved against the working folder, as
    Optuna would resolve it here (`sqlite:///study.db` is relative, `sqlite:////abs/study.db` absolute), and a
    home folder (`~`) expanded."""
    if url is None:
        return f"sqlite:///{run_dir / 'study.db'}"
    for prefix in ("sqlite:///", "journal://"):
        path = storage_file_of(url, prefix)
        if url.startswith(prefix) and path.startswith("~"):   # as a shell would: not a folder named "~"
            return prefix + str(Path(path).expanduser())
        if url.startswith(prefix) and path and not path.startswith(("/", ":memory:")):
            return prefix + str(Path.cwd() / path)
    return url


def _locate(exc: ConfigError, src: Located) -> ConfigError:
    """Errors raised without a file (from registries, samplers) get the study file and the key's line."""
    if exc.file is not None:
        return exc
    path: KeyPath = tuple(exc.key.split(".")) if exc.key else ()
    return src.error(path, exc.rule, got=exc.got, fix=exc.fix)


def locate_in_study(exc: ConfigError, study: Study) -> ConfigError:
    """The same for errors found after loading, when a run starts (checks that need the data): the study
    file's line of the key, or the `--set` option that gave it."""
    if exc.file is not None:
        return exc
    if study.source is not None:
        return _locate(exc, study.source)
    src = read_yaml(study.file)
    return _locate(exc, Located(src.data, src.file, src.lines,
                                overridden={tuple(key.split(".")): f"--set {key}" for key in study.overrides}))


def _apply_overrides(data: dict[str, Any], overrides: dict[str, Any], src: Located) -> tuple[dict[str, Any], list[str]]:
    """Dotted-key overrides from the command line (e.g. budget.n_trials=3) applied on a copy. `KEY=null` removes
    KEY, after the values whatever their order, so its default applies (a written `test_fraction` beside a --set
    split_column could not be undone from the command line). Under space, a key only an included fragment writes
    is removed from the merged space the study runs (returned: removed once compiled), as a key the study writes
    is from the file; a null in its place made `--set space.optim.lr=null` fail as "leave optim.lr out", which
    the fragment, not the study, wrote. A space key neither writes is set to null, as `key: null` would be."""
    out = copy.deepcopy(data)
    for key, value in overrides.items():
        if value is not None:
            section_of(out, key, src, create=True)[key.split(".")[-1]] = value
    unwritten = [key for key, value in overrides.items() if value is None and not remove_written(out, key, src)]
    _refuse_unknown_removals(out, unwritten, src)
    unwritten_space = [key for key in unwritten if key.startswith("space.")]
    included = _in_the_merged_space(out, unwritten_space, src)
    for key in unwritten_space:
        if key not in included:   # a misspelt key is then named by the task's check of the space
            section_of(out, key, src, create=True)[key.split(".")[-1]] = None
    return out, included


def _in_the_merged_space(data: dict[str, Any], keys: list[str], src: Located) -> list[str]:
    """Of space `keys` the study does not write, those its compiled space has: keys of included fragments."""
    if not keys:
        return []
    space = compile_space(Located(data, src.file, src.lines, overridden=src.overridden), ("space",))
    return [key for key in keys if _without(space, tuple(key.split(".")[1:])) is not None]


def _without(node: Any, path: tuple[str, ...]) -> Any:
    """`node` of a compiled space with the setting at `path` removed, or None where it has no such setting. On a
    one_of, `path` names an option's key (`gan.dcgan.latent`) or a key of every option having it (`model.depth`),
    as --set spells them; its selector (which option runs) is not removed."""
    head, rest = path[0], path[1:]
    if isinstance(node, Group):
        entries = dict(node.entries)
        if head not in entries:
            return None
        if not rest:
            del entries[head]
            return Group(tuple(entries.items()))
        inner = _without(entries[head], rest)
        return None if inner is None else Group(tuple({**entries, head: inner}.items()))
    if not isinstance(node, Branch) or head == node.key:
        return None
    options = dict(node.options)
    if head in options:
        changed = {head: _without(options[head], rest)} if rest else {}
    else:
        changed = {label: _without(group, path) for label, group in options.items()}
    changed = {label: group for label, group in changed.items() if group is not None}
    return Branch(node.name, node.key, tuple({**options, **changed}.items())) if changed else None


def _without_keys(space: Group, keys: list[str]) -> Group:
    for key in keys:   # one may be inside another removed before it (space.optim and space.optim.lr)
        removed = _without(space, tuple(key.split(".")[1:]))
        space = space if removed is None else removed
    return space


def _refuse_unknown_removals(data: dict[str, Any], keys: list[str], src: Located) -> None:
    """A `--set KEY=null` with nothing to remove is accepted, but a misspelt KEY (`data.tset_fraction`) is refused
    as unknown, as a value for it is: the user meant to remove a key the study has, and would be told nothing."""
    keys = [key for key in keys if not key.startswith("space.")]   # the space's null stands, checked as written
    if not keys:
        return
    probe = copy.deepcopy(data)
    for key in keys:
        section_of(probe, key, src, create=True)[key.split(".")[-1]] = None
    try:
        schema.StudyConfig.model_validate(probe)
    except ValidationError as exc:
        paths = [tuple(key.split(".")) for key in keys]
        for error in exc.errors():
            path = _data_path(probe, error_loc(error))
            if error["type"] == "extra_forbidden" and any(key[:len(path)] == path for key in paths):
                raise _config_error(exc, probe, src, (), first=error) from None


def _validate(model: type[BaseModel], data: Any, src: Located, at: KeyPath = ()) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, data, src, at) from None


def _config_error(exc: ValidationError, data: Any, src: Located, at: KeyPath,
                  first: Any = None) -> ConfigError:
    """Turn pydantic's first error (or `first` of them) into our message; pydantic's loc may include union tags
    we drop."""
    errors = exc.errors()
    first = first or errors[0]
    path = at + _data_path(data, error_loc(first))
    more = _others([error for error in errors if error != first])
    if first["type"] == "extra_forbidden":
        valid = schema.valid_keys(first["loc"])
        close = did_you_mean(str(path[-1]), valid)
        return src.error(path, "unknown key" + more, got=path[-1],
                         fix=(f"{close} Valid keys here: {', '.join(valid)}" if close else
                              f"valid keys here: {', '.join(valid)}") if valid else "remove it")
    if first["type"] == "missing":
        return src.error(path, "required key is missing" + more, fix=f"add '{dotted(path)}'")
    if first["type"] == "union_tag_invalid":   # name the key and value at fault, not the whole section
        key = first["ctx"]["discriminator"].strip("'")
        return src.error(path + (key,), "unknown kind" + more, got=first["ctx"]["tag"], fix=pydantic_fix(first))
    rule, fix = rule_and_fix(first)
    if first.get("input", ...) is None and _set_on_command_line(src, path):   # `--set data={test_fraction: null}`
        fix = fix or f"give a value, or leave {dotted(path)} out for its default: --set {dotted(path)}=null removes it"
    given = shown_input(first)
    if isinstance(given, bool) and "quote the word" in (fix or "") and _set_on_command_line(src, path):
        fix = f"{fix} (on the command line, quoted for the shell too: --set '{dotted(path)}=\"{str(given).lower()}\"')"
    return src.error(path, rule + more, got=shown_input(first), fix=fix or pydantic_fix(first, dotted(path)))


def _set_on_command_line(src: Located, path: KeyPath) -> bool:
    """Whether a --set option wrote `path` (or a section above it), where 'leave it out' is no edit of the file."""
    return any(path[:end] in src.overridden for end in range(1, len(path) + 1))


def _others(errors: list[Any]) -> str:
    """The problems after the first, named briefly, so fixing one does not just reveal the next."""
    if not errors:
        return ""
    named = [f"{dotted(error_loc(e)) or 'the study'}: {e['msg'].removeprefix('Value error, ')}" for e in errors[:3]]
    rest = f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
    return f" (also: {'; '.join(named)}{rest})"


def _data_path(data: Any, loc: tuple[Any, ...]) -> KeyPath:
    """Keep the parts of pydantic's loc that exist in the user's data (drop discriminator tags)."""
    out: list[str | int] = []
    for part in loc:
        if isinstance(data, dict) and part in data:
            data = data[part]
            out.append(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
            out.append(part)
        elif isinstance(part, str) and not isinstance(data, (dict, list)):
            break
        elif part == loc[-1]:
            out.append(part)
    return tuple(out)


def _validate_points(study: Study, src: Located) -> None:
    """Every strategy.points_to_evaluate entry names searched parameters with values their ranges allow."""
    from searchlab.space import searchable_params
    from searchlab.space.sample import fixed_needs, fixed_values

    searched = list(searchable_params(study.space))
    params = {param.name: param for param, _ in searched}
    needs = {param.name: branch for param, branch in searched}
    fixed, fixed_in = fixed_values(study.space), fixed_needs(study.space)
    for i, point in enumerate(study.config.strategy.points_to_evaluate):
        for name, value in point.items():
            at = ("strategy", "points_to_evaluate", i, name)
            if name in fixed and name not in params:
                _check_point_keeps_the_fixed_value(name, value, fixed[name], src, at)
                _check_point_takes_the_branch(point, name, fixed_in.get(name, {}), src, at)
                continue
            if not params:   # "Fix: one of: " listed nothing
                raise src.error(at, "the space searches nothing (every setting in it is fixed), so a point has "
                                "no parameter to set", got=name, fix=_nothing_searched_fix(name, fixed))
            if name not in params:
                raise src.error(at, "a point names only searched parameters of the space", got=name,
                                fix=did_you_mean(name, params) or f"one of: {', '.join(sorted(params))}")
            if not within(params[name].distribution(), value):
                raise src.error(at, f"the value must lie in the parameter's space: {_allowed(params[name])}",
                                got=value, fix="a value the space of this parameter allows")
            _check_point_takes_the_branch(point, name, needs[name], src, at)


def _nothing_searched_fix(name: str, fixed: dict[str, Any]) -> str:
    """Drop the points, or search the setting the point meant (a fixed one it names by its last part)."""
    meant = next((key for key in fixed if key.rsplit(".", 1)[-1] == name), None)
    search = (f"search {meant} in the space (e.g. {{choice: [{fixed[meant]!r}, ...]}} or a range) and name it "
              f"{meant} in the point" if meant else "search a parameter in the space and name it in the point")
    return f"remove strategy.points_to_evaluate (every trial runs the space's one config), or {search}"


def _check_point_keeps_the_fixed_value(name: str, value: Any, fixed: Any, src: Located, at: tuple[Any, ...]) -> None:
    """A point may restate a value the space fixes (a selector pinned by `--set space.model.kind=cnn` was refused
    as unknown, 'did you mean' another name), not change it: its trial would run the fixed value."""
    if value != fixed or isinstance(value, bool) != isinstance(fixed, bool):
        raise src.error(at, f"the space fixes {name} to {fixed!r}, so this point's trial would run {fixed!r}",
                        got=value, fix=f"drop {name} from this point, or search it in the space")


def _check_point_takes_the_branch(point: dict[str, Any], name: str, branch: dict[str, Any], src: Located,
                                  at: tuple[Any, ...]) -> None:
    """A parameter of one branch exists only when the point takes that branch: left to the sampler, another
    branch was drawn and the value silently dropped."""
    for selector, label in branch.items():
        if point.get(selector, label) != label:
            raise src.error(at, f"it exists only when {selector} is {label!r}, and this point sets {selector} to "
                            f"{point[selector]!r}", got=name, fix=f"drop {name} from this point, or set {selector}: "
                            f"{label}")
        if selector not in point:
            raise src.error(at, f"it exists only when {selector} is {label!r}, which this point leaves to the "
                            "sampler (another branch drops the value)", got=name,
                            fix=f"add {selector}: {label} to this point")


def _validate_something_to_search(study: Study, src: Located) -> None:
    """A space that searches nothing gives every trial the same config, hence the same seed and, for the built-in
    tasks, the same result (a callable task may draw its own randomness, so it may repeat on purpose)."""
    from searchlab.space import searchable_params
    from searchlab.space.sample import one_choices

    n_trials = study.config.budget.n_trials
    builtin = study.config.task.kind != "callable"
    if builtin and n_trials > 1 and next(searchable_params(study.space), None) is None:
        ones = one_choices(study.space)
        fixed = f" ({_listed(ones)}: a choice of one value is that value, fixed)" if ones else ""
        raise src.error(("budget", "n_trials"), f"the space searches nothing{fixed}, so each of the {n_trials} "
                        "trials would train the same config from the same seed to the same result", got=n_trials,
                        fix=f"n_trials: 1 to train this config once{_seeds_hint(study.config.task.kind)}, or "
                        "search a parameter")


def _listed(names: list[str], shown: int = 3) -> str:
    """The first `shown` space keys of `names`, then how many more: one line however large the space."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(f"space.{name}" for name in names[:shown]) + more


def _seeds_hint(task_kind: str) -> str:
    """How this task trains one config under several seeds: train.repeats is the classify task's alone (a GAN
    study given it is refused, "the generate task has no such setting"); a GAN trial's seed comes from the
    study's seed and its config, so other seeds are other runs, which `compare` pools."""
    if task_kind == "classify":
        return " (train.repeats: N averages N seeds in one trial)"
    return (" (for other seeds, run it again with another seed into another run_dir, e.g. --set seed=1 --set "
            "run_dir=runs/seed1; searchlab compare pools runs that differ only in seed)")


def _validate_ray_scheduler(study: Study) -> None:
    """A grace_period past the longest trial: Ray's asha asserted it after starting, and no trial could be
    stopped."""
    scheduler = study.config.executor.scheduler
    if study.config.executor.kind == "ray" and scheduler is not None:
        from searchlab.engine.ray_schedule import check_grace_period, longest_trial

        check_grace_period(scheduler.grace_period, *longest_trial(study))


def _validate_executor_installed(study: Study, src: Located) -> None:
    """Ray is an optional extra: without it a Ray study would fail after creating its run, deep in an import."""
    import importlib.util

    if study.config.executor.kind == "ray" and importlib.util.find_spec("ray") is None:
        raise src.error(("executor", "kind"), "the Ray executor needs Ray, which is not installed", got="ray",
                        fix="pip install 'searchlab[ray]' (or use executor: {kind: local})")


def _allowed(param: Any) -> str:
    if hasattr(param, "choices"):
        return "one of " + ", ".join(repr(c) for c in param.choices)
    step = f" in steps of {param.step}" if getattr(param, "step", None) not in (None, 1) else ""
    return f"{param.low} to {param.high}{step}" + (" (log scale)" if param.log else "")


def _validate_strategy_and_pruner(study: Study) -> None:
    """Build the sampler and pruner once now, so bad names or arguments fail before any trial."""
    from searchlab.strategy import build_pruner, build_sampler, missing_package
    from searchlab.tasks import pruner_steps

    try:
        missing = missing_package(build_sampler(study.config.strategy, study.config.seed, study.base_dir))
        build_pruner(study.config.pruner, pruner_steps(study))
    except ConfigError:
        raise
    except SearchlabError as exc:   # e.g. an unknown strategy name from the registry
        rule, _, fix = str(exc).partition(". Fix: ")   # a fix of its own (e.g. a module to install) comes first
        raise ConfigError(rule, key="strategy", fix=fix or "name a registered strategy, `preset: FILE` from "
                          "strategies/, or `class: module:Class` for any Optuna sampler") from None
    if missing is not None:
        module = getattr(missing, "name", None) or str(missing)
        raise ConfigError(f"the strategy's sampler needs a Python module that is not installed ({missing})",
                          key="strategy", got=study.config.strategy.class_ or study.config.strategy.name,
                          fix=f"install the package that provides '{module}' (e.g. pip install {module}), or choose "
                          "another strategy")
