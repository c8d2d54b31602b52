"""What the zen_nas and deepmad strategies share: a recorded stage before training, and their settings.

A stage scores architectures without training them, records them as a study of its own in the main
study's storage (`<study><suffix>`, written in chunks as it searches, every CHUNK_SECONDS, each with where the
search got to), with the arguments it ran with, marks it done, and queues the best in the main study. On resume:
- one another run of the study searches now (another folder or machine on the storage: its writer's stamp is
  fresh, nas/stage_live.py) is waited for, then used as below (continued if its run died meanwhile);
- a finished stage run with the same arguments is reused as it is;
- one that budget.timeout or a stop (Ctrl-C, SIGTERM: the search ends at its next check, writes what it scored
  and the stop then proceeds) cut short is continued (its trials kept, the search going on to what was asked),
  and nothing is queued from it until it finishes: its designs would train before the better ones to come;
- one whose run was killed (kill -9, out of memory, `docker stop` past its grace: no record of how it ended) is
  continued the same way from the chunks it wrote, saying so and how many networks were kept;
- one asked for more of the same search (zen_nas's `candidates`, deepmad's `iterations` raised, every other
  argument the same) is extended the same way;
- one whose other arguments changed is reused with a warning naming them and how to search afresh (the main
  study trained its designs already); a cut-short (or killed) one is refused instead, as continuing would mix
  searches.
One written in one batch by a searchlab before chunks and killed before its arguments were recorded (trials, no
arguments, no record of how it ended) is refused, saying how to start over.
"""
from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from searchlab.engine.bulk import bulk_add_trials
from searchlab.engine.signals import Interrupted, hold_stops, raise_if_stopped, release_stops
from searchlab.nas.stage_live import (WRITER, StageLock, live_writer, stage_lock, stamping, wait_for_stage,
                                      waiters_said, writer_stamp)
from searchlab.errors import ConfigError, SearchlabError, shown_url
from searchlab.suggest import did_you_mean

DONE = "searchlab:stage_done"
ARGS = "searchlab:stage_args"     # on the stage's study: the arguments its trials were searched with
CUT = "searchlab:stage_cut"       # on the stage's study: why it stopped before finishing (the next run continues):
#                                   "budget.timeout, ..." or "a stop (Ctrl-C), ..." (stop_asked)
STATE = "searchlab:stage_state"   # on the stage's study: where its search got to, for the next run to go past
QUEUED = "searchlab:stage_queued"   # on the stage's study: its designs are queued in the main study (a run that
#                                   joined the stage's waits for it: engine/stage_wait.py)
# the stages' studies beside the main one, `<study><suffix>` (here, not with their strategies: `status` names them
# without importing torch)
PROXY_SUFFIX = ".zen_proxy"   # zen_nas: every candidate scored
DESIGN_SUFFIX = ".deepmad"    # deepmad: every design solved for
SPANS = "searchlab:stage_spans"   # on the main study: [start, end] seconds of each stage run (compare counts them)
# A stage writes what it scored this often as it searches: a kill (-9, out of memory) loses at most this much of
# its search (and the chunk being written). One chunk costs one transaction (~10-50 ms on SQLite): <0.5% of it.
CHUNK_SECONDS = 10.0
# why a stage with chunks written but no record of how its run ended is unfinished (no comma: see _cause)
KILLED = "a kill (its run ended without recording how: kill -9 or out of memory)"

# (the search's new trials from this index on, those before it being written already; where it got to: JSON)
Collect = Callable[[int], tuple[list[FrozenTrial], Any]]
# what a search calls where all its new trials so far are finished (between rounds, generations): writes a chunk
# when one is due, and only then calls `Collect` (cheap to call often)
Checkpoint = Callable[[Collect], None]
# (trials recorded so far, where the search got to: JSON or None, its checkpoint) -> (the new trials, in the order
# `Collect` gave them, why it stopped early: None when it finished, where it got to)
Produce = Callable[[list[FrozenTrial], Any, Checkpoint], tuple[list[FrozenTrial], str | None, Any]]


