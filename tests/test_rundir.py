"""Finding a run from its directory: moved run directories still open; a missing database is named, not created."""
from __future__ import annotations

import shutil

import pytest

from searchlab.config.load import load_study
from searchlab.engine.rundir import open_run
from searchlab.engine.run import run_study
from searchlab.errors import StorageError
from searchlab.export.exporter import export_run
from test_run import TINY_CLASSIFY


def test_a_moved_run_directory_opens_and_exports_from_its_own_files(write_study, tmp_path):
    run_study(load_study(write_study(TINY_CLASSIFY)), progress=False)
    moved = tmp_path / "elsewhere" / "run"
    shutil.move(tmp_path / "run", moved)
    run = open_run(moved)
    assert run.storage_url == f"sqlite:///{moved / 'study.db'}" and run.artifacts == moved / "artifacts"
    assert len(run.study.trials) == 2
    config = export_run(moved, tmp_path / "best", bootstrap=50)
    assert 0.0 <= config["test_metrics"]["auc"] <= 1.0


def test_a_missing_database_is_named_and_not_created(write_study, tmp_path):
    run_study(load_study(write_study(TINY_CLASSIFY)), progress=False)
    run_dir = tmp_path / "run"
    (run_dir / "study.db").unlink()
    with pytest.raises(StorageError, match=r"storage file .*study\.db \(named by .*searchlab\.json\) does not exist"):
        open_run(run_dir)
    assert not (run_dir / "study.db").exists()


def test_a_copied_run_directory_reads_its_own_files_not_the_originals(write_study, tmp_path):
    run_study(load_study(write_study(TINY_CLASSIFY)), progress=False)
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "run", copy)
    run = open_run(copy)
    assert run.storage_url == f"sqlite:///{copy / 'study.db'}" and run.artifacts == copy / "artifacts"
    for file in copy.glob("study.db*"):   # the copy's database gone: named, not read from the original
        file.unlink()
    with pytest.raises(StorageError, match=r"copy is a copy of the run folder .*run without its own study\.db"):
        open_run(copy)
    assert len(open_run(tmp_path / "run").study.trials) == 2   # the original still opens as itself


def test_a_copied_run_directory_resumes_its_own_study_and_leaves_the_original(write_study, tmp_path, capsys):
    """Branching an experiment: copy the run folder and run on in the copy."""
    import optuna

    from test_run import callable_study

    path = callable_study(write_study, n=2)
    run_study(load_study(path), progress=False)
    copy = tmp_path / "branch"
    shutil.copytree(tmp_path / "run", copy)
    capsys.readouterr()
    run_study(load_study(path, {"run_dir": str(copy), "budget.n_trials": 3}), progress=False)
    assert f"note: {copy} is a copy of the run folder {tmp_path / 'run'}" in capsys.readouterr().err
    trials = {folder: len(optuna.load_study(study_name="fake", storage=f"sqlite:///{folder / 'study.db'}").trials)
              for folder in (copy, tmp_path / "run")}
    assert trials == {copy: 3, tmp_path / "run": 2}
    assert open_run(copy).storage_url == f"sqlite:///{copy / 'study.db'}"   # the copy now names its own


def test_a_file_of_the_run_folder_given_for_the_folder_is_named_as_such(write_study, tmp_path):
    """study.db or searchlab.json given to status/export/report was read as a study file: 'not UTF-8 text'."""
    from test_run import callable_study

    from searchlab.config.load import load_study
    from searchlab.engine.rundir import open_run
    from searchlab.engine.run import run_study
    from searchlab.errors import SearchlabError

    run_study(load_study(callable_study(write_study, n=1)), progress=False)
    for name in ("study.db", "searchlab.json"):
        with pytest.raises(SearchlabError, match=rf"'{tmp_path / 'run' / name}' is a file of the run folder "
                                                 rf"{tmp_path / 'run'}\. Fix: pass the folder"):
            open_run(tmp_path / "run" / name)
    spaced = tmp_path / "my runs"   # the suggested command runs as printed
    shutil.copytree(tmp_path / "run", spaced)
    with pytest.raises(SearchlabError, match=r"e\.g\. searchlab status '.*/my runs'$"):
        open_run(spaced / "study.db")
