"""executor: {kind: ray} on a real local Ray (127.0.0.1 only): the Optuna study stays the source of truth."""
from __future__ import annotations

import subprocess

import optuna
import pytest
from optuna.trial import TrialState

pytest.importorskip("ray")

from searchlab.config.load import load_study  # noqa: E402
from searchlab.engine.run import run_study  # noqa: E402
from searchlab.errors import SearchlabError  # noqa: E402
from test_run import callable_study  # noqa: E402

RAY = "\nexecutor: {kind: ray, max_concurrent: 2}\n"


@pytest.fixture(scope="module", autouse=True)
def one_ray_for_the_module():
    import ray

    yield
    ray.shutdown()


def _trials(tmp_path):
    return optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials


def test_trials_land_in_the_optuna_study_with_their_ray_node(write_study, tmp_path):
    import ray

    run_study(load_study(callable_study(write_study, n=4, extra=RAY)), progress=False)
    trials = _trials(tmp_path)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    for trial in trials:
        assert trial.value == pytest.approx((trial.params["x"] - 1) ** 2)
        assert sorted(trial.intermediate_values) == [0, 1, 2]                 # per-step reports, as locally
        assert trial.user_attrs["ray_node_ip"] == "127.0.0.1" and trial.user_attrs["ray_node"]
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}


def test_the_local_ray_listens_on_loopback_only(write_study, tmp_path):
    run_study(load_study(callable_study(write_study, n=1, extra=RAY)), progress=False)
    pids = subprocess.run(["pgrep", "-f", "raylet|gcs_server"], capture_output=True, text=True).stdout.split()
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout.splitlines()
    addresses = [line.split()[3] for line in listening if any(f"pid={pid}," in line for pid in pids)]
    assert addresses and all("127.0.0.1" in address for address in addresses), addresses


def test_a_failing_trial_fails_alone_with_its_reason(write_study, tmp_path):
    run_study(load_study(callable_study(write_study, fn="fails_when_positive", n=3, extra=RAY)), progress=False)
    trials = _trials(tmp_path)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert all(t.params["x"] > 0 and "is positive" in t.user_attrs["error"] for t in failed)
    assert all(t.params["x"] <= 0 and t.value == t.params["x"] ** 2 for t in complete)
    assert failed and len(failed) + len(complete) == len(trials)    # nothing left RUNNING or lost
    assert len(complete) == 3 or len(failed) >= 3                   # the budget, or the failure cap (max_failed)


def test_an_unreachable_cluster_is_named_with_the_fix(write_study):
    import ray

    ray.shutdown()
    extra = "\nexecutor: {kind: ray, address: '127.0.0.1:1'}\n"
    with pytest.raises(SearchlabError, match="cannot reach the Ray cluster at executor.address='127.0.0.1:1'"):
        run_study(load_study(callable_study(write_study, n=1, extra=extra)), progress=False)
