"""The generate task checks its splits as classify does (tasks/generate.py split_as_recorded): a GAN trial that
finds the run's MedMNIST train or val arrays changed fails, and the run stops with it."""
from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import searchlab.engine.study_record as study_record
from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import DataChanged
from searchlab.gan.features import CACHE_DIR
from test_datastop_changed_data import _resave

STUDY = """
name: gan
task: generate
space:
  gan: {family: dcgan, latent: {choice: [8, 16]}, g_width: 16, d_width: 16}
  train: {batch_size: 16, iterations: 20, evaluations: 1}
strategy: random
pruner: none
budget: {n_trials: 3}
seed: 0
"""


def test_a_gan_trial_that_finds_the_val_arrays_changed_stops_the_run(write_study, tmp_path, monkeypatch,
                                                                     breastmnist_root, extractor_run):
    (tmp_path / "data").mkdir()
    path = Path(shutil.copy(breastmnist_root / "breastmnist.npz", tmp_path / "data"))
    shutil.copytree(extractor_run / CACHE_DIR, tmp_path / "run" / CACHE_DIR)
    record, done = study_record.data_record, []

    def data_record(study):   # the file saved again with other val labels once the run recorded it
        recorded = record(study)
        if not done:
            done.append(_resave(path, "val_labels"))
        return recorded

    monkeypatch.setattr(study_record, "data_record", data_record)
    study = load_study(write_study(STUDY + f"data: {{source: medmnist, name: breastmnist, root: '{tmp_path / 'data'}',"
                                           " download: false}\n"))
    with pytest.raises(DataChanged, match=r"\(breastmnist.npz: its val_labels array\).*The run stops here"):
        run_study(study, progress=False)
    trials = optuna.load_study(study_name="gan", storage=study.storage_url).get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.FAIL]   # its config runs again when the study next runs
    assert trials[0].user_attrs["error"].startswith("DataChanged: ")
