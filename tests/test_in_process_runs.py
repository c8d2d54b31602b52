"""searchlab driven from Python (a notebook, a script calling `searchlab.cli.main([...])`): the process goes on
after the run, so the run must give back what it took (signal handlers), and a user's function is held to the
same rules as in `searchlab run` (numbers, not text or truth values; a script that spawned workers can import)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from test_callable_task import STUDY
from stop_signals import default_stop_signals
from test_run import REPO, TESTS


def _study(write_study, tmp_path: Path, module: str, code: str, n: int = 1, extra: str = "") -> Path:
    (tmp_path / f"{module}.py").write_text(code)
    return write_study(STUDY.format(function=f"{module}:objective", n=n) + extra)


def _trials(tmp_path: Path) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="own", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials


def _python(tmp_path: Path, script: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`script` as a file of its own (multiprocessing imports it again in each worker), run from tmp_path."""
    path = tmp_path / "driver.py"
    path.write_text(script)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    return subprocess.run([sys.executable, str(path)], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=default_stop_signals)


CTRL_C_IN_FIRST_TRIAL = """
import os, signal, time
def objective(config, ctx):
    if ctx.trial.number == 0:
        os.kill(os.getpid(), signal.SIGINT)   # the user's Ctrl-C, mid-trial
        time.sleep(5)
    return {'score': config['x']}
"""

AFTER_AN_INTERRUPTED_RUN = """
import os, signal, sys
from searchlab.cli import main
study = sys.argv[1]
stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
before = [signal.getsignal(sig) for sig in stops]   # SIGHUP ignored already under nohup, as CI runs
print("first", main(["run", study, "--no-progress"]))
print("handlers", *(signal.getsignal(sig) == handler for sig, handler in zip(stops, before)))
print("second", main(["run", study, "--no-progress", "--set", "budget.n_trials=3"]))
try:
    os.kill(os.getpid(), signal.SIGINT)
    sum(range(1000000))   # where the handler runs
    print("ignored")
except KeyboardInterrupt:
    print("KeyboardInterrupt")
"""


def test_an_interrupted_run_from_python_gives_the_stop_handlers_back(write_study, tmp_path):
    """After one interrupted `main(["run", ...])`, Ctrl-C, SIGTERM and SIGHUP were ignored for the rest of the
    process, even after a later clean run: a notebook's "Interrupt kernel" did nothing."""
    study = _study(write_study, tmp_path, "ctrl_c_task", CTRL_C_IN_FIRST_TRIAL, n=2)
    done = _python(tmp_path, AFTER_AN_INTERRUPTED_RUN.replace("sys.argv[1]", repr(str(study))))
    said = [line for line in done.stdout.splitlines()
            if line.startswith(("first", "handlers", "second", "Keyb", "ign"))]
    assert said == ["first 130", "handlers True True True", "second 0", "KeyboardInterrupt"], done.stdout + done.stderr


def test_the_searchlab_command_ends_with_the_stopped_runs_code_at_a_later_stop(write_study, tmp_path):
    """`searchlab run` (main() reading the process's own arguments) ends its process with the run: a second Ctrl-C
    of an impatient user must not cut the summary short, nor, once it is said, turn the exit into a traceback:
    the process ends at once, with the run's code."""
    study = _study(write_study, tmp_path, "ctrl_c_cli_task", CTRL_C_IN_FIRST_TRIAL, n=2)
    script = ("import os, signal, sys, time\nfrom searchlab.cli import main\n"
              f"sys.argv = ['searchlab', 'run', {str(study)!r}, '--no-progress']\n"
              "print('code', main(), flush=True)\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(20)\n"
              "print('went on')\n")
    done = _python(tmp_path, script)
    assert done.stdout.splitlines()[-1] == "code 130" and done.returncode == 130, done.stdout + done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("value, shown, kind", [("True", "True", "bool"), ("'0.7'", "'0.7'", "str"),
                                                ("b'1'", "b'1'", "bytes"), ("np.bool_(True)", "np.True_", "bool"),
                                                ("torch.tensor(True)", "tensor(True)", "Tensor")])
def test_a_truth_value_or_text_as_the_objective_fails_the_trial(write_study, tmp_path, value, shown, kind):
    """float() took them: {"score": True} completed as 1.0 and became the best trial, {"score": "0.7"} as 0.7."""
    code = f"import numpy as np, torch\ndef objective(config, ctx):\n    return {{'score': {value}}}\n"
    run_study(load_study(_study(write_study, tmp_path, "truth_task", code)), progress=False)
    (trial,) = _trials(tmp_path)
    assert trial.state.name == "FAIL", trial.value
    assert trial.user_attrs["error"] == (f"TrialFailure: objective 'score' is {shown}, a {kind}, not a number. Fix: "
                                         "return the number itself as 'score' (e.g. float(score), not str(score) or "
                                         "score > 0.5)")


@pytest.mark.parametrize("value, number", [("3", 3.0), ("np.float32(0.5)", 0.5), ("np.int64(2)", 2.0),
                                           ("torch.tensor(0.5)", 0.5), ("Decimal('0.5')", 0.5),
                                           ("Fraction(1, 2)", 0.5)])
def test_numbers_of_every_kind_still_complete_as_the_objective(write_study, tmp_path, value, number):
    code = ("import numpy as np, torch\nfrom decimal import Decimal\nfrom fractions import Fraction\n"
            f"def objective(config, ctx):\n    return {{'score': {value}}}\n")
    run_study(load_study(_study(write_study, tmp_path, "number_task", code)), progress=False)
    (trial,) = _trials(tmp_path)
    assert trial.state.name == "COMPLETE" and trial.value == number


