"""Declarative spaces: each kind maps onto one Optuna distribution with a stable readable name."""
from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from searchlab.config.yamlsrc import parse_yaml, read_yaml
from searchlab.errors import ConfigError
from searchlab.space import cheapest_config, compile_space, probe_configs, sample_config, searchable_params

optuna.logging.set_verbosity(optuna.logging.WARNING)


def compile_text(text: str, tmp_path: Path | None = None):
    if tmp_path is not None:
        path = tmp_path / "study.yaml"
        path.write_text(text)
        return compile_space(read_yaml(path), ("space",))
    return compile_space(parse_yaml(text, "inline.yaml"), ("space",))


SPACE = """
space:
  optim:
    lr: {float: [1.0e-4, 1.0e-1], log: true}
    momentum: {float: [0.0, 0.9], step: 0.1}
    name: adamw
  train:
    batch_size: {int: [16, 128], step: 16}
    layers: {int: [1, 64], log: true}
    shape: {fixed: [1, 2]}
  model:
    one_of:
      cnn:
        depth: {int: [2, 4]}
      timm:
        depth: {choice: [18, 50]}
        backbone: {choice: [resnet18]}
"""


def distributions(space):
    return {p.name: p.distribution() for p, _ in searchable_params(space)}


def test_each_kind_maps_to_one_named_distribution():
    dists = distributions(compile_text(SPACE))
    assert dists["optim.lr"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert dists["optim.momentum"] == FloatDistribution(0.0, 0.9, step=0.1)
    assert dists["train.batch_size"] == IntDistribution(16, 128, step=16)
    assert dists["train.layers"] == IntDistribution(1, 64, log=True)
    assert dists["model.kind"] == CategoricalDistribution(("cnn", "timm"))
    # the same key on two branches gets two names, each with its own distribution
    assert dists["model.cnn.depth"] == IntDistribution(2, 4)
    assert dists["model.timm.depth"] == CategoricalDistribution((18, 50))
    assert "optim.name" not in dists and "train.shape" not in dists   # fixed values are not parameters


def test_sampling_follows_the_chosen_branch_only():
    space = compile_text(SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        config = sample_config(trial, space)
        kind = config["model"]["kind"]
        seen.add(kind)
        other = "timm" if kind == "cnn" else "cnn"
        assert not any(name.startswith(f"model.{other}.") for name in trial.params)
        assert config["optim"]["name"] == "adamw" and config["train"]["shape"] == [1, 2]
        assert config["train"]["batch_size"] % 16 == 0
        study.tell(trial, 0.0)
    assert seen == {"cnn", "timm"}


def test_same_seed_same_configs():
    space = compile_text(SPACE)

    def configs(seed):
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=3))
        out = []
        for i in range(6):
            trial = study.ask()
            out.append(sample_config(trial, space))
            study.tell(trial, float(i))
        return out

    assert configs(3) == configs(3) and configs(3) != configs(4)


def test_probe_uses_every_choice_and_both_ends():
    configs = list(probe_configs(compile_text(SPACE)))
    lrs = {c["optim"]["lr"] for c in configs}
    assert 1e-4 in lrs and 1e-1 in lrs
    assert {c["model"]["kind"] for c in configs} == {"cnn", "timm"}
    assert {c["model"]["depth"] for c in configs if c["model"]["kind"] == "timm"} == {18, 50}


def test_include_with_override_and_fragment_key(tmp_path):
    (tmp_path / "lib.yaml").write_text("optim:\n  lr: {float: [0.001, 0.1]}\n  wd: 0.0\nother: {x: 1}\n")
    space = compile_text("space:\n  include: lib.yaml#optim\n  lr: {float: [0.01, 0.02]}\n  extra: 3\n", tmp_path)
    dists = distributions(space)
    assert dists == {"lr": FloatDistribution(0.01, 0.02)}
    study = optuna.create_study()
    assert sample_config(study.ask(), space).keys() == {"lr", "wd", "extra"}


def test_include_from_the_shipped_library(tmp_path):
    space = compile_text("space:\n  model: {include: plain_cnn.yaml, depth: 3}\n", tmp_path)
    assert "model.depth" not in distributions(space) and "model.width" in distributions(space)


def test_a_study_named_like_a_library_fragment_includes_the_fragment_not_itself(tmp_path):
    (tmp_path / "plain_cnn.yaml").write_text("space:\n  model: {include: plain_cnn.yaml, depth: 3}\n")
    space = compile_space(read_yaml(tmp_path / "plain_cnn.yaml"), ("space",))
    assert "model.width" in distributions(space) and "model.depth" not in distributions(space)