@dataclass(frozen=True)
class Stage:
    name: str                      # the stage's study: `<study><suffix>`
    produce: Produce
    args: dict[str, Any]           # what its trials depend on (strategy args, budgets, seed): stored with them
    grows: str                     # the argument that asks for more of the same search (candidates, iterations)
    top_k: int
    score_attr: str                # the user attr the queued trials carry their score in
    network_of: Callable[[FrozenTrial], str] | None = None   # a trial's network (default: its `architecture`)
    storage_url: str = "URL"       # named in the fixes that delete the stage's study
    budget: Any = None             # this run's budget.* limits: a reused stage's designs over them are not queued
    population: int | None = None  # the main study's evolution population: trials before it completes are random
    carried: tuple[str, ...] = ()  # user attrs of a scored trial its queued design carries beside its score
    deadline: float | None = None  # budget.timeout's end (None: from when a wait for another run's stage begins)
    run_dir: Path | None = None    # the run's folder: marked while it waits for another's stage (status says so)


def run_stage(main: optuna.Study, stage: Stage) -> list[FrozenTrial]:
    """Record (or reuse, continue, extend: see the module doc) the stage, queue its `top_k` best in `main` once it
    has finished; returns its trials."""
    record = optuna.create_study(study_name=stage.name, storage=main._storage, direction="maximize",
                                 load_if_exists=True)
    # held from the end of the wait while this run reads the record and searches (stage_live: one writer per
    # machine), not while it trains; a kill -9 releases it too
    lock = stage_lock(stage.storage_url, stage.name, stage.run_dir)
    try:
        if not _waited_elsewhere(main, record, stage, lock):
            return record.get_trials(deepcopy=False)   # budget.timeout ran out waiting: nothing queued, nothing trains
        trials = record.get_trials(deepcopy=False)
        if _to_run(record, trials, stage):
            trials = _run(main, record, trials, stage, lock.path)
    finally:
        lock.release()
    if record.user_attrs.get(DONE):
        within = _within(trials, stage)
        enqueue_top_k(main, within, stage.top_k, stage.score_attr, stage.network_of, stage.carried)
        record.set_user_attr(QUEUED, True)   # after them: a kill between left DONE with nothing queued
        if said := short_queue_warning(main, stage, over_budget=_scored(within) < _scored(trials)):
            print(f"warning: {said}", file=sys.stderr)
    return trials


def _waited_elsewhere(main: optuna.Study, record: optuna.Study, stage: Stage, lock: StageLock) -> bool:
    """Wait while another run of the study (another folder or machine on this storage) searches the stage
    (nas/stage_live.py), then take its `lock`; False when budget.timeout ran out first. Its live chunks read as a
    killed stage's, and this run continued it beside it: two searches wrote one record."""
    timeout = getattr(stage.budget, "timeout", None)
    deadline = stage.deadline if stage.deadline is not None else time.time() + timeout if timeout else None
    return wait_for_stage(stage.name, lambda: _written_elsewhere(main, record), CHUNK_SECONDS, deadline, lock,
                          stage.run_dir)


def _written_elsewhere(main: optuna.Study, record: optuna.Study) -> str | None:
    """Who searches the recorded stage now, in another run (None: nobody; it finished, was cut short or killed)."""
    attrs = record.user_attrs
    if attrs.get(DONE) or attrs.get(CUT):
        return None
    # unstamped chunks (a searchlab before the stamp) are dated by their run's span; a record with no chunk by none:
    # the span is of an earlier stage (one deleted to search afresh was waited for)
    spans = main.user_attrs.get(SPANS) if attrs.get(ARGS) is not None else None
    return live_writer(attrs.get(WRITER), spans, CHUNK_SECONDS)


def short_queue_warning(main: optuna.Study, stage: Stage, over_budget: bool) -> str | None:
    """Fewer designs than top_k queued (a reused stage's best over this run's budget, or fewer distinct networks
    scored), and fewer than the trials the run has to run: the trials after them are random draws until the main
    evolution's population has completed. The run-start warning (strategy.py) counts the designs as top_k, so a
    run of n_trials <= top_k trained one design and random draws, unsaid. `over_budget`: some of the stage's
    networks are over this run's budget."""
    if stage.budget is None or stage.population is None:
        return None
    trials = main.get_trials(deepcopy=False)
    designs = [t for t in trials if stage.score_attr in t.user_attrs]   # queued by this run's stage or an earlier one
    if len({t.user_attrs.get("proxy_trial") for t in designs}) >= stage.top_k:
        return None   # the queue was full: the run-start warning counts what follows it
    n_trials = stage.budget.n_trials
    used = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING) for t in trials)
    completed = sum(t.state == TrialState.COMPLETE for t in trials)
    queued = [t for t in trials if t.state == TrialState.WAITING]   # the designs, and any config queued again
    drawn = min(n_trials - used, stage.population - completed) - len(queued)
    if drawn <= 0:
        return None
    waiting = len({t.number for t in designs} & {t.number for t in queued})
    why = "the others it scored are over this run's budget" if over_budget else \
        "the stage scored no more distinct networks"
    random = "1 of them is a random draw" if drawn == 1 else f"{drawn} of them are random draws"
    return (f"{stage.name}: {waiting} design(s) queued, not top_k={stage.top_k} ({why}), and this run has "
            f"{n_trials - used} trial(s) to run: {random}, not a design (until {stage.population} trials complete, "
            f"the population its evolution starts from). Fix: raise the architecture budget (budget.max_params, "
            f"max_flops, max_depth) so more designs fit, lower budget.n_trials to {n_trials - drawn}, or widen the "
            "space so the stage finds more distinct networks within the budget")


