"""A listing that fails mid-run proves no change of the trials' files: an audit's runs stopped on a folder without
images added beside the class folders (and on a run folder kept inside data.path), their training and validation
files unchanged. The run goes on, warned once."""
from __future__ import annotations

from optuna.trial import TrialState
from PIL import Image

from searchlab.config.load import load_study
from searchlab.engine.run import run_study

from test_inplace_changed_files import _folder
from test_leftovers2_listing_changed import _after_the_first_trial, _later, _study, folder_run_stopped_by


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


def test_an_image_added_with_a_folder_that_stops_the_listing_still_stops_the_run(tmp_path, monkeypatch):
    """The set failing to list (a folder without images beside the classes) hid an image added to a class folder at
    the same time: the run went on, and only export found it."""
    folder = _folder(tmp_path / "images")

    def docs_and_an_image() -> None:
        (folder / "docs").mkdir()
        (folder / "docs" / "protocol.pdf").write_bytes(b"%PDF-1.4\n")
        Image.new("RGB", (12, 12), (0, 250, 0)).save(folder / "b" / "new.png")
        _later(folder)
        _later(folder / "b")

    folder_run_stopped_by(docs_and_an_image, r"images were added to or removed from .*added b/new\.png.*no longer "
                          "lists", folder, tmp_path, monkeypatch)
