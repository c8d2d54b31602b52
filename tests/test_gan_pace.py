"""Before a GAN run: one trial's time estimated from a few timed iterations, warned of when over the timeout."""
from __future__ import annotations

import torch

from searchlab.config.load import load_study
from searchlab.gan.metrics import Reference
from searchlab.gan.train import RealImages, train_gan
from searchlab.tasks.gan_pace import gan_time_warning, slowest_family
from searchlab.tasks.generate_config import GenerateTrialConfig

GAN = """
name: gan
task: generate
space:
  gan: {family: {choice: [dcgan, stylegan2]}, latent: 16, g_width: 16, d_width: 16}
  train: {batch_size: 16, iterations: ITERATIONS, evaluations: 1}
strategy: random
pruner: none
budget: {n_trials: 2, timeout: TIMEOUT}
executor: {kind: local, threads_per_worker: 1}
"""


class _Pooled(torch.nn.Module):
    """16 features of any image (MedFID's reference infers their count from a 3-channel 299 px dummy)."""

    def forward(self, images01: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.adaptive_avg_pool2d(images01.mean(dim=1, keepdim=True), 4).flatten(1)


def _real(n: int = 64) -> RealImages:
    images = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return RealImages(images, torch.arange(n) % 2, 2)


def _spec(family: str, iterations: int) -> GenerateTrialConfig:
    return GenerateTrialConfig.model_validate({
        "gan": {"family": family, "latent": 16, "g_width": 16, "d_width": 16},
        "train": {"batch_size": 16, "iterations": iterations, "evaluations": 1}})


def test_a_gan_trial_longer_than_the_timeout_is_warned_of_naming_its_family_and_the_fix(write_study):
    """A StyleGAN2 study whose timeout held a fraction of one trial found out when the timeout cut it."""
    study = load_study(write_study(GAN.replace("ITERATIONS", "100000").replace("TIMEOUT", "60")))
    specs = [_spec("dcgan", 2), _spec("stylegan2", 100000)]   # the longest family's trial is the one said
    warning = gan_time_warning(study, _real(), specs)
    assert warning is not None and warning.startswith("one stylegan2 trial of this space takes about ")
    assert "more than budget.timeout=60 s: 100000 iterations at " in warning
    assert "Fix: raise budget.timeout, lower space.train.iterations" in warning
    roomy = load_study(write_study(GAN.replace("ITERATIONS", "2").replace("TIMEOUT", "1000000")))
    assert gan_time_warning(roomy, _real(), [_spec("dcgan", 2)]) is None


def test_the_estimate_is_within_a_factor_of_a_trials_own_training_time(write_study):
    """The estimate must track a real trial's training, not just exist: 40 DCGAN iterations timed for real.
    One thread: two threads on cores other processes also use (a benchmark beside the suite) ran 40x slower
    at moments, which no estimate of a few seconds can foresee."""
    study = load_study(write_study(GAN.replace("ITERATIONS", "40").replace("TIMEOUT", "60")))
    spec, real = _spec("dcgan", 40), _real()
    estimate = slowest_family(study, real, [spec])
    assert estimate is not None and estimate.spec is spec
    before = torch.get_num_threads()
    torch.set_num_threads(study.config.executor.local_threads)   # as the estimate ran, and a trial would
    try:
        reference = Reference(_Pooled(), (real.images + 1) / 2)
        result = train_gan(spec, real, reference, 0, lambda *args, **kwargs: None, lambda: False)
    finally:
        torch.set_num_threads(before)
    assert result.iterations == 40   # train_seconds: the iterations alone, not the evaluation
    assert 0.25 < estimate.iteration_seconds * 40 / result.train_seconds < 4, (estimate, result.train_seconds)
