"""The zen_nas strategy end to end: proxy search by Zen-score under budgets, recorded, top-k trained first."""
from __future__ import annotations

import json

import optuna
import pytest
from optuna.trial import TrialState

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError
from searchlab.nas.stage import enqueue_top_k
from study_texts import TINY_ZEN_MODEL

STUDY = """
name: zen
task: classify
space:""" + TINY_ZEN_MODEL + """
  train: {batch_size: 128}
strategy: {name: zen_nas, args: {candidates: 30, top_k: 3, population_size: 8, sample_size: 3, batch_size: 8}}
pruner: none
budget: {n_trials: N, epochs: 1, max_params: 40000}
"""


def _studies(tmp_path):
    storage = f"sqlite:///{tmp_path / 'run' / 'study.db'}"
    return (optuna.load_study(study_name="zen", storage=storage),
            optuna.load_study(study_name="zen.zen_proxy", storage=storage))


def test_proxy_search_is_recorded_and_its_top_k_train_first(write_study, tmp_path, capsys):
    run_study(load_study(write_study(STUDY.replace("N", "4"))), progress=False)
    main, proxy = _studies(tmp_path)
    candidates = proxy.trials
    [(started, ended)] = main.user_attrs["searchlab:stage_spans"]   # the stage's search time, for compare
    assert started < ended <= main.trials[0].datetime_start.timestamp()
    assert proxy.user_attrs["searchlab:stage_done"]
    twins = [t for t in candidates if "same_network_as" in t.user_attrs]   # b2 'none': its width shows nowhere
    over = [t for t in candidates if t.state == TrialState.PRUNED and t not in twins]
    scored = [t for t in candidates if t.state == TrialState.COMPLETE]
    # networks scored; the random start draws within the budget and mutations stay in it: few or none over
    assert len(scored) == 30 and len(candidates) == 30 + len(over) + len(twins)
    assert len({t.user_attrs["architecture"] for t in scored}) == 30
    assert all(t.user_attrs["params"] > 40000 and "over_budget" in t.user_attrs for t in over)
    assert all(t.user_attrs["params"] <= 40000 and t.user_attrs["architecture"].startswith("ZenNet(") for t in scored)
    best = []
    for trial in sorted(scored, key=lambda t: -t.value):
        if trial.params not in best:
            best.append(trial.params)
    trained = main.trials
    assert len(trained) == 4
    assert [t.params for t in trained[:3]] == best[:3]   # the top-3 distinct candidates, in score order
    assert [t.user_attrs["zen_score"] for t in trained[:3]] == sorted(
        (t.user_attrs["zen_score"] for t in trained[:3]), reverse=True)
    assert all(t.state == TrialState.COMPLETE and t.user_attrs["params"] <= 40000 for t in trained[:3])
    assert all(candidates[t.user_attrs["proxy_trial"]].params == t.params for t in trained[:3])
    again = f", {len(twins)} repeat(s) of a network scored already" if twins else ""
    assert f"zen.zen_proxy: 30 scored, {len(over)} over the budgets or the strategy's limits, 0 failed{again} in " \
        in capsys.readouterr().out
    from searchlab.engine.rundir import open_run
    from searchlab.trials_table import trial_table

    table = trial_table(open_run(tmp_path / "run"))
    assert table["zen_score"].tolist()[:3] == [t.user_attrs["zen_score"] for t in trained[:3]]


def test_a_network_drawn_again_with_other_training_settings_is_scored_and_trained_once(write_study, tmp_path):
    """Children that changed only lr (or a `none` block's width) were scored again with another seed, and copies
    of one network filled the top-k on that noise (and the population: the shipped study's 1,000 candidates were
    258 networks, its top 5 one network)."""
    from searchlab.nas.zen_nas import ZenNASSettings, _search
    from searchlab.tasks import get_task

    text = STUDY.replace("N", "1").replace("  train: {batch_size: 128}",
                                           "  train: {batch_size: 128}\n  optim: {lr: {choice: [1.0e-3, 3.0e-3, 1.0e-2]}}")
    study = load_study(write_study(text))
    trials = _search(study, get_task(study.config.task),
                     ZenNASSettings(candidates=20, population_size=6, sample_size=3, batch_size=4, threads=1), None)
    scored = [t for t in trials if t.state == TrialState.COMPLETE]
    by_network = {t.user_attrs["architecture"]: t.value for t in scored}
    assert len(by_network) == len(scored) == 20                        # candidates: distinct networks
    twins = [t for t in trials if "same_network_as" in t.user_attrs]
    assert twins and all(t.state == TrialState.PRUNED for t in twins)   # scored once, not in the population
    assert all(trials[t.user_attrs["same_network_as"]].user_attrs["architecture"] == t.user_attrs["architecture"]
               for t in twins)
    main = optuna.create_study(direction="maximize")
    enqueue_top_k(main, trials, 5, "zen_score")
    queued = [t for t in main.trials if t.state == TrialState.WAITING]
    assert len(queued) == 5
    networks = [trials[t.user_attrs["proxy_trial"]].user_attrs["architecture"] for t in queued]
    assert len(set(networks)) == 5 and [t.user_attrs["zen_score"] for t in queued] == sorted(
        by_network.values(), reverse=True)[:5]


