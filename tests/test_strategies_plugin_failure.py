"""A plug-in strategy (`strategy: {class: "module:Class"}`) that raises after some trials finished: the run ended
with its one-line error and nothing else (no summary of the trials it had run, no after-run export of the best),
as a serious tool's failing sampler does not. Now those trials are summarised and the best exported, and the
error is said last, with exit code 2; one that raises before any trial finished still stops at its one line."""
from __future__ import annotations

import optuna
import pytest

from searchlab.cli import main
from test_run import TINY_CLASSIFY

# written beside the study (the study's folder is importable): breaks once `AT` trials completed, outside any
# trial (Optuna calls before_trial in its ask), with a message of several lines as a plug-in's state dump may be
PLUGIN = '''
import optuna

AT = {at}


class BreaksLater(optuna.samplers.RandomSampler):
    def before_trial(self, study, trial):
        if len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) >= AT:
            raise ValueError("population buffer is empty\\n  state: {{'members': []}}")
'''
CLASSIFY = (TINY_CLASSIFY.replace("strategy: random", 'strategy: {class: "breaking:BreaksLater"}')
            .replace("budget: {n_trials: 2, epochs: 2}", "budget: {n_trials: 4, epochs: 1}")
            + "export: {after_run: true, bootstrap: 100}\n")
CALLABLE = """
name: fake
task: {{kind: callable, function: "fake_tasks:quadratic"}}
space: {{x: {{float: [-3, 3]}}}}
objective: {{metric: loss, direction: minimize}}
strategy: {{class: "breaking:BreaksLater"}}
pruner: none
budget: {{n_trials: 4}}
executor: {{kind: local, workers: {workers}}}
"""
SAID = ("strategy 'breaking:BreaksLater' raised in before_trial (trial {n}): ValueError: population buffer is empty. "
        "Fix: correct the strategy class: the error is in its code, not in searchlab or the study's space "
        "(searchlab --debug run ... shows the traceback)")


def _study_breaking_at(write_study, tmp_path, text, at):
    (tmp_path / "breaking.py").write_text(PLUGIN.format(at=at))
    return write_study(text)


def _errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def _history(tmp_path, name):
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    return study, study.user_attrs["searchlab_runs"][-1]


def test_trials_run_before_the_strategy_broke_are_summarised_and_the_best_exported(write_study, tmp_path, capsys):
    path = _study_breaking_at(write_study, tmp_path, CLASSIFY, at=2)
    assert main(["run", str(path), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert "study 'tiny': 2 complete, 1 fail in" in out
    assert ("stopped: the study's strategy class raised (its error is the last line) after 2 trial(s) of this run "
            "finished (budget.n_trials=4)") in out
    assert "  trial " in out and f"exported:  {tmp_path / 'run' / 'best'}" in out
    assert (tmp_path / "run" / "best" / "config.json").is_file() and (tmp_path / "run" / "best" / "model.py").is_file()
    assert _errors(err) == [f"error: {SAID.format(n=2)}"]   # once, last, its first line only
    assert err.rstrip().splitlines()[-1] == f"error: {SAID.format(n=2)}" and "Traceback" not in err
    study, run = _history(tmp_path, "tiny")
    assert run["stopped_by"] == "error: StrategyError" and run["trials_finished"] == 2
    assert "RUNNING" not in {t.state.name for t in study.get_trials()}


def test_a_strategy_broken_from_the_first_trial_still_stops_at_its_one_line(write_study, tmp_path, capsys):
    path = _study_breaking_at(write_study, tmp_path, CALLABLE.format(workers=1), at=0)
    assert main(["run", str(path), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert _errors(err) == [f"error: {SAID.format(n=0)}"]
    assert "study 'fake'" not in out and "stopped:" not in out   # nothing ran: no summary of nothing
    assert _history(tmp_path, "fake")[1]["stopped_by"] == "error: StrategyError"


def test_worker_processes_passing_the_strategys_error_up_end_the_run_the_same_way(write_study, tmp_path, capsys):
    """A worker process passes the error to the run as its text (engine/supervise.py): told apart from other
    errors by the strategy's name, it ends the run with the summary as well; --debug shows the plug-in's own
    traceback, from the worker process, where it showed the run's only."""
    from searchlab.strategy_guard import StrategyError

    path = _study_breaking_at(write_study, tmp_path, CALLABLE.format(workers=2), at=1)
    with pytest.raises(StrategyError) as info:
        main(["--debug", "run", str(path), "--no-progress"])
    out = capsys.readouterr().out
    assert "stopped: the study's strategy class raised" in out and "  trial 0: value" in out
    assert str(info.value).startswith("strategy 'breaking:BreaksLater' raised in before_trial (trial ")
    notes = "\n".join(info.value.__notes__)
    assert "breaking.py" in notes and "ValueError: population buffer is empty" in notes
    assert not list((tmp_path / "run" / ".workers").glob("*.strategy_traceback"))
    assert _history(tmp_path, "fake")[1]["stopped_by"] == "error: StrategyError"


def test_run_study_from_python_still_raises_the_strategy_error_with_the_run_it_ended(write_study, tmp_path):
    """A notebook's run_study is not told by a summary: it gets the error, as before, and the run with it."""
    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study
    from searchlab.strategy_guard import StrategyError

    path = _study_breaking_at(write_study, tmp_path, CALLABLE.format(workers=1), at=2)
    with pytest.raises(StrategyError) as raised:
        run_study(load_study(path), progress=False)
    result = raised.value.run_result
    assert result.trials_finished == 2 and result.strategy_error is raised.value
