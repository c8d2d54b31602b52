"""Progress of a run as a user sees it: trials done / total, best so far, elapsed, ETA, failures."""
from __future__ import annotations

import math
import sys
import time

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)   # what budget.n_trials counts


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
    """Fed after each trial (`callback`, no storage reads) or on a poll (`update`, reads the study).

    On a terminal: a live bar. In a log (CI, nohup): one line per finished trial instead of bar redraws.
    """

    def __init__(self, study: optuna.Study, total: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.as_lines = enabled and not sys.stderr.isatty()
        self.maximize = [d == optuna.study.StudyDirection.MAXIMIZE for d in study.directions]
        trials = study.get_trials(deepcopy=False)
        self.reported = {t.number for t in trials if t.state.is_finished()}   # earlier runs' trials are not news
        self.done = sum(t.state in FINISHED for t in trials)
        self.best: tuple[float, int] | None = None
        self.completed: list[list[float]] = []   # values of completed trials, for the front of several objectives
        for trial in trials:
            self._track_best(trial)
        self.started = time.time()
        self.bar = tqdm(total=total, initial=self.done, unit="trial", dynamic_ncols=True,
                        disable=not enabled or self.as_lines, file=sys.stderr, smoothing=0.1)

    def callback(self, _study: optuna.Study, trial: FrozenTrial) -> None:
        if self.enabled:
            self._see(trial)
            self._refresh()

    def update(self, study: optuna.Study) -> None:
        if self.enabled:
            for trial in study.get_trials(deepcopy=False):
                self._see(trial)
            self._refresh()

    def close(self) -> None:
        self.bar.close()

    def _see(self, trial: FrozenTrial) -> None:
        if trial.number in self.reported or not trial.state.is_finished():
            return
        self.reported.add(trial.number)
        self.done += trial.state in FINISHED
        self._track_best(trial)
        if trial.state == TrialState.FAIL:
            self._say(f"trial {trial.number} failed: {trial.user_attrs.get('error', 'no reason stored')}")
        elif self.as_lines:
            self._say(f"trial {trial.number} {trial.state.name.lower()}{_outcome(trial)} [{self.done}/"
                      f"{self.bar.total}, {time.time() - self.started:.0f} s, {self._best_text()}]")

    def _track_best(self, trial: FrozenTrial) -> None:
        if trial.state != TrialState.COMPLETE or not trial.values:
            return
        if len(self.maximize) > 1:
            if all(math.isfinite(v) for v in trial.values):
                self.completed.append(list(trial.values))
            return
        value = trial.values[0]
        if math.isfinite(value) and (self.best is None or (value > self.best[0]) == self.maximize[0]
                                     and value != self.best[0]):
            self.best = (value, trial.number)

    def _best_text(self) -> str:
        if len(self.maximize) > 1:   # several objectives have no single best: how many trade-offs so far
            return f"Pareto front: {pareto_count(self.completed, self.maximize)} of {len(self.completed)} complete"
        return "best: -" if self.best is None else f"best: {self.best[0]:.4f} (trial {self.best[1]})"

    def _refresh(self) -> None:
        self.bar.n = min(self.done, self.bar.total)
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