def test_resuming_reuses_the_finished_proxy_search(write_study, tmp_path):
    run_study(load_study(write_study(STUDY.replace("N", "1"))), progress=False)
    first = [json.dumps(t.params, sort_keys=True) for t in _studies(tmp_path)[1].trials]
    run_study(load_study(write_study(STUDY.replace("N", "2"))), progress=False)
    main, proxy = _studies(tmp_path)
    assert [json.dumps(t.params, sort_keys=True) for t in proxy.trials] == first
    assert len(main.user_attrs["searchlab:stage_spans"]) == 1   # reused, not run (or counted) again
    assert sum(t.state.is_finished() for t in main.trials) == 2   # the third of the top 3 queued still waits


def test_a_space_without_searched_architectures_is_refused(write_study, tmp_path):
    text = STUDY.replace("N", "2").replace("    kind: zen", "    kind: cnn\n    depth: 1").split("    stem: 8")[0]
    text += "  train: {batch_size: 128}\nstrategy: {name: zen_nas, args: {candidates: 5}}\nbudget: {n_trials: 1}\n"
    with pytest.raises(ConfigError, match="zen_nas scores networks on their pre-pooling features") as info:
        run_study(load_study(write_study(text)), progress=False)
    assert info.value.file.endswith("study.yaml") and info.value.line is not None and info.value.got == "cnn"
    assert not (tmp_path / "run").exists()   # refused before a trial: no run folder to be "resumed" next time


def test_unknown_argument_names_the_valid_ones(write_study):
    with pytest.raises(ConfigError, match="zen_nas takes batch_size, candidates"):
        load_study(write_study(STUDY.replace("N", "2").replace("candidates: 30", "candidate: 30")))


def test_parallel_scoring_threads_give_the_same_search(write_study, tmp_path):
    """Candidates are bred in fixed rounds, scored with their own weight generators and told in the order
    asked: the proxy search is the same on one scoring thread or two, run after run."""
    from searchlab.nas.zen_nas import ZenNASSettings, _search
    from searchlab.tasks import get_task

    study = load_study(write_study(STUDY.replace("N", "1")))
    task = get_task(study.config.task)
    runs = [_search(study, task, ZenNASSettings(candidates=12, population_size=6, sample_size=2, batch_size=4,
                                                threads=threads), None) for threads in (1, 2, 2)]
    described = [[(t.params, t.state, t.value) for t in trials] for trials in runs]
    assert described[0] == described[1] == described[2]
    assert sum(state == TrialState.COMPLETE for _, state, _ in described[0]) == 12


def test_candidate_costs_from_the_shape_equal_the_counted_ones(write_study):
    from searchlab.space import probe_configs
    from searchlab.tasks import get_task
    from searchlab.tasks.costs import measure_costs

    study = load_study(write_study(STUDY.replace("N", "1")))
    task = get_task(study.config.task)
    for config in probe_configs(study.space, seed=0, limit=10):
        candidate = task.candidate(study, config)
        data = type("Data", (), {"channels": candidate.channels, "image_size": candidate.image_size})
        assert candidate.costs == measure_costs(candidate.build(), data)


def test_a_budget_no_candidate_meets_is_said_with_the_cheapest_cost(write_study):
    study = load_study(write_study(STUDY.replace("N", "2").replace("max_params: 40000", "max_params: 10")))
    with pytest.raises(ConfigError, match=r"no architecture found in this space fits the budget \(max_params 10\): "
                                          r"the cheapest of \d+ costed .* has flops [\d.e+]+, params \d+") as info:
        run_study(study, progress=False)
    assert info.value.key == "budget.max_params"   # the key to raise (and a --set of it is named as such)


def test_fewer_candidates_scored_than_asked_are_said_with_why(write_study, capsys):
    from searchlab.nas.zen_nas import ZenNASSettings, _search
    from searchlab.tasks import get_task

    study = load_study(write_study(STUDY.replace("N", "1")))
    task = get_task(study.config.task)
    assert _search(study, task, ZenNASSettings(candidates=5, batch_size=8), deadline=0.0) == []
    assert "warning: zen_nas scored 0 of its 5 candidates: budget.timeout ran out" in capsys.readouterr().err


def test_a_proxy_search_that_scored_no_network_stops_the_run(write_study):
    # it warned and went on: every trial was then a random draw, pruned over budget, and the run exited 1
    from searchlab.errors import SearchlabError
    from searchlab.nas.zen_nas import ZenNASSettings, _search
    from searchlab.tasks import get_task

    tight = load_study(write_study(STUDY.replace("N", "1").replace("max_params: 40000", "max_params: 10")))
    with pytest.raises(SearchlabError, match=r"zen_nas found no network to score: all 60 draws of the space were "
                                             r"over the budgets or could not be built \(e\.g\. over budget: "
                                             r"params [\d.e+]+ > max_params 10\).* Fix: loosen budget"):
        _search(tight, get_task(tight.config.task),
                ZenNASSettings(candidates=3, batch_size=8, population_size=4, sample_size=2), None)


def test_the_export_says_the_architecture_and_the_score_it_was_chosen_by(write_study, tmp_path):
    from searchlab.export.exporter import export_run

    run_study(load_study(write_study(STUDY.replace("N", "1").replace("candidates: 30", "candidates: 8"))),
              progress=False)
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=100)
    main, _ = _studies(tmp_path)
    trial = main.trials[config["trial"]["number"]]
    assert config["trial"]["architecture"] == trial.user_attrs["architecture"] and \
        config["trial"]["architecture"].startswith("ZenNet(")
    assert config["trial"]["zen_score"] == trial.user_attrs["zen_score"]
    assert config["trial"]["proxy_trial"] == trial.user_attrs["proxy_trial"]
