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
