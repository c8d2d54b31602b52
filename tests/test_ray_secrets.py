"""Ray executor with a PostgreSQL storage whose URL holds a password: the password stays out of what other people
on the machine or the cluster read, and a lost node's trial does not print Ray's traceback."""
from __future__ import annotations

import logging
import stat
import sys

import pytest

pytest.importorskip("ray")

from searchlab.config.load import load_study  # noqa: E402
from searchlab.engine.ray_cluster import start_ray  # noqa: E402
from searchlab.engine.ray_executor import _LostWorkerTracebacks  # noqa: E402
from searchlab.engine.run import run_study  # noqa: E402
from test_run import callable_study  # noqa: E402

PASSWORD = "Pw4AuditOnly"   # the throwaway server trusts 127.0.0.1, so any password opens it


@pytest.fixture(scope="module", autouse=True)
def one_ray_for_the_module():
    import ray

    ray.shutdown()
    yield
    ray.shutdown()


def _with_password(url: str) -> str:
    return url.replace("postgresql://searchlab@", f"postgresql://searchlab:{PASSWORD}@")


def test_the_ray_job_entrypoint_masks_a_password_given_with_set(monkeypatch):
    """Ray records the driver's command line (`ray list jobs`, the dashboard): a `--set storage=...` password
    was there in clear."""
    import ray
    from ray._private import utils

    command = f"{sys.executable} searchlab run s.yaml --set storage=postgresql://u:{PASSWORD}@127.0.0.1:5432/db"
    monkeypatch.setattr(utils, "get_entrypoint_name", lambda: command)
    start_ray(None)
    jobs = ray._private.worker.global_worker.gcs_client.get_all_job_info()
    entrypoints = [info.entrypoint for info in jobs.values()]
    assert any("--set storage=postgresql://u:***@127.0.0.1:5432/db" in e for e in entrypoints), entrypoints
    assert not any(PASSWORD in e for e in entrypoints), entrypoints


def test_tune_files_holding_the_storage_password_are_the_owners_only(write_study, postgres, tmp_path):
    """Tune's tuner.pkl (the pickled trainable, the study and its storage URL in it) was world-readable in
    run_dir/ray, while the README promises the password is masked everywhere but the owner-only searchlab.json."""
    extra = f"\nexecutor: {{kind: ray}}\nstorage: '{_with_password(postgres)}'\n"
    path = callable_study(write_study, n=1, extra=extra)
    path.write_text(path.read_text().replace("name: fake", "name: audit_pw_files"))
    run_study(load_study(path), progress=False)
    ray_dir = tmp_path / "run" / "ray"
    holding = [p for p in ray_dir.rglob("*") if p.is_file() and PASSWORD.encode() in p.read_bytes()]
    assert holding   # what the folder's mode protects
    assert stat.S_IMODE(ray_dir.stat().st_mode) & 0o077 == 0, oct(ray_dir.stat().st_mode)


def test_a_trial_handed_to_an_actor_of_a_lost_node_prints_no_ray_traceback():
    """A killed worker node: Tune's "Trial task failed" with ActorUnavailableError's 20-line stack was printed
    after the searcher's one line with the stored reason."""
    from ray.exceptions import ActorUnavailableError

    exc = ActorUnavailableError("RpcError: Socket closed", None)
    record = logging.LogRecord("ray.tune.execution.tune_controller", logging.ERROR, __file__, 1,
                               "Trial task failed for trial ray_trial_1", (), (type(exc), exc, None))
    assert _LostWorkerTracebacks().filter(record) is False
    other = logging.LogRecord("ray.tune.execution.tune_controller", logging.ERROR, __file__, 1,
                              "Trial task failed for trial ray_trial_2", (), (ValueError, ValueError("x"), None))
    assert _LostWorkerTracebacks().filter(other) is True


def test_a_cluster_listening_on_loopback_only_is_dialled_there(monkeypatch):
    """executor.address: "127.0.0.1:PORT" of a cluster listening on loopback only (as Ray's test cluster and a
    local Ray do): Ray rewrote it to this machine's network address, where nothing answers, and ray.init
    retried for good (observed > 6 minutes, a "Failed to connect to GCS" line every 30 s)."""
    import socket

    import ray
    from ray._private import ray_constants
    from ray._private.services import canonicalize_bootstrap_address, get_node_ip_address

    from searchlab.engine.ray_cluster import _check_reachable

    ray.shutdown()   # an initialized Ray answers with its own node's address (here 127.0.0.1)
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "1")   # recorded, so restored afterwards
    monkeypatch.delenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")
    monkeypatch.setattr(ray_constants, "ENABLE_RAY_CLUSTER", True)
    if get_node_ip_address() in ("127.0.0.1", "::1"):
        pytest.skip("this machine has no network address besides loopback")
    with socket.socket() as listener:   # a "GCS" on 127.0.0.1 only
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        _check_reachable(address)
        assert canonicalize_bootstrap_address(address) == address


def test_a_ctrl_c_swallowed_while_ray_starts_still_stops_the_run(write_study, tmp_path, monkeypatch):
    """Ctrl-C 4 s into `searchlab run` on a cluster landed in a weakref callback during Ray's start ("Exception
    ignored in: <function WeakKeyDictionary...> ... Interrupted: Ctrl-C"): the run went on, ran every trial and
    exited 0."""
    import signal

    import optuna

    from searchlab.engine import ray_executor, signals

    real_start = ray_executor.start_ray

    def start_and_swallow_a_ctrl_c(address):
        real_start(address)
        try:
            signals._request_stop(signal.SIGINT, None)
        except KeyboardInterrupt:
            pass   # as a callback's "Exception ignored" does

    monkeypatch.setattr(ray_executor, "start_ray", start_and_swallow_a_ctrl_c)
    result = run_study(load_study(callable_study(write_study, n=2, extra="\nexecutor: {kind: ray}\n")), progress=False)
    assert result.interrupted and result.exit_code == 130
    trials = optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials
    assert trials == []
