"""Strategies are Optuna samplers; pruners are the scheduler side (they never meet executors).

`STRATEGIES` maps a name to a factory `f(seed, **args) -> BaseSampler`. Later strategies (evolution,
Zen-NAS, DeepMAD) register here the same way; any user sampler plugs in as `class: "module:Class"`.
"""
from __future__ import annotations

import copy
import inspect
import re
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.samplers import BaseSampler
from pydantic import ValidationError

from searchlab.config.schema import PrunerConfig, StrategyConfig
from searchlab.config.yamlsrc import is_study_file, read_yaml
from searchlab.errors import ConfigError, RegistryError, pydantic_fix, rule_and_fix
from searchlab.registry import Registry, import_object
from searchlab.nas.deepmad_design import DeepMADSettings, make_deepmad, prepare_deepmad
from searchlab.nas.deepmad_design import check_space as deepmad_check_space
from searchlab.nas.deepmad_design import main_population as deepmad_main_population
from searchlab.nas.stage import settings_from_args
from searchlab.nas.zen_nas import ZenNASSettings, make_zen_nas, prepare_zen_nas
from searchlab.nas.zen_nas import check_space as zen_check_space
from searchlab.nas.zen_nas import main_population as zen_main_population
from searchlab.samplers.budget import budget_check, config_identity
from searchlab.samplers.evolution import RegularizedEvolutionSampler
from searchlab.space import searchable_params
from searchlab.suggest import did_you_mean
from searchlab.throwaway import throwaway_study

REPO_STRATEGIES = Path(__file__).resolve().parents[1] / "strategies"


def _random(seed: int, **args: Any) -> BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed, **args)


_random.takes_args_of = optuna.samplers.RandomSampler   # type: ignore[attr-defined]  # its **args go there


TPE_DEFAULTS = dict(
    n_startup_trials=10,            # Optuna's default: enough random points before the density model
    multivariate=True,              # models parameters jointly: stronger on small budgets
    group=True,                     # splits the space by branch, so conditional parameters are modelled
    constant_liar=True,             # parallel workers do not all propose the same point
)


