"""Which file a study's module comes from in a process that runs studies from a script or notebook: the study's
own folder before the folder the caller runs from (a script's folder, a notebook's cwd), and every module
imported from a study folder (a `helpers.py` the task imports) re-imported when its file changed or another
study's folder has its name. The task module alone was checked: a second study ran the first one's helpers,
and a script run from one study's folder ran that folder's `obj.py` for another study."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from searchlab.config.load import load_study
from searchlab.engine.run import run_study

TASK, HELPER = "paths_obj", "paths_helpers"

STUDY = """
name: {name}
task: {{kind: callable, function: "paths_obj:f"}}
space: {{x: {{float: [0, 1]}}}}
objective: {{metric: score, direction: maximize}}
strategy: random
budget: {{n_trials: {n}}}
run_dir: '{run}'
"""


def _write(file: Path, text: str) -> None:
    """Later mtime than the file had, however coarse the file system's clock."""
    before = file.stat().st_mtime_ns if file.exists() else 0
    file.write_text(text)
    if before:
        os.utime(file, ns=(before + 10**9, before + 10**9))


def _study(folder: Path, value: float, n: int = 2) -> Path:
    """A study whose task returns its helper module's VALUE."""
    folder.mkdir(exist_ok=True)
    _write(folder / f"{TASK}.py", f"import {HELPER}\n\ndef f(config, ctx):\n    return {{'score': {HELPER}.VALUE}}\n")
    _write(folder / f"{HELPER}.py", f"VALUE = {value}\n")
    path = folder / "study.yaml"
    path.write_text(STUDY.format(name=folder.name, n=n, run=folder / "run"))
    return path


def _study_with_a_package(folder: Path, value: float) -> Path:
    """A study whose helper is a package, its VALUE in a submodule."""
    path = _study(folder, 0.0)
    (folder / HELPER).mkdir()
    (folder / f"{HELPER}.py").unlink()
    _write(folder / HELPER / "__init__.py", "from .values import VALUE\n")
    _write(folder / HELPER / "values.py", f"VALUE = {value}\n")
    return path


def _values(path: Path) -> list[float]:
    return [t.value for t in run_study(load_study(path), progress=False).study.trials]


@pytest.fixture(autouse=True)
def forget_the_modules():
    yield
    for name in [n for n in sys.modules if n.partition(".")[0] in (TASK, HELPER, "colorsys")]:
        sys.modules.pop(name, None)


def test_the_study_module_wins_over_one_in_the_callers_folder(tmp_path, monkeypatch):
    """`cd s1; python nb.py` running ../s4/study.yaml: the script's folder is first on sys.path."""
    callers = tmp_path / "callers"
    _study(callers, 1.0)
    monkeypatch.syspath_prepend(str(callers))
    monkeypatch.chdir(callers)
    assert _values(_study(tmp_path / "own", 444.0)) == [444.0, 444.0]


def test_after_a_run_from_python_the_caller_imports_its_own_module_again(tmp_path, monkeypatch):
    """The study's helpers.py came first while it ran, and stayed cached and first: the notebook's own
    `import helpers` afterwards gave the study's."""
    import importlib

    from searchlab.cli import main

    callers = tmp_path / "callers"
    callers.mkdir()
    (callers / f"{HELPER}.py").write_text("VALUE = 1.0\n")
    monkeypatch.syspath_prepend(str(callers))
    monkeypatch.chdir(callers)
    study = _study(tmp_path / "own", 2.0)
    assert main(["run", str(study), "--no-progress"]) == 0
    import optuna

    stored = optuna.load_study(study_name="own", storage=f"sqlite:///{tmp_path / 'own' / 'run' / 'study.db'}")
    assert [t.value for t in stored.trials] == [2.0, 2.0]   # the study ran its own
    assert importlib.import_module(HELPER).VALUE == 1.0     # and the caller gets its own back


def test_a_second_study_runs_its_own_helper_module(tmp_path):
    assert _values(_study(tmp_path / "a", 1.0)) == [1.0, 1.0]
    assert _values(_study(tmp_path / "b", 2.0)) == [2.0, 2.0]


def test_an_edited_helper_module_runs_its_new_code(tmp_path):
    path = _study(tmp_path / "a", 1.0)
    assert _values(path) == [1.0, 1.0]
    _write(tmp_path / "a" / f"{HELPER}.py", "VALUE = 5.0\n")
    path.write_text(path.read_text().replace("n_trials: 2", "n_trials: 3"))
    assert _values(path) == [1.0, 1.0, 5.0]


