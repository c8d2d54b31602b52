"""Spaces as a first-time author writes them (found by a space-authoring audit): a range written over an
included one kept neither its log scale nor its step, choices equal to Python passed as distinct, a batch of
one trained nothing, and the record left a range's step out."""
from __future__ import annotations

import pytest
from optuna.distributions import FloatDistribution

from searchlab.config.load import load_study
from searchlab.errors import ConfigError
from searchlab.space import searchable_params

STUDY = """
name: s
task: classify
space:
  model: {kind: cnn, depth: 1, width: 4, convs_per_stage: 1}
  optim: OPTIM
  train: TRAIN
strategy: random
pruner: none
budget: {n_trials: 1, epochs: 1}
"""


def _study(write_study, tmp_path, optim: str, train: str = "{batch_size: 32}", overrides: dict | None = None):
    (tmp_path / "my_optim.yaml").write_text("lr: {float: [1.0e-4, 1.0e-2], log: true}\n"
                                            "weight_decay: {float: [0.0, 0.1], step: 0.05}\n")
    return load_study(write_study(STUDY.replace("OPTIM", optim).replace("TRAIN", train)), overrides)


def _distributions(study) -> dict:
    return {param.name: param.distribution() for param, _ in searchable_params(study.space)}


def test_a_range_written_over_an_included_one_keeps_its_log_scale_and_step(write_study, tmp_path):
    """`--set space.optim.lr.float=[...]` on an included log-scale lr searched it linearly, unsaid."""
    study = _study(write_study, tmp_path, "{include: my_optim.yaml}",
                   overrides={"space.optim.lr.float": [1.0e-3, 1.0e-2], "space.optim.weight_decay.float": [0.0, 0.2]})
    found = _distributions(study)
    assert found["optim.lr"] == FloatDistribution(1e-3, 1e-2, log=True)
    assert found["optim.weight_decay"] == FloatDistribution(0.0, 0.2, step=0.05)
    written = _study(write_study, tmp_path, "{include: my_optim.yaml, lr: {float: [1.0e-3, 1.0e-2], log: false}}")
    assert _distributions(written)["optim.lr"] == FloatDistribution(1e-3, 1e-2)   # what is written wins
    with pytest.raises(ConfigError) as info:   # the kept log scale cannot take a range from 0
        _study(write_study, tmp_path, "{include: my_optim.yaml, lr: {float: [0.0, 1.0e-2]}}")
    assert "keeps the log: true of the parameter it replaces, and then a log range needs low > 0" in str(info.value)


def test_log_or_step_written_alone_changes_the_included_range(write_study, tmp_path):
    """`{include: 'x.yaml#lr', log: false}` and `--set space.optim.lr.log=false` replaced the range with a
    mapping the config then refused as 'not a valid number'."""
    study = _study(write_study, tmp_path, "{include: my_optim.yaml}",
                   overrides={"space.optim.lr.log": False, "space.optim.weight_decay.step": 0.025})
    found = _distributions(study)
    assert found["optim.lr"] == FloatDistribution(1e-4, 1e-2)
    assert found["optim.weight_decay"] == FloatDistribution(0.0, 0.1, step=0.025)
    fragment = _study(write_study, tmp_path, "{lr: {include: 'my_optim.yaml#lr', log: false}}")
    assert _distributions(fragment)["optim.lr"] == FloatDistribution(1e-4, 1e-2)
    logged = _study(write_study, tmp_path, "{include: my_optim.yaml, weight_decay: {log: true}}",
                    overrides={"space.optim.weight_decay.float": [1.0e-6, 0.1]})
    assert _distributions(logged)["optim.weight_decay"] == FloatDistribution(1e-6, 0.1, log=True)
    with pytest.raises(ConfigError) as info:   # the step written must still divide the included range
        _study(write_study, tmp_path, "{include: my_optim.yaml}", overrides={"space.optim.weight_decay.step": 0.03})
    assert "step must divide high - low" in str(info.value) and "weight_decay" in str(info.value)
    with pytest.raises(ConfigError) as info:   # a misspelt option replaced the range with a mapping
        _study(write_study, tmp_path, "{include: my_optim.yaml, lr: {lg: false}}")
    assert "space.optim.lr.lg" in str(info.value) and "did you mean log?" in str(info.value)


