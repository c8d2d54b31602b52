"""Which GAN settings have an effect given the family (tasks/classify_usage.py's rule, for `task: generate`):
WGAN-GP's penalty weight and StyleGAN2's mapping, mixing and R1 settings are read by their own family only
(gan/train.py, models/gan.py). `critic_iters` is every family's D steps per G step, so always used. An lr
scale is read only where its lr is left unset (generate_config.py GenerateTrialConfig.adam)."""
from __future__ import annotations

from typing import Any

from searchlab.tasks.classify_usage import Get, default_in, used_rule


def _family_is(name: str) -> Any:
    return lambda get: get("gan.family") == name


GAN_USED_WHEN = {
    "gan.gp_weight": _family_is("wgan_gp"),
    # a multiple of the family's lr, unless the lr itself is set
    "optim.lr_scale_g": lambda get: get("optim.lr_g") is None,
    "optim.lr_scale_d": lambda get: get("optim.lr_d") is None,
    **{f"gan.{key}": _family_is("stylegan2") for key in ("mapping_layers", "mixing_prob", "r1_gamma", "r1_every")},
}


def _generate_schema() -> Any:
    from searchlab.tasks.generate_config import GenerateTrialConfig

    return GenerateTrialConfig()


generate_setting_default = default_in(_generate_schema)
generate_setting_used = used_rule(GAN_USED_WHEN, generate_setting_default)
__all__ = ["Get", "generate_setting_default", "generate_setting_used"]
