"""A notebook or script that runs several studies, or edits a study's task function between runs, in one
process: Python imports a module once, so a second study's `obj.py` ran the first study's (found first on the
path, then cached), with the first one's code digest recorded, and an edited function kept running its old
code while the run warned that the code had changed."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from searchlab.config.load import load_study
from searchlab.engine.run import run_study

STUDY = """
name: {name}
task: {{kind: callable, function: "obj_of_a_study:f"}}
space: {{x: {{float: [0, 1]}}}}
objective: {{metric: score, direction: maximize}}
strategy: random
budget: {{n_trials: {n}}}
run_dir: '{run}'
"""


def _study(folder: Path, score: float, n: int = 2) -> Path:
    folder.mkdir(exist_ok=True)
    _task(folder, score)
    path = folder / "study.yaml"
    path.write_text(STUDY.format(name=folder.name, n=n, run=folder / "run"))
    return path


def _task(folder: Path, score: float) -> None:
    file = folder / "obj_of_a_study.py"
    before = file.stat().st_mtime_ns if file.exists() else 0
    file.write_text(f"def f(config, ctx):\n    return {{'score': {score}}}\n")
    if before:   # a later time, however coarse the file system's clock
        os.utime(file, ns=(before + 10**9, before + 10**9))


@pytest.fixture(autouse=True)
def forget_the_module():
    yield
    sys.modules.pop("obj_of_a_study", None)


def _values(path: Path) -> list[float]:
    return [t.value for t in run_study(load_study(path), progress=False).study.trials]


def test_a_second_study_runs_its_own_module_of_the_same_name(tmp_path):
    assert _values(_study(tmp_path / "a", 1.0)) == [1.0, 1.0]
    assert _values(_study(tmp_path / "b", 2.0)) == [2.0, 2.0]
    assert _values(_study(tmp_path / "a", 1.0, n=3))[-1] == 1.0   # and the first again, resumed


def test_an_edited_task_function_runs_its_new_code(tmp_path):
    path = _study(tmp_path / "a", 1.0)
    assert _values(path) == [1.0, 1.0]
    _task(tmp_path / "a", 5.0)
    path.write_text(path.read_text().replace("n_trials: 2", "n_trials: 3"))
    assert _values(path) == [1.0, 1.0, 5.0]


def test_an_installed_module_still_wins_over_a_file_of_its_name_beside_a_study(tmp_path):
    """The study's folder goes after the installed packages: a stray `optuna.py` cannot shadow the real one."""
    import optuna

    path = _study(tmp_path / "a", 1.0)
    (tmp_path / "a" / "optuna.py").write_text("raise RuntimeError('the stray file was imported')\n")
    load_study(path)
    from searchlab.registry import import_object

    assert import_object("optuna:create_study", "strategy class") is optuna.create_study