def test_another_study_named_like_a_fragment_beside_the_study_is_not_included(tmp_path):
    """A user's own plain_cnn.yaml study sat beside the study including plain_cnn.yaml: it was read as the
    space, and its own include of plain_cnn.yaml reported as a cycle."""
    (tmp_path / "plain_cnn.yaml").write_text("name: mine\ndata: {source: medmnist}\nspace:\n"
                                             "  model: {include: plain_cnn.yaml}\n")
    space = compile_text("space:\n  model: {include: plain_cnn.yaml, depth: 3}\n", tmp_path)
    assert "model.width" in distributions(space) and "model.depth" not in distributions(space)
    space = compile_text("space:\n  include: plain_cnn.yaml#space\n", tmp_path)   # its space, asked for by key
    assert "model.width" in distributions(space)


def test_include_cycle_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        compile_text("space:\n  include: a.yaml\n", tmp_path)


@pytest.mark.parametrize("text,message", [
    ("space:\n  x: {float: [1, 2], log: true, step: 0.5}\n", "step and log"),
    ("space:\n  x: {float: [0, 2], log: true}\n", "low > 0"),
    ("space:\n  x: {int: [1.5, 2]}\n", "two integers"),
    ("space:\n  x: {choice: []}\n", "non-empty"),
    ("space:\n  x: {choice: [1, 1]}\n", "distinct"),
    ("space:\n  x: {choice: [[1], 2]}\n", "numbers, strings"),
    ("space:\n  x: {float: [1, 2], choice: [1]}\n", "exactly one kind"),
    ("space:\n  x: {float: [1, 2], logg: true}\n", "unknown option"),
    ("space:\n  x: [1, 2]\n", "ambiguous"),
    ("space:\n  x: {floats: [1.0e-4, 1.0e-2]}\n", "unknown parameter kind (got 'floats'). Fix: did you mean float?"),
    ("space:\n  x: {layers: [1, 2]}\n", "ambiguous"),   # no kind's name: a group holding a bare list
    ("space:\n  a.b: 1\n", "may not contain '.'"),
    ("space:\n  m: {one_of: {cnn: {kind: 1}}}\n", "selector"),
    ("space:\n  x: {float: [1, .inf]}\n", "finite"),
    ("space:\n  x: {int: [2, 4], step: 5}\n", "step must divide high - low (4 - 2), or 4 is never drawn"),
    ("space:\n  x: {float: [0, 1], step: 0.3}\n", "Fix: write [0, 0.9] (the grid's last point)"),
])
def test_bad_parameters_are_named_with_their_line(text, message):
    with pytest.raises(ConfigError) as info:
        compile_text(text)
    assert message in str(info.value) and info.value.line == 2 and "inline.yaml" in str(info.value)


def test_yaml_alias_bomb_is_refused():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8))
    with pytest.raises(ConfigError, match="too large"):
        parse_yaml(bomb, "bomb.yaml")


# ---------------------------------------------------------------- settings without effect are not sampled
TRANSFER_SPACE = """
space:
  augment:
    policy: {choice: [none, randaugment, flip_rotate]}
    randaugment_n: {int: [1, 3]}
    rotate_degrees: {float: [5, 30]}
    mix: {choice: [none, mixup]}
    mix_alpha: {float: [0.2, 1.0]}
  optim: {name: {choice: [adamw, sgd]}, momentum: {float: [0.5, 0.99]}}
  imbalance: {loss: {choice: [ce, focal]}, focal_gamma: {float: [0.5, 3.0]}}
  model:
    one_of:
      cnn:
        weights: runs/source
        transfer: {choice: [features, cutoff, full]}
        cutoff: {int: [1, 3]}
        layer_decay: {float: [0.5, 1.0]}
"""


def _sampled(space, fixed: dict) -> tuple[dict, set[str]]:
    from searchlab.tasks.classify_usage import classify_setting_used

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial(fixed)
    trial = study.ask()
    return sample_config(trial, space, classify_setting_used), set(trial.params)


