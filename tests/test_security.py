"""Files from someone else cannot run code or reach outside their folder: pickles are never loaded, artifact
ids (read from a study that may be shared or copied) cannot leave the artifact folder, by `..`, an absolute
path or a symlink."""
from __future__ import annotations

import io
import os
import pickle
import sqlite3
import subprocess

import optuna
import pytest
import torch

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.engine.storage import ContainedArtifactStore
from searchlab.errors import ExportError, TrialFailure
from searchlab.export.exporter import export_run
from searchlab.tasks.transfer import _file_state
from test_run import TINY_CLASSIFY


class _RunsCode:
    """Unpickling this writes a marker file: what a malicious checkpoint would do instead."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickled_checkpoint_that_would_run_code_is_refused_unrun(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "weights.pt"
    path.write_bytes(pickle.dumps({"state_dict": _RunsCode(str(marker))}))
    with pytest.raises(TrialFailure, match="weights file .*weights.pt holds a pickled object .* not unpickled"):
        _file_state(path, torch.nn.Linear(2, 2))
    assert not marker.exists()


def test_a_torch_saved_checkpoint_calling_a_blocked_function_names_it_and_offers_no_line_that_runs_it(tmp_path):
    """torch.save of such an object was said with the first 300 characters of torch's text, cut mid-sentence,
    never naming posix.system, and offered the weights_only=False line that would run it."""
    marker = tmp_path / "pwned"
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.ones(1)}, "x": _RunsCode(str(marker))}, path)
    with pytest.raises(TrialFailure) as caught:
        _file_state(path, torch.nn.Linear(2, 2))
    said = str(caught.value)
    assert f"{os.system.__module__}.system when loaded" in said and "Fix: do not load this file" in said
    assert "python -c" not in said and "Do it only if" not in said
    assert not marker.exists()


@pytest.mark.parametrize("artifact_id", ["../outside.txt", "/etc/hostname", "sub/../../outside.txt"])
def test_artifact_ids_leaving_the_folder_are_refused(tmp_path, artifact_id):
    store = ContainedArtifactStore(tmp_path / "artifacts")
    (tmp_path / "artifacts").mkdir()
    with pytest.raises(ValueError):
        store.open_reader(artifact_id)
    with pytest.raises(ValueError):
        store.write(artifact_id, io.BytesIO(b"x"))
    assert not (tmp_path / "outside.txt").exists()


def test_a_symlinked_artifact_pointing_outside_is_refused(tmp_path):
    (tmp_path / "artifacts").mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    (tmp_path / "artifacts" / "link").symlink_to(secret)
    with pytest.raises(ValueError, match="points outside the artifact folder"):
        ContainedArtifactStore(tmp_path / "artifacts").open_reader("link")


def test_export_refuses_a_checkpoint_id_that_leaves_the_artifacts(write_study, tmp_path):
    run_study(load_study(write_study(TINY_CLASSIFY)), progress=False)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    best = study.best_trial
    (tmp_path / "secret.safetensors").write_bytes((tmp_path / "run" / "artifacts" / best.user_attrs["checkpoint"]).read_bytes())
    with sqlite3.connect(tmp_path / "run" / "study.db") as db:   # a tampered (or carelessly shared) study
        db.execute("UPDATE trial_user_attributes SET value_json = ? WHERE key = 'checkpoint' AND trial_id = ?",
                   ('"../../secret.safetensors"', best._trial_id))
    with pytest.raises(ExportError, match="cannot be read from .*points outside the artifact folder"):
        export_run(tmp_path / "run", tmp_path / "out")
    assert not (tmp_path / "out" / "weights.safetensors").exists()


class _RunsSubprocess:
    def __reduce__(self):
        return (subprocess.check_output, (["true"],))


class _RunsEval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


@pytest.mark.parametrize("payload, named", [(_RunsSubprocess, ".check_output"), (_RunsEval, "calls eval ")])
def test_a_checkpoint_calling_subprocess_or_eval_gets_no_line_that_would_run_it(tmp_path, payload, named):
    """Only modules torch blocks itself were caught: a pickle calling subprocess.check_output or eval got the
    weights_only=False re-save line, which ran it."""
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.ones(1)}, "x": payload()}, path)
    with pytest.raises(TrialFailure) as caught:
        _file_state(path, torch.nn.Linear(2, 2))
    said = str(caught.value)
    assert named in said and "when loaded" in said and "python -c" not in said, said
