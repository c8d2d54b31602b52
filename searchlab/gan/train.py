"""One GAN trial's training: alternating D and G steps, the family's losses and regularisers, generator EMA,
MedFID checkpoints that feed the pruner, and the failures a search must survive (divergence, collapse).
A trial keeps its best checkpoint's generator and scores (as classify keeps its best epoch): GAN training
oscillates, and a trial scored at its last checkpoint (MedFID 27.8, 16.5, 32.1, 44.9) was ranked at 44.9."""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from searchlab.errors import TrialFailure
from searchlab.gan.metrics import Reference, SampleStats
from searchlab.gan.losses import (diff_augment, discriminator_loss, ema_update, generator_loss, gradient_penalty,
                                  r1_penalty)
from searchlab.models.gan import build_discriminator, build_generator
from searchlab.tasks.generate_config import GenerateTrialConfig

CPU = torch.device("cpu")
COLLAPSE_STD = 0.01   # mean per-pixel std across samples (images in [0, 1]) below which all samples are "identical"


@dataclass
class GANResult:
    generator: nn.Module              # the EMA generator (or G without EMA) at its best evaluation, eval mode
    stats: SampleStats                # at that evaluation
    evaluations: list[dict[str, float]]
    train_seconds: float
    iterations: int                   # trained
    best_iteration: int               # of the kept generator and stats


@dataclass(frozen=True)
class RealImages:
    images: torch.Tensor              # float (N, C, H, W) in [-1, 1]
    labels: torch.Tensor              # int64 (N,)
    n_classes: int


def to_signed(images_uint8: torch.Tensor) -> torch.Tensor:
    return images_uint8.float() / 127.5 - 1.0


def to_unit(images_signed: torch.Tensor) -> torch.Tensor:
    return ((images_signed + 1.0) / 2.0).clamp(0.0, 1.0)


def build_pair(spec: GenerateTrialConfig, image_size: int, channels: int, n_classes: int) -> tuple[nn.Module, nn.Module]:
    classes = n_classes if spec.gan.conditional else 0
    generator = build_generator(spec.gan.family, image_size, channels, **spec.gan.generator_args(n_classes))
    discriminator = build_discriminator(spec.gan.family, image_size, channels, width=spec.gan.d_width,
                                        n_classes=classes)
    return generator, discriminator


