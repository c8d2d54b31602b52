"""`export.keep_checkpoints: K`: only the best trials keep their weights in the artifact store.

Every completed classify or generate trial stores its weights in <run_dir>/artifacts: ~95 MB for a
ResNet-50, K times that for a bag of K fold models, so a few hundred trials of a timm study fill a disk
(Ray Tune's CheckpointConfig(num_to_keep) answers the same problem). With K set, after each finished trial
the process that told its outcome deletes the checkpoints of the finished trials that are out of the running:

- a COMPLETE trial is kept while fewer than K completed trials dominate it (single objective: are strictly
  better), so the K best are kept, plus any tied with the K-th, and with several objectives the whole Pareto
  front (dominated by none) and the trials behind it up to K;
- FAILED and PRUNED trials keep none (only COMPLETE trials are exported).

Completed trials only accumulate, so the number dominating a trial never falls: a trial once dropped never
re-enters. Two processes passing at once therefore delete the same files and never a kept one, and a
resumed run with a larger K keeps what is left. Optuna's own record of the artifact (a system attr) stays,
as a finished trial cannot be changed; exports and the report read the `checkpoint` user attr and say which
trials still have weights when one does not.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence, Set

import numpy as np
import optuna
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial, TrialState

from searchlab.config.load import Study
from searchlab.engine.storage import ContainedArtifactStore, artifact_store

# Every trial whose outcome was told (worker.py's FINISHED leaves FAIL out: it counts the budget)
ENDED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
ROWS_PER_BLOCK = 512   # dominance counted in blocks: memory stays ~rows x trials x objectives booleans


class CheckpointRetention:
    """Called with each finished trial (Optuna's callback signature); deletes the checkpoints out of the running."""

    def __init__(self, keep: int, store: ContainedArtifactStore) -> None:
        self.keep = keep
        self.store = store
        self.dropped: set[int] = set()   # trial numbers out of the running for good: not judged again

    def __call__(self, ostudy: optuna.Study, finished: FrozenTrial) -> None:
        trials = ostudy.get_trials(deepcopy=False, states=ENDED)
        kept = kept_trial_numbers(trials, ostudy.directions, self.keep, self.dropped)
        for trial in trials:
            if trial.number in kept or trial.number in self.dropped:
                continue
            self.dropped.add(trial.number)
            if "checkpoint" in trial.user_attrs:
                self._remove(trial.user_attrs["checkpoint"])

    def _remove(self, artifact_id: str) -> None:
        try:
            self.store.remove(artifact_id)
        except ArtifactNotFound:   # another process removed it first, or it was never written
            pass
        except (OSError, ValueError) as exc:   # a read-only folder, a tampered id: the trials go on regardless
            warnings.warn(f"searchlab: could not delete checkpoint {artifact_id} (export.keep_checkpoints): {exc}",
                          stacklevel=2)


def kept_trial_numbers(trials: Sequence[FrozenTrial], directions: Sequence[optuna.study.StudyDirection],
                       keep: int, dropped: Set[int] = frozenset()) -> set[int]:
    """Numbers of the COMPLETE trials dominated by fewer than `keep` others (see the module docstring).

    Trials in `dropped` (found out of the running by an earlier call) are not judged again, only compared
    against: a pass then costs O(kept x trials), not O(trials^2).
    """
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.values is not None]
    judged = [i for i, t in enumerate(complete) if t.number not in dropped]
    if not judged:
        return set()
    signs = np.array([1.0 if d == optuna.study.StudyDirection.MINIMIZE else -1.0 for d in directions])
    costs = np.array([t.values for t in complete], dtype=float) * signs   # lower is better in every column
    dominated_by = _domination_counts(costs[judged], costs)
    return {complete[i].number for i, count in zip(judged, dominated_by) if count < keep}


def _domination_counts(judged: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """For each judged row, how many rows of `costs` are no worse in every column and better in one."""
    counts = np.empty(len(judged), dtype=int)
    for start in range(0, len(judged), ROWS_PER_BLOCK):
        block = judged[start:start + ROWS_PER_BLOCK, None, :]
        no_worse = (costs[None, :, :] <= block).all(axis=2)            # [judged, other]
        better = (costs[None, :, :] < block).any(axis=2)
        counts[start:start + ROWS_PER_BLOCK] = (no_worse & better).sum(axis=1)
    return counts


def checkpoint_retention(study: Study) -> CheckpointRetention | None:
    """The callback for the study's `export.keep_checkpoints`, or None when every checkpoint is kept."""
    keep = study.config.export.keep_checkpoints
    return None if keep is None else CheckpointRetention(keep, artifact_store(study.run_dir))