def test_an_empty_include_or_one_that_writing_beside_would_replace_is_refused(write_study, tmp_path):
    """An empty fragment included nothing, and a fragment's single value with settings written beside it was
    replaced by them, both without a word."""
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    (tmp_path / "lr_only.yaml").write_text("lr: 0.001\n")
    with pytest.raises(ConfigError) as info:
        _study(write_study, tmp_path, "{include: empty.yaml, lr: 0.001}")
    assert "empty.yaml is empty, so the include adds nothing" in str(info.value)
    with pytest.raises(ConfigError) as info:
        _study(write_study, tmp_path, "{lr: {include: 'lr_only.yaml#lr', name: adamw}}")
    assert "the include brings the value 0.001, and what is written beside it (name) would replace it" in str(
        info.value)


def test_choices_equal_to_python_are_refused(write_study, tmp_path):
    """{choice: [1, 1.0, true]} passed (their reprs differ); Optuna stored each as the first."""
    with pytest.raises(ConfigError) as info:
        _study(write_study, tmp_path, "{lr: 0.001}", train="{batch_size: {choice: [32, 32.0]}}")
    assert "32 and 32.0 are equal" in str(info.value)


def test_a_batch_of_one_image_is_refused(write_study, tmp_path):
    """Batch norm cannot train on one image, so such batches are skipped: batch_size 1 trained nothing."""
    with pytest.raises(ConfigError) as info:
        _study(write_study, tmp_path, "{lr: 0.001}", train="{batch_size: 1}")
    assert "batch_size" in str(info.value) and "greater than or equal to 2" in str(info.value)


def test_the_record_says_a_ranges_step():
    from optuna.distributions import IntDistribution

    from searchlab.engine.resume import describe

    assert describe(FloatDistribution(0.0, 0.1, step=0.05)) == "a float in [0.0, 0.1] in steps of 0.05"
    assert describe(IntDistribution(8, 12, step=2)) == "an int in [8, 12] in steps of 2"
    assert describe(IntDistribution(8, 12)) == "an int in [8, 12]"


def test_a_point_naming_a_setting_its_trial_will_not_use_is_said(write_study, tmp_path, capsys):
    """`optim.momentum: 0.6` beside `optim.name: adamw` in a point was left out of its trial without a word.
    A setting whose use hangs on a value the strategy still draws for the point is not judged."""
    from searchlab.engine.run import run_study

    text = STUDY.replace("OPTIM", "{name: {choice: [adamw, sgd]}, momentum: {float: [0.5, 0.9]}, lr: 0.001}").replace(
        "TRAIN", "{batch_size: 32}").replace(
        "strategy: random", "strategy: {name: random, points_to_evaluate: [{optim.name: adamw, optim.momentum: 0.6},"
                            " {optim.momentum: 0.7}]}")
    run_study(load_study(write_study(text)), progress=False)
    err = capsys.readouterr().err
    assert ("strategy.points_to_evaluate[0] sets optim.momentum=0.6, which has no effect given optim.name='adamw': "
            "its trial leaves it out") in err
    assert "points_to_evaluate[1]" not in err   # its optimiser is drawn: sgd would use the momentum


def test_a_point_may_restate_a_value_pinned_by_set_but_not_change_it(write_study, tmp_path):
    """`--set space.model.kind=cnn` left the one_of one option, and a point naming `model.kind: cnn` was refused
    as an unknown name ('did you mean model.cnn.depth?')."""
    import optuna
    from optuna.trial import TrialState

    from searchlab.engine.run import run_study

    text = STUDY.replace("{kind: cnn, depth: 1, width: 4, convs_per_stage: 1}",
                         "{one_of: {cnn: {depth: {int: [1, 2]}, width: 4, convs_per_stage: 1}, rnn: {hidden: 8}}}")
    text = text.replace("OPTIM", "{lr: 0.001}").replace("TRAIN", "{batch_size: 32}").replace(
        "strategy: random", "strategy: {name: random, points_to_evaluate: [{model.kind: cnn, model.cnn.depth: 2}]}")
    path = write_study(text)
    study = load_study(path, {"space.model.kind": "cnn"})
    run_study(study, progress=False)
    trial, = optuna.load_study(study_name="s", storage=study.storage_url).get_trials(states=[TrialState.COMPLETE])
    assert trial.params == {"model.cnn.depth": 2}   # the point ran, less the value the space fixes
    with pytest.raises(ConfigError) as info:
        load_study(path, {"space.model.kind": "rnn"})
    assert "points_to_evaluate[0].model.kind: the space fixes model.kind to 'rnn'" in str(info.value)
