"""The stage before training that zen_nas and deepmad share (nas/stage.py): which networks it tells apart, what it
queues, how a resumed run treats a stage recorded before, and which spaces are refused before a run starts."""
from __future__ import annotations

import itertools
import time

import optuna
import pytest
from optuna.trial import FixedTrial, TrialState

from searchlab.config.load import load_study
from searchlab.engine import run as run_module
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError, SearchlabError
from searchlab.models.zen import ZenNet
from searchlab.tasks import get_task, sample_trial_config
from searchlab.tasks.arch_config import ZenNetSpec
from test_deepmad import STUDY as DEEPMAD_STUDY
from test_zen_nas import STUDY as ZEN_STUDY

# The auditor's repro: a conv block ignores its ratio, and an 8-wide basic block builds 8 inner channels from
# ratio 0.5 or 1: 24 drawable configs, 4 networks.
ROUNDING = """
name: zen
task: classify
space:
  model:
    kind: zen
    stem: 8
    blocks:
      b1: {type: conv, width: {choice: [8, 16]}, ratio: {choice: [0.25, 0.5, 1, 2]}, stride: 2}
      b2: {type: basic, width: 8, ratio: {choice: [0.5, 1, 2]}, stride: 2}
  train: {batch_size: 128}
  optim: {lr: {choice: [1.0e-3, 3.0e-3, 1.0e-2]}}
strategy: {name: zen_nas, args: {candidates: 6, top_k: 3, population_size: 4, sample_size: 2, batch_size: 4}}
pruner: none
budget: {n_trials: 1, epochs: 1}
"""
ZEN_ARGS = {"candidates": 8, "top_k": 2, "population_size": 4, "sample_size": 2, "batch_size": 4, "threads": 1}


def _built(study, params) -> str:
    """The network a trial's params build, as torch prints its layers: the ground truth of 'the same network'."""
    config = sample_trial_config(FixedTrial(params), study)
    return repr(get_task(study.config.task).candidate(study, config).build())


def _queued(main: optuna.Study) -> list:
    return [t for t in main.get_trials(deepcopy=False) if t.state == TrialState.WAITING]


def _prepare_zen(study, main, deadline=None, **args):
    from searchlab.nas.zen_nas import prepare_zen_nas

    return prepare_zen_nas(study, main, {**ZEN_ARGS, **args}, deadline)


def _record(main: optuna.Study, suffix: str = ".zen_proxy") -> optuna.Study:
    return optuna.load_study(study_name=main.study_name + suffix, storage=main._storage)


def _main(name: str = "zen") -> optuna.Study:
    return optuna.create_study(study_name=name, storage=optuna.storages.InMemoryStorage(), direction="maximize")


# ---- 1. one network, one candidate ------------------------------------------------------------------------------

def test_the_description_tells_networks_apart_exactly_as_their_built_layers_do():
    """Two specs share a description if and only if they build the same layers (dropout aside: not a layer
    shape). It showed the drawn ratio, which a conv block ignores and rounding to 8 channels hides."""
    blocks = [{"type": kind, "width": width, "depth": depth, "kernel": 3, "ratio": ratio, "stride": 2}
              for kind, width, depth, ratio in itertools.product(("conv", "basic", "bottleneck", "inverted"),
                                                                 (8, 16), (1, 2), (0.25, 0.5, 1.0, 2.0))]
    described, built = {}, {}
    for first, second in itertools.product(blocks[::3], blocks[1::5]):
        args = {"stem": 8, "blocks": {"b1": first, "b2": second}}
        spec = ZenNetSpec(kind="zen", **args)
        layers = repr(ZenNet(1, 2, stem=8, blocks=[first, second]))
        described.setdefault(spec.describe(), set()).add(layers)
        built.setdefault(layers, set()).add(spec.describe())
    assert all(len(layers) == 1 for layers in described.values())   # one description: one network
    assert all(len(names) == 1 for names in built.values())         # one network: one description
    assert len(built) < len(blocks[::3]) * len(blocks[1::5])        # the grid does hold repeats