def _scored(trials: list[FrozenTrial]) -> int:
    return sum(t.state == TrialState.COMPLETE for t in trials)


def _within(trials: list[FrozenTrial], stage: Stage) -> list[FrozenTrial]:
    """The stage's trials within this run's budget, by the costs each recorded: a stage reused with a lower
    budget queued designs over it, which were pruned untrained and counted in budget.n_trials."""
    if stage.budget is None:
        return trials
    from searchlab.tasks.costs import over_budget

    kept = [t for t in trials if not over_budget({k: v for k, v in t.user_attrs.items()
                                                  if k in ("params", "flops", "depth")}, stage.budget)]
    if over := sum(t.state == TrialState.COMPLETE for t in trials) - sum(t.state == TrialState.COMPLETE for t in kept):
        print(f"note: {stage.name}: {over} of the stage's scored networks are over this run's budget: none of them "
              "is queued", file=sys.stderr)
    return kept


def _to_run(record: optuna.Study, trials: list[FrozenTrial], stage: Stage) -> bool:
    """Whether this run searches (afresh, on, or further); says what it reuses when it does not."""
    if not trials and not record.user_attrs.get(DONE):
        return True
    cut, stored = _how_cut(record, trials), record.user_attrs.get(ARGS)
    if not record.user_attrs.get(DONE) and not cut:   # written in one batch by an earlier searchlab, then killed
        raise SearchlabError(f"the study '{stage.name}' holds an unfinished search (a run was killed while "
                             f"recording it). Fix: delete it (optuna delete-study --study-name '{stage.name}' "
                             f"--storage {shown_url(stage.storage_url)}) or rename the study")
    if stored is None:   # recorded before stages kept their arguments: what it ran with is unknown
        print(f"note: {stage.name}: reusing the stage recorded by an earlier searchlab (its arguments were not "
              f"kept). Fix: to search again, {_afresh(stage)}", file=sys.stderr)
        return False
    changed = {k: (stored.get(k), v) for k, v in stage.args.items() if stored.get(k) != v and k != stage.grows}
    if cut and changed:
        raise SearchlabError(f"the stage '{stage.name}' was cut short by {_cause(cut)} with {_said(changed, 0)}; "
                             f"this run asks {_said(changed, 1)}, and continuing it would mix two searches. Fix: "
                             f"set {_said(changed, 0)} back to continue it, or {_afresh(stage)}")
    recorded, asked = stored.get(stage.grows), stage.args.get(stage.grows)
    if cut:
        said = f"budget.timeout cut short ({cut})" if _cause(cut) == "budget.timeout" else f"cut short by {cut}"
        if cut == KILLED:   # its own record says nothing of what it kept
            said += f"; kept: the {len(trials)} networks it wrote ({_stage_counts(trials)})"
        # the one argument a cut stage goes on with changed: said, as the cut's own count names the old one
        now = f", now with {stage.grows} {asked} (it was recorded with {recorded})" if asked != recorded else ""
        print(f"{stage.name}: continuing the stage {said}{now}", flush=True)
        return True
    if not changed and asked == recorded:
        return False
    if not changed and asked > recorded:
        print(f"{stage.name}: extending the stage recorded with {stage.grows} {recorded} to the {asked} asked "
              "(its trials kept)", flush=True)
        return True
    changed.update({stage.grows: (recorded, asked)} if asked != recorded else {})
    print(f"warning: {stage.name}: reusing the stage recorded with {_said(changed, 0)}; this run asks "
          f"{_said(changed, 1)}, which does not apply to it (only a larger {stage.grows} extends a stage). Fix: to "
          f"search with them, {_afresh(stage)}", file=sys.stderr)
    return False


