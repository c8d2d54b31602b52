"""Study modules in a process that runs several studies, from an audit: a namespace package beside a study (a
folder without __init__.py) kept the first study's code and stayed cached after main(); a study's folder stayed
on sys.path after main(), so a later study (and the caller) found a module only that folder has; a script that
is also its study's task module ran itself, and a whole nested search, once more; and the guard
`main([...]) if __name__ == "__main__" else None` was refused."""
from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import optuna
import pytest

from searchlab.cli import main
from searchlab.config.load import load_study
from searchlab.errors import SearchlabError
from test_in_process_runs import _python
from test_study_module_paths import STUDY, _study, _values, _write

NAMESPACE, ONLY_IN_A, SCRIPT, K_TASK = "audit_ns_tasks", "audit_only_in_a", "audit_train", "audit_k_obj"


@pytest.fixture(autouse=True)
def forget_the_modules():
    yield
    ours = (NAMESPACE, ONLY_IN_A, SCRIPT, K_TASK, "paths_obj", "paths_helpers")
    for name in [n for n in sys.modules if n.partition(".")[0] in ours]:
        sys.modules.pop(name, None)


def _namespace_study(folder: Path, value: float, n: int = 1) -> Path:
    """A study whose task is in `audit_ns_tasks/tasks.py`, a folder without __init__.py."""
    (folder / NAMESPACE).mkdir(parents=True, exist_ok=True)
    _write(folder / NAMESPACE / "tasks.py", f"def f(config, ctx):\n    return {{'score': {value}}}\n")
    path = folder / "study.yaml"
    path.write_text(STUDY.format(name=folder.name, n=n, run=folder / "run").replace("paths_obj:f",
                                                                                   f"{NAMESPACE}.tasks:f"))
    return path


def _stored(study: Path) -> list[float]:
    storage = f"sqlite:///{study.parent / 'run' / 'study.db'}"
    return [t.value for t in optuna.load_study(study_name=study.parent.name, storage=storage).trials]


def test_each_study_runs_its_own_namespace_package_and_it_leaves_after_main(tmp_path):
    """main() for a, b, a ran a's code all three times: b's trials stored a's values, and no error."""
    first, second = _namespace_study(tmp_path / "a", 1.0), _namespace_study(tmp_path / "b", 2.0)
    for study, trials in ((first, 1), (second, 1), (first, 2)):
        assert main(["run", str(study), "--no-progress", "--set", f"budget.n_trials={trials}"]) == 0
        assert NAMESPACE not in sys.modules and f"{NAMESPACE}.tasks" not in sys.modules
    assert _stored(first) == [1.0, 1.0] and _stored(second) == [2.0]


def test_a_namespace_package_follows_its_study_and_its_edits_without_main(tmp_path):
    path = _namespace_study(tmp_path / "a", 1.0, n=1)
    assert _values(path) == [1.0]
    assert _values(_namespace_study(tmp_path / "b", 2.0)) == [2.0]
    _namespace_study(tmp_path / "a", 5.0, n=2)
    assert _values(path) == [1.0, 5.0]


def test_after_main_the_import_path_is_the_callers_and_no_study_finds_another_studys_module(tmp_path):
    """After study a, study k (importing a module only a's folder has) ran in the notebook but failed alone with
    `searchlab run`, and the caller's own `import audit_only_in_a` got a's file."""
    first = _study(tmp_path / "a", 1.0)
    (tmp_path / "a" / f"{ONLY_IN_A}.py").write_text("X = 1.0\n")
    second = _study(tmp_path / "k", 2.0)
    _write(tmp_path / "k" / "paths_helpers.py", f"from {ONLY_IN_A} import X as VALUE\n")
    path, meta_path = list(sys.path), list(sys.meta_path)
    assert main(["run", str(first), "--no-progress"]) == 0
    assert (sys.path, sys.meta_path) == (path, meta_path)
    assert main(["run", str(second), "--no-progress"]) == 2
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(ONLY_IN_A)


def test_a_study_loaded_after_another_does_not_find_a_module_only_the_first_ones_folder_has(tmp_path):
    first = _study(tmp_path / "a", 1.0)
    _write(tmp_path / "a" / "paths_helpers.py", f"from {ONLY_IN_A} import X as VALUE\n")
    (tmp_path / "a" / f"{ONLY_IN_A}.py").write_text("X = 1.0\n")
    assert _values(first) == [1.0, 1.0]   # a's own import of it, cached since
    folder = tmp_path / "k"   # its module of no name a's folder has: none of a's is stale by its name
    folder.mkdir()
    (folder / f"{K_TASK}.py").write_text(f"from {ONLY_IN_A} import X\n\n\ndef f(config, ctx):\n"
                                         "    return {'score': X}\n")
    second = folder / "study.yaml"
    second.write_text(STUDY.format(name="k", n=2, run=folder / "run").replace("paths_obj:f", f"{K_TASK}:f"))
    with pytest.raises(SearchlabError, match=f"imports '{ONLY_IN_A}'"):
        load_study(second)


def test_a_study_whose_task_is_the_running_script_takes_its_function_without_running_it_again(tmp_path,
                                                                                              monkeypatch):
    folder = tmp_path / "s"
    path = _study(folder, 0.0)
    (folder / f"{SCRIPT}.py").write_text("def f(config, ctx):\n    return {'score': 9.0}\n\n"
                                         "raise RuntimeError('the running script was imported again')\n")
    path.write_text(path.read_text().replace("paths_obj:f", f"{SCRIPT}:f"))
    running = types.ModuleType("__main__")   # `python audit_train.py`, as it runs
    running.__file__ = str(folder / f"{SCRIPT}.py")
    exec("def f(config, ctx):\n    return {'score': 4.0}\n", vars(running))
    monkeypatch.setitem(sys.modules, "__main__", running)
    assert _values(path) == [4.0, 4.0]


UNGUARDED_SCRIPT_AS_ITS_TASK = """
import sys
from searchlab.cli import main
print("running as", __name__)
def objective(config, ctx):
    return {"score": config["x"]}
print("code", main(["run", sys.argv[1] if len(sys.argv) > 1 else STUDY, "--no-progress"]))
"""


def test_a_script_that_is_its_studys_task_runs_the_search_once(tmp_path):
    """A script calling main() unguarded, its task `driver:objective`, one worker: loading the study imported
    the script, which ran a whole search inside it; the outer call then said "nothing ran"."""
    study = _study(tmp_path, 0.0)
    study.write_text(study.read_text().replace("paths_obj:f", "driver:objective"))
    done = _python(tmp_path, UNGUARDED_SCRIPT_AS_ITS_TASK.replace("STUDY", repr(str(study))))
    said = [line for line in done.stdout.splitlines() if line.startswith(("running as", "code"))]
    assert said == ["running as __main__", "code 0"], done.stdout + done.stderr
    assert "nothing ran" not in done.stderr and len(_stored(study)) == 2


GUARDS = """
from searchlab.engine.script_guard import refuse_an_unguarded_script as check
check() if __name__ == "__main__" else None
__name__ == "__main__" and check()
match __name__:
    case "__main__":
        check()
is_main = __name__ == "__main__"
if is_main:
    check()
print("guarded: accepted")
try:
    check() if True else None
    print("unguarded: accepted")
except Exception as exc:
    print("unguarded:", type(exc).__name__)
"""


def test_a_call_under_a_conditional_expression_on_the_name_is_guarded(tmp_path):
    done = _python(tmp_path, GUARDS)
    assert done.stdout.splitlines() == ["guarded: accepted", "unguarded: SearchlabError"], done.stdout + done.stderr