def test_the_description_shows_the_channels_built_not_the_ratio_drawn():
    spec = ZenNetSpec(kind="zen", stem=8, blocks={
        "b1": {"type": "conv", "width": 8, "ratio": 2.0}, "b2": {"type": "basic", "width": 8, "ratio": 0.5},
        "b3": {"type": "bottleneck", "width": 32, "ratio": 0.5}, "b4": {"type": "inverted", "width": 16, "depth": 2,
                                                                          "ratio": 2.0}})
    assert spec.describe() == ("ZenNet(stem 8 | conv w8 d1 k3 s1 | basic w8 d1 k3 btn8 s1 | bottleneck w32 d1 k3 "
                               "btn16 s1 | inverted w16 d2 k3 mid64/32 s1)")


def test_zen_nas_scores_and_queues_each_built_network_once(write_study):
    """The repro: 16 candidates scored were 4 networks, and the 3 trained were one network."""
    study = load_study(write_study(ROUNDING))
    main = _main()
    trials = _prepare_zen(study, main, candidates=6, top_k=3)
    scored = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len({_built(study, t.params) for t in scored}) == len(scored) == 4   # every network there is, once each
    queued = _queued(main)
    assert len(queued) == 3
    assert len({_built(study, trials[t.user_attrs["proxy_trial"]].params) for t in queued}) == 3


def test_the_queue_tells_apart_by_the_network_built_even_when_the_recorded_names_differ(write_study):
    """A stage recorded by an earlier searchlab named one network twice (its ratio in the name): the queue reads
    the network from the params."""
    from searchlab.nas.stage import enqueue_top_k
    from searchlab.nas.zen_nas import network_of

    study = load_study(write_study(ROUNDING))
    base = {"model.blocks.b1.width": 8, "model.blocks.b2.ratio": 1, "optim.lr": 1.0e-3}
    space = {n: d for n, d in _distributions(study).items() if n in {*base, "model.blocks.b1.ratio"}}
    trials = [optuna.trial.create_trial(params={**base, "model.blocks.b1.ratio": ratio}, distributions=space,
                                        value=value, user_attrs={"architecture": f"old name r{ratio}"})
              for ratio, value in ((1, 3.0), (0.5, 2.0))]
    for number, trial in enumerate(trials):
        trial.number = number
    main = _main()
    enqueue_top_k(main, trials, 2, "zen_score", lambda t: network_of(study, t))
    assert len(_queued(main)) == 1


def _distributions(study) -> dict:
    from searchlab.space import searchable_params

    return {param.name: param.distribution() for param, _ in searchable_params(study.space)}


# ---- 2. only the architecture is queued ---------------------------------------------------------------------------

def test_zen_nas_queues_the_architecture_and_leaves_training_settings_to_the_strategy(write_study):
    """The proxy trial's lr was drawn by a random ancestor and never scored: it was queued with its design, so
    every design trained with one lr."""
    from searchlab.nas.zen_nas import make_zen_nas

    study = load_study(write_study(ROUNDING))
    main = optuna.create_study(direction="maximize", sampler=make_zen_nas(1, **ZEN_ARGS))
    trials = _prepare_zen(study, main, candidates=6, top_k=3)
    queued = _queued(main)
    assert queued and all(set(t.system_attrs["fixed_params"]) == {n for n in trials[0].params if n.startswith("model.")}
                          for t in queued)
    trial = main.ask()   # the first design: its architecture as queued, its lr drawn by the main study's strategy
    config = sample_trial_config(trial, study)
    assert trial.params["model.blocks.b1.width"] == queued[0].system_attrs["fixed_params"]["model.blocks.b1.width"]
    assert config["optim"]["lr"] in (1.0e-3, 3.0e-3, 1.0e-2)


# ---- 3. a stage on resume -----------------------------------------------------------------------------------------

class _Clock:
    """time.time for zen_nas's loop: 0 at the first round, 100 after (a deadline of 50 cuts the search there)."""

    def __init__(self) -> None:
        self.calls = 0

    def time(self) -> float:
        self.calls += 1
        return 0.0 if self.calls == 1 else 100.0


