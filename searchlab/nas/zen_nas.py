"""The `zen_nas` strategy: a training-free proxy search by Zen-score, then the top-k trained for real.

Before any trial trains, `prepare_zen_nas` runs regularised evolution over the study's own space with the
Zen-score (searchlab/nas/zen_score.py) as the objective: `candidates` networks are built and scored, none
trained. A candidate over the study's budgets (max_flops / max_params / max_depth) is pruned before scoring,
so it never enters the population and evolution only breeds from networks that fit. The whole proxy search is
recorded as its own study, `<study>.zen_proxy`, in the study's storage (written in chunks as it searches, each
in one batch: searchlab/engine/bulk.py, nas/stage.py), where the dashboard shows it beside the main study. The
`top_k` distinct best candidates are queued in the main study (Optuna's enqueue_trial: safe with several
workers) and train first; trials beyond those continue by regularised evolution on the trained results.

Resuming a study reuses a finished proxy study, and continues one budget.timeout, a stop (Ctrl-C, SIGTERM) or a
kill cut short (nas/stage.py).
"""
from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import optuna
from optuna.trial import FixedTrial, FrozenTrial, TrialState

from searchlab.config.load import Study
from searchlab.config.schema import usable_cores
from searchlab.errors import ConfigError, SearchlabError, TrialFailure
from searchlab.nas.stage import (PROXY_SUFFIX, Checkpoint, Stage, check_task_builds_networks, run_stage,
                                    settings_from_args, stop_asked)
from searchlab.samplers.budget import budget_check
from searchlab.samplers.evolution import Feasible, Identity, RegularizedEvolutionSampler, sizes_rule_broken
from searchlab.space import probe_configs
from searchlab.tasks import sample_trial_config

MAX_DRAWS = 20
ROUND = 8    # candidates bred from one population state and scored together (a fixed number: reproducible)


@dataclass(frozen=True)
class ZenNASSettings:
    candidates: int = 1000          # networks scored without training (the reference scored far more, on GPUs)
    top_k: int = 5                  # the best distinct candidates trained by the task
    population_size: int = 64       # proxy evolution (the main study's evolves from the top-k: main_population)
    sample_size: int = 16
    # Zen-score batch: 16, the reference scorer's own default, a quarter of its GPU search's 64: on a CPU core
    # a 20-MFLOPs net then scores in ~0.02 s, so a thousand candidates take a minute or two.
    batch_size: int = 16
    repeats: int = 1                # Zen-score draws per candidate (the reference search: 1)
    threads: int = field(default_factory=usable_cores)   # candidates scored at once


def main_population(settings: ZenNASSettings) -> int:
    """The main study's evolution population: the top-k trained (at least 2), so that evolution breeds from them
    as soon as they are done. Trained trials are few: a population of 64, or of 4 x top_k (20), left every trial
    after the top-k random in a 12-trial study."""
    return max(2, min(settings.population_size, settings.top_k))


def make_zen_nas(seed: int, feasible: Feasible | None = None, identity: Identity | None = None,
                 **args: Any) -> optuna.samplers.BaseSampler:
    """The main study's sampler: evolution (the proxy stage queues the top-k before it is ever asked)."""
    settings = zen_settings(args)
    population = main_population(settings)
    return RegularizedEvolutionSampler(population_size=population, sample_size=min(settings.sample_size, population),
                                       seed=seed, feasible=feasible, identity=identity)


def prepare_zen_nas(study: Study, main: optuna.Study, args: dict[str, Any],
                    deadline: float | None = None) -> list[FrozenTrial]:
    """Run (or reuse, continue, extend: nas/stage.py) the proxy search and queue its top-k in `main`; returns the
    proxy study's trials."""
    from searchlab.tasks import get_task

    settings = zen_settings(args)
    check_space(study)
    task = get_task(study.config.task)
    stage = Stage(study.config.name + PROXY_SUFFIX, partial(_proxy_stage, study, task, settings, deadline),
                  stage_args(study, settings), grows="candidates", top_k=settings.top_k, score_attr="zen_score",
                  network_of=partial(network_of, study), storage_url=study.storage_url, budget=study.config.budget,
                  population=main_population(settings), carried=HOW_SCORED, deadline=deadline, run_dir=study.run_dir)
    return run_stage(main, stage)


# How a Zen-score was computed, beside it (proxy trials and the designs queued from them): the score depends on the
# batch and the seed, and zen_score's own defaults (batch 64, seed 0) do not reproduce the recorded one
HOW_SCORED = ("zen_batch_size", "zen_seed", "zen_repeats")


