"""Regularised (aging) evolution (Real et al., AAAI 2019) as an Optuna sampler over any searchlab space.

Once `population_size` trials have completed, each new trial takes the last `population_size` completed trials
(the population: the oldest drops out as new ones arrive, which is the "aging" that regularises), draws
`sample_size` of them at random, and copies the best one's parameters with exactly one changed. Before that,
trials are random.

Conditional spaces need no special care because parameters are asked one at a time as the space unfolds: a
parameter the parent had keeps the parent's value, except the one chosen for mutation, which gets a new
value; a parameter the parent never had (a branch the mutation switched on) is drawn at random. Mutating a
branch selector (e.g. `model.kind`) therefore moves to another branch with fresh values there, as a
one-parameter mutation of a conditional genotype should.

Given a `feasible` check (the engine passes the study's budget check), a mutation that would put the child
over budget is redrawn, so the population only breeds children that fit, and the random start draws configs
within the budgets (when one of a few draws fits): over-budget draws are pruned untrained but count in
budget.n_trials, and 11 of 12 trials of a cells study were spent so. A mutation or random draw that would repeat
a config the study already ran (or is running) is redrawn too; with an `identity` (the engine's: the config with
the network as built), configs that build the same network alike count as one.

Each trial records where it came from in its system attrs: `evolution:parent` (trial number) and
`evolution:mutated` (parameter name), so a lineage can be read back from the study.
"""
from __future__ import annotations

import bisect
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from searchlab.space.params import within

PARENT, MUTATED = "evolution:parent", "evolution:mutated"
MAX_REDRAWS = 32    # a new value must differ from the parent's; a float draw repeats almost never
MAX_ATTEMPTS = 20   # mutations tried per child while they break the budgets or repeat a config
# params of a child -> True (within the budgets), False (over one), None (cannot tell from these params)
Feasible = Callable[[dict[str, Any]], "bool | None"]
# params -> what makes two configs train alike (None: cannot be told; their params are compared then)
Identity = Callable[[dict[str, Any]], "Hashable | None"]


def sizes_rule_broken(population_size: int, sample_size: int) -> str | None:
    """The rule the population and tournament sizes break, None when they keep it: a tournament draws
    sample_size distinct members of the population (zen_nas's proxy search checks its own sizes with it at load)."""
    if population_size < 2 or not 1 <= sample_size <= population_size:
        return "need population_size >= 2 and 1 <= sample_size <= population_size"
    return None