def _how_cut(record: optuna.Study, trials: list[FrozenTrial]) -> str | None:
    """Why the recorded stage is unfinished (None: it finished, or is not known to be): its recorded cut, or KILLED
    for chunks written by a run killed while it searched (they carry the arguments; a stage an earlier searchlab
    wrote in one batch and was killed before recording them is not: what it ran with is unknown)."""
    attrs = record.user_attrs
    if attrs.get(DONE):
        return None
    if attrs.get(CUT):
        return attrs[CUT]
    return KILLED if trials and attrs.get(ARGS) is not None else None


def _cause(cut: str) -> str:
    """What cut a stage short, from its recorded reason: budget.timeout, or a stop (Ctrl-C)."""
    return cut.split(",")[0]


def stop_asked() -> str | None:
    """A stop asked (Ctrl-C, SIGTERM) while _run holds stops, as the reason a stage's search ends early; None when
    none was. The searches check it where they check their deadline."""
    try:
        raise_if_stopped()
    except Interrupted as exc:
        return f"a stop ({exc.reason})"
    return None


def _said(changed: dict[str, tuple[Any, Any]], which: int) -> str:
    return ", ".join(f"{key} {values[which]}" for key, values in sorted(changed.items()))


def _afresh(stage: Stage) -> str:
    return (f"delete it (optuna delete-study --study-name '{stage.name}' --storage {shown_url(stage.storage_url)}; the "
            "main study's trials stay) or give the study a new run_dir")


def _run(main: optuna.Study, record: optuna.Study, before: list[FrozenTrial], stage: Stage,
         lock: str | None) -> list[FrozenTrial]:
    """Search (on from `before`), append the new trials to the record in chunks as it goes (_Chunks), and record
    how it ended with the last one. `lock`: the stage lock this run holds, named in each stamp.

    A stop (Ctrl-C, SIGTERM) while it searches is held: the search ends at its next check (stop_asked), its
    trials are written as for a budget.timeout cut, and the stop is raised then. Raised where it came, it threw
    away every network the stage had scored since its last chunk."""
    started = time.time()
    print(f"{stage.name}: scoring architectures without training (a stage before the first trial) ...", flush=True)
    raise_if_stopped()   # one asked before (and swallowed by a library): nothing to search for
    hold_stops()
    try:
        chunks = _Chunks(main, record, stage, started, lock)
        record.set_user_attr(WRITER, writer_stamp(lock))   # claimed before its first chunk: another run waits for it
        with stamping(lambda: record.set_user_attr(WRITER, writer_stamp(lock)), CHUNK_SECONDS):
            new, cut, state = stage.produce(list(before), record.user_attrs.get(STATE), chunks)
        chunks.write(new[chunks.written:], state, cut)
    finally:
        release_stops()
    trials = [*before, *new]
    for number, trial in enumerate(trials):   # numbered in the order written, as the record numbers them
        trial.number = number
    print(f"{stage.name}: {_stage_counts(trials)} in {time.time() - started:.0f} s", flush=True)
    if cut:
        print(f"{stage.name}: cut short by {cut}: nothing queued from it yet; the next run of this study continues "
              "it (the trials recorded are kept) and then queues its best", flush=True)
    raise_if_stopped()   # the stop held while the stage searched and wrote: the run now stops
    return trials


class _Chunks:
    """A stage's Checkpoint: writes its new trials as its search goes, every CHUNK_SECONDS, with its arguments and
    where it got to (STATE) in the same transaction, marked neither done nor cut (the next run then continues it
    as killed: _how_cut). Written once at the end, thousands of networks (minutes of scoring) were lost to a kill
    during the search, or during the 10-24 s the write itself took."""

    def __init__(self, main: optuna.Study, record: optuna.Study, stage: Stage, started: float,
                 lock: str | None) -> None:
        self.main, self.record, self.stage, self.started, self.lock = main, record, stage, started, lock
        self.spans = main.user_attrs.get(SPANS, [])   # the earlier stage runs'; this one's is updated with each chunk
        self.written = 0                               # of the new trials
        self.last = time.monotonic()

    def __call__(self, collect: Collect) -> None:
        if time.monotonic() - self.last < CHUNK_SECONDS:
            return
        trials, state = collect(self.written)
        if trials:   # a chunk of none would mark a finished stage being extended as killed, for nothing
            self.write(trials, state, cut=None, running=True)
        self.last = time.monotonic()

    def write(self, trials: list[FrozenTrial], state: Any, cut: str | None, running: bool = False) -> None:
        """Append `trials` (the next of the new ones) and record where the search got to: still `running`, or
        ended (cut short by `cut`, or done)."""
        bulk_add_trials(self.record, trials, {ARGS: self.stage.args, STATE: state, CUT: cut,
                                              WRITER: writer_stamp(self.lock),
                                              DONE: not running and cut is None, QUEUED: False})
        self.written += len(trials)
        self.main.set_user_attr(SPANS, [*self.spans, [self.started, time.time()]])