def _record_how_scored(trial: optuna.Trial, settings: ZenNASSettings, seed: int) -> None:
    """As _score called zen_score for this trial: reproduced by zen_score(build, channels, image_size,
    repeats=zen_repeats, batch_size=zen_batch_size, seed=zen_seed)."""
    for key, value in zip(HOW_SCORED, (settings.batch_size, seed + trial.number, settings.repeats)):
        trial.set_user_attr(key, value)


def zen_settings(args: dict[str, Any]) -> ZenNASSettings:
    """zen_nas's settings from strategy.args, refused at load (make_zen_nas) when its proxy evolution cannot run
    them, by evolution's own rule: the main sampler clamps sample_size to its population, so a sample_size over
    population_size was refused only by the proxy search, mid-stage, with a raw ValueError."""
    settings = settings_from_args(ZenNASSettings, "zen_nas", args)
    size, sample = settings.population_size, settings.sample_size
    if broken := sizes_rule_broken(size, sample):
        fix = ("set population_size to 2 or more" if size < 2 else
               f"set sample_size to at most {size} (e.g. {max(1, size // 4)}), or population_size to at least {sample}")
        raise ConfigError(f"zen_nas's proxy search breeds from the best of sample_size of its population_size "
                          f"candidates: {broken}", got={"population_size": size, "sample_size": sample}, fix=fix,
                          key=f"strategy.args.{'population_size' if size < 2 else 'sample_size'}")
    return settings


def stage_args(study: Study, settings: ZenNASSettings) -> dict[str, Any]:
    """What the proxy search's trials depend on, stored with them: not top_k (which only queues) nor threads
    (the same search on any number of cores)."""
    budget = study.config.budget
    return {"candidates": settings.candidates, "population_size": settings.population_size,
            "sample_size": settings.sample_size, "batch_size": settings.batch_size, "repeats": settings.repeats,
            "seed": study.config.seed, "budget.max_flops": budget.max_flops, "budget.max_params": budget.max_params,
            "budget.max_depth": budget.max_depth}


def network_of(study: Study, trial: FrozenTrial) -> str:
    """The network a proxy trial built, from its params (not its recorded string, which a stage recorded by an
    earlier searchlab wrote with the drawn ratio: two strings for one network)."""
    from searchlab.tasks.classify import parse_trial_config

    try:
        config = sample_trial_config(FixedTrial(trial.params), study)
    except ValueError:   # the space changed since it was recorded (a param it lacks): its recorded name it is
        return trial.user_attrs.get("architecture", str(sorted(trial.params.items())))
    return parse_trial_config(config, None).model.describe()


def check_space(study: Study) -> None:
    """Refuse, before a run folder exists, a space that can give a model other than a ZenNet: the Zen-score
    reads pre-pooling features with the shortcuts off, which only ZenNet has (a cells space was refused only
    after the run's folder, database and proxy study were made). Read from the config, nothing is built."""
    check_task_builds_networks(study, "zen_nas")
    for config in probe_configs(study.space, seed=study.config.seed, limit=50):
        kind = (config.get("model") or {}).get("kind")
        if kind != "zen":
            raise ConfigError("zen_nas scores networks on their pre-pooling features without shortcuts, which "
                              "only kind zen (ZenNet) has", key="space.model.kind", got=kind,
                              fix="search a Zen-NAS space (model: {include: zen.yaml}), or use strategy evolution")


def _proxy_stage(study: Study, task: Any, settings: ZenNASSettings, deadline: float | None,
                 before: list[FrozenTrial], state: Any,
                 checkpoint: Checkpoint | None = None) -> tuple[list[FrozenTrial], str | None, None]:
    """The stage's search (nas/stage.py Produce): the new trials, and why it stopped early (None: finished).
    Its state is its trials: each round it is cut after adds candidates, so a continued search progresses."""
    new = _search(study, task, settings, deadline, before, checkpoint)
    done = [*before, *new]
    scored = sum(t.state == TrialState.COMPLETE for t in done if _scored_network(t))
    draws_left = settings.candidates * MAX_DRAWS - len(done)
    if scored >= settings.candidates or draws_left <= 0:   # out of draws: more time would not help
        return new, None, None
    return new, f"{stop_asked() or 'budget.timeout'}, {scored} of {settings.candidates} candidates scored", None


