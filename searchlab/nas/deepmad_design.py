"""The `deepmad` strategy: solve DeepMAD's mathematical program over the study's space, then train the designs.

The decision variables are the space's own architecture parameters (every searched `model.*` value of a
`kind: zen` space): a choice or int becomes an integer index, a float a continuous variable (in log space when
the space says log). scipy's differential evolution maximises the entropy of searchlab/nas/deepmad.py with
constraint violations as a penalty (FLOPs, params and depth budgets from `budget:`, rho <= rho0, non-decreasing
stage widths). The distinct designs it evaluated are recorded as the study `<study>.deepmad`: every feasible one
COMPLETE with its entropy, and of the infeasible ones (PRUNED, with the broken constraint) the
MAX_INFEASIBLE_RECORDED nearest to feasibility; a full solve evaluates ~25,000 designs, mostly infeasible, whose
recording would cost more than the solve. The `top_k` best feasible designs are queued in the main study to
train first; later trials continue by regularised evolution. The feasible designs are written as the solve goes
(in chunks, nas/stage.py), the infeasible ones once it ends (which are nearest is known only then).
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
from optuna.trial import FixedTrial, FrozenTrial, TrialState, create_trial

from searchlab.config.load import Study
from searchlab.errors import ConfigError, SearchlabError
from searchlab.nas.deepmad import Shape, analyse, zen_convs
from searchlab.nas.stage import (DESIGN_SUFFIX, Checkpoint, Stage, check_task_builds_networks, run_stage,
                                    settings_from_args, stop_asked)
from searchlab.samplers.evolution import Feasible, Identity, RegularizedEvolutionSampler
from searchlab.space import probe_configs, searchable_params
from searchlab.tasks import sample_trial_config
from searchlab.space.params import CategoricalParam, FloatParam, IntParam

INFEASIBLE = 1e12    # objective floor for designs that break a constraint (minimised by the solver)
MAX_INFEASIBLE_RECORDED = 1000
NOT_ZEN_FIX = "search a Zen-NAS space (model: {include: zen.yaml}), or use strategy evolution"


@dataclass(frozen=True)
class DeepMADSettings:
    top_k: int = 3                 # designs trained
    rho0: float = 0.5              # effectiveness bound (the reference: 0.3 ResNet spaces, 0.5 MobileNet)
    last_weight: float = 8.0       # the last stage's weight in the multi-scale entropy (reference: 8)
    iterations: int = 60           # differential-evolution generations
    popsize: int = 15              # scipy's default population multiplier
    population_size: int = 3       # the main study's evolution: it breeds from the first this many trained
    #                                (the designs first); more than top_k leaves the trials between them random
    sample_size: int = 3


def make_deepmad(seed: int, feasible: Feasible | None = None, identity: Identity | None = None,
                 **args: Any) -> optuna.samplers.BaseSampler:
    settings = settings_from_args(DeepMADSettings, "deepmad", args)
    population = main_population(settings)
    return RegularizedEvolutionSampler(population, min(settings.sample_size, population), seed=seed, feasible=feasible,
                                       identity=identity)


def main_population(settings: DeepMADSettings) -> int:
    return max(2, settings.population_size)


def prepare_deepmad(study: Study, main: optuna.Study, args: dict[str, Any],
                    deadline: float | None = None) -> list[FrozenTrial]:
    """Solve (or reuse) the program, record its designs (see the module doc), queue the best feasible ones."""
    settings = settings_from_args(DeepMADSettings, "deepmad", args)
    check_space(study)
    budget = study.config.budget
    # what the designs depend on, stored with them: not top_k (which only queues) nor the main evolution's sizes
    stage_args = {"rho0": settings.rho0, "last_weight": settings.last_weight, "iterations": settings.iterations,
                  "popsize": settings.popsize, "seed": study.config.seed, "budget.max_flops": budget.max_flops,
                  "budget.max_params": budget.max_params, "budget.max_depth": budget.max_depth}
    program = _Lazy(study, settings)
    stage = Stage(study.config.name + DESIGN_SUFFIX,
                  lambda before, state, checkpoint: program().stage(deadline, before, state, checkpoint), stage_args,
                  grows="iterations", top_k=settings.top_k, score_attr="entropy",
                  network_of=lambda trial: program().model(trial.params).describe(),
                  storage_url=study.storage_url, budget=study.config.budget, population=main_population(settings),
                  deadline=deadline, run_dir=study.run_dir)
    return run_stage(main, stage)


class _Lazy:
    """The Program, built once when first needed: a reused stage needs it only to name the networks queued."""

    def __init__(self, study: Study, settings: DeepMADSettings) -> None:
        self.study, self.settings, self.program = study, settings, None

    def __call__(self) -> "Program":
        if self.program is None:
            self.program = Program(self.study, self.settings)
        return self.program


def check_space(study: Study) -> None:
    """Refuse, before a run folder exists, a space that is not a Zen-NAS one: its program reads ZenNet shapes
    (a cells space was refused only after the run's folder, database and design study were made). A space with
    no zen model is refused for its kind before its parameters are read: a timm model with a fixed backbone was
    refused as lacking searched parameters, which is not what is wrong with it; one with a zen branch among
    others, for its branch (architecture_variables)."""
    check_task_builds_networks(study, "deepmad")
    kinds = [(config.get("model") or {}).get("kind")
             for config in probe_configs(study.space, seed=study.config.seed, limit=50)]
    if "zen" in kinds:
        architecture_variables(study)
    others = [kind for kind in kinds if kind != "zen"]
    if others:
        raise ConfigError("deepmad designs Zen-NAS super-block networks (kind zen)", key="space.model.kind",
                          got=others[0], fix=NOT_ZEN_FIX)


class Program:
    """The mathematical program over one study's architecture parameters."""

    def __init__(self, study: Study, settings: DeepMADSettings) -> None:
        from searchlab.tasks import get_task

        self.study, self.settings = study, settings
        self.variables = architecture_variables(study)
        self.fixed = {p.name: _middle(p) for p, _ in searchable_params(study.space) if p.name not in
                      {v.name for v in self.variables}}
        probe = get_task(study.config.task).candidate(study, self.config({}))
        self.channels, self.image_size = probe.channels, probe.image_size
        self.outputs = probe.outputs
        self.seen: dict[str, tuple[dict[str, Any], Shape, str | None, float]] = {}
        self.made: dict[str, FrozenTrial] = {}   # the trials of the designs seen, by key: made once, not per chunk
        self.cut: str | None = None   # why the last solve stopped early (budget.timeout), None when it finished
        self.generations = 0          # how many the last solve ran

    def config(self, params: dict[str, Any]) -> dict[str, Any]:
        merged = {**{v.name: _middle(v) for v in self.variables}, **self.fixed, **params}
        return sample_trial_config(FixedTrial(merged), self.study)

    def decode(self, x: np.ndarray) -> dict[str, Any]:
        return {v.name: _value(v, float(xi)) for v, xi in zip(self.variables, x)}

    def model(self, params: dict[str, Any]) -> Any:
        from searchlab.tasks.classify import parse_trial_config

        return parse_trial_config(self.config(params), None).model

    def shape(self, params: dict[str, Any]) -> tuple[Shape, str | None, float]:
        """The design's shape, what it breaks (None when feasible) and by how much."""
        spec = self.model(params)
        if spec.kind != "zen":
            raise ConfigError("deepmad designs Zen-NAS super-block networks", key="space.model.kind", got=spec.kind,
                              fix=NOT_ZEN_FIX)
        shape = analyse(zen_convs(spec.architecture()[1], self.channels, self.image_size), self.outputs,
                        self.settings.last_weight)
        return (shape, *self.violation(shape))

    def violation(self, shape: Shape) -> tuple[str | None, float]:
        """(the broken constraints, the sum of value / limit - 1 over them, a decrease in widths counting 1):
        the excess lets the solver tell nearly feasible designs from hopeless ones."""
        budget, broken, excess = self.study.config.budget, [], 0.0
        for name, value, limit in (("flops", shape.flops, budget.max_flops), ("params", shape.params,
                                   budget.max_params), ("depth", shape.depth, budget.max_depth),
                                   ("rho", shape.rho, self.settings.rho0)):
            if limit is not None and value > limit:
                broken.append(f"{name} {value:.4g} > {limit:.4g}")
                excess += value / limit - 1.0
        widths = shape.stage_widths
        if any(b < a for a, b in zip(widths, widths[1:])):
            broken.append(f"stage widths {list(widths)} decrease")
            excess += 1.0
        return ("; ".join(broken) or None), excess

    def objective(self, x: np.ndarray) -> float:
        params = self.decode(x)
        key = json.dumps(params, sort_keys=True, default=str)
        if key not in self.seen:
            self.seen[key] = (params, *self.shape(params))
        _, shape, broken, excess = self.seen[key]
        return -shape.entropy if broken is None else INFEASIBLE + excess

    def stage(self, deadline: float | None, before: list[FrozenTrial], state: dict[str, int] | None,
              checkpoint: Checkpoint | None = None) -> tuple[list[FrozenTrial], str | None, dict[str, int]]:
        """The stage's search (nas/stage.py Produce): the new designs, why it stopped early (None: finished) and
        the generations it ran, past which a continued solve must go before its deadline counts: it solves
        from the start, so a timeout shorter than a full solve stopped every resumed run where the first did.
        After each generation the `checkpoint` may write the feasible designs found so far."""
        past = (state or {}).get("generations", 0)
        recorded = _keys(before)

        def found(start: int) -> tuple[list[FrozenTrial], dict[str, int]]:   # nas/stage.py Collect
            keys = [key for key, design in self.seen.items() if design[2] is None and key not in recorded]
            return [self._trial(key) for key in keys[start:]], {"generations": max(self.generations, past)}

        designs = self.solve(deadline, before, past=past,
                             each_generation=(lambda: checkpoint(found)) if checkpoint else None)
        # a stop may end it before `past`: the next solve must still go past where the earlier ones got
        return designs, self.cut, {"generations": max(self.generations, past)}

    def solve(self, deadline: float | None = None, before: list[FrozenTrial] | None = None,
              past: int = 0, each_generation: Callable[[], None] | None = None) -> list[FrozenTrial]:
        """Run the solver (stopping early at `deadline`, the study's budget.timeout: the designs found so far
        are kept, and `cut` says why; a stop, held by nas/stage.py, ends it the same way once the generation
        under way is done) and return the designs to record as trials: every feasible one, and the
        MAX_INFEASIBLE_RECORDED infeasible ones nearest to feasibility. With the designs recorded `before` (a
        stage cut short, or asked more iterations), it solves again from the start (the same seed walks the
        same generations; a solve costs less than recording its designs) and returns only the designs not
        recorded yet, the infeasible ones within what the cap leaves. The deadline stops it only after `past`
        generations. The feasible designs come first, in the order found (as `stage` writes them in chunks)."""
        before = before or []
        bounds = [_bounds(v) for v in self.variables]
        integrality = [not isinstance(v, FloatParam) or v.step is not None for v in self.variables]   # grid indices
        stopped, self.generations = [], 0

        def past_deadline(intermediate_result: Any) -> bool:   # scipy passes the result by this very name
            self.generations += 1   # called once per generation
            if each_generation:
                each_generation()
            why = stop_asked() or ("budget.timeout" if deadline is not None and time.time() >= deadline
                                   and self.generations > past else None)
            if why:
                stopped.append(why)
            return bool(why)

        from scipy.optimize import differential_evolution

        differential_evolution(self.objective, bounds, integrality=integrality, maxiter=self.settings.iterations,
                               popsize=self.settings.popsize, seed=self.study.config.seed, polish=False, tol=0,
                               callback=past_deadline)
        recorded = _keys(before)
        fresh = [key for key in self.seen if key not in recorded]
        feasible = [key for key in fresh if self.seen[key][2] is None]
        infeasible = [key for key in fresh if self.seen[key][2] is not None]
        nearest = sorted(infeasible, key=lambda key: self.seen[key][3])
        room = max(0, MAX_INFEASIBLE_RECORDED - sum(t.state == TrialState.PRUNED for t in before))
        self.cut = f"{stopped[0]}, after {len(self.seen)} designs" if stopped else None
        if not feasible and not any(t.state == TrialState.COMPLETE for t in before) and not self.cut:
            # the nearest design's broken constraints say which limit to loosen, and by how much
            raise SearchlabError(f"deepmad found no design within the budgets and rho <= rho0 "
                                 f"({self.settings.rho0:g}) among the {len(self.seen)} it solved for in this space; "
                                 f"the nearest: {self.seen[nearest[0]][2]}. Fix: loosen budget.max_flops/"
                                 "max_params/max_depth or strategy.args.rho0, or widen the space")
        return [self._trial(key) for key in feasible + nearest[:room]]

    def _trial(self, key: str) -> FrozenTrial:
        if key not in self.made:
            params, shape, broken, _ = self.seen[key]
            self.made[key] = self.trial(params, shape, broken)
        return self.made[key]

    def trial(self, params: dict[str, Any], shape: Shape, broken: str | None) -> FrozenTrial:
        dists = {v.name: v.distribution() for v in self.variables}
        attrs = {"entropy": shape.entropy, "rho": shape.rho, "flops": shape.flops, "params": shape.params,
                 "depth": shape.depth, "stage_widths": list(shape.stage_widths),
                 # the network the design is: designs differing only in what it does not show (dropout) are one
                 # network, which the stage queues once (nas/stage.py enqueue_top_k)
                 "architecture": self.model(params).describe()}
        if broken:
            return create_trial(state=TrialState.PRUNED, params=params, distributions=dists,
                                user_attrs={**attrs, "over_budget": broken})
        return create_trial(params=params, distributions=dists, value=shape.entropy, user_attrs=attrs)


def _keys(trials: list[FrozenTrial]) -> set[str]:
    """The designs of recorded trials, keyed as Program.seen keys them."""
    return {json.dumps(t.params, sort_keys=True, default=str) for t in trials}


def architecture_variables(study: Study) -> list[Any]:
    """The searched `model.*` parameters; the program needs them unconditional (no branches under model)."""
    variables = []
    for param, needs in searchable_params(study.space):
        if not param.name.startswith("model."):
            continue
        if needs:
            raise ConfigError("deepmad solves over a fixed set of architecture parameters; this one exists only "
                              f"on a branch ({needs})", key=f"space.{param.name}", got=param.name,
                              fix="use a space without one_of under model (e.g. zen.yaml)")
        variables.append(param)
    if not variables:
        raise ConfigError("deepmad needs searched architecture parameters", key="space.model", got=None,
                          fix=NOT_ZEN_FIX)
    return variables


def _bounds(param: Any) -> tuple[float, float]:
    if isinstance(param, CategoricalParam):
        return 0.0, float(len(param.choices) - 1)
    if isinstance(param, IntParam):
        return 0.0, float((param.high - param.low) // param.step)
    if param.step is not None:   # a stepped float: solved over its grid points, as an int range is
        return 0.0, float(round((param.high - param.low) / param.step))
    return (math.log(param.low), math.log(param.high)) if param.log else (param.low, param.high)


def _value(param: Any, x: float) -> Any:
    if isinstance(param, CategoricalParam):
        return param.choices[int(round(x))]
    if isinstance(param, IntParam):
        return param.low + int(round(x)) * param.step
    if param.step is not None:   # on the grid, or Optuna refuses the design's trial
        return min(param.high, param.low + int(round(x)) * param.step)
    return float(math.exp(x)) if param.log else float(x)


def _middle(param: Any) -> Any:
    """A valid value for parameters the program does not decide (they only complete the config)."""
    low, high = _bounds(param)
    return _value(param, (low + high) / 2)