def stage_said(main: optuna.Study, suffixes: tuple[str, ...], running: bool | None = False,
               waiting: int = 0, elsewhere: list[tuple[str, str]] | None = None) -> str | None:
    """`searchlab status`'s line for the stage recorded beside `main` (`<study><suffix>`), if any: how many networks
    it scored and whether it finished. A stage stopped before the first trial left the main study at 0 trials,
    and status said nothing of the networks kept for the next run to continue. `running`: whether the study's
    latest run is running (None: on another machine, which this one cannot tell): the chunks of a stage still
    searching read as those of a killed one, which status said of a live run. A stage whose writer stamps it
    still (stage_live.live_writer) is running too. `waiting`: runs of the folder that joined its runner and wait
    for the stage (stage_live.waiting_runs): status counted them as running, and said nothing of why. `elsewhere`:
    the folder's runs waiting for the stage searched by another run folder or machine (runs_waiting_elsewhere)."""
    elsewhere = elsewhere or []
    for suffix in suffixes:
        try:
            record = optuna.load_study(study_name=main.study_name + suffix, storage=main._storage)
        except KeyError:
            continue
        trials = record.get_trials(deepcopy=False)
        counts = f"{_stage_counts(trials)} (study '{record.study_name}')"
        if record.user_attrs.get(DONE):
            return f"  stage before training: finished, {counts}"
        cut = _how_cut(record, trials)   # by budget.timeout, a stop or a kill
        writer = _written_elsewhere(main, record) if cut in (None, KILLED) else None
        live = writer is not None
        if live or (cut == KILLED and running is not False):
            written = f"{counts} written so far" if trials else f"nothing written yet (study '{record.study_name}')"
            unsure = "" if live or running else ("; running on another machine, or killed there (the next "
                                                 "`searchlab run` of this study continues it)")
            return (f"  stage before training: {'running' if live or running else 'unfinished'}, {written}"
                    + waiters_said(waiting, elsewhere, writer) + unsure)
        if cut:
            return (f"  stage before training: cut short by {cut}; kept: {counts}. The next `searchlab run` of "
                    "this study continues it, then queues its best")
        if trials:
            return (f"  stage before training: unfinished ({len(trials)} networks written by a run killed while "
                    f"recording them); the next run refuses it. Fix: delete the study '{record.study_name}' "
                    "(optuna delete-study) and run again")
    # its runner recovers what a killed run left, or its stage has not stamped its record yet
    said = waiters_said(waiting, elsewhere, None)
    return f"  stage before training: being prepared, nothing written yet{said}" if said else None


def stage_queued(main: optuna.Study, name: str) -> bool:
    """The stage recorded as study `name` finished and its designs were queued in `main` (a stage recorded before
    this was kept reads as not queued: run_stage then queues it again, skipping the designs queued already)."""
    try:
        attrs = optuna.load_study(study_name=name, storage=main._storage).user_attrs
    except KeyError:   # not started yet
        return False
    return bool(attrs.get(DONE) and attrs.get(QUEUED))


def _stage_counts(trials: list[FrozenTrial]) -> str:
    twins = [t for t in trials if "same_network_as" in t.user_attrs]   # given the score of one scored already
    new = [t for t in trials if "same_network_as" not in t.user_attrs]
    scored = sum(t.state == TrialState.COMPLETE for t in new)
    over = sum(t.state == TrialState.PRUNED for t in new)
    failed = sum(t.state == TrialState.FAIL for t in new)
    again = f", {len(twins)} repeat(s) of a network scored already" if twins else ""
    # pruned: over budget.max_* or, for deepmad, its own rho0 and stage-width limits (each trial's over_budget)
    return f"{scored} scored, {over} over the budgets or the strategy's limits, {failed} failed{again}"