def _search(study: Study, task: Any, settings: ZenNASSettings, deadline: float | None,
            before: list[FrozenTrial] | None = None, checkpoint: Checkpoint | None = None) -> list[FrozenTrial]:
    """Evolution by Zen-score in memory (no storage cost per candidate), on from the trials `before` (a stage
    cut short or extended: they are the population it continues from, and their networks are not scored
    again); returns the new candidates as trials.

    Candidates are asked ROUND at a time, scored by `threads` parallel threads (torch releases the GIL inside
    its kernels) and told in the order asked: the same seed gives the same search on any number of cores. After
    each round (every trial told) the `checkpoint` may write the new ones (nas/stage.py), once one is scored."""
    before = before or []
    # continued, the sampler draws anew (seeded by where it resumes): the first run's seed would breed the same
    # children again, all repeats of networks scored already
    sampler = RegularizedEvolutionSampler(settings.population_size, settings.sample_size,
                                          seed=study.config.seed + len(before),
                                          feasible=budget_check(study))   # mutations that stay within budget
    memory = optuna.create_study(direction="maximize", sampler=sampler)
    memory.add_trials(before)
    # the memory study's INFO lines off, for the search only: raised to WARNING for good, it let Optuna print a
    # run's later trial failures whole (a stop during trial 0 printed a 90-line traceback) that `run` keeps quiet
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(verbosity, optuna.logging.WARNING))
    # A child that differs from a scored network only in settings the network does not show (lr, augmentation,
    # a `none` block's width, a ratio that rounds to the same channels) is that network: it is not scored again
    # (a second, differently seeded score let copies of one network win the top-k on the noise), not counted
    # as a candidate, and kept out of the population (PRUNED, with the number of the trial that scored it):
    # copies filled the population, and 20,000 draws of the shipped study found 192 networks instead of 1,000.
    known = {t.user_attrs["architecture"]: t.number for t in before if _scored_network(t)}   # -> its trial
    # `candidates` counts scored networks; those over budget cost only an analytic FLOP count and are drawn on
    # top, up to MAX_DRAWS x candidates in all, so a tight budget still yields scored candidates.
    scored = sum(t.state == TrialState.COMPLETE for t in before if _scored_network(t))
    draws_left = settings.candidates * MAX_DRAWS - len(before)
    cut_short: str | None = None   # what ended the search early: budget.timeout or a stop (nas/stage.py holds it)
    import torch   # here: a study of another strategy imports this module without torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)     # one core per scoring thread
    try:
        with ThreadPoolExecutor(settings.threads) as pool:
            while scored < settings.candidates and draws_left > 0:
                cut_short = stop_asked() or ("budget.timeout" if deadline is not None and time.time() >= deadline
                                             else None)
                if cut_short:
                    break
                wanted = min(ROUND, settings.candidates - scored)
                batch, twins, draws_left = _draw_round(memory, study, task, known, wanted, draws_left)
                score = partial(_score, settings=settings, seed=study.config.seed)
                for (trial, candidate), result in zip(batch, pool.map(score, batch)):
                    if isinstance(result, float):
                        _record_how_scored(trial, settings, study.config.seed)
                    _tell(memory, trial, result)
                    known[candidate.description] = trial.number
                    scored += isinstance(result, float)
                for trial, candidate in twins:   # recorded, but no second member of the population
                    trial.set_user_attr("same_network_as", known[candidate.description])
                    memory.tell(trial, state=TrialState.PRUNED)
                if checkpoint and scored:   # none scored: a refusal may come (_refuse_none_scored), not a stage
                    checkpoint(lambda start: (_told(memory, len(before))[start:], None))
    finally:
        torch.set_num_threads(threads)
        optuna.logging.set_verbosity(verbosity)
    new = _told(memory, len(before), deepcopy=True)
    if scored == 0 and not cut_short:
        _refuse_none_scored(new)
    if scored < settings.candidates:
        _say_short(scored, settings.candidates, cut_short)
    return new


def _told(memory: optuna.Study, before: int, deepcopy: bool = False) -> list[FrozenTrial]:
    """The search's new trials (after the `before` it continues from), each told."""
    return [t for t in memory.get_trials(deepcopy=deepcopy)[before:] if t.state != TrialState.RUNNING]


