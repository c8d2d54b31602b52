"""A listing that fails mid-run proves no change of the trials' files: an audit's runs stopped on a folder without
images added beside the class folders (and on a run folder kept inside data.path), their training and validation
files unchanged. The run goes on, warned once."""
from __future__ import annotations

from optuna.trial import TrialState

from searchlab.config.load import load_study
from searchlab.engine.run import run_study

from test_inplace_changed_files import _folder
from test_leftovers2_listing_changed import _after_the_first_trial, _later, _study


def test_a_folder_without_images_added_to_data_path_mid_run_warns_and_the_run_goes_on(tmp_path, monkeypatch,
                                                                                        capsys):
    folder = _folder(tmp_path / "images")

    def a_docs_folder() -> None:
        (folder / "docs").mkdir()
        (folder / "docs" / "protocol.pdf").write_bytes(b"%PDF-1.4\n")   # lists as a class folder without images
        _later(folder)

    _after_the_first_trial(monkeypatch, a_docs_folder)
    result = run_study(load_study(_study(tmp_path, f"{{source: folder, path: '{folder}', image_size: 8}}")),
                       progress=False)
    assert [t.state for t in result.study.get_trials(deepcopy=False)] == [TrialState.COMPLETE] * 3
    err = capsys.readouterr().err
    assert err.count("changed while the run runs and no longer lists as a data set") == 1, err
    assert "docs" in err and "keep run folders out of it" in err