def settings_from_args(cls: type, strategy: str, args: dict[str, Any]) -> Any:
    """A strategy's settings dataclass from `strategy.args`: unknown names, non-positive values and fractions
    of a count (top_k: 2.5 queued every candidate) are refused."""
    fields = cls.__dataclass_fields__
    unknown = sorted(set(args) - set(fields))
    if unknown:
        close = did_you_mean(unknown[0], sorted(fields))
        raise ConfigError(f"{strategy} has no such argument", key=f"strategy.args.{unknown[0]}", got=unknown[0],
                          fix=(f"{close} " if close else "") + f"{strategy} takes {', '.join(sorted(fields))}")
    for name, value in args.items():
        if fields[name].type == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
            raise ConfigError(f"{strategy}'s {name} is a count: a whole number", key=f"strategy.args.{name}",
                              got=value, fix=f"write {name} as a whole number, e.g. {_whole_example(value)}")
    settings = cls(**args)
    # true is no number here (it was read as 1: rho0: true bounded the design at 1)
    # nan passed `value <= 0`, and an infinite bound or weight is none
    bad = [name for name, value in vars(settings).items()
           if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf]
    if bad:
        raise ConfigError(f"{strategy} arguments must be finite positive numbers", key=f"strategy.args.{bad[0]}",
                          got=getattr(settings, bad[0]), fix="give a positive count or bound")
    return settings


def check_task_builds_networks(study: Any, strategy: str) -> None:
    """Refuse, before a run folder exists, a task that builds no network for the stage to score: a callable
    (or generate) task trains in its own code, and the stage failed mid-way with a raw AttributeError."""
    from searchlab.tasks import TASKS

    kind = study.config.task.kind
    if not hasattr(TASKS.get(kind), "candidate"):
        raise ConfigError(f"{strategy} scores the space's networks before any trial trains, which needs a task that "
                          f"builds them from the config (classify); a {kind} task trains in its own code",
                          key="task.kind", got=kind, fix="use strategy random, tpe or evolution, or a classify task")


def _whole_example(value: Any) -> int:
    return max(1, round(value)) if isinstance(value, (int, float)) and math.isfinite(value) else 5


def enqueue_top_k(main: optuna.Study, ranked_by: list[FrozenTrial], k: int, score_attr: str,
                  network_of: Callable[[FrozenTrial], str] | None = None, carried: tuple[str, ...] = ()) -> None:
    """Queue the k best distinct scored networks of a proxy/design study (their score as user attr `score_attr`,
    with the `carried` user attrs of the trial that scored them, e.g. how a Zen-score was computed).

    Distinct by the network built (`network_of`, by default the `architecture` a trial recorded: its effective
    channels): two trials of one network would train it twice. Only the `model.*` settings are queued: the
    stage searched architectures, and the rest of a proxy trial (lr, augmentation) is whatever a random
    ancestor drew, never scored; the main study's strategy draws them as for any trial (deepmad's designs have
    no other settings). A design whose `model.*` settings a trial of the main study already has or queued is not
    queued again: Optuna's own skip_if_exists compares whole param sets, so the designs a searchlab before
    2026-12-05 queued with the proxy trial's lr and augmentation were queued (and trained) again on every resume."""
    network_of = network_of or _recorded_network
    scored = [t for t in ranked_by if t.state == TrialState.COMPLETE and t.value is not None
              and math.isfinite(t.value)]
    scored.sort(key=lambda t: -t.value)
    held = {_model_key(t.system_attrs.get("fixed_params") or t.params) for t in main.get_trials(deepcopy=False)}
    seen: set[str] = set()
    for trial in scored:
        key = network_of(trial)
        if key in seen:
            continue
        seen.add(key)
        model = {name: value for name, value in trial.params.items() if name.startswith("model.")}
        if _model_key(model) not in held:
            kept = {key: trial.user_attrs[key] for key in carried if key in trial.user_attrs}
            main.enqueue_trial(model, user_attrs={score_attr: trial.value, "proxy_trial": trial.number, **kept},
                               skip_if_exists=True)
        if len(seen) == k:
            break


def _model_key(params: dict[str, Any]) -> str:
    """A trial's `model.*` settings, numbers compared as numbers (1 and 1.0 alike)."""
    model = {name: float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
             for name, value in params.items() if name.startswith("model.")}
    return json.dumps(model, sort_keys=True, default=str)


def _recorded_network(trial: FrozenTrial) -> str:
    model = {name: value for name, value in trial.params.items() if name.startswith("model.")}
    return trial.user_attrs.get("architecture") or json.dumps(model, sort_keys=True, default=str)
