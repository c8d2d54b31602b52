"""Where a trial's checkpoint is: the run folder's own artifacts/, else the artifacts/ of the run folder of the
study that trained it (engine/own_trials.py record_trained).

Two Ray drivers of one PostgreSQL study from two run folders (or two folders sharing one SQLite file) each keep
the checkpoints of the trials they ran. The after-run export of one looked only in its own folder, called the
other's best trial's checkpoint deleted by keep_checkpoints, and the run exited 1: on the same machine the other
folder is read instead; on another machine (or a folder gone) the error names the trial, the folder and machine
holding it, and the command to export there.
"""
from __future__ import annotations

import os
import shlex
import socket
import sys
from pathlib import Path

from optuna.trial import FrozenTrial

from searchlab.engine.own_trials import TrainedIn, trained_in
from searchlab.engine.rundir import OpenRun
from searchlab.engine.storage import ContainedArtifactStore
from searchlab.errors import CheckpointGone


class CheckpointElsewhere(CheckpointGone):
    """A trial's checkpoint is held by another run folder of the study (another driver's) not readable here."""

    def __init__(self, trial_number: int, holder: TrainedIn, run: OpenRun) -> None:
        self.trial_number, self.holder = trial_number, holder
        self.on_another_machine = holder.host != socket.gethostname()
        where = (f"on machine {holder.host}" if self.on_another_machine
                 else "on this machine, but that folder is gone or cannot be read now")
        self.rule = (f"trial {trial_number} was trained by another run of this study, in run folder "
                     f"{holder.run_dir} ({where}), which holds its checkpoint (not in {run.artifacts})")
        self.command = (f"searchlab export {shlex.quote(holder.run_dir)} --trial {trial_number} --out "
                        f"{shlex.quote(str(Path(holder.run_dir) / 'best'))}")
        fix = (f"export it there: {self.command} (or copy that folder's artifacts/ into this one's)"
               if self.on_another_machine else
               f"put {holder.run_dir} back (or copy its artifacts/ into {run.artifacts}), or export another trial "
               "(--trial N)")
        super().__init__(f"{self.rule}. Fix: {fix}")


def checkpoint_store(run: OpenRun, trial: FrozenTrial, artifact_id: str) -> ContainedArtifactStore:
    """The artifact store holding `artifact_id`, the checkpoint of `trial`: this folder's, else the recorded
    folder of the study holding it (said on stderr). This folder's when none does and the trial was trained
    here, or where no record says (the caller says it is gone); CheckpointElsewhere when the folder that
    trained it cannot be read from here."""
    own = ContainedArtifactStore(run.artifacts)
    if own.exists(artifact_id):
        return own
    folders = trained_in(run.study.user_attrs)
    holder = next((f for f in folders if trial.number in f.trials), None)
    for artifacts in _other_folders(run, holder, folders):
        store = ContainedArtifactStore(artifacts)
        if store.exists(artifact_id):
            print(f"note: trial {trial.number}'s checkpoint read from {artifacts}, the artifacts/ of the run folder of "
                  "this study that trained it", file=sys.stderr)
            return store
    if holder is not None and not _same_folder(holder.artifacts, run.artifacts) and not _readable_here(holder):
        raise CheckpointElsewhere(trial.number, holder, run)
    return own


def _other_folders(run: OpenRun, holder: TrainedIn | None, folders: list[TrainedIn]) -> list[str]:
    """Artifact folders to look in besides this run folder's: the one recorded as the trial's first, then the
    study's other recorded folders (a folder shared over the network is readable from another machine too), then
    the one the study's latest run recorded (a run made before folders were recorded per trial)."""
    record = run.study.user_attrs.get("searchlab")
    latest = record.get("artifacts") if isinstance(record, dict) else None
    found = []
    for artifacts in [*([holder.artifacts] if holder else []), *(f.artifacts for f in folders), latest]:
        if isinstance(artifacts, str) and artifacts not in found and not _same_folder(artifacts, run.artifacts) \
                and os.path.isdir(artifacts):
            found.append(artifacts)
    return found


def _readable_here(holder: TrainedIn) -> bool:
    """The folder that trained the trial is this machine's and can be read: its checkpoint is gone from it."""
    return holder.host == socket.gethostname() and os.access(holder.artifacts, os.R_OK | os.X_OK)


def _same_folder(a: str | Path, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)