def _tpe(seed: int, **args: Any) -> BaseSampler:
    settings = {**TPE_DEFAULTS, **args}
    if "group" not in args:   # grouping needs the joint model: multivariate: false alone was refused for it
        settings["group"] = bool(settings["multivariate"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)   # multivariate/group: since 2.2
        return optuna.samplers.TPESampler(seed=seed, **settings)


_tpe.takes_args_of = optuna.samplers.TPESampler   # type: ignore[attr-defined]


STRATEGIES: Registry[BaseSampler] = Registry("strategy")
STRATEGIES.register("random", _random)
STRATEGIES.register("tpe", _tpe)
STRATEGIES.register("evolution", RegularizedEvolutionSampler)
STRATEGIES.register("zen_nas", make_zen_nas)
STRATEGIES.register("deepmad", make_deepmad)
# Strategies with a stage before the first trial (run once per study, by the runner, before any worker starts).
PREPARE = {"zen_nas": prepare_zen_nas, "deepmad": prepare_deepmad}
# ... and their checks of the space, run before the run's folder exists (PREPARE runs them again)
SPACE_CHECKS = {"zen_nas": zen_check_space, "deepmad": deepmad_check_space}


def resolve(cfg: StrategyConfig, study_dir: Path | None) -> StrategyConfig:
    """The strategy with its preset file (if any) read in."""
    return load_preset(cfg.preset, study_dir, extra_args=cfg.args) if cfg.preset is not None else cfg


def prepare_strategy(study: Any, main: optuna.Study, deadline: float | None) -> None:
    """Queue strategy.points_to_evaluate in a fresh study; run the strategy's stage before the first trial,
    if it has one (zen_nas: its proxy search)."""
    if not main.get_trials(deepcopy=False):   # a fresh study: its known-good configs go first, once
        searched = {param.name for param, _ in searchable_params(study.space)}
        for point in study.config.strategy.points_to_evaluate:   # less values the space fixes (load.py checks)
            main.enqueue_trial({k: v for k, v in point.items() if k in searched}, skip_if_exists=False)
    cfg = resolve(study.config.strategy, study.base_dir)
    if cfg.class_ is None and cfg.name in PREPARE:
        PREPARE[cfg.name](study, main, dict(cfg.args), deadline)


def check_strategy_space(study: Any) -> None:
    """Refuse a space the strategy cannot search (zen_nas or deepmad on a cells space, a plug-in sampler that
    refuses a kind of parameter) before `run` makes the run's folder, database and stage study: it was refused
    only after them (zen_nas after saying it was scoring, BruteForceSampler after a failed trial)."""
    cfg = resolve(study.config.strategy, study.base_dir)
    if cfg.class_ is None and cfg.name in SPACE_CHECKS:
        SPACE_CHECKS[cfg.name](study)
    if cfg.class_ is not None:   # a plug-in that refuses a kind of parameter (BruteForceSampler: unstepped floats)
        from searchlab.strategy_args import refuse_grid_naming_fixed
        from searchlab.strategy_guard import refuse_space_it_cannot_sample

        params = [param for param, _ in searchable_params(study.space)]
        sampler = build_sampler(study.config.strategy, study.config.seed, study.base_dir)
        if isinstance(sampler, optuna.samplers.GridSampler):
            refuse_grid_naming_fixed(cfg.args.get("search_space"), study.space)
        refuse_space_it_cannot_sample(sampler, cfg.class_, params, dict(cfg.args))


def build_sampler(cfg: StrategyConfig, seed: int, study_dir: Path | None = None, study: Any = None) -> BaseSampler:
    """The sampler a study asked for, by registered name, preset file or `module:Class`.

    With `study` given, a strategy that can use it (an argument `feasible`, e.g. evolution) gets the study's
    budget check, so it breeds only architectures within the budgets."""
    cfg = resolve(cfg, study_dir)
    _refuse_fixed_seed(cfg)
    if cfg.class_ is not None:
        cls = import_object(cfg.class_, "strategy class")
        if not (inspect.isclass(cls) and issubclass(cls, BaseSampler)):
            raise RegistryError(f"strategy class '{cfg.class_}' is not an optuna.samplers.BaseSampler subclass. Fix: "
                                "name a sampler class (e.g. optuna.samplers:TPESampler, or your own subclass of "
                                "BaseSampler)")
        if inspect.isabstract(cls):
            missing = ", ".join(sorted(cls.__abstractmethods__))
            raise RegistryError(f"strategy class '{cfg.class_}' does not implement the sampler interface: it lacks "
                                f"{missing}. Fix: define {missing} (see optuna.samplers.BaseSampler), or subclass a "
                                "complete sampler such as optuna.samplers.RandomSampler")
        args = dict(cfg.args)
        if "seed" in inspect.signature(cls).parameters:
            args.setdefault("seed", seed)
        return _construct(cls, _with_study_checks(cls, args, study), f"strategy class '{cfg.class_}'")
    if cfg.name is None:   # `name:` left empty (or null)
        raise ConfigError("names no strategy", key="strategy.name", got=None,
                          fix=f"one of {', '.join(STRATEGIES.names())}, or leave strategy out for tpe")
    factory = STRATEGIES.get(cfg.name)
    return _construct(factory, _with_study_checks(factory, {"seed": seed, **cfg.args}, study), f"strategy '{cfg.name}'")


def _with_study_checks(make: Any, args: dict[str, Any], study: Any) -> dict[str, Any]:
    """args plus the study's budget check (`feasible`) and config identity (`identity`) for a strategy whose
    constructor takes them: a built-in by name, or a class named by `class:` (evolution's own class included,
    which otherwise bred over-budget children and repeats)."""
    takes = inspect.signature(make).parameters
    if study is not None and "feasible" in takes:
        args["feasible"] = budget_check(study)
    if study is not None and "identity" in takes:
        args["identity"] = config_identity(study)
    return args


def _refuse_fixed_seed(cfg: StrategyConfig) -> None:
    """searchlab seeds each worker and each resumed run from the study's seed, each differently: one seed in
    args gave them all the same stream, so workers trained the same configs and a resume replayed the first
    trials."""
    if "seed" in cfg.args:
        raise ConfigError("a seed in the strategy's args makes every worker and every resumed run draw the same "
                          "configs (searchlab gives each its own seed, derived from the study's)",
                          key="strategy.args.seed", got=cfg.args["seed"],
                          fix="remove it and set the study's top-level `seed:` (the same seed reproduces a run)")


FIRST_OBJECTIVE_ONLY = {"evolution": "breeds from the best by the first objective",
                        "zen_nas": "ranks its designs by Zen-score, then breeds by the first objective",
                        "deepmad": "designs for the most entropy, then breeds by the first objective"}


def first_objective_warning(cfg: StrategyConfig, study_dir: Path | None, objectives: list[str]) -> str | None:
    """A multi-objective study searched by a strategy that steers by one objective: the others are recorded and
    make the Pareto front, but nothing seeks them (deepmad on [auc, flops] designed up to the FLOPs cap)."""
    cfg = resolve(cfg, study_dir)
    if len(objectives) < 2 or cfg.class_ is not None or cfg.name not in FIRST_OBJECTIVE_ONLY:
        return None
    others = ", ".join(objectives[1:])
    are, do = ("are", "do") if len(objectives) > 2 else ("is", "does")
    return (f"strategy '{cfg.name}' {FIRST_OBJECTIVE_ONLY[cfg.name]} ({objectives[0]}) only: {others} {are} "
            f"recorded, and in the Pareto front, but {do} not steer the search. Fix: tpe (which models every "
            "objective) or strategy: {class: \"optuna.samplers:NSGAIISampler\"}, or one objective with the others "
            "as budget limits (budget.max_params, max_flops)")


def unseeded_warning(cfg: StrategyConfig, study_dir: Path | None) -> str | None:
    """A plug-in class without a `seed` argument draws differently on every run, whatever the study's seed."""
    cfg = resolve(cfg, study_dir)
    if cfg.class_ is None:
        return None
    if "seed" in inspect.signature(import_object(cfg.class_, "strategy class")).parameters:
        return None
    return (f"strategy class '{cfg.class_}' takes no seed argument, so its draws differ from run to run whatever "
            "the study's seed says (and the same seed will not reproduce a run). Fix: give its __init__ a seed "
            "argument (searchlab passes each worker's seed), or seed its random generator yourself")


# the random trials a strategy starts with, before its model (TPE) or its population (evolution) takes over
STARTUP = {"tpe": ("n_startup_trials", lambda: TPE_DEFAULTS["n_startup_trials"]),
           "evolution": ("population_size", lambda: _default_of(RegularizedEvolutionSampler, "population_size"))}


def startup_warning(cfg: StrategyConfig, study_dir: Path | None, n_trials: int) -> str | None:
    """A budget within the strategy's random start-up: the strategy under study never runs (a comparison of
    TPE and evolution at 4 trials compares two random searches)."""
    cfg = resolve(cfg, study_dir)
    if cfg.class_ is None and cfg.name in STAGED:
        return _staged_startup_warning(cfg, n_trials)
    if cfg.name not in STARTUP or cfg.class_ is not None:
        return None
    arg, default = STARTUP[cfg.name]
    startup = cfg.args.get(arg, default())
    if not isinstance(startup, int) or n_trials > startup:   # not a count: the sampler's check refuses it
        return None
    return (f"strategy {cfg.name} draws its first {startup} trials at random ({arg}) and budget.n_trials is "
            f"{n_trials}: it never gets past them, so this run is a random search. Fix: raise budget.n_trials "
            f"above {startup}, or lower strategy.args.{arg}"
            + (" (or strategy: {preset: quick}: TPE after 5)" if cfg.name == "tpe" and startup > 5 else ""))


# strategies whose stage queues its top_k designs to train first, then evolves: (settings, main population)
STAGED = {"zen_nas": (ZenNASSettings, zen_main_population), "deepmad": (DeepMADSettings, deepmad_main_population)}


def _staged_startup_warning(cfg: StrategyConfig, n_trials: int) -> str | None:
    """Trials after the designs and before the evolution population is full are drawn at random."""
    settings_class, population_of = STAGED[cfg.name]
    settings = settings_from_args(settings_class, cfg.name, cfg.args)
    designs, population = settings.top_k, population_of(settings)
    if not designs < n_trials <= population:
        return None
    # numbered as everywhere else (status, the dashboard, --trial N): the designs are trials 0 to designs - 1
    random = f"trial {designs} is a random one" if n_trials == designs + 1 else \
        f"trials {designs} to {n_trials - 1} are random ones"
    return (f"strategy {cfg.name} trains its {designs} best designs first, then draws trials at random until "
            f"{population} are done (its evolution population) before it evolves; budget.n_trials is {n_trials}, "
            f"so {random}. Fix: strategy.args.population_size: {designs} "
            f"(evolve from the designs), or budget.n_trials above {population}")


def _default_of(cls: Any, arg: str) -> Any:
    return inspect.signature(cls).parameters[arg].default


# arguments searchlab passes itself, not the study's strategy.args
PASSED = ("seed", "feasible", "identity")


def _construct(factory: Any, args: dict[str, Any], what: str) -> BaseSampler:
    _refuse_unknown_args(factory, args, what)
    try:
        with warnings.catch_warnings():   # BruteForceSampler's and others' "is experimental": said with a
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)   # file:line, once a build
            return factory(**args)
    except ConfigError:   # a built-in strategy's own check of its args, which names the arg and the fix
        raise
    except (TypeError, ValueError) as exc:
        written = {k: v for k, v in args.items() if k not in PASSED}
        raise ConfigError(f"{what} rejected its arguments: {exc}", key="strategy.args", got=written,
                          fix="check the argument names and values against the sampler's documentation") from None
    except Exception as exc:   # the plug-in's own constructor failed: its code, not the study file
        raise ConfigError(f"{what} raised while being constructed: {type(exc).__name__}: {exc}", key="strategy",
                          fix="correct the sampler class's __init__") from None


