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
    classify = write_study("name: c\ntask: classify\nspace:\n  optim: {lr: {float: [1.0e-4, 1.0e-2]}}\n",
                           name="classify.yaml", with_defaults=False)
    with pytest.raises(SearchlabError, match=r"classify.yaml:1: data: required key is missing\. Fix: add 'data'"):
        load(classify)
