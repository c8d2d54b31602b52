"""Progress of a run as a user sees it: trials done / total, best so far, elapsed, ETA, failures."""
from __future__ import annotations

import math
import sys
import time

import optuna
from optuna.trial import FrozenTrial, TrialState
from tqdm import tqdm

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class Progress:
    """Fed with the study after each trial (or on a poll); prints failures once each.

    On a terminal: a live bar. In a log (CI, nohup): one line per finished trial instead of bar redraws.
    """

    def __init__(self, total: int, already_done: int, enabled: bool = True) -> None:
        self.as_lines = enabled and not sys.stderr.isatty()
        self.bar = tqdm(total=total, initial=already_done, unit="trial", dynamic_ncols=True,
                        disable=not enabled or self.as_lines, file=sys.stderr, smoothing=0.1)
        self.enabled = enabled
        self.reported: set[int] = set()
        self.started = time.time()

    def update(self, study: optuna.Study) -> None:
        trials = study.get_trials(deepcopy=False)
        done = sum(t.state in FINISHED for t in trials)
        for trial in trials:
            if trial.number in self.reported or not trial.state.is_finished():
                continue
            self.reported.add(trial.number)
            if trial.state == TrialState.FAIL:
                self._say(f"trial {trial.number} failed: {trial.user_attrs.get('error', 'no reason stored')}")
            elif self.as_lines:
                value = ", ".join(f"{v:.4f}" for v in trial.values or []) or "-"
                self._say(f"trial {trial.number} {trial.state.name.lower()}: {value} [{done}/{self.bar.total}, "
                          f"{time.time() - self.started:.0f} s, {_best(study, trials)}]")
        self.bar.n = min(done, self.bar.total)
        self.bar.set_postfix_str(_best(study, trials), refresh=False)
        self.bar.refresh()

    def callback(self, study: optuna.Study, _trial: FrozenTrial) -> None:
        self.update(study)

    def mark_known(self, study: optuna.Study) -> None:
        """Trials from earlier runs were reported then; only new ones are news."""
        self.reported |= {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}

    def _say(self, line: str) -> None:
        if self.enabled:
            self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def _best(study: optuna.Study, trials: list[FrozenTrial]) -> str:
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        return "best: -"
    if len(study.directions) > 1:
        return f"pareto front: {len(study.best_trials)} trials"
    value = study.best_value
    return f"best: {value:.4f} (trial {study.best_trial.number})" if math.isfinite(value) else "best: -"