def test_a_stage_cut_short_by_the_timeout_is_continued_on_resume(write_study, monkeypatch, capsys):
    """It was marked done: 128 of 3,000 candidates reused silently by every later run, a longer timeout or not."""
    from searchlab.nas import zen_nas

    study = load_study(write_study(ZEN_STUDY.replace("N", "1")))
    main = _main()
    monkeypatch.setattr(zen_nas, "time", _Clock())
    first = _prepare_zen(study, main, deadline=50.0, candidates=16)
    monkeypatch.undo()
    assert sum(t.state == TrialState.COMPLETE for t in first) == 8   # one round of 8, then the deadline
    assert not _queued(main)   # its designs would train before the better ones the next run finds
    assert "cut short by budget.timeout" in capsys.readouterr().out
    assert not _record(main).user_attrs["searchlab:stage_done"]
    trials = _prepare_zen(study, main, candidates=24)   # asked more while continuing: said, as the cut names 16
    record = _record(main)
    assert record.user_attrs["searchlab:stage_done"] and len(main.user_attrs["searchlab:stage_spans"]) == 2
    out = capsys.readouterr().out
    assert "continuing the stage budget.timeout cut short" in out
    assert ", now with candidates 24 (it was recorded with 16)" in out
    assert [(t.params, t.value) for t in record.trials[:len(first)]] == [(t.params, t.value) for t in first]
    scored = [t for t in record.trials if t.state == TrialState.COMPLETE]
    assert len(scored) == 24 and len({t.user_attrs["architecture"] for t in scored}) == 24   # none scored twice
    assert len(trials) == len(record.trials) and len(_queued(main)) == 2


def test_a_finished_stage_asked_more_candidates_is_extended(write_study, capsys):
    """`--set strategy.args.candidates=200` on resume of a 24-candidate stage: still 24, no message."""
    study = load_study(write_study(ZEN_STUDY.replace("N", "1")))
    main = _main()
    first = _prepare_zen(study, main, candidates=8)
    _prepare_zen(study, main, candidates=8)                 # the same arguments: reused, not run again
    assert len(main.user_attrs["searchlab:stage_spans"]) == 1
    _prepare_zen(study, main, candidates=12)
    assert "extending the stage recorded with candidates 8 to the 12 asked" in capsys.readouterr().out
    record = _record(main)
    assert [t.params for t in record.trials[:len(first)]] == [t.params for t in first]
    assert sum(t.state == TrialState.COMPLETE for t in record.trials) == 12
    assert record.user_attrs["searchlab:stage_args"]["candidates"] == 12


def test_a_finished_stage_with_other_arguments_is_reused_saying_so_and_how_to_search_afresh(write_study, capsys):
    study = load_study(write_study(ZEN_STUDY.replace("N", "1")))
    main = _main()
    first = _prepare_zen(study, main)
    capsys.readouterr()
    again = _prepare_zen(study, main, population_size=6, candidates=5)
    err = capsys.readouterr().err
    assert ("warning: zen.zen_proxy: reusing the stage recorded with candidates 8, population_size 4; this run "
            "asks candidates 5, population_size 6") in err
    assert "optuna delete-study --study-name 'zen.zen_proxy'" in err and "new run_dir" in err
    assert [t.params for t in again] == [t.params for t in first]


def test_a_cut_stage_with_other_arguments_is_refused_rather_than_mixed(write_study, monkeypatch):
    from searchlab.nas import zen_nas

    study = load_study(write_study(ZEN_STUDY.replace("N", "1")))
    main = _main()
    monkeypatch.setattr(zen_nas, "time", _Clock())
    _prepare_zen(study, main, deadline=50.0, candidates=16)
    monkeypatch.undo()
    with pytest.raises(SearchlabError, match=r"cut short by budget.timeout with batch_size 4; this run asks "
                                             r"batch_size 8, .*Fix: set batch_size 4 back to continue it, or delete"):
        _prepare_zen(study, main, candidates=16, batch_size=8)