def test_an_edited_module_of_a_study_package_runs_its_new_code(tmp_path):
    """A helper package beside the study: its submodules follow their files too."""
    folder = tmp_path / "a"
    path = _study_with_a_package(folder, 3.0)
    assert _values(path) == [3.0, 3.0]
    _write(folder / HELPER / "values.py", "VALUE = 7.0\n")
    path.write_text(path.read_text().replace("n_trials: 2", "n_trials: 3"))
    assert _values(path)[-1] == 7.0


def test_a_file_beside_the_study_does_not_hide_an_installed_module_imported_later(tmp_path, monkeypatch):
    """The study's folder comes before the caller's, not before the installed packages."""
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    path = _study(tmp_path / "a", 1.0)
    (tmp_path / "a" / "colorsys.py").write_text("raise RuntimeError('the stray file was imported')\n")
    load_study(path)
    import colorsys

    assert Path(colorsys.__file__).parent != tmp_path / "a"


def test_a_study_module_without_the_function_is_not_called_shadowed_by_the_callers(tmp_path, monkeypatch):
    """The study's own file was imported: the error names what it has, not a file of its name to rename."""
    from searchlab.errors import SearchlabError

    callers = tmp_path / "callers"
    _study(callers, 1.0)
    monkeypatch.syspath_prepend(str(callers))
    path = _study(tmp_path / "own", 2.0)
    _write(tmp_path / "own" / f"{TASK}.py", "def g(config, ctx):\n    return {'score': 1.0}\n")
    with pytest.raises(SearchlabError) as error:
        load_study(path)
    assert "has no attribute 'f'" in str(error.value) and "Rename" not in str(error.value)


def test_modules_the_caller_imported_first_do_not_run_for_the_study(tmp_path, monkeypatch):
    """`import helpers` (or the task module, tried by hand) before main(): cached, it ran for the study."""
    import importlib

    from searchlab.cli import main

    callers = tmp_path / "callers"
    _study(callers, 1.0)   # the caller's own paths_obj and paths_helpers, imported first
    monkeypatch.syspath_prepend(str(callers))
    monkeypatch.chdir(callers)
    mine = importlib.import_module(HELPER), importlib.import_module(TASK)
    study = _study(tmp_path / "own", 2.0)
    assert main(["run", str(study), "--no-progress"]) == 0
    import optuna

    stored = optuna.load_study(study_name="own", storage=f"sqlite:///{tmp_path / 'own' / 'run' / 'study.db'}")
    assert [t.value for t in stored.trials] == [2.0, 2.0]       # the study ran its own code
    assert (sys.modules[HELPER], sys.modules[TASK]) == mine   # and the caller's are its own again


def test_a_module_a_notebook_imported_from_the_study_folder_follows_its_edits(tmp_path, monkeypatch):
    """A notebook working in the study's folder imported paths_obj itself: its file had no record, and
    edits never reached the runs."""
    import importlib

    folder = tmp_path / "a"
    path = _study(folder, 1.0)
    monkeypatch.syspath_prepend(str(folder))
    importlib.import_module(HELPER)
    _write(folder / f"{HELPER}.py", "VALUE = 5.0\n")
    assert _values(path) == [5.0, 5.0]


def test_a_script_beside_its_study_keeps_its_folder_first_on_the_path(tmp_path, monkeypatch):
    folder = tmp_path / "a"
    path = _study(folder, 1.0)
    monkeypatch.syspath_prepend(str(path.resolve().parent))
    load_study(path)
    assert sys.path[0] == str(path.resolve().parent)


def test_a_study_loaded_earlier_runs_its_own_modules(tmp_path):
    """load_study(a); load_study(b); run_study(a) ran b's modules for a."""
    first, second = _study(tmp_path / "a", 1.0), _study(tmp_path / "b", 2.0)
    loaded = load_study(first)
    load_study(second)
    assert [t.value for t in run_study(loaded, progress=False).study.trials] == [1.0, 1.0]


def test_a_study_packages_submodules_leave_with_it_after_main(tmp_path, monkeypatch):
    """The caller's package of that name came back, the study's submodule stayed cached under it: `from
    pkg.values import X` gave the study's."""
    import importlib

    from searchlab.cli import main

    callers = tmp_path / "callers" / HELPER   # the caller's own package of that name, imported first
    callers.mkdir(parents=True)
    (callers / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(callers.parent))
    mine = importlib.import_module(HELPER)
    folder = tmp_path / "a"
    path = _study_with_a_package(folder, 3.0)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(path), "--no-progress"]) == 0
    assert sys.modules[HELPER] is mine and f"{HELPER}.values" not in sys.modules
