"""Ray's median stopping rule fitted to searchlab's trials (imported only by a Ray run: ray is optional)."""
from __future__ import annotations

from typing import Any

from ray.tune.schedulers import MedianStoppingRule, TrialScheduler


class EpochMedianStoppingRule(MedianStoppingRule):
    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        # A trial ends on its outcome report (ray_worker.ray_trial), which has no metric and is no epoch:
        # Ray's rule kept it unchecked and read its metric later, a KeyError ending the whole run as soon
        # as trials differed in length (early stopping) or one failed. Its epochs are in already.
        if result and self._metric in result:
            super().on_trial_complete(tune_controller, trial, result)

    def _on_insufficient_samples(self, tune_controller: Any, trial: Any, time: float) -> str:
        # Ray pauses a trial too few others have reached the epoch of, while others wait: ours keep no
        # Tune checkpoint, so a paused trial would start again from epoch 0 when resumed. It goes on.
        return TrialScheduler.CONTINUE
