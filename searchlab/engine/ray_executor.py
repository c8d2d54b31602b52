"""`executor: {kind: ray}`: trials scheduled by Ray Tune, the Optuna study still the source of truth.

The driver keeps the Optuna study with the strategy's sampler. A Ray Tune searcher asks it for each trial
(so the parameters exist in the storage before the trial runs), hands Tune only the trial's id, and tells
the study the outcome: COMPLETE with its values, PRUNED, or FAIL. On a Ray worker, the trainable reopens the
storage, binds `optuna.trial.Trial(study, trial_id)` and runs the same objective as the local executor, so
params, values, intermediate values, user attrs and artifacts land exactly as locally, plus the Ray node
(`ray_node`, `ray_node_ip`). The study's Optuna pruner prunes on the worker from the intermediate values.

No address starts a Ray on this machine bound to 127.0.0.1 with its dashboard off; "auto" or "host:port"
joins a running cluster (then the storage must be reachable from every node: PostgreSQL or a shared
journal file, and the artifacts on a shared path).
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from searchlab.config.load import Study
from searchlab.engine.worker import Budget, open_optuna_study
from searchlab.errors import SearchlabError

# Tune flattens nested results for searchers, so the outcome travels as flat keys
STATE, VALUES = "searchlab_state", "searchlab_values"


def start_ray(address: str | None) -> None:
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")   # Ray 2.60's default token auth: off for a local Ray
    if address is None:
        # Measured with Ray 2.60: without this, a local Ray advertises the machine's network address and its
        # raylet/GCS listen on all interfaces even with _node_ip_address="127.0.0.1"; with it, loopback only.
        # Ray reads the variable when it is imported, so the constant is set too (the processes it starts
        # read the variable); tests/test_ray_executor.py checks the listening addresses.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False
        # workers import what this process can (plug-ins named "module:Class", the study's callable task)
        path = os.pathsep.join(p for p in sys.path if p)
        ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
                 configure_logging=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
        return
    fix = "Fix: start one (ray start --head on the head node) or leave address out for a local Ray"
    _check_reachable(address, fix)
    try:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    except ConnectionError as exc:
        raise SearchlabError(f"cannot reach the Ray cluster at executor.address={address!r} ({exc}). {fix}") from None


def _check_reachable(address: str, fix: str) -> None:
    """A "host:port" that refuses connections fails in seconds (ray.init would keep retrying for minutes)."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return   # "auto" or a ray:// URL: Ray resolves it
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise SearchlabError(f"cannot reach the Ray cluster at executor.address={address!r} ({exc}). {fix}") from None


def run_ray(study: Study, deadline: float | None,
            on_trial: Callable[[optuna.Study, FrozenTrial], None] | None = None) -> None:
    from ray import tune

    ex = study.config.executor
    start_ray(ex.address)
    ostudy = open_optuna_study(study)
    searcher = _OptunaSearcher(study, ostudy, deadline, on_trial)
    resources = {"cpu": ex.resources_per_trial.cpu, "gpu": ex.resources_per_trial.gpu}
    trainable = tune.with_resources(tune.with_parameters(ray_trial, study=study, deadline=deadline), resources)
    tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(
        search_alg=searcher, num_samples=-1, max_concurrent_trials=ex.max_concurrent, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str((study.run_dir / "ray").resolve()), verbose=0))
    tuner.fit()


def ray_trial(config: dict[str, Any], study: Study, deadline: float | None) -> None:
    """One searchlab trial on a Ray worker (the trial exists already; the driver tells its outcome)."""
    import ray
    from ray import tune

    from searchlab.engine.objective import make_objective
    from searchlab.engine.storage import artifact_store
    from searchlab.engine.worker import limit_threads
    from searchlab.tasks import get_task

    limit_threads(study)
    ostudy = open_optuna_study(study)
    trial = optuna.trial.Trial(ostudy, config["trial_id"])
    node = ray.get_runtime_context().get_node_id()
    trial.set_user_attr("ray_node", node)
    trial.set_user_attr("ray_node_ip", next((n["NodeManagerAddress"] for n in ray.nodes() if n["NodeID"] == node), None))
    objective = make_objective(study, get_task(study.config.task), artifact_store(study.run_dir), deadline)
    outcome: dict[str, Any] = {STATE: "FAIL", VALUES: "[]"}
    try:
        values = objective(trial)
        outcome = {STATE: "COMPLETE", VALUES: json.dumps(list(values) if isinstance(values, (list, tuple)) else [values])}
    except optuna.TrialPruned:
        outcome[STATE] = "PRUNED"
    except Exception:   # the objective stored the error and traceback on the trial
        pass
    tune.report(outcome)


class _OptunaSearcher:
    """Built lazily as a ray.tune.search.Searcher subclass (ray is an optional import)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        from ray.tune.search import Searcher

        class OptunaSearcher(Searcher):
            def __init__(self, study: Study, ostudy: optuna.Study, deadline: float | None,
                         on_trial: Callable[[optuna.Study, FrozenTrial], None] | None) -> None:
                super().__init__()
                self.study, self.ostudy, self.deadline, self.on_trial = study, ostudy, deadline, on_trial
                self.budget = Budget(study)
                self.asked: dict[str, optuna.Trial] = {}

            def suggest(self, trial_id: str) -> dict[str, Any] | None:
                if (self.deadline is not None and time.time() >= self.deadline) or not self.budget.left(self.ostudy):
                    return Searcher.FINISHED
                from searchlab.space import sample_config

                trial = self.ostudy.ask()
                sample_config(trial, self.study.space)   # the strategy's parameters, stored before the trial runs
                self.asked[trial_id] = trial
                return {"trial_id": trial._trial_id}

            def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
                trial = self.asked.pop(trial_id, None)
                if trial is None:
                    return
                state = (result or {}).get(STATE, "FAIL")
                if state == "COMPLETE":
                    frozen = self.ostudy.tell(trial, json.loads(result[VALUES]))
                else:
                    stored = self.ostudy._storage.get_trial(trial._trial_id).user_attrs   # the worker's writes
                    if state == "FAIL" and "error" not in stored:
                        trial.set_user_attr("error", "the Ray worker running this trial died or raised")
                    frozen = self.ostudy.tell(trial, state=TrialState[state])
                if self.on_trial is not None:
                    self.on_trial(self.ostudy, frozen)

        return OptunaSearcher(*args, **kwargs)