class RegularizedEvolutionSampler(BaseSampler):
    def __init__(self, population_size: int = 20, sample_size: int = 5, seed: int | None = None,
                 feasible: Feasible | None = None, identity: Identity | None = None) -> None:
        # Real et al. used P=100, S=25 for 20k-trial runs; searches here are hundreds of trials, so the defaults
        # keep the same tournament pressure (S/P = 1/4) with a population that fills in 20 trials.
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (population_size, sample_size)):
            raise ValueError(f"population_size and sample_size count trials: whole numbers; got "
                             f"population_size={population_size!r}, sample_size={sample_size!r}")
        if broken := sizes_rule_broken(population_size, sample_size):
            raise ValueError(f"{broken}; got population_size={population_size}, sample_size={sample_size}")
        self.population_size, self.sample_size = population_size, sample_size
        self._rng = np.random.default_rng(seed)
        self._random = RandomSampler(seed=seed)
        # trial id -> (parent's params, the parameter to mutate, its new value; None, None for a random draw
        # taken whole); trials are asked in the process that runs them, so a plan never has to cross processes
        self._plans: dict[int, tuple[dict[str, Any], str | None, Any]] = {}
        self._feasible = feasible
        self._key = _keyed_by(identity)
        self._history = _History(self._key)

    def reseed_rng(self) -> None:   # called by Optuna in each worker process, so workers do not draw alike
        self._rng = np.random.default_rng()
        self._random.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}   # everything is decided parameter by parameter, in sample_independent

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        if trial.params or trial.system_attrs.get("fixed_params"):
            return   # a queued config (a retry, a point, a design) keeps its values: no parent's child, no lineage
        parent = self._tournament(study)
        if parent is None:
            self._plan_random_within_budget(study, trial)
            return
        mutable = [name for name, dist in parent.distributions.items() if not dist.single()]
        if not mutable:
            return
        mutated, value = self._mutation(study, trial, parent, mutable)
        self._plans[trial._trial_id] = (dict(parent.params), mutated, value)
        study._storage.set_trial_system_attr(trial._trial_id, PARENT, parent.number)
        study._storage.set_trial_system_attr(trial._trial_id, MUTATED, mutated)

    def _mutation(self, study: Study, trial: FrozenTrial, parent: FrozenTrial, mutable: list[str]) -> tuple[str, Any]:
        """(parameter, new value): redrawn up to MAX_ATTEMPTS times while the child repeats a config the study
        already has (NNI's `dedup`: on a budget of tens of trials a repeat is a trial lost) or `feasible` says
        it breaks the study's budgets. Each categorical value is tried once, so a parent with one new neighbour
        left finds it. Failing all, a repeat within the budgets beats a child over them (a repeat of a config
        that failed, only when nothing else is left: it would fail again). A child whose
        feasibility cannot be told before sampling (a branch switch brings new parameters) is taken as it is;
        the task prunes it at once if it turns out over budget."""
        later = [t for t in self._history.read(study) if t.number != trial.number]
        seen = self._history.seen | {self._key(t.params) for t in later}
        failed = self._history.failed | {self._key(t.params) for t in later if t.state == TrialState.FAIL}
        untried = {name: [c for c in dist.choices if c != parent.params[name]]
                   for name, dist in parent.distributions.items()
                   if name in mutable and isinstance(dist, CategoricalDistribution)}
        names, repeat = list(mutable), None
        for _ in range(MAX_ATTEMPTS):
            name = str(self._rng.choice(names))
            if name in untried:
                value = untried[name].pop(int(self._rng.integers(len(untried[name]))))
                if not untried[name]:
                    names.remove(name)
            else:
                value = self._different(study, trial, name, parent.distributions[name], parent.params[name])
            child = {**parent.params, name: value}
            if self._feasible is None or self._feasible(child) is not False:
                if self._key(child) not in seen:
                    return name, value
                if self._key(child) not in failed:
                    repeat = repeat or (name, value)
            if not names:
                break
        return repeat or (name, value)

    def _plan_random_within_budget(self, study: Study, trial: FrozenTrial) -> None:
        """A random start trial takes a config the budget check drew within the budgets and new to the study
        (or running in it), when it found one."""
        draw = getattr(self._feasible, "random_fitting", None)
        if draw is None:
            return
        later = [t for t in self._history.read(study) if t.number != trial.number]
        seen = self._history.seen | {self._key(t.params) for t in later}
        params = draw(int(self._rng.integers(2 ** 31)), lambda drawn: self._key(drawn) not in seen)
        if params:
            self._plans[trial._trial_id] = (params, None, None)   # every parameter "inherited" from the draw

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        plan = self._plans.get(trial._trial_id)
        if plan is None:
            return self._random.sample_independent(study, trial, param_name, param_distribution)
        parent_params, mutated, value = plan
        inherited = parent_params.get(param_name)
        if param_name not in parent_params or not _fits(param_distribution, inherited):
            return self._random.sample_independent(study, trial, param_name, param_distribution)
        if mutated != param_name:
            return inherited
        return value if _fits(param_distribution, value) else self._random.sample_independent(
            study, trial, param_name, param_distribution)

    def _tournament(self, study: Study) -> FrozenTrial | None:
        """The best of `sample_size` random members of the population, or None while it is not yet full."""
        late = [t for t in self._history.read(study) if t.state == TrialState.COMPLETE and t.values]
        # the last P completed: among the finished prefix's last P and those that completed after a running one
        population = sorted(self._history.complete[-self.population_size:] + late, key=_completed)
        if len(population) < self.population_size:
            return None
        population = population[-self.population_size:]
        picks = self._rng.choice(len(population), size=self.sample_size, replace=False)
        sign = 1.0 if study.directions[0] == StudyDirection.MAXIMIZE else -1.0
        return max((population[i] for i in picks), key=lambda t: sign * t.values[0])

    def _different(self, study: Study, trial: FrozenTrial, name: str, dist: BaseDistribution, old: Any) -> Any:
        """A new numeric value (categorical ones are drawn from `_mutation`'s untried choices)."""
        for _ in range(MAX_REDRAWS):
            value = self._random.sample_independent(study, trial, name, dist)
            if value != old:
                return value
        return old   # a range of one value left after rounding: nothing else to take

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._plans.pop(trial._trial_id, None)
        self._random.after_trial(study, trial, state, values)


class _History:
    """The study's trials as the sampler reads them on every ask, kept incrementally: a finished trial never
    changes, so the leading run of finished trials is read once (rescanning all trials per ask made a search
    of 6,000 trials take 36 s in the sampler alone, growing with the square). What follows it (trials still
    running, and any finished after them) is read each time."""

    def __init__(self, key: Callable[[dict[str, Any]], Hashable]) -> None:
        self.key = key
        self.read_up_to = 0
        self.seen: set[Hashable] = set()      # keys of every finished trial's params
        self.failed: set[Hashable] = set()    # of the failed ones
        self.complete: list[FrozenTrial] = []  # COMPLETE with values, in completion order

    def read(self, study: Study) -> list[FrozenTrial]:
        """Take in newly finished leading trials; return the trials after them."""
        trials = study.get_trials(deepcopy=False)
        while self.read_up_to < len(trials) and trials[self.read_up_to].state.is_finished():
            trial = trials[self.read_up_to]
            self.seen.add(self.key(trial.params))
            if trial.state == TrialState.FAIL:
                self.failed.add(self.key(trial.params))
            if trial.state == TrialState.COMPLETE and trial.values:
                bisect.insort(self.complete, trial, key=_completed)
            self.read_up_to += 1
        return trials[self.read_up_to:]


def _key(params: dict[str, Any]) -> frozenset:
    return frozenset(params.items())   # equal exactly when the dicts are (values are numbers, strings, None)


def _keyed_by(identity: Identity | None) -> Callable[[dict[str, Any]], Hashable]:
    def key(params: dict[str, Any]) -> Hashable:
        found = identity(params) if identity is not None else None
        return found if found is not None else _key(params)
    return key


def _completed(trial: FrozenTrial) -> tuple:
    return trial.datetime_complete, trial.number


def _fits(dist: BaseDistribution, value: Any) -> bool:
    """The parent's value is still valid here (a space edited between runs may have narrowed a range)."""
    return isinstance(dist, (FloatDistribution, IntDistribution, CategoricalDistribution)) and within(dist, value)
