"""The GAN space's errors and warnings as a user meets them: `lr_g` set beside the shipped space's searched
`lr_scale_g` was refused with one draw of its range (got 0.7238517082858716) and no word of how to drop the
included key; dropping it with null was then warned of as a setting without effect; a searched range reaching past
a rule was said by one draw, not the range written."""
from __future__ import annotations

from searchlab.config.load import load_study
from searchlab.space.unused import unused_settings
from searchlab.tasks.generate_usage import generate_setting_used
from test_config import error_of

GAN = "name: s\ntask: generate\nspace: {include: gan.yaml}\n"


def test_lr_g_beside_the_included_lr_scale_g_says_the_range_and_how_to_drop_it(write_study):
    err = error_of(write_study, GAN, {"space.optim.lr_g": 0.001})
    assert err.key == "optim.lr_scale_g" and err.got == [0.25, 4.0]
    assert "--set space.optim.lr_scale_g=null" in err.fix and "lr_scale_g: null in yours" in err.fix


def test_a_setting_dropped_with_null_is_not_warned_of_as_without_effect(write_study):
    study = load_study(write_study(GAN), {"space.optim.lr_g": 0.001, "space.optim.lr_scale_g": None})
    unused = [setting.path for setting in unused_settings(study.space, generate_setting_used, study.config.seed)]
    assert "optim.lr_scale_g" not in unused


def test_a_searched_range_past_a_rule_is_said_by_the_range_written(write_study):
    ranged = "{include: gan.yaml, gan: {stylegan2: {mixing_prob: {float: [0.0, 1.5]}}}}"
    text = GAN.replace("{include: gan.yaml}", ranged)
    err = error_of(write_study, text)
    assert err.got == [0.0, 1.5] and "mixing_prob" in err.key
