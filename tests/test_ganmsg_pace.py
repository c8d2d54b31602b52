"""The GAN time estimate was one timed iteration: `steady_seconds` stopped after 2 calls once the budget had
passed, and the second call of a fresh process spiked (0.76, 3.34, 0.29, 0.25, 0.13 s), so a trial of at most
0.74 s an iteration was said to take 3.06 s each. Now 3-5 calls after the warm-up are timed, within a bound."""
from __future__ import annotations

import time

import torch

from searchlab.tasks import gan_pace
from searchlab.tasks.generate_config import GenerateTrialConfig
from searchlab.tasks.pace import steady_seconds
from test_gan_pace import _real


def _sleeps(*seconds: float, then: float):
    """A step sleeping the given seconds on its first calls, `then` on every later one; it counts its calls."""
    calls: list[float] = []

    def step(*_args, **_kwargs) -> None:
        calls.append(seconds[len(calls)] if len(calls) < len(seconds) else then)
        time.sleep(calls[-1])

    return step, calls


def test_a_spike_on_the_second_iteration_is_not_the_gan_estimate(monkeypatch):
    step, calls = _sleeps(0.1, 0.5, then=0.02)   # warm-up, spike, steady
    monkeypatch.setattr(gan_pace, "train_iteration", step)
    monkeypatch.setattr(gan_pace, "ITERATION_SECONDS", 0.2)
    spec = GenerateTrialConfig.model_validate({
        "gan": {"family": "dcgan", "latent": 16, "g_width": 16, "d_width": 16},
        "train": {"batch_size": 16, "iterations": 100, "evaluations": 1}})
    estimate = gan_pace._estimate(spec, _real(), torch.get_num_threads())
    assert estimate is not None and 0.015 <= estimate.iteration_seconds < 0.1, (estimate, calls)
    assert len(calls) >= 1 + gan_pace.ITERATIONS_TIMED


def test_a_slow_step_is_timed_three_times_after_its_warm_up_and_no_more_past_the_ceiling():
    from searchlab.tasks.pace import SLOW_TIMED

    step, calls = _sleeps(0.2, 0.6, then=0.1)   # every call past the budget, the spike past the ceiling
    started = time.perf_counter()
    seconds = steady_seconds(step, budget=0.05, fewest=5, ceiling=0.3)
    assert len(calls) == 1 + SLOW_TIMED and 0.09 <= seconds < 0.2, (calls, seconds)
    assert time.perf_counter() - started < 1.5   # bounded: not the 5 timed calls a fast step gets
    fast, calls = _sleeps(then=0.0)
    assert steady_seconds(fast, budget=0.05, fewest=5, most=7) < 0.01 and len(calls) == 7   # `most` still caps


def test_the_classify_pace_keeps_its_one_timed_call_past_the_budget():
    step, calls = _sleeps(0.2, 0.15, then=0.1)
    assert 0.15 <= steady_seconds(step, budget=0.1) < 0.2 and len(calls) == 2
