"""A MedMNIST run that went on past its .npz saved again with other test arrays only (the search never reads them)
can be resumed: the change is noted, and the record keeps the file the trials read, so a later export and resume
still say it; other train or val arrays are refused, as a record without the arrays' CRCs refuses any change."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from optuna.trial import TrialState

from searchlab.config.load import load_study
from searchlab.data.fingerprint import medmnist_test_arrays_changed
from searchlab.data.recorded_split import medmnist_stat
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError

from test_datastop_changed_data import _npz, _resave


def _study(tmp_path: Path, n_trials: int) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text("name: datastop2\ntask: classify\nspace:\n  model: {kind: cnn, depth: 1, width: 4}\n"
                    "  optim: {lr: {float: [0.001, 0.01]}}\n  train: {batch_size: 256}\n"
                    f"data: {{source: medmnist, name: breastmnist, root: '{tmp_path / 'data'}', download: false}}\n"
                    f"strategy: random\npruner: none\nbudget: {{n_trials: {n_trials}, epochs: 1}}\n"
                    f"run_dir: '{tmp_path / 'run'}'\n")
    return path


def test_a_resume_goes_on_past_other_test_arrays_noting_them_and_refuses_other_val_arrays(
        tmp_path, breastmnist_root, capsys):
    (tmp_path / "data").mkdir()
    path = Path(shutil.copy(breastmnist_root / "breastmnist.npz", tmp_path / "data"))
    first = run_study(load_study(_study(tmp_path, 1)), progress=False)
    read = first.study.user_attrs["searchlab"]["data_file"]
    _resave(path, "test_images")
    capsys.readouterr()
    for n_trials in (2, 3):   # and again: the record kept the file the trials read, so the change is still said
        result = run_study(load_study(_study(tmp_path, n_trials)), progress=False)
        assert _states(result) == [TrialState.COMPLETE] * n_trials
        assert "breastmnist.npz: its test_images array changed since its trials ran" in capsys.readouterr().err
        assert result.study.user_attrs["searchlab"]["data_file"] == read   # what an export compares the file with
    from searchlab.data import clear_cache
    from searchlab.export.exporter import export_run

    clear_cache()   # this process read the file before it changed
    said = export_run(tmp_path / "run", tmp_path / "best", bootstrap=20)["data_replaced_since_search"]
    assert said.startswith("breastmnist.npz is not the file the trials read") and \
        "its test_images array changed, its train and val arrays did not: the test metrics are of the file as it " \
        "is now" in said, said
    _resave(path, "val_images")
    with pytest.raises(ConfigError, match=r"breastmnist.npz is not the file the trials read"):
        run_study(load_study(_study(tmp_path, 4)), progress=False)


def _states(result) -> list[TrialState]:
    return [t.state for t in result.study.get_trials(deepcopy=False)]


def test_only_test_arrays_changed_is_told_from_train_or_val_arrays_and_needs_both_runs_crcs(tmp_path):
    path = tmp_path / "breastmnist.npz"
    _npz(path)
    before = medmnist_stat(path)
    _npz(path, test_value=9)
    assert medmnist_test_arrays_changed(before, medmnist_stat(path)) == "breastmnist.npz: its test_images array changed"
    assert medmnist_test_arrays_changed({**before, "arrays": None}, medmnist_stat(path)) is None   # an older record
    _npz(path, test_value=9, val_label=1)
    assert medmnist_test_arrays_changed(before, medmnist_stat(path)) is None
