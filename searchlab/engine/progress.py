"""Progress of a run as a user sees it: trials done / total, best so far, elapsed, ETA, failures."""
from __future__ import annotations

import math
import sys
import time
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

from searchlab.engine.recovery import found_data_changed

if TYPE_CHECKING:   # own_trials imports FINISHED from here
    from searchlab.engine.own_trials import OwnTrials

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)   # what budget.n_trials counts
LOOK_SECONDS = 1.0   # between reads of the run history, after a trial, for a run that joined this one


def final_trials(ostudy: optuna.Study) -> list[FrozenTrial]:
    """The trials the budgets count: a failed trial re-queued as a retry hands its outcome to the retry
    (WAITING, run next), so n_trials and max_failed count configs, not attempts. Counting attempts, a config
    killed twice and another killed once reach max_failed 3 with the second one's retry still queued, left
    WAITING and never run."""
    trials = ostudy.get_trials(deepcopy=False)
    retried = {t.user_attrs.get("retry_of") for t in trials}
    return [t for t in trials if t.number not in retried]


def failed_configs(ostudy: optuna.Study) -> int:
    return sum(t.state == TrialState.FAIL for t in final_trials(ostudy))


def stopped_by_failures(ostudy: optuna.Study, n_trials: int, max_failed: int | None, interrupted: bool) -> bool:
    """Whether budget.max_failed (default n_trials) ended a run before budget.n_trials: a run that failed."""
    finished = len(ostudy.get_trials(deepcopy=False, states=FINISHED))
    return not interrupted and finished < n_trials and failed_configs(ostudy) >= (max_failed or n_trials)


