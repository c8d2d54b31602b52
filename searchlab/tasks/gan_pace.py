"""Before a GAN run: would one trial fit inside the study's time limits at this machine's pace?

A GAN trial's length is its train.iterations, each one or more discriminator steps and a generator step, and
the families differ by two orders of magnitude (a StyleGAN2 at width 32 took ~1.3 s an iteration on this
2-core machine: 22 min for 1,000, where a DCGAN takes ~1 min). A study whose timeout could not hold one trial
found out only when the timeout cut its first trial. Here the first config of each family the space draws
trains a few iterations on the threads a worker gets, timed at their steady pace (`steady_seconds`: the
median of the later of 3-5 timed after a warm-up call, so one spike is outvoted), and generates one batch of
samples; times its iterations and MedFID evaluations, that is the estimate, said when it exceeds
budget.timeout or trial_timeout. A warning, never a refusal: pruning may end trials sooner.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from searchlab.config.load import Study
from searchlab.gan.train import GANSteps, RealImages, build_pair, sample_unit, train_iteration
from searchlab.tasks.generate_config import GenerateTrialConfig
from searchlab.tasks.pace import duration, steady_seconds, tightest_limit

ITERATION_SECONDS = 1.5   # how long iterations are timed for, once ITERATIONS_TIMED are
ITERATIONS_TIMED = 5      # after the first: one timed call was the estimate, and it was 3.06 s where a trial took 0.74
ITERATION_CEILING = 4.0   # seconds after which a slow family's iterations stop at SLOW_TIMED (3) timed
SAMPLED = 64              # samples generated to time an evaluation's sampling


@dataclass(frozen=True)
class GANEstimate:
    seconds: float            # the whole trial: its iterations and its evaluations' sampling
    iteration_seconds: float
    spec: GenerateTrialConfig


def gan_time_warning(study: Study, real: RealImages, specs: list[GenerateTrialConfig]) -> str | None:
    limit, key = tightest_limit(study.config.budget)
    if limit is None:
        return None
    estimate = slowest_family(study, real, specs)
    if estimate is None or estimate.seconds <= limit:
        return None
    spec = estimate.spec
    consequence = ("Trials past it are killed and fail" if key == "budget.trial_timeout" else
                   "The timeout will stop trials before their last iteration, scored as far as they got")
    return (f"one {spec.gan.family} trial of this space takes about {duration(estimate.seconds)} here, more than "
            f"{key}={limit:g} s: {spec.train.iterations} iterations at {estimate.iteration_seconds:.2f} s each "
            f"(measured now with g_width {spec.gan.g_width}, d_width {spec.gan.d_width}, batch "
            f"{spec.train.batch_size}, on {study.config.executor.local_threads} thread(s)), and "
            f"{spec.train.evaluations} MedFID evaluations. {consequence}. Fix: raise {key}, lower "
            "space.train.iterations, or search smaller widths or other families")


def slowest_family(study: Study, real: RealImages, specs: list[GenerateTrialConfig]) -> GANEstimate | None:
    """The longest estimate among the first config of each family `specs` hold; None where a local CPU
    measurement says nothing (trials on a GPU or on Ray's nodes)."""
    executor = study.config.executor
    if executor.kind != "local" or (executor.device != "cpu" and torch.cuda.is_available()):
        return None
    firsts = {spec.gan.family: spec for spec in reversed(specs)}   # reversed: the first of each family stays
    estimates = [_estimate(spec, real, executor.local_threads) for spec in firsts.values()]
    return max((e for e in estimates if e is not None), key=lambda e: e.seconds, default=None)


def _estimate(spec: GenerateTrialConfig, real: RealImages, threads: int) -> GANEstimate | None:
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        iteration, sampling = _measured(spec, real)
    except Exception:   # noqa: BLE001 -- advice only: a config that cannot train fails its trial, saying why
        return None
    finally:
        torch.set_num_threads(before)
    per_evaluation = sampling * len(real.images) / SAMPLED
    seconds = spec.train.iterations * iteration + spec.train.evaluations * per_evaluation
    return GANEstimate(seconds, iteration, spec)


def _measured(spec: GenerateTrialConfig, real: RealImages) -> tuple[float, float]:
    """Seconds of one iteration (its discriminator steps and its generator step, optimisers included) and of
    generating SAMPLED images, at steady pace. Learning rates 0: the steps cost the same and change nothing."""
    G, D = build_pair(spec, real.images.shape[-1], real.images.shape[1], real.n_classes)
    opt_g, opt_d = torch.optim.Adam(G.parameters(), lr=0.0), torch.optim.Adam(D.parameters(), lr=0.0)
    steps, counter = GANSteps(spec, real, G, D, torch.Generator().manual_seed(0)), iter(range(1, 10 ** 9))
    iteration = steady_seconds(lambda: train_iteration(steps, opt_d, opt_g, next(counter)), ITERATION_SECONDS,
                               fewest=ITERATIONS_TIMED, ceiling=ITERATION_CEILING)
    G_eval = copy.deepcopy(G).eval()
    labels = real.labels[:SAMPLED]
    sampling = steady_seconds(lambda: sample_unit(G_eval, labels, spec.gan.conditional, 0), 0.3, most=3)
    return iteration, sampling

