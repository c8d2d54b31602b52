"""GAN and NAS runs recorded by an older searchlab, resumed by this one (as tests/test_old_runs.py does for
classifier runs): each test builds the older record synthetically, as that version wrote it."""
from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from searchlab.nas.stage import enqueue_top_k

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {"model.blocks.b1.width": CategoricalDistribution([8, 16, 24]),
         "model.blocks.b1.ratio": CategoricalDistribution([0.5, 1.0]),
         "optim.lr": FloatDistribution(1e-4, 1e-2, log=True)}


def _proxies() -> list[optuna.trial.FrozenTrial]:
    """A finished zen_proxy stage: three distinct networks, each with the lr its random ancestor drew."""
    trials = []
    for number, (width, ratio, lr, score) in enumerate(((16, 0.5, 2e-3, 30.0), (24, 1.0, 4e-4, 20.0),
                                                        (8, 1.0, 1e-3, 10.0))):
        trial = optuna.trial.create_trial(
            params={"model.blocks.b1.width": width, "model.blocks.b1.ratio": ratio, "optim.lr": lr},
            distributions=SPACE, value=score, user_attrs={"architecture": f"old name w{width} r{ratio}"})
        trial.number = number
        trials.append(trial)
    return trials


def _waiting(main: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in main.get_trials(deepcopy=False) if t.state == TrialState.WAITING]


def test_designs_an_older_zen_nas_run_queued_whole_are_not_queued_again_on_resume():
    """Before 2026-12-05 the stage queued a design with its proxy trial's lr and augmentation too; the stage now
    queues its model.* settings only, which Optuna's skip_if_exists (whole param sets) told apart from the trained
    trials: resuming such a run with this searchlab trained the stage's top_k designs a second time (seen on a
    copy of a 2026-11-30 run: trials 3 and 4 rebuilt trials 0 and 1, the resume's whole budget)."""
    proxies = _proxies()
    main = optuna.create_study(direction="maximize")
    for proxy, value in zip(proxies[:2], (0.3, 0.7)):   # the older run: the top 2 queued whole, then trained
        main.add_trial(optuna.trial.create_trial(params=proxy.params, distributions=SPACE, value=value,
                                                 user_attrs={"zen_score": proxy.value, "proxy_trial": proxy.number},
                                                 system_attrs={"fixed_params": dict(proxy.params)}))
    enqueue_top_k(main, proxies, 2, "zen_score")
    assert _waiting(main) == []


def test_a_design_an_older_run_queued_whole_but_never_ran_is_not_queued_twice():
    proxies = _proxies()
    main = optuna.create_study(direction="maximize")
    main.enqueue_trial(proxies[0].params, user_attrs={"zen_score": proxies[0].value, "proxy_trial": 0})
    enqueue_top_k(main, proxies, 2, "zen_score")
    queued = _waiting(main)
    assert [t.user_attrs["proxy_trial"] for t in queued] == [0, 1]   # the older one, and the second design once
    assert queued[1].system_attrs["fixed_params"] == {"model.blocks.b1.width": 24, "model.blocks.b1.ratio": 1.0}


def test_a_larger_top_k_on_resume_still_queues_the_designs_not_trained_yet():
    proxies = _proxies()
    main = optuna.create_study(direction="maximize")
    main.add_trial(optuna.trial.create_trial(params=proxies[0].params, distributions=SPACE, value=0.3,
                                             system_attrs={"fixed_params": dict(proxies[0].params)}))
    enqueue_top_k(main, proxies, 3, "zen_score")
    assert [t.user_attrs["proxy_trial"] for t in _waiting(main)] == [1, 2]


GAN_STUDY = """name: gan_retry
task: generate
space: {include: gan.yaml}
strategy: random
objective: medfid
budget: {n_trials: 2}
pruner: none
seed: 0
"""


def test_a_retry_resumed_with_a_setting_now_fixed_does_not_list_the_value_it_drew(write_study, tmp_path):
    """A GAN run killed mid-trial, resumed with --set space.gan.g_width=16 and space.train.iterations=30 (which
    the earlier run searched): the retry trained width 16 for 30 iterations but kept the params it drew (g_width
    32, iterations 1000), which status, trials and the export's trial.params then showed."""
    from optuna.distributions import CategoricalDistribution as Choice

    from searchlab.config.load import load_study
    from searchlab.engine.run import INTERRUPTED, _recover_and_prepare, create_or_load

    study = load_study(write_study(GAN_STUDY), {"space.gan.g_width": 16, "space.train.iterations": 30})
    tmp_path.joinpath("run").mkdir()
    ostudy = create_or_load(study)
    drawn = {"gan.family": "wgan_gp", "gan.wgan_gp.g_width": 32, "train.iterations": 1000, "train.batch_size": 32}
    space = {"gan.family": Choice(["dcgan", "wgan_gp", "stylegan2"]), "gan.wgan_gp.g_width": Choice([16, 32]),
             "train.iterations": Choice([500, 1000]), "train.batch_size": Choice([16, 32])}
    ostudy.add_trial(optuna.trial.create_trial(state=TrialState.FAIL, params=drawn, distributions=space,
                                               user_attrs={"error": INTERRUPTED}))
    _recover_and_prepare(study, ostudy, sole_runner=True, deadline=None, new_dir=False)
    (retry,) = _waiting(ostudy)
    assert retry.user_attrs["retry_of"] == 0
    assert retry.params == {"gan.family": "wgan_gp", "train.batch_size": 32}   # the values it runs with: drawn


def test_compare_does_not_call_a_setting_an_older_run_never_recorded_a_difference():
    """A zen_nas run made on 2026-11-30 and one made now from the same study file (budget.epochs 1, the same
    space): the older record keeps no epochs nor space, and compare said the runs 'differ in budget.epochs, the
    space searched, the settings held fixed (budget.epochs: old: None; new: 1)'."""
    from types import SimpleNamespace

    from searchlab.report.compare import setup_difference

    old = SimpleNamespace(record={"seed": 0}, search={})
    new = SimpleNamespace(record={"epochs": 1}, search={"space_searched": {"optim.lr": "float"}, "space_fixed": {}})
    said = setup_difference([old, new], ["old", "new"])
    assert "differ in" not in said and "None" not in said
    assert "old: recorded by an earlier searchlab" in said
    other = SimpleNamespace(record={"epochs": 2}, search=new.search)
    said = setup_difference([old, new, other], ["old", "new", "other"])
    assert "differ in budget.epochs (budget.epochs: new: 1; other: 2) (old: recorded by an earlier" in said
    assert setup_difference([new, new], ["a", "b"]) is None