def test_a_setting_without_effect_under_the_values_drawn_is_not_sampled():
    """Written augment-first on purpose: a rule waits for the setting it depends on, wherever it comes."""
    space = compile_text(TRANSFER_SPACE)
    config, params = _sampled(space, {"model.cnn.transfer": "features", "augment.policy": "randaugment",
                                      "augment.mix": "mixup", "optim.name": "adamw", "imbalance.loss": "focal"})
    # frozen features: no image augmentation reaches the head, and no cut-off or lr decay applies
    assert params == {"model.cnn.transfer", "optim.name", "imbalance.loss", "imbalance.focal_gamma"}
    assert config["augment"] == {} and config["model"] == {"kind": "cnn", "weights": "runs/source",
                                                           "transfer": "features"}
    config, params = _sampled(space, {"model.cnn.transfer": "cutoff", "augment.policy": "randaugment",
                                      "augment.mix": "none", "optim.name": "sgd", "imbalance.loss": "ce"})
    assert {"model.cnn.cutoff", "augment.randaugment_n", "optim.momentum"} <= params
    assert not {"model.cnn.layer_decay", "augment.rotate_degrees", "augment.mix_alpha", "imbalance.focal_gamma"} \
        & params
    config, params = _sampled(space, {"model.cnn.transfer": "full", "augment.policy": "flip_rotate",
                                      "augment.mix": "mixup", "optim.name": "adamw", "imbalance.loss": "ce"})
    assert {"model.cnn.layer_decay", "augment.rotate_degrees", "augment.mix_alpha"} <= params
    assert not {"model.cnn.cutoff", "augment.randaugment_n", "optim.momentum"} & params


def test_a_searched_step_draws_a_magnitude_only_for_an_op_that_has_one():
    space = compile_text("space:\n  augment:\n    policy: searched\n    sub_policies:\n"
                         "      a: {op: {choice: [hflip, rotate]}, magnitude: {int: [1, 9]}}\n"
                         "      b: {op: equalize, magnitude: {int: [1, 9]}}\n")
    config, params = _sampled(space, {"augment.sub_policies.a.op": "hflip"})
    assert params == {"augment.sub_policies.a.op"}
    assert config["augment"]["sub_policies"] == {"a": {"op": "hflip"}, "b": {"op": "equalize"}}
    config, params = _sampled(space, {"augment.sub_policies.a.op": "rotate"})
    assert params == {"augment.sub_policies.a.op", "augment.sub_policies.a.magnitude"}


def test_a_fixed_magnitude_beside_a_fixed_op_without_one_is_reported():
    from searchlab.space.unused import describe, unused_settings
    from searchlab.tasks.classify_usage import classify_setting_used, setting_default

    space = compile_text("space:\n  augment:\n    policy: searched\n"
                         "    sub_policies: {a: {op: vflip, magnitude: 7}, b: {op: rotate, magnitude: 3}}\n")
    found = unused_settings(space, classify_setting_used)
    assert [u.path for u in found] == ["augment.sub_policies.a.magnitude"]
    assert "augment.sub_policies.a.op: 'vflip'; it is left out" in describe(found[0], setting_default)


def test_a_setting_the_space_leaves_out_counts_at_its_default():
    """No `transfer` in the space: scratch, the default, so images are augmented and no cut-off applies."""
    space = compile_text("space:\n  model: {kind: cnn, cutoff: {int: [1, 3]}}\n"
                         "  augment: {policy: randaugment, randaugment_m: {int: [3, 15]}}\n")
    config, params = _sampled(space, {})
    assert params == {"augment.randaugment_m"} and config["augment"]["policy"] == "randaugment"
    assert "cutoff" not in config["model"]


def test_without_a_rule_every_parameter_is_sampled_as_before():
    space = compile_text(TRANSFER_SPACE)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.enqueue_trial({"model.cnn.transfer": "features"})
    trial = study.ask()
    sample_config(trial, space)
    assert {"model.cnn.cutoff", "augment.randaugment_n", "augment.mix_alpha"} <= set(trial.params)


def test_settings_no_trial_can_use_are_found_and_those_a_searched_choice_may_use_are_not():
    from searchlab.space.unused import describe, unused_settings
    from searchlab.tasks.classify_usage import classify_setting_used, setting_default

    space = compile_text("space:\n  model: {kind: cnn, cutoff: {int: [1, 3]}}\n"
                         "  imbalance: {loss: ce, focal_gamma: 3.0}\n"
                         "  augment: {policy: flip_rotate, rotate_degrees: 20, randaugment_m: {int: [3, 15]},\n"
                         "            sub_policies: {a: {op: rotate, prob: 0.5, magnitude: 3}}}\n"
                         "  optim: {name: {choice: [adam, sgd]}, momentum: 0.8}\n")
    found = {u.path: u for u in unused_settings(space, classify_setting_used)}
    assert set(found) == {"model.cutoff", "imbalance.focal_gamma", "augment.randaugment_m", "augment.sub_policies"}
    assert describe(found["imbalance.focal_gamma"], setting_default).startswith(
        "space.imbalance.focal_gamma (3.0) has no effect in any trial of this space, given imbalance.loss: 'ce';")
    assert "(searched) has no effect" in describe(found["augment.randaugment_m"], setting_default)
    assert "(a group)" in describe(found["augment.sub_policies"], setting_default)   # once, not per entry
    assert "given model.transfer: 'scratch' (default)" in describe(found["model.cutoff"], setting_default)