class Progress:
    """Fed after each trial (`callback`) or on a poll (`update`, reads the study).

    On a terminal: a live bar. In a log (CI, nohup): one line per finished trial instead of bar redraws.

    Beside another run of the study (more workers of the folder from another shell, or a second Ray driver of
    a server's study: `own`, engine/own_trials.py, tells) the count and the lines are this run's own trials only:
    a joining run reported the other's trials as its own, and counted them in its [k/N]. The best shown is still
    the study's (as the run's summary lists it), said "study best" there.
    """

    def __init__(self, study: optuna.Study, total: int, enabled: bool = True, own: OwnTrials | None = None) -> None:
        self.enabled, self.own, self.total = enabled, own, total
        self.as_lines = enabled and not sys.stderr.isatty()
        self.maximize = [d == optuna.study.StudyDirection.MAXIMIZE for d in study.directions]
        trials = study.get_trials(deepcopy=False)
        self.reported = {t.number for t in trials if t.state.is_finished()}   # earlier runs' trials are not news
        self.tracked: set[int] = set()   # trials the best has taken in: each once (the front counts them)
        self.done = sum(t.state in FINISHED for t in trials)   # toward budget.n_trials: earlier runs' too
        self.mine = 0   # finished (as the budget counts) and reported by this run as its own
        self.shared = False   # beside another run: this run's own trials only, from when it is known
        self.best: tuple[float, int] | None = None
        self.completed: list[list[float]] = []   # values of completed trials, for the front of several objectives
        for trial in trials:
            self._track_best(trial)
        self.started = time.time()
        self.bar = tqdm(total=total, initial=self.done, unit="trial", dynamic_ncols=True,
                        disable=not enabled or self.as_lines, file=sys.stderr, smoothing=0.1)
        if enabled and own is not None and own.beside:   # this run joined another as it started
            self._go_shared()

    def callback(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """A trial this run ran. Beside another run, the others' trials are read too, for the study's best
        (whether one joined is read at most every LOOK_SECONDS: not a read after each of many tiny trials)."""
        if self.enabled:
            if self._beside_another(study, LOOK_SECONDS):   # first: the line said for `trial` names the study's best
                self._track_others(study)
            self._see(trial)
            self._refresh()

    def update(self, study: optuna.Study) -> None:
        if self.enabled:
            for trial in study.get_trials(deepcopy=False):
                if trial.number in self.reported or not trial.state.is_finished():
                    continue
                if self._is_own(trial, study):
                    self._see(trial)
                else:
                    self._track_best(trial)
            self._refresh()

    def close(self) -> None:
        self.bar.close()

    def _is_own(self, trial: FrozenTrial, study: optuna.Study) -> bool:
        """This run's trial: told or announced by its workers; any new one while no other run shares the study
        (no watch can miss those: engine/own_trials.py)."""
        if self.own is None or trial.number in self.own.seen:
            return True
        return not self._beside_another(study)

    def _beside_another(self, study: optuna.Study, seconds_between: float = 0.0) -> bool:
        if not self.shared and self.own is not None and self.own.shares_study(study, seconds_between):
            self._go_shared()
        return self.shared

    def _go_shared(self) -> None:
        """From now on this run's own trials only: said once, as the count it shows changes meaning."""
        self.shared = True
        self.bar.total = None   # no share of the budget, nor an ETA: the other runs finish trials toward it too
        self.bar.bar_format = "{desc}: {n_fmt} trial(s) finished [{elapsed}{postfix}]"
        self.bar.set_description_str("this run", refresh=False)
        self.bar.n = self.mine   # not the study's count it started from
        self._say(f"progress: another run of this study runs beside this one (together they stop at "
                  f"budget.n_trials={self.total}): from here on only this run's own trials are counted and said; "
                  "the best shown is the study's (all runs' trials)")

    def _track_others(self, study: optuna.Study) -> None:
        for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            if trial.number not in self.reported:
                self._track_best(trial)

    def _see(self, trial: FrozenTrial) -> None:
        if trial.number in self.reported or not trial.state.is_finished():
            return
        self.reported.add(trial.number)
        self.done += trial.state in FINISHED
        self.mine += trial.state in FINISHED
        self._track_best(trial)
        if trial.state == TrialState.FAIL:
            self._say(f"trial {trial.number} failed: {_failure_said(trial)}")
        elif self.as_lines:
            self._say(f"trial {trial.number} {trial.state.name.lower()}{_outcome(trial)} [{self._count_text()}, "
                      f"{time.time() - self.started:.0f} s, {self._best_text()}]")

    def _count_text(self) -> str:
        return f"{self.mine} by this run" if self.shared else f"{self.done}/{self.total}"

    def _track_best(self, trial: FrozenTrial) -> None:
        if trial.state != TrialState.COMPLETE or not trial.values or trial.number in self.tracked:
            return
        self.tracked.add(trial.number)
        if len(self.maximize) > 1:
            if all(math.isfinite(v) for v in trial.values):
                self.completed.append(list(trial.values))
            return
        value = trial.values[0]
        if math.isfinite(value) and (self.best is None or (value > self.best[0]) == self.maximize[0]
                                     and value != self.best[0]):
            self.best = (value, trial.number)

    def _best_text(self) -> str:
        whose = "study " if self.shared else ""   # not this run's best: another run's trial may hold it
        if len(self.maximize) > 1:   # several objectives have no single best: how many trade-offs so far
            return (f"{whose}Pareto front: {pareto_count(self.completed, self.maximize)} of {len(self.completed)} "
                    "complete")
        return f"{whose}best: -" if self.best is None else f"{whose}best: {self.best[0]:.4f} (trial {self.best[1]})"

    def _refresh(self) -> None:
        self.bar.n = self.mine if self.shared else min(self.done, self.total)
        self.bar.set_postfix_str(self._best_text(), refresh=False)
        self.bar.refresh()

    def _say(self, line: str) -> None:
        self.bar.write(line, file=sys.stderr)


def pareto_count(values: list[list[float]], maximize: list[bool]) -> int:
    """How many of these value vectors no other one dominates (at least as good in all, better in one)."""
    signed = [[v if up else -v for v, up in zip(row, maximize)] for row in values]

    def dominated(row: list[float]) -> bool:
        return any(all(o >= r for o, r in zip(other, row)) and other != row for other in signed)
    return sum(not dominated(row) for row in signed)


def _outcome(trial: FrozenTrial) -> str:
    """What a finished trial's log line says after its state: its values, or for a trial pruned over the
    architecture budget (before training, so no value) why: "pruned: -" read as the pruner's doing."""
    over = trial.user_attrs.get("over_budget")
    if trial.state == TrialState.PRUNED and isinstance(over, str):
        return f" ({over})"
    values = ": " + (", ".join(f"{v:.4f}" for v in trial.values or []) or "-")
    cut = trial.user_attrs.get("cut_short")
    if trial.state == TrialState.COMPLETE and isinstance(cut, str):   # kept and ranked, though it trained less
        return f" ({cut_short_words(cut)}){values}"
    return values


TIMEOUT_SAID = "stopped by budget.timeout "   # how the tasks' `cut_short` starts (tasks/generate.py, classify.py)


def cut_short_words(cut: str) -> str:
    """"cut short by budget.timeout at iteration 122 of 300" from the trial's `cut_short` ("stopped by
    budget.timeout at iteration 122 of 300"; a classifier's: "... after 3 of 10 epochs (kept its best, ...)")."""
    if not cut.startswith(TIMEOUT_SAID):
        return f"cut short: {cut}"
    return "cut short by budget.timeout " + cut.removeprefix(TIMEOUT_SAID).split(" (")[0]


def _failure_said(trial: FrozenTrial) -> str:
    """A failed trial's stored reason; not whole for one that found the run's data changed: the run stops on it
    and says it whole once (engine/worker.py run_worker), and the same long reason was printed twice."""
    error = trial.user_attrs.get("error", "no reason stored")
    if found_data_changed(error):
        return "the files it reads changed since the run started (the run stops: why and the fix follow)"
    return error