def _refuse_none_scored(drawn: list[FrozenTrial]) -> None:
    """No network of the draws fitted the budgets (or could be built): the trials would be random draws of the
    same hopeless kind, each pruned over budget, so stop before any trains (as deepmad does)."""
    reasons = [t.user_attrs.get("over_budget") or t.user_attrs.get("error") for t in drawn]
    example = next((r for r in reasons if r), "none recorded")
    raise SearchlabError(f"zen_nas found no network to score: all {len(drawn)} draws of the space were over the "
                         f"budgets or could not be built (e.g. {example}), so every trial would be pruned. Fix: "
                         "loosen budget.max_flops / max_params / max_depth, or narrow the space to networks that "
                         "fit them")


def _scored_network(trial: FrozenTrial) -> bool:
    """A trial that built a network within budget and tried to score it (not a repeat, not over budget)."""
    return (trial.state in (TrialState.COMPLETE, TrialState.FAIL) and "architecture" in trial.user_attrs
            and "same_network_as" not in trial.user_attrs and "over_budget" not in trial.user_attrs)


Job = tuple[optuna.Trial, Any]   # a trial asked of the proxy study and its candidate network


def _draw_round(memory: optuna.Study, study: Study, task: Any, known: dict[str, int], wanted: int,
                draws_left: int) -> tuple[list[Job], list[Job], int]:
    """Up to `wanted` new networks to score, the twins of networks scored already or in this round (scored
    once), and the draws left; candidates over budget are told so at once."""
    batch: list[Job] = []
    twins: list[Job] = []
    while len(batch) < wanted and draws_left > 0:
        draws_left -= 1
        trial = memory.ask()
        candidate = _within_budget(trial, memory, study, task)
        if candidate is None:
            continue
        seen = candidate.description in known or any(c.description == candidate.description for _, c in batch)
        (twins if seen else batch).append((trial, candidate))
    return batch, twins, draws_left


def _say_short(scored: int, asked: int, cut_short: str | None) -> None:
    """Fewer networks scored than `candidates` asked, and why (`cut_short`: budget.timeout or a stop; None: out
    of draws): the top-k is then chosen among fewer."""
    if cut_short is None:
        why = (f"the other {MAX_DRAWS * asked - scored} of {MAX_DRAWS * asked} draws (at most {MAX_DRAWS} per "
               "candidate) were over the budgets, could not be built or repeated a network. Fix: loosen "
               "budget.max_flops / max_params / max_depth, or narrow the space to networks that fit them")
    elif cut_short == "budget.timeout":
        why = ("budget.timeout ran out. Fix: run the study again (with a longer budget.timeout): the search "
               "continues from the candidates scored; or ask fewer candidates")
    else:
        why = f"{cut_short} ended it. Fix: run the study again: the search continues from the candidates scored"
    # on stderr, as every warning: kept with the run's start warnings (status, report), not mixed into its output
    print(f"warning: zen_nas scored {scored} of its {asked} candidates: {why}", file=sys.stderr, flush=True)


def _within_budget(trial: optuna.Trial, memory: optuna.Study, study: Study, task: Any) -> Any | None:
    """The trial's candidate network, or None when it is over budget or cannot be built (told so at once)."""
    try:
        candidate = task.candidate(study, sample_trial_config(trial, study))
    except TrialFailure as exc:
        _tell(memory, trial, exc)
        return None
    trial.set_user_attr("architecture", candidate.description)
    for key, value in candidate.costs.items():
        trial.set_user_attr(key, value)
    reason = _over_budget(candidate.costs, study)
    if reason:
        trial.set_user_attr("over_budget", reason)
        memory.tell(trial, state=TrialState.PRUNED)
        return None
    return candidate


def _score(job: Job, settings: ZenNASSettings, seed: int) -> float | Exception:
    from searchlab.nas.zen_score import zen_score

    trial, candidate = job
    try:
        return zen_score(candidate.build, candidate.channels, candidate.image_size, settings.repeats,
                         settings.batch_size, seed=seed + trial.number)
    except (TrialFailure, RuntimeError) as exc:   # a candidate that cannot run fails alone
        return exc


def _tell(memory: optuna.Study, trial: optuna.Trial, result: float | Exception) -> None:
    if isinstance(result, float):
        memory.tell(trial, result)
    else:
        trial.set_user_attr("error", f"{type(result).__name__}: {result}")
        memory.tell(trial, state=TrialState.FAIL)


def _over_budget(costs: dict[str, float], study: Study) -> str | None:
    from searchlab.tasks.costs import over_budget

    return over_budget(costs, study.config.budget)