def train_gan(spec: GenerateTrialConfig, real: RealImages, reference: Reference, seed: int,
              report: Callable[..., None], out_of_time: Callable[[], bool],
              select: tuple[str, str] = ("medfid", "minimize"), device: torch.device = CPU) -> GANResult:
    """`select`: (metric, direction) that picks the best evaluation, whose generator and stats are kept.
    `device`: where G and D train (the real images are put there once: small sets). Every random draw comes
    from one CPU generator and is moved there, so a seed draws the same batches and noise on any device; the
    samples are scored on the CPU, and the generator returned is on the CPU (checkpoints, exports)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    image_size, channels = real.images.shape[-1], real.images.shape[1]
    G, D = (net.to(device) for net in build_pair(spec, image_size, channels, real.n_classes))
    real = RealImages(real.images.to(device), real.labels.to(device), real.n_classes)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), **spec.adam("g"))   # the family's lr and betas unless set
    opt_d = torch.optim.Adam(D.parameters(), **spec.adam("d"))
    steps = GANSteps(spec, real, G, D, gen)
    total, checkpoints = spec.train.iterations, _checkpoints(spec.train.iterations, spec.train.evaluations)
    evaluations: list[dict[str, float]] = []
    seconds, start, it = 0.0, time.perf_counter(), 0
    best = _Best(select)
    for it in range(1, total + 1):
        train_iteration(steps, opt_d, opt_g, it)
        if spec.train.ema > 0:
            # ramped up as in TensorFlow's ExponentialMovingAverage(num_updates): early on the average would
            # otherwise stay at the random initial generator for ~1 / (1 - decay) steps
            ema_update(G_ema, G, min(spec.train.ema, it / (it + 10)))
        else:
            G_ema.load_state_dict(G.state_dict())
        if it in checkpoints or out_of_time():
            seconds += time.perf_counter() - start
            stats = evaluate(G_ema, real, reference, seed, f"iteration {it} of {total}")
            evaluations.append({"iteration": it, **stats.as_dict()})
            best.offer(stats, it, G_ema)
            last = it == total or out_of_time()
            # the last checkpoint ends a trained generator: pruning it there threw the finished trial away
            report(len(evaluations) - 1, stats.as_dict(), judge=not last)
            start = time.perf_counter()
            if last:
                break
    assert best.stats is not None
    G_ema.load_state_dict(best.state)
    return GANResult(G_ema.cpu(), best.stats, evaluations, seconds, it, best.iteration)


class _Best:
    """The best evaluation so far by one metric: its stats, iteration and a copy of the generator's weights.
    A non-finite value never wins over a finite one; ties keep the earlier (less trained) generator."""

    def __init__(self, select: tuple[str, str]) -> None:
        self.metric, direction = select
        self.sign = 1.0 if direction == "minimize" else -1.0
        self.stats: SampleStats | None = None
        self.iteration, self.state, self.key = 0, {}, math.inf

    def offer(self, stats: SampleStats, iteration: int, G: nn.Module) -> None:
        value = stats.as_dict().get(self.metric, math.nan)
        key = self.sign * value if math.isfinite(value) else math.inf
        if self.stats is None or key < self.key:
            self.stats, self.iteration, self.key = stats, iteration, key
            self.state = {name: tensor.detach().clone() for name, tensor in G.state_dict().items()}


def _checkpoints(iterations: int, evaluations: int) -> set[int]:
    return {max(1, round(iterations * (k + 1) / evaluations)) for k in range(evaluations)}


def train_iteration(steps: "GANSteps", opt_d: torch.optim.Optimizer, opt_g: torch.optim.Optimizer,
                    iteration: int) -> None:
    """One iteration: the family's discriminator steps, then one generator step (also what the pre-run time
    estimate times, tasks/gan_pace.py)."""
    for _ in range(steps.spec.gan.critic_steps()):
        _apply(opt_d, steps.discriminator(iteration), "discriminator", iteration)
    _apply(opt_g, steps.generator(), "generator", iteration)


def _apply(opt: torch.optim.Optimizer, loss: torch.Tensor, which: str, iteration: int) -> None:
    if not math.isfinite(float(loss.detach())):
        raise TrialFailure(f"diverged: the {which} loss became {float(loss.detach())} at iteration {iteration}. "
                           "Fix: lower the upper ends of the space's learning rates")
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


class GANSteps:
    """The losses of one D step and one G step, with the family's regularisers and DiffAugment."""

    def __init__(self, spec: GenerateTrialConfig, real: RealImages, G: nn.Module, D: nn.Module,
                 gen: torch.Generator) -> None:
        self.spec, self.real, self.G, self.D, self.gen = spec, real, G, D, gen
        self.family = spec.gan.family
        self.conditional = spec.gan.conditional
        policy = spec.train.diff_augment
        self.augment = (lambda x: x) if policy == "none" else (lambda x: diff_augment(x, policy, gen))

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        idx = torch.randint(0, len(self.real.images), (self.spec.train.batch_size,), generator=self.gen)
        idx = idx.to(self.real.images.device)
        return self.real.images[idx], (self.real.labels[idx] if self.conditional else None)

    def _fake(self, labels: torch.Tensor | None) -> torch.Tensor:
        z = torch.randn(self.spec.train.batch_size, self.spec.gan.latent, generator=self.gen)
        # the trial's generator draws StyleGAN2's noise and style mixing too: not the device's global RNG
        return self.G(z.to(self.real.images.device), labels, generator=self.gen)

    def discriminator(self, iteration: int) -> torch.Tensor:
        x, labels = self._batch()
        with torch.no_grad():
            fake = self._fake(labels)
        real_in, fake_in = self.augment(x), self.augment(fake)
        loss = discriminator_loss(self.family, self.D(real_in, labels), self.D(fake_in, labels))
        if self.family == "wgan_gp" and self.spec.gan.gp_weight > 0:
            loss = loss + gradient_penalty(self.D, real_in, fake_in, labels, self.spec.gan.gp_weight, self.gen)
        every = self.spec.gan.r1_every
        if self.family == "stylegan2" and self.spec.gan.r1_gamma > 0 and iteration % every == 0:
            # lazy regularisation (StyleGAN2 sec. 3.1): every `every` steps, scaled by `every`
            loss = loss + every * r1_penalty(self.D, real_in, labels, self.spec.gan.r1_gamma)
        return loss

    def generator(self) -> torch.Tensor:
        _, labels = self._batch()
        return generator_loss(self.family, self.D(self.augment(self._fake(labels)), labels))


@torch.no_grad()
def sample_unit(G: nn.Module, labels: torch.Tensor, conditional: bool, seed: int) -> torch.Tensor:
    """len(labels) images in [0, 1] from a fixed seed (labels used when conditional)."""
    gen = torch.Generator().manual_seed(seed)
    out = [G.sample(len(chunk), chunk if conditional else None, generator=gen) for chunk in labels.split(256)]
    return to_unit(torch.cat(out)).cpu()   # scored by the feature network, on the CPU


def evaluate(G: nn.Module, real: RealImages, reference: Reference, seed: int, when: str = "") -> SampleStats:
    """As many samples as real images (with their class mix when conditional), scored against the reference;
    all-identical samples fail the trial as collapsed (or, early on, not trained enough to vary yet)."""
    conditional = G.n_classes > 0
    samples = sample_unit(G, real.labels, conditional, seed)
    spread = float(samples.std(dim=0).mean())
    if not math.isfinite(spread):
        raise TrialFailure("diverged: the generator produced non-finite images. Fix: lower the upper ends of the "
                           "space's learning rates")
    if spread < COLLAPSE_STD:
        raise TrialFailure(f"collapsed: all {len(samples)} samples are nearly identical (mean per-pixel std "
                           f"{spread:.4f} < {COLLAPSE_STD}){' at ' + when if when else ''}: mode collapse, or a "
                           "generator too few iterations from its start to vary (then raise train.iterations or "
                           "lower train.evaluations, which scores it earlier)")
    return reference.score(samples, real.labels.cpu() if conditional else None)
