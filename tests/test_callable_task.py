"""`task: {kind: callable, function: "module:function"}`: a user's own code, checked at load and run per trial."""
from __future__ import annotations

import optuna
import pytest

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import SearchlabError

STUDY = """
name: own
task: {{kind: callable, function: "{function}"}}
space:
  x: {{float: [-1, 1]}}
objective: {{metric: score, direction: maximize}}
strategy: random
pruner: none
budget: {{n_trials: {n}, epochs: 3}}
"""


def _study(write_study, tmp_path, module: str, code: str, function: str = "objective", n: int = 2):
    (tmp_path / f"{module}.py").write_text(code)
    return write_study(STUDY.format(function=f"{module}:{function}", n=n))


def _trials(tmp_path):
    return optuna.load_study(study_name="own", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials


def test_numpy_and_torch_numbers_reach_the_curve_the_pruner_and_the_stored_metrics(write_study, tmp_path):
    code = ("import numpy as np, torch\n"
            "def objective(config, ctx):\n"
            "    for epoch in range(3):\n"
            "        ctx.report(epoch, {'score': np.float32(config['x'] + epoch)})\n"
            "    return {'score': torch.tensor(config['x']), 'steps': np.int64(3)}\n")
    run_study(load_study(_study(write_study, tmp_path, "numpy_task", code)), progress=False)
    for trial in _trials(tmp_path):
        assert trial.state.name == "COMPLETE" and sorted(trial.intermediate_values) == [0, 1, 2]
        assert trial.user_attrs["curve"][2]["score"] == pytest.approx(trial.params["x"] + 2, abs=1e-6)
        assert trial.user_attrs["metrics"]["steps"] == 3 and trial.value == pytest.approx(trial.params["x"])
        assert trial.user_attrs["metrics"]["score"] == trial.value   # stored, not dropped as a tensor


@pytest.mark.parametrize("module, code, function, message", [
    ("no_args_task", "def objective():\n    return {}\n", "objective",
     r"cannot be called as f\(config, ctx\)"),
    ("not_a_function_task", "objective = 42\n", "objective", "is a int, not a function"),
    ("typo_task", "def objective(config, ctx):\n    return {}\n", "objectve", "Fix: did you mean objective?"),
    ("syntax_task", "def objective(config, ctx)\n    return {}\n", "objective",
     r"importing module 'syntax_task' failed at .*syntax_task.py:1: SyntaxError"),
    ("raising_task", "x = 1 / 0\n", "objective",
     r"importing module 'raising_task' failed at .*raising_task.py:1: ZeroDivisionError"),
    ("missing_dependency_task", "import nonexistent_package_xyz\n", "objective",
     "imports 'nonexistent_package_xyz', which is not installed"),
    ("async_task", "async def objective(config, ctx):\n    return {}\n", "objective",
     "is an async function: calling it returns no metrics"),
    ("generator_task", "def objective(config, ctx):\n    yield {}\n", "objective",
     "is a generator function"),
    ("code", "def objective(config, ctx):\n    return {}\n", "objective",   # Python's own `code` was imported
     r"'code' is .*/code\.py, which comes before .*/code\.py on the import path\. Rename code\.py"),
])
def test_a_task_function_that_cannot_run_is_refused_at_load_naming_why(write_study, tmp_path, module, code, function,
                                                                     message):
    with pytest.raises(SearchlabError, match=message):
        load_study(_study(write_study, tmp_path, module, code, function))


def test_sys_exit_in_the_function_fails_its_trial_alone_and_is_not_retried(write_study, tmp_path):
    code = "import sys\ndef objective(config, ctx):\n    sys.exit(3)\n"
    run_study(load_study(_study(write_study, tmp_path, "exiting_task", code, n=1)), progress=False)
    (trial,) = _trials(tmp_path)
    assert trial.state.name == "FAIL" and trial.user_attrs["error"] == (
        "TrialFailure: the task function called sys.exit(3)")


def test_a_resume_after_the_functions_file_changed_is_warned_about(write_study, tmp_path, capsys):
    code = "def objective(config, ctx):\n    return {'score': config['x']}\n"
    path = _study(write_study, tmp_path, "edited_task", code, n=1)
    run_study(load_study(path), progress=False)
    run_study(load_study(path, {"budget.n_trials": 2}), progress=False)
    assert "changed since its trials were scored" not in capsys.readouterr().err
    (tmp_path / "edited_task.py").write_text(code.replace("config['x']", "config['x'] + 100"))
    run_study(load_study(path, {"budget.n_trials": 3}), progress=False)
    assert "the file of task.function 'edited_task:objective' changed since its trials were scored" in \
        capsys.readouterr().err
    history = optuna.load_study(study_name="own", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").user_attrs
    said = history["searchlab_runs"][-1]["start_warnings"]   # kept with the run (it was said on stderr only)
    assert any("the file of task.function 'edited_task:objective' changed" in line for line in said)


def test_a_function_that_reads_its_own_data_needs_no_data_section_but_a_classifier_does(write_study, tmp_path,
                                                                                         capsys):
    from searchlab.config.load import load_study as load
    from searchlab.engine.rundir import open_run
    from searchlab.summary import print_run_header, print_status

    (tmp_path / "own_data.py").write_text("def objective(config, ctx):\n    return {'score': config['x']}\n")
    path = write_study(STUDY.format(function="own_data:objective", n=2) + f"run_dir: '{tmp_path / 'run'}'\n",
                       with_defaults=False)
    print_run_header(load(path))
    assert capsys.readouterr().out == f"run:  {tmp_path / 'run'} (new)\n"   # no data line
    run_study(load(path), progress=False)
    assert [t.state.name for t in _trials(tmp_path)] == ["COMPLETE", "COMPLETE"]
    print_status(open_run(tmp_path / "run"), 2)
    assert "trial 0: value" in capsys.readouterr().out
    from searchlab.export.exporter import export_run   # no data record: a one-line error, not an AttributeError

    with pytest.raises(SearchlabError, match=r"stored no model \(its task does not train one\)"):
        export_run(tmp_path / "run", tmp_path / "best")
    classify = write_study("name: c\ntask: classify\nspace:\n  optim: {lr: {float: [1.0e-4, 1.0e-2]}}\n",
                           name="classify.yaml", with_defaults=False)
    with pytest.raises(SearchlabError, match=r"classify.yaml:1: data: required key is missing\. Fix: add 'data'"):
        load(classify)


def test_a_base_exception_of_the_function_fails_its_trial_alone(write_study, tmp_path):
    """asyncio.CancelledError is no Exception: Optuna let it end the run with the trial RUNNING, which every
    later run then marked interrupted (its reason overwritten) and ran again, ending again."""
    code = ("import asyncio\n"
            "def objective(config, ctx):\n"
            "    if ctx.trial.number == 0:\n"
            "        raise asyncio.CancelledError('the event loop went away')\n"
            "    return {'score': config['x']}\n")
    run_study(load_study(_study(write_study, tmp_path, "cancelled_task", code, n=2)), progress=False)
    first, *rest = _trials(tmp_path)   # a failed trial does not count against n_trials
    assert first.state.name == "FAIL" and [t.state.name for t in rest] == ["COMPLETE", "COMPLETE"]
    assert first.user_attrs["error"] == "CancelledError: the event loop went away"


def test_numpy_in_record_and_report_steps_is_stored_and_searchlabs_own_attributes_are_refused(write_study,
                                                                                            tmp_path):
    code = ("import numpy as np\n"
            "def objective(config, ctx):\n"
            "    for epoch in np.arange(3):\n"
            "        ctx.report(epoch, {'score': config['x']})\n"
            "    ctx.record(best_threshold=np.float32(0.5), sizes=[np.int64(2), {'n': np.int64(3)}])\n"
            "    if ctx.trial.number == 1:\n"
            "        ctx.record(retry_of=7)\n"
            "    return {'score': config['x'], 'extra': None}\n")
    run_study(load_study(_study(write_study, tmp_path, "numpy_record_task", code, n=2)), progress=False)
    first, second, _ = _trials(tmp_path)
    assert first.state.name == "COMPLETE", first.user_attrs.get("error")
    assert first.user_attrs["best_threshold"] == 0.5 and first.user_attrs["sizes"] == [2, {"n": 3}]
    assert [point["epoch"] for point in first.user_attrs["curve"]] == [0, 1, 2]
    assert second.state.name == "FAIL" and "ctx.record(retry_of=...): searchlab keeps its own 'retry_of'" in \
        second.user_attrs["error"]


def test_a_callable_trial_is_not_pruned_at_its_last_epoch(write_study, tmp_path):
    """The median pruner judged a trial's last report too: finished trials were PRUNED, their metrics lost."""
    code = ("def objective(config, ctx):\n"
            "    score = 1.0 if ctx.trial.number < 2 else 0.0\n"
            "    for epoch in range(3):\n"
            "        ctx.report(epoch, {'score': score})\n"
            "    return {'score': score, 'extra': 42}\n")
    text = _study(write_study, tmp_path, "last_epoch_task", code, n=3).read_text().replace(   # judged at epoch 2
        "pruner: none", "pruner: {kind: median, args: {n_startup_trials: 2, n_warmup_steps: 2}}")
    run_study(load_study(write_study(text)), progress=False)
    third = _trials(tmp_path)[2]
    assert third.state.name == "COMPLETE" and third.user_attrs["metrics"]["extra"] == 42


def test_an_objective_that_is_no_number_is_named(write_study, tmp_path):
    code = "def objective(config, ctx):\n    return {'score': None}\n"
    run_study(load_study(_study(write_study, tmp_path, "none_task", code, n=1)), progress=False)
    (trial,) = _trials(tmp_path)
    assert trial.user_attrs["error"] == ("TrialFailure: objective 'score' is None, not a number. Fix: return a "
                                         "number as 'score'")


def test_a_resume_after_a_packages_function_file_changed_is_warned_about(write_study, tmp_path, capsys):
    """The digest was of the package's __init__.py, which only imports the function from its own file."""
    package = tmp_path / "pkg_task"
    package.mkdir()
    (package / "__init__.py").write_text("from pkg_task.core import objective\n")
    (package / "core.py").write_text("def objective(config, ctx):\n    return {'score': config['x']}\n")
    path = write_study(STUDY.format(function="pkg_task:objective", n=1))
    run_study(load_study(path), progress=False)
    (package / "core.py").write_text("def objective(config, ctx):\n    return {'score': config['x'] + 100}\n")
    capsys.readouterr()
    run_study(load_study(path, {"budget.n_trials": 2}), progress=False)
    assert "the file of task.function 'pkg_task:objective' changed" in capsys.readouterr().err


def test_a_task_function_that_cannot_be_imported_is_named_at_its_line_in_the_study_file(write_study, tmp_path):
    """It named neither file nor line nor key, unlike every other mistake in a study file."""
    path = _study(write_study, tmp_path, "typo_line_task", "def objective(config, ctx):\n    return {}\n", "objectve")
    with pytest.raises(SearchlabError, match=rf"^{path}:3: task\.function: task function 'typo_line_task:objectve': "
                                             "module 'typo_line_task' has no attribute 'objectve'. Fix: did you mean "
                                             "objective"):
        load_study(path)
