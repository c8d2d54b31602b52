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
    gp_weight: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 10.0   # wgan_gp: lambda (Gulrajani et al.)
    mapping_layers: Annotated[int, Field(ge=1, le=8)] = 4        # stylegan2: the mapping MLP's depth
    mixing_prob: Annotated[float, Field(ge=0.0, le=1.0)] = 0.9   # stylegan2: style-mixing regularisation
    r1_gamma: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.1   # stylegan2: R1 weight (tiny images: small)
    r1_every: Annotated[int, Field(ge=1, le=64)] = 4             # stylegan2: lazy R1 (StyleGAN2: every 16 steps)

    def critic_steps(self) -> int:
        return self.critic_iters if self.critic_iters is not None else (5 if self.family == "wgan_gp" else 1)

    def generator_args(self, n_classes: int) -> dict[str, Any]:
        extra = {"mapping_layers": self.mapping_layers, "mixing_prob": self.mixing_prob} \
            if self.family == "stylegan2" else {}
        return {"latent": self.latent, "width": self.g_width, "n_classes": n_classes if self.conditional else 0,
                **extra}


class GANOptimSpec(Frozen):
    # Adam of G and D; None: the family's published setting (ADAM_DEFAULTS, read by GenerateTrialConfig.adam).
    # WGAN-GP's paper uses (0, 0.9), StyleGAN2 (0, 0.99): a space searches them.
    lr_g: Annotated[float, Field(gt=0, le=1)] | None = None
    lr_d: Annotated[float, Field(gt=0, le=1)] | None = None
    # Or the lr as a multiple of the family's own: one searched range then suits every family, where an lr
    # range shared by DCGAN (2e-4) and StyleGAN2 (2e-3) kept one of them far from its published setting.
    lr_scale_g: Annotated[float, Field(gt=0, le=100)] | None = None
    lr_scale_d: Annotated[float, Field(gt=0, le=100)] | None = None
    beta1_g: Annotated[float, Field(ge=0, lt=1)] | None = None
    beta2_g: Annotated[float, Field(ge=0, lt=1)] | None = None
    beta1_d: Annotated[float, Field(ge=0, lt=1)] | None = None
    beta2_d: Annotated[float, Field(ge=0, lt=1)] | None = None

    @model_validator(mode="after")
    def _one_lr_per_net(self) -> "GANOptimSpec":
        for net in ("g", "d"):
            if getattr(self, f"lr_{net}") is not None and getattr(self, f"lr_scale_{net}") is not None:
                raise AtKey(f"lr_scale_{net}", f"optim.lr_{net} and optim.lr_scale_{net} both set the lr "
                            f"of {'G' if net == 'g' else 'D'}. Fix: keep one (lr_scale_{net}: a multiple of the "
                            "family's own lr, 2e-4 for DCGAN and WGAN-GP, 2e-3 for StyleGAN2); one an included "
                            f"space sets is dropped by lr_scale_{net}: null in yours, or --set "
                            f"space.optim.lr_scale_{net}=null")
        return self


# (lr, beta1, beta2) per family when the trial leaves them unset. DCGAN's 2e-4, (0.5, 0.999) (Radford et al.)
# suits nets initialised at N(0, 0.02), where an Adam step of ~lr moves a weight by lr / 0.02 of itself.
# StyleGAN2's weights are equalized-lr ones stored at N(0, 1) (scaled at run time), so the same lr moves them
# 50x less: at 2e-4 its 1,000 default steps left the generator barely trained (MedFID 1.77 vs DCGAN 0.49) and
# blind to its labels (label agreement 0.52, chance) -- and the mapping net (lr_mul 0.01) effectively frozen.
# StyleGAN2 / StyleGAN2-ADA train it with lr 0.002 and betas (0, 0.99) (Karras et al. 2020, app. B; ADA's
# configs use 0.002-0.0025): its published setting. bench/gan.py, conditional BreastMNIST, seeds 0 / 1: MedFID
# 0.19 / 0.49, label agreement 0.77 / 0.69 (before, seed 0: 1.77, 0.52).
ADAM_DEFAULTS = {"dcgan": (2e-4, 0.5, 0.999), "wgan_gp": (2e-4, 0.5, 0.999), "stylegan2": (2e-3, 0.0, 0.99)}
ADAM_KEYS = ("lr_g", "lr_d", "beta1_g", "beta1_d", "beta2_g", "beta2_d")


def stylegan2_trained_before_its_adam(trials: list[Any]) -> str | None:
    """A warning for a study resumed from trials a searchlab before 2026-12-05 made: StyleGAN2 trials with Adam
    settings left unset trained at DCGAN's (2e-4, 0.5, 0.999), new ones train at ADAM_DEFAULTS["stylegan2"], and
    both rank in one study with nothing in their params to tell them apart. Trials since record `adam`."""
    older = [t.number for t in trials if (t.user_attrs.get("generator") or {}).get("family") == "stylegan2"
             and "adam" not in t.user_attrs
             and not set(ADAM_KEYS) <= set((t.user_attrs.get("config") or {}).get("optim") or {})]
    if not older:
        return None
    before = ", ".join(f"{key}: {value}" for key, value in zip(ADAM_KEYS, (2.0e-4, 2.0e-4, 0.5, 0.5, 0.999, 0.999)))
    return (f"{len(older)} earlier StyleGAN2 trial(s) of this study (e.g. trial {older[0]}) ran before searchlab "
            "gave StyleGAN2 its own Adam settings: the settings left unset, they trained at lr 2e-4, betas "
            "(0.5, 0.999), while this run's train at lr 0.002, betas (0, 0.99), and all rank in one study. Fix: to "
            f"go on as before, set space.optim: {{{before}}}; or give this run its own run_dir")


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

    def adam(self, net: Literal["g", "d"]) -> dict[str, Any]:
        """torch.optim.Adam's lr and betas for G or D: the trial's own, else its family's ADAM_DEFAULTS (the lr
        times lr_scale when that is set)."""
        lr, beta1, beta2 = ADAM_DEFAULTS[self.gan.family]
        scale = getattr(self.optim, f"lr_scale_{net}")
        defaults = (lr if scale is None else lr * scale, beta1, beta2)
        own = [getattr(self.optim, f"{name}_{net}") for name in ("lr", "beta1", "beta2")]
        lr, beta1, beta2 = (default if value is None else value for value, default in zip(own, defaults))
        return {"lr": lr, "betas": (beta1, beta2)}

    @model_validator(mode="after")
    def _evaluations_fit(self) -> "GenerateTrialConfig":
        if self.train.evaluations > self.train.iterations:
            raise AtKey("train.evaluations", f"train.evaluations ({self.train.evaluations}) cannot exceed "
                        f"train.iterations ({self.train.iterations}). Fix: lower train.evaluations")
        return self