@pytest.mark.parametrize("value, kind", [("'0.5'", "str"), ("torch.tensor([0.5, 0.6])", "Tensor of shape (2,)"),
                                         ("None", "NoneType")])
def test_a_reported_metric_that_is_no_number_fails_the_trial_naming_it(write_study, tmp_path, value, kind):
    """It was left out of the curve without a word: the curve got only {'epoch': 0}, the pruner no value, and it
    never acted."""
    code = ("import torch\ndef objective(config, ctx):\n"
            f"    ctx.report(0, {{'score': {value}, 'loss': 0.1}})\n    return {{'score': 1.0}}\n")
    run_study(load_study(_study(write_study, tmp_path, "report_task", code)), progress=False)
    (trial,) = _trials(tmp_path)
    assert trial.state.name == "FAIL"
    assert trial.user_attrs["error"] == (
        f"TrialFailure: ctx.report(0, {{'score': ...}}): the value is a {kind}, not a number. Fix: report one "
        "number per metric (float(value), tensor.item(), or a mean of the values), or float('nan') for an epoch "
        "without it")


@pytest.mark.parametrize("value", ["True", "np.bool_(True)", "torch.tensor(True)"])
def test_a_reported_bool_fails_the_trial_as_an_objective_of_one_does(write_study, tmp_path, value):
    """True completed into the curve and the pruner as 1.0; numpy's and torch's bools were refused as 'a bool of
    shape ()' and 'a Tensor of shape (), not a number', though each is one value."""
    code = ("import numpy as np, torch\ndef objective(config, ctx):\n"
            f"    ctx.report(0, {{'score': {value}}})\n    return {{'score': 1.0}}\n")
    run_study(load_study(_study(write_study, tmp_path, "bool_report_task", code)), progress=False)
    (trial,) = _trials(tmp_path)
    assert trial.state.name == "FAIL"
    assert trial.user_attrs["error"].startswith("TrialFailure: ctx.report(0, {'score': ...}): the value is a bool (")
    assert "not a number. Fix: report the number it was judged from" in trial.user_attrs["error"]


def test_a_reported_nan_is_still_left_out_of_the_curve_and_the_pruner(write_study, tmp_path):
    code = ("def objective(config, ctx):\n    ctx.report(0, {'score': float('nan'), 'loss': 0.1})\n"
            "    return {'score': 1.0}\n")
    run_study(load_study(_study(write_study, tmp_path, "nan_report_task", code)), progress=False)
    (trial,) = _trials(tmp_path)
    assert trial.state.name == "COMPLETE" and trial.user_attrs["curve"] == [{"epoch": 0, "loss": 0.1}]
    assert trial.intermediate_values == {}


TWO_WORKERS = "\nexecutor: {workers: 2}\n"
QUICK = "def objective(config, ctx):\n    return {'score': config['x']}\n"


def test_a_script_without_the_main_guard_is_told_to_add_it(write_study, tmp_path):
    """Each spawned worker imported the script and ran the study again: a 20-line RuntimeError from
    multiprocessing per worker, "the run goes on with 1 worker(s)" twice, and a run of no trials, exit 1."""
    study = _study(write_study, tmp_path, "unguarded_task", QUICK, n=2, extra=TWO_WORKERS)
    done = _python(tmp_path, f"from searchlab.cli import main\nprint('code', main(['run', {str(study)!r}, "
                             "'--no-progress']))\n")
    assert "code 2" in done.stdout and "Traceback" not in done.stderr, done.stdout + done.stderr
    [said] = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert said == (f"error: {tmp_path / 'driver.py'}:2: executor.workers > 1 (or budget.trial_timeout) start new "
                    "Python processes that import your script, and each would run this call again. Fix: put the "
                    "call under `if __name__ == \"__main__\":`")


def test_a_script_with_the_main_guard_runs_its_workers_from_another_thread(write_study, tmp_path):
    """The guarded script is not refused. From a thread other than the main one, the workers' start died with
    `ValueError: signal only works in main thread` (signals.ctrl_c_ignored_by_started_processes)."""
    study = _study(write_study, tmp_path, "threaded_task", QUICK, n=2, extra=TWO_WORKERS)
    script = ("import threading\nfrom searchlab.cli import main\n\n"
              "def run_in_a_thread():\n    codes = []\n"
              f"    thread = threading.Thread(target=lambda: codes.append(main(['run', {str(study)!r}, "
              "'--no-progress'])))\n"
              "    thread.start()\n    thread.join()\n    print('code', codes)\n\n"
              "if __name__ == '__main__':\n    run_in_a_thread()\n")
    done = _python(tmp_path, script)
    assert "code [0]" in done.stdout and "Error" not in done.stderr, done.stdout + done.stderr
    assert [t.state.name for t in _trials(tmp_path)] == ["COMPLETE", "COMPLETE"]


def test_a_run_from_python_gives_back_optunas_log_level_and_torchs_random_state(write_study, tmp_path):
    """A run set Optuna's logging to ERROR for the whole process: a notebook's own studies went silent after it.
    Its trials seed torch (here as classify's do), so the notebook's next torch.rand drew other numbers, and its
    worker left its own torch thread count."""
    import torch

    from searchlab.cli import main

    code = "import torch\n\ndef objective(config, ctx):\n    torch.manual_seed(7)\n    return {'score': 1.0}\n"
    study = _study(write_study, tmp_path, "quiet_task", code)
    optuna.logging.set_verbosity(optuna.logging.INFO)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)   # the in-process worker sets its own
    try:
        assert main(["run", str(study), "--no-progress", "--set", "executor.threads_per_worker=2"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert optuna.logging.get_verbosity() == optuna.logging.INFO
    assert torch.equal(torch.rand(3), expected)
