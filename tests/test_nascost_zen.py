"""What the NAS strategies record and refuse: the Zen-score with what reproduces it, deepmad's kind rule first."""
from __future__ import annotations

import optuna
import pytest
from optuna.trial import FixedTrial, TrialState

from searchlab.config.load import load_study
from searchlab.errors import ConfigError
from study_texts import TINY_ZEN_MODEL

ZEN = """
name: zen
task: classify
space:""" + TINY_ZEN_MODEL + """
strategy: {name: zen_nas, args: {candidates: 4, top_k: 2, population_size: 4, sample_size: 2, batch_size: 8}}
pruner: none
budget: {n_trials: 2, epochs: 1}
seed: 3
"""


def test_a_recorded_zen_score_is_reproduced_by_zen_score_with_what_is_recorded_beside_it(write_study):
    """The score was recorded without its batch (zen_nas's 16, not zen_score's default 64) or its seed (the study's
    plus the proxy trial's number): zen_score as documented did not give it back."""
    from searchlab.nas.zen_nas import prepare_zen_nas
    from searchlab.nas.zen_score import zen_score
    from searchlab.tasks import get_task, sample_trial_config

    study = load_study(write_study(ZEN))
    main = optuna.create_study(study_name="zen", direction="maximize")
    proxy = prepare_zen_nas(study, main, dict(study.config.strategy.args))
    queued = main.get_trials(states=(TrialState.WAITING,))
    assert len(queued) == 2
    for trial in queued:
        attrs = trial.user_attrs
        assert attrs["zen_batch_size"] == 8 and attrs["zen_repeats"] == 1
        assert attrs["zen_seed"] == 3 + attrs["proxy_trial"]
        params = proxy[attrs["proxy_trial"]].params
        candidate = get_task(study.config.task).candidate(study, sample_trial_config(FixedTrial(params), study))
        again = zen_score(candidate.build, candidate.channels, candidate.image_size, repeats=attrs["zen_repeats"],
                          batch_size=attrs["zen_batch_size"], seed=attrs["zen_seed"])
        assert again == pytest.approx(attrs["zen_score"], rel=1e-5)
    assert all("zen_seed" in t.user_attrs for t in proxy if t.state == TrialState.COMPLETE)


DEEPMAD_ON_TIMM = """
name: dm
task: classify
space:
  model: {{kind: timm, backbone: {backbone}}}
  optim: {{lr: {{float: [1.0e-4, 1.0e-2], log: true}}}}
strategy: {{name: deepmad, args: {{top_k: 1}}}}
budget: {{n_trials: 1, epochs: 1, max_flops: 2.0e+7}}
"""


@pytest.mark.parametrize("backbone", ["resnet18", "{choice: [resnet18, resnet10t]}"])
def test_deepmad_on_a_timm_model_is_refused_for_its_kind(write_study, backbone):
    """A fixed backbone was refused as 'deepmad needs searched architecture parameters (got None)'."""
    from searchlab.nas.deepmad_design import check_space

    study = load_study(write_study(DEEPMAD_ON_TIMM.format(backbone=backbone)))
    with pytest.raises(ConfigError) as raised:
        check_space(study)
    assert "deepmad designs Zen-NAS super-block networks (kind zen)" in str(raised.value)
    assert "'timm'" in str(raised.value)


def test_run_refuses_deepmad_on_a_timm_model_before_saying_where_it_runs(write_study, tmp_path, capsys):
    """`run` printed "run: ... (new)" and "data: ..." above the refusal, for a run that never started."""
    from searchlab.cli import main

    assert main(["run", str(write_study(DEEPMAD_ON_TIMM.format(backbone="resnet18")))]) == 2
    out, err = capsys.readouterr()
    assert "deepmad designs Zen-NAS super-block networks" in err
    assert "run:" not in out and "data:" not in out
    assert not (tmp_path / "run").exists()