def gan_study_space(tmp_path, override: str):
    """The shipped GAN space, included with one override beside it (what `--set space.gan.<key>=` makes)."""
    return compile_text(f"space:\n  include: gan.yaml\n  gan: {override}\n", tmp_path)


def test_a_setting_written_onto_a_one_of_changes_its_options_instead_of_replacing_them(tmp_path):
    conditional = gan_study_space(tmp_path, "{conditional: true}")
    assert distributions(conditional)["gan.family"].choices == ("dcgan", "wgan_gp", "stylegan2")
    assert not any(name.endswith(".conditional") for name in distributions(conditional))
    assert "gan.stylegan2.mapping_layers" in distributions(conditional)
    config = sample_config(optuna.create_study().ask(), conditional)
    assert config["gan"]["conditional"] is True and "latent" in config["gan"]

    only_wgan = gan_study_space(tmp_path, "{critic_iters: 3}")   # only the option that has the setting
    assert "gan.wgan_gp.critic_iters" not in distributions(only_wgan)
    assert "gan.wgan_gp.gp_weight" in distributions(only_wgan)

    one_option = gan_study_space(tmp_path, "{dcgan: {latent: {choice: [64, 128]}}}")
    assert distributions(one_option)["gan.dcgan.latent"].choices == (64, 128)
    assert distributions(one_option)["gan.wgan_gp.latent"].choices == (32, 64, 128)


def test_the_selector_written_onto_a_one_of_keeps_only_the_options_named(tmp_path):
    pinned = gan_study_space(tmp_path, "{family: dcgan}")
    assert not any(name.startswith(("gan.wgan_gp", "gan.stylegan2")) for name in distributions(pinned))
    assert sample_config(optuna.create_study().ask(), pinned)["gan"]["family"] == "dcgan"
    two = gan_study_space(tmp_path, "{family: {choice: [dcgan, stylegan2]}}")
    assert distributions(two)["gan.family"].choices == ("dcgan", "stylegan2")
    with pytest.raises(ConfigError, match="not an option of this one_of.*'wgan'.*dcgan, wgan_gp, stylegan2"):
        gan_study_space(tmp_path, "{family: wgan}")
    with pytest.raises(ConfigError, match="'dcgan' is an option of the one_of 'family'"):
        gan_study_space(tmp_path, "{dcgan: 3}")


def test_settings_beside_an_inline_one_of_change_its_options(tmp_path):
    space = compile_text("space:\n  m:\n    one_of: {a: {x: {int: [1, 3]}}, b: {y: 2}}\n    x: 5\n"
                         "    one_of_key_stays: 1\n", tmp_path)
    configs = [sample_config(optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=s)).ask(), space)
               for s in range(6)]
    assert {c["m"]["kind"] for c in configs} == {"a", "b"}
    assert all(c["m"]["one_of_key_stays"] == 1 for c in configs)
    assert all(c["m"]["x"] == 5 for c in configs if c["m"]["kind"] == "a")
    assert all("x" not in c["m"] and c["m"]["y"] == 2 for c in configs if c["m"]["kind"] == "b")


def test_the_cheapest_config_combines_the_low_end_of_every_setting_the_probes_draw_one_at_a_time():
    space = compile_text("space:\n" + "".join(f"  w{i}: {{int: [1, 10]}}\n" for i in range(8)) +
                         "  block: {one_of: {none: {}, conv: {width: {int: [4, 64]}}}}\n")

    def cost(config):   # e.g. FLOPs over a budget of 10: only the all-low network (8 + none) fits
        return max(0, sum(config[f"w{i}"] for i in range(8)) + config["block"].get("width", 0) - 10)

    assert min(cost(config) for config in probe_configs(space, seed=0)) > 0
    config, least, costed = cheapest_config(space, cost, seed=0)
    assert least == 0 and cost(config) == 0 and config["block"] == {"kind": "none"}
    assert costed <= 300


def test_the_cheapest_config_shortens_a_longest_path_no_single_change_shortens():
    """A network's depth is its longest path: a cells space whose least depth is 5 was said to need 8, and a
    max_depth it could meet was refused."""
    paths = [[f"op{p}{i}" for i in range(3)] for p in range(3)]
    space = compile_text("space:\n" + "".join(f"  {op}: {{choice: [conv, skip]}}\n" for ops in paths for op in ops))

    def cost(config):   # depth over a max_depth of 0: convs on the longest of three paths
        return max(sum(config[op] == "conv" for op in ops) for ops in paths)

    config, least, costed = cheapest_config(space, cost, seed=0)
    assert least == 0 and all(config[op] == "skip" for ops in paths for op in ops) and costed <= 300
