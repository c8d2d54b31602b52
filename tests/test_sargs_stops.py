"""How a run a plug-in sampler ended is said: one its sampler ended itself (GridSampler, its grid tried) is recorded
in the run history as the strategy's stop, not as budget.n_trials; one stopped by the sampler's refusal of the space
says the space or the args are to change, not the class. Callable tasks only: nothing trains."""
from __future__ import annotations

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.engine.run_history import KEY, SAMPLER_STOPPED, runs_line
from searchlab.strategy_guard import StrategyError
from searchlab.summary import _strategy_stop_said, print_run_summary

STUDY = """name: stops
task: {{kind: callable, function: "fake_tasks:quadratic"}}
space: {{x: {{float: [-3, 3]}}}}
objective: {{metric: loss, direction: minimize}}
strategy: {strategy}
pruner: none
budget: {{n_trials: 4}}
export: {{after_run: false}}
"""
GRID = '{class: "optuna.samplers:GridSampler", args: {search_space: {x: [0, 1]}}}'


def test_a_run_its_sampler_ended_is_recorded_and_said_as_the_strategys_stop(write_study, capsys):
    study = load_study(write_study(STUDY.format(strategy=GRID)))
    result = run_study(study, progress=False)
    assert result.trials_finished == 2 and result.stopped_by == SAMPLER_STOPPED == \
        "strategy (its sampler ended the study)"
    assert result.study.user_attrs[KEY][-1]["stopped_by"] == SAMPLER_STOPPED
    assert "stopped by strategy (its sampler ended the study), 2 trial(s) finished" in runs_line(result.study, False)
    capsys.readouterr()
    print_run_summary(study, result, None)
    assert ("stopped: the strategy's sampler ended the study itself after 2 of budget.n_trials=4 trials"
            in capsys.readouterr().out)


def test_a_plugin_run_that_reaches_its_budget_is_still_recorded_as_the_budgets(write_study):
    study = load_study(write_study(STUDY.format(strategy='{class: "optuna.samplers:RandomSampler"}')))
    assert run_study(study, progress=False).stopped_by == "budget.n_trials"


def test_a_stop_by_the_samplers_refusal_of_the_space_names_the_space_not_the_class():
    refusal = StrategyError("strategy 'p:C' raised in sample_independent (trial 1): NotImplementedError: no: it "
                            "cannot sample space.c (a choice of ['a', 'b']), so the run stopped after trial 1")
    said = _strategy_stop_said(1, 4, refusal)
    assert said.startswith("stopped: the study's strategy class refused the space (its error is the last line)")
    assert said.endswith("once the space (or the strategy's args) is changed as its error says")
    bug = _strategy_stop_said(1, 4, StrategyError("strategy 'p:C' raised in before_trial (trial 1): KeyError: 'x'"))
    assert bug.startswith("stopped: the study's strategy class raised") and bug.endswith("once the class is corrected")