def _refuse_unknown_args(factory: Any, args: dict[str, Any], what: str) -> None:
    """An argument the sampler does not take, named with its close match and the ones it takes (Python's
    "unexpected keyword argument" named neither). Samplers taking **kwargs are left to say it themselves."""
    target = getattr(factory, "takes_args_of", factory)
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):   # a builtin or C-level callable without a readable signature
        return
    if any(p.kind == inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    named = {name: p for name, p in params.items() if name not in PASSED and name != "self"
             and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}
    # a function (TPE's gamma, weights, constraints_func) or an Optuna object (PartialFixedSampler's base_sampler)
    # cannot be written in YAML: a string there made every trial after the random start fail with "'int' object
    # is not callable", or the first one with "'str' object has no attribute 'before_trial'"
    functions = {name: kind for name, p in named.items() if (kind := _python_only(p.annotation))}
    if given := sorted(set(args) & set(functions)) or _missing_python_only(named, functions, args):
        raise ConfigError(f"{what}: its argument {given[0]} takes {functions[given[0]]}, which a study file cannot "
                          "give", key=f"strategy.args.{given[0]}", got=args.get(given[0], ...),
                          fix=_python_only_fix(target, given[0]))
    takes = sorted(set(named) - set(functions))
    unknown = sorted(set(args) - set(named) - set(PASSED))
    if unknown:
        close = did_you_mean(unknown[0], takes)
        raise ConfigError(f"{what} has no such argument", key=f"strategy.args.{unknown[0]}", got=unknown[0],
                          fix=(f"{close} " if close else "") + (f"it takes {', '.join(takes)}" if takes else
                                                                "it takes no arguments: remove strategy.args"))
    _refuse_missing_args(named, args, what)
    from searchlab.strategy_args import check_arg_values

    check_arg_values(target, {k: v for k, v in args.items() if k not in PASSED}, what, "strategy.args",
                     defaults=TPE_DEFAULTS if target is optuna.samplers.TPESampler else None)


# the Optuna objects a sampler may take: none can be written in a study file
PYTHON_OBJECTS = re.compile(r"\bBase(Sampler|Mutation|Crossover|Pruner)\b")


def _python_only(annotation: Any) -> str | None:
    """What an argument takes that YAML cannot write (a function, an Optuna object), or None."""
    if "Callable" in str(annotation):
        return "a Python function"
    if found := PYTHON_OBJECTS.search(str(annotation)):
        return f"a Python object (an optuna {found.group(0)})"
    return None


def _missing_python_only(named: dict[str, Any], functions: dict[str, str], args: dict[str, Any]) -> list[str]:
    """The required arguments of that kind: PartialFixedSampler's base_sampler."""
    return [name for name in functions if named[name].default is inspect.Parameter.empty and name not in args]


def _python_only_fix(target: Any, arg: str) -> str:
    if getattr(target, "__name__", "") == "PartialFixedSampler":   # what it is for, searchlab's space does
        return ("write the parameters to fix as fixed values in the space (e.g. lr: 0.001, not a range) and search "
                "the rest with a strategy such as strategy: {name: tpe}, in place of PartialFixedSampler")
    return "remove it, or write a sampler class that passes it and name it as strategy: {class: \"module:Class\"}"


def _refuse_missing_args(named: dict[str, Any], args: dict[str, Any], what: str) -> None:
    """A required argument left out, by its key (Python's "missing 1 required positional argument" was said as
    arguments to check against the sampler's documentation)."""
    missing = [name for name, p in named.items() if p.default is inspect.Parameter.empty and name not in args]
    if not missing:
        return
    example = {"search_space": " (one list of values per searched key, e.g. search_space: {lr: [0.001, 0.01], "
                               "batch_size: [32, 64]})"}
    raise ConfigError(f"{what} needs the argument {missing[0]}", key=f"strategy.args.{missing[0]}",
                      fix=f"give strategy.args.{missing[0]}{example.get(missing[0], '')}"
                      + (f" and {', '.join(missing[1:])}" if missing[1:] else ""))


def load_preset(name: str, study_dir: Path | None, extra_args: dict[str, Any]) -> StrategyConfig:
    """A strategies/*.yaml preset: {name | class, args, description}; the study's args override it."""
    path = _find_preset(name, study_dir)
    src = read_yaml(path)
    data = src.data if isinstance(src.data, dict) else {}
    data = {k: v for k, v in data.items() if k != "description"}
    if "points_to_evaluate" in data:   # it was read from the study file only, so a preset's were ignored
        raise src.error(("points_to_evaluate",), "a preset holds a strategy and its args; the configs to try first "
                        "name one study's space, so they belong in its study file", got=data["points_to_evaluate"],
                        fix="move points_to_evaluate under the study file's strategy: section")
    if "preset" in data:
        raise src.error(("preset",), "a preset cannot name another preset", got=data["preset"],
                        fix="copy that preset's name (or class) and args into this file")
    try:
        preset = StrategyConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = tuple(err["loc"])
        if err["type"] == "extra_forbidden":   # name the key, not its value
            valid = sorted([f.alias or key for key, f in StrategyConfig.model_fields.items()] + ["description"])
            raise src.error(path, "unknown key", got=path[-1],
                            fix=did_you_mean(str(path[-1]), valid) or f"valid keys: {', '.join(valid)}") from None
        rule, fix = rule_and_fix(err)
        raise src.error(path, rule, got=err.get("input", ...), fix=fix or pydantic_fix(err)) from None
    if "name" not in data and "class" not in data:   # StrategyConfig's default would make it tpe unsaid
        raise src.error((), "a preset names its strategy", got=sorted(data) or None,
                        fix="add name: (e.g. name: tpe) or class: module:Class")
    _check_preset_args(preset, src)
    return preset.model_copy(update={"args": {**preset.args, **extra_args}})


def _check_preset_args(preset: StrategyConfig, src: Any) -> None:
    """The preset's own args against its registered sampler, so that an unknown one is said at its line in the
    preset file: checked later, at the sampler's construction, it was said at the study's `strategy:` line."""
    if preset.class_ is not None or preset.name is None or not preset.args:
        return
    try:
        factory = STRATEGIES.get(preset.name)
    except (RegistryError, ImportError):   # an unknown name or a missing package: build_sampler says it
        return
    try:
        _refuse_unknown_args(factory, dict(preset.args), f"strategy {preset.name!r}")
    except ConfigError as exc:
        arg = (exc.key or "").removeprefix("strategy.args.")
        raise src.error(("args", arg), exc.rule, got=exc.got, fix=exc.fix) from None


def _find_preset(name: str, study_dir: Path | None) -> Path:
    file = name if name.endswith((".yaml", ".yml")) else f"{name}.yaml"
    candidates = ([study_dir / file] if study_dir else []) + [Path(file), REPO_STRATEGIES / file]
    for candidate in candidates:
        # a study saved as quick.yaml, whose strategy is the `quick` preset, is no preset itself
        if candidate.is_file() and not is_study_file(candidate):
            return candidate
    known = sorted(p.stem for p in REPO_STRATEGIES.glob("*.yaml"))
    raise ConfigError("strategy preset not found", key="strategy.preset", got=name,
                      fix=f"shipped presets: {', '.join(known) or 'none'}; or give a path to a YAML file")


PRUNERS = {"none": optuna.pruners.NopPruner, "median": optuna.pruners.MedianPruner,
           "successive_halving": optuna.pruners.SuccessiveHalvingPruner, "hyperband": optuna.pruners.HyperbandPruner}


def build_pruner(cfg: PrunerConfig, epochs: int) -> optuna.pruners.BasePruner:
    """Defaults scaled to the per-trial epoch budget, overridable by `pruner.args`."""
    defaults: dict[str, dict[str, Any]] = {
        "none": {},
        # 5 trials before pruning anyone; skip the noisy first epochs of small-data training.
        "median": {"n_startup_trials": 5, "n_warmup_steps": max(1, epochs // 4)},
        "successive_halving": {"min_resource": 1},
        "hyperband": {"min_resource": 1, "max_resource": epochs},
    }
    args = {**defaults[cfg.kind], **cfg.args}
    _check_pruner_args(cfg, args, defaults[cfg.kind])
    try:
        return _judged_once(PRUNERS[cfg.kind](**args))
    except (TypeError, ValueError, ArithmeticError) as exc:   # a rule of the class the checks above do not know
        raise ConfigError(f"pruner '{cfg.kind}' rejected its arguments: {type(exc).__name__}: {exc}",
                          key="pruner.args", got=args, fix="change pruner.args as the error says, or remove them for "
                          f"searchlab's defaults ({_pruner_takes(cfg.kind)})") from None


def _pruner_takes(kind: str) -> str:
    takes = [name for name in inspect.signature(PRUNERS[kind]).parameters if name != "self"]
    return f"'{kind}' takes {', '.join(takes)}" if takes else f"'{kind}' takes none"


def _check_pruner_args(cfg: PrunerConfig, args: dict[str, Any], defaults: dict[str, Any]) -> None:
    """The written args by name, kind and least value (Python's "unexpected keyword argument", a ZeroDivisionError
    for Hyperband's reduction_factor 1, or nothing at all for one that never prunes were said instead)."""
    from searchlab.strategy_args import check_arg_values

    cls, what = PRUNERS[cfg.kind], f"pruner '{cfg.kind}'"
    takes = [name for name in inspect.signature(cls).parameters if name != "self"]
    if unknown := sorted(set(cfg.args) - set(takes)):
        close = did_you_mean(unknown[0], takes)
        raise ConfigError(f"{what} has no such argument", key=f"pruner.args.{unknown[0]}", got=unknown[0],
                          fix=(f"{close} " if close else "") + (f"it takes {', '.join(takes)}" if takes else
                                                                "it takes none: remove pruner.args"))
    check_arg_values(cls, dict(cfg.args), what, "pruner.args", defaults)
    low, high = args.get("min_resource"), args.get("max_resource")
    if cfg.kind == "hyperband" and isinstance(low, int) and isinstance(high, int) and high < low:
        # fewer than one bracket: it never pruned a trial, and said nothing
        written = "max_resource" in cfg.args
        raise ConfigError(f"{what} needs max_resource >= min_resource: with fewer it never prunes a trial"
                          + ("" if written else f" (max_resource is {high} here: the steps a trial reports)"),
                          key=f"pruner.args.{'max_resource' if written else 'min_resource'}",
                          got={"min_resource": low, "max_resource": high},
                          fix=f"min_resource: {high} or less"
                          + (f", or max_resource: {low} or more" if written else ""))


def _judged_once(pruner: optuna.pruners.BasePruner) -> optuna.pruners.BasePruner:
    """The pruner, after judging one trial of a throwaway study: Hyperband checks its arguments only then
    (reduction_factor 1 divided by zero), so every trial of the study failed instead of its load."""
    trial = throwaway_study(pruner=copy.deepcopy(pruner)).ask()
    for step in range(3):
        trial.report(1.0, step)
        trial.should_prune()
    return pruner


def missing_package(sampler: BaseSampler, startup_trials: int = 11) -> ImportError | None:
    """Samplers may import an optional package only when they first sample relatively (Optuna's CmaEsSampler
    needs `cmaes`), which would fail every trial of the run. A throwaway in-memory study with finished trials
    past the usual startup counts (TPE's and GPSampler's 10) asks once, so such an import runs now. Only an
    import error counts: the probe is not the real space, so anything else it raises is left to the real
    trials."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    space = {"x": FloatDistribution(0.0, 1.0), "c": CategoricalDistribution(("a", "b"))}
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe = optuna.create_study(sampler=sampler)
            for i in range(startup_trials):
                params = {"x": (i + 0.5) / startup_trials, "c": "ab"[i % 2]}
                probe.add_trial(optuna.trial.create_trial(params=params, distributions=space, value=params["x"]))
            trial = probe.ask()
            trial.suggest_float("x", 0.0, 1.0)
            trial.suggest_categorical("c", ("a", "b"))
    except ImportError as exc:
        return exc
    except Exception:   # noqa: BLE001 - see the docstring
        return None
    finally:
        optuna.logging.set_verbosity(verbosity)
    return None
