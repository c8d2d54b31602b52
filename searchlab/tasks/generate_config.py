"""The typed config of one generate trial (a GAN): what a sampled spaces/gan.yaml must turn into.

Defaults are the families' published settings scaled to 28-64 px images on a CPU; each written once, here.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from searchlab.config.schema import Frozen
from searchlab.errors import AtKey

DiffAugmentPolicy = Literal["none", "translation", "color,translation", "color,translation,cutout"]


class GANModelSpec(Frozen):
    family: Literal["dcgan", "wgan_gp", "stylegan2"] = "dcgan"
    latent: Annotated[int, Field(ge=8, le=512)] = 64             # z size
    # 32, not the papers' 64+: at 28 px on a CPU a trial then fits minutes (bench/gan.py), and a few hundred
    # training images do not need more capacity (StyleGAN2 overfits small sets first).
    g_width: Annotated[int, Field(ge=8, le=512)] = 32            # channels of G's last stage (x2 per stage up)
    d_width: Annotated[int, Field(ge=8, le=512)] = 32            # channels of D's first stage
    conditional: bool = False                                    # class-conditional G and projection D
    # family-specific (a space searches them under its family's branch; other families ignore them)
    critic_iters: Annotated[int, Field(ge=1, le=10)] | None = None   # D steps per G step; None: 5 wgan_gp, else 1
    gp_weight: Annotated[float, Field(ge=0)] = 10.0              # wgan_gp: lambda (Gulrajani et al.)
    mapping_layers: Annotated[int, Field(ge=1, le=8)] = 4        # stylegan2: the mapping MLP's depth
    mixing_prob: Annotated[float, Field(ge=0.0, le=1.0)] = 0.9   # stylegan2: style-mixing regularisation
    r1_gamma: Annotated[float, Field(ge=0)] = 0.1                # stylegan2: R1 weight (tiny images: small gamma)
    r1_every: Annotated[int, Field(ge=1, le=64)] = 4             # stylegan2: lazy R1 (StyleGAN2: every 16 steps)

    def critic_steps(self) -> int:
        return self.critic_iters if self.critic_iters is not None else (5 if self.family == "wgan_gp" else 1)

    def generator_args(self, n_classes: int) -> dict[str, Any]:
        extra = {"mapping_layers": self.mapping_layers, "mixing_prob": self.mixing_prob} \
            if self.family == "stylegan2" else {}
        return {"latent": self.latent, "width": self.g_width, "n_classes": n_classes if self.conditional else 0,
                **extra}


class GANOptimSpec(Frozen):
    # Adam with beta1 0.5 (DCGAN); WGAN-GP's paper uses (0, 0.9) and StyleGAN2 (0, 0.99): search them.
    lr_g: Annotated[float, Field(gt=0, le=1)] = 2e-4
    lr_d: Annotated[float, Field(gt=0, le=1)] = 2e-4
    beta1_g: Annotated[float, Field(ge=0, lt=1)] = 0.5
    beta2_g: Annotated[float, Field(ge=0, lt=1)] = 0.999
    beta1_d: Annotated[float, Field(ge=0, lt=1)] = 0.5
    beta2_d: Annotated[float, Field(ge=0, lt=1)] = 0.999


class GANTrainSpec(Frozen):
    batch_size: Annotated[int, Field(ge=4, le=1024)] = 32
    iterations: Annotated[int, Field(ge=1)] = 1000               # generator steps (~60 epochs of 546 images)
    diff_augment: DiffAugmentPolicy = "none"                     # DiffAugment on every D input (small-data remedy)
    ema: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.999          # generator EMA decay; 0 = off
    evaluations: Annotated[int, Field(ge=1, le=100)] = 4          # MedFID checkpoints (pruning steps) per trial


class GenerateTrialConfig(Frozen):
    gan: GANModelSpec = GANModelSpec()
    optim: GANOptimSpec = GANOptimSpec()
    train: GANTrainSpec = GANTrainSpec()

    @model_validator(mode="after")
    def _evaluations_fit(self) -> "GenerateTrialConfig":
        if self.train.evaluations > self.train.iterations:
            raise AtKey("train.evaluations", f"train.evaluations ({self.train.evaluations}) cannot exceed "
                        f"train.iterations ({self.train.iterations}). Fix: lower train.evaluations")
        return self