def test_a_deepmad_solve_cut_short_is_continued_on_resume(write_study):
    from searchlab.nas.deepmad_design import prepare_deepmad

    study = load_study(write_study(DEEPMAD_STUDY.replace("FLOPS", "4.0e+6")))
    main = _main("dm")
    args = {"top_k": 2, "iterations": 3, "popsize": 5}
    first = prepare_deepmad(study, main, args, deadline=time.time())   # stops after its first generation
    assert first and not _record(main, ".deepmad").user_attrs["searchlab:stage_done"] and not _queued(main)
    # solved from the start again, it goes one generation further before the deadline counts (a timeout
    # shorter than a full solve stopped every resumed run where the first one did)
    prepare_deepmad(study, main, args, deadline=time.time())
    assert _record(main, ".deepmad").user_attrs["searchlab:stage_state"] == {"generations": 2}
    prepare_deepmad(study, main, args)
    record = _record(main, ".deepmad")
    assert record.user_attrs["searchlab:stage_done"] and len(record.trials) > len(first)
    assert [t.params for t in record.trials[:len(first)]] == [t.params for t in first]
    keys = [str(sorted(t.params.items())) for t in record.trials]
    assert len(keys) == len(set(keys)) and len(_queued(main)) == 2   # each design recorded once


# ---- 4. refused before anything is made ---------------------------------------------------------------------------

CELLS = """
  model:
    kind: cells
    channels: 8
    cells: 2
    reductions: 1
    normal: {n1: {op1: {choice: [sep_conv_3x3, skip_connect]}, in1: 0, op2: skip_connect, in2: 1}}
    reduce: {n1: {op1: max_pool_3x3, in1: 0, op2: skip_connect, in2: 1}}"""


@pytest.mark.parametrize("strategy, said", [("{name: zen_nas, args: {candidates: 5}}", "zen_nas scores networks"),
                                            ("deepmad", "deepmad designs Zen-NAS")])
def test_a_cells_space_is_refused_before_the_run_makes_anything(write_study, tmp_path, monkeypatch, capsys,
                                                                 strategy, said):
    """It was refused after the run folder, database and stage study were made and 'scoring...' printed."""
    def made(*args, **kwargs):
        raise AssertionError("the run's study was created before the refusal")

    monkeypatch.setattr(run_module, "create_or_load", made)
    text = (f"name: c\ntask: classify\nspace:{CELLS}\n  train: {{batch_size: 128}}\nstrategy: {strategy}\n"
            "pruner: none\nbudget: {n_trials: 1, epochs: 1}\n")
    with pytest.raises(ConfigError, match=said) as info:
        run_study(load_study(write_study(text)), progress=False)
    assert info.value.got == "cells" and info.value.file.endswith("study.yaml")
    assert not (tmp_path / "run").exists() and "scoring architectures" not in capsys.readouterr().out


def test_a_reused_stage_queues_none_of_its_networks_over_this_runs_budget(capsys):
    """A deepmad stage reused with a lowered max_flops queued designs over it: pruned untrained, and counted in
    budget.n_trials."""
    from types import SimpleNamespace

    from searchlab.nas.stage import Stage, _within

    def scored(number, flops):
        trial = optuna.trial.create_trial(value=1.0, params={}, distributions={}, user_attrs={"flops": flops})
        trial.number = number
        return trial

    trials = [scored(0, 3.0e7), scored(1, 3.6e7), scored(2, 3.7e7)]
    budget = SimpleNamespace(max_flops=3.5e7, max_params=None, max_depth=None)
    stage = Stage("s_design", None, {}, grows="iterations", top_k=3, score_attr="entropy", budget=budget)
    assert [t.number for t in _within(trials, stage)] == [0]
    assert "note: s_design: 2 of the stage's scored networks are over this run's budget" in capsys.readouterr().err
    assert _within(trials, Stage("s", None, {}, grows="iterations", top_k=3, score_attr="entropy")) == trials


def test_the_zen_search_leaves_optunas_log_level_as_the_run_set_it(write_study):
    """`run` sets Optuna's log to ERROR (its progress says failures in one line); the search set it to WARNING for
    good, and a stop during the next trial printed Optuna's 90-line failure warning with its traceback."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        _prepare_zen(load_study(write_study(ZEN_STUDY.replace("N", "2"))), _main(), candidates=2, top_k=1)
        assert optuna.logging.get_verbosity() == optuna.logging.ERROR
    finally:
        optuna.logging.set_verbosity(before)
