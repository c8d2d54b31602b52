"""executor: {kind: ray, address: ...} joining a real two-node Ray cluster on this machine, with the study in a
real PostgreSQL server. Everything stays on 127.0.0.1: Ray's own test cluster (ray.cluster_utils.Cluster)
with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 keeps both nodes on loopback."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

pytest.importorskip("ray")

from searchlab.config.load import load_study  # noqa: E402
from searchlab.engine.ray_cluster import check_storage_from_every_node  # noqa: E402
from searchlab.engine.ray_executor import WORKER_DIED  # noqa: E402
from searchlab.engine.run import run_study  # noqa: E402
from searchlab.engine.storage import open_storage  # noqa: E402
from searchlab.errors import SearchlabError  # noqa: E402
from test_ray_executor import ray_listening_addresses  # noqa: E402
from test_run import callable_study  # noqa: E402


@pytest.fixture(scope="module")
def two_nodes():
    """A head and a second node with one CPU each: two concurrent one-CPU trials need both."""
    import ray
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    ray.shutdown()
    saved = {k: os.environ.get(k) for k in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_AUTH_MODE")}
    os.environ.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_AUTH_MODE="disabled")
    ray_constants.ENABLE_RAY_CLUSTER = False
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster
    ray.shutdown()
    cluster.shutdown()
    for key, value in saved.items():
        os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)


def _study(write_study, two_nodes, name, storage, fn="quadratic", n=4, sleep=0.0, space_extra="",
           concurrent=2):
    limit = f", max_concurrent: {concurrent}" if concurrent else ""
    extra = (f"\nexecutor: {{kind: ray, address: '{two_nodes.address}'{limit}}}\n"
             + (f"storage: '{storage}'\n" if storage else ""))
    text = callable_study(write_study, fn=fn, n=n, sleep=sleep, extra=extra).read_text().replace("name: fake", f"name: {name}")
    return write_study(text.replace("space:\n", "space:\n" + space_extra), name=f"{name}.yaml")


def _trials(postgres, name):
    return optuna.load_study(study_name=name, storage=open_storage(postgres)).get_trials()


def test_both_nodes_run_trials_of_one_postgresql_study(write_study, two_nodes, postgres):
    import ray

    path = _study(write_study, two_nodes, "two_nodes", postgres, n=6, sleep=0.5)
    run_study(load_study(path), progress=False)
    trials = _trials(postgres, "two_nodes")
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 6
    assert sorted(t.number for t in trials) == list(range(6))
    assert len({t.user_attrs["ray_node"] for t in trials}) == 2          # both nodes ran trials
    assert {t.user_attrs["ray_node_ip"] for t in trials} == {"127.0.0.1"}
    assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    addresses = ray_listening_addresses()   # two raylets and the GCS, on loopback only
    assert len(addresses) >= 3 and all("127.0.0.1" in address for address in addresses), addresses
    for trial in trials:
        assert sorted(trial.intermediate_values) == [0, 1, 2] and trial.value == (trial.params["x"] - 1) ** 2


def test_a_killed_worker_fails_its_trial_which_is_retried_and_nothing_is_lost(write_study, two_nodes, postgres,
                                                                                tmp_path):
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    path = _study(write_study, two_nodes, "killed", postgres, fn="slow_with_pid_file", n=4,
                  sleep=2.0, space_extra=f"  pid_dir: '{pid_dir}'\n")
    killed: list[int] = []
    threading.Thread(target=_kill_first_trial_process, args=(pid_dir, killed), daemon=True).start()
    run_study(load_study(path), progress=False)
    trials = _trials(postgres, "killed")
    failed = [t for t in trials if t.state == TrialState.FAIL]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert killed and len(failed) == 1 and failed[0].user_attrs["error"] == WORKER_DIED
    assert len(complete) == 4 and len(trials) == 5                  # the budget, nothing left RUNNING
    retry = next(t for t in complete if t.user_attrs.get("retry_of") == failed[0].number)
    assert retry.params == failed[0].params and "error" not in retry.user_attrs    # its config ran again
    assert len({t.number for t in trials}) == len(trials)            # no duplicated trial


def _kill_first_trial_process(pid_dir: Path, killed: list[int]) -> None:
    deadline = time.time() + 240   # the first trial starts late when the 2 cores are also busy with other work
    while time.time() < deadline and not (pid_dir / "0.pid").exists():
        time.sleep(0.05)
    time.sleep(0.3)   # mid-trial: the pid file is written first, then the trial works for 2 s
    pid = int((pid_dir / "0.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    killed.append(pid)


def test_an_sqlite_study_on_a_multi_node_cluster_is_refused_with_the_reason(write_study, two_nodes):
    path = _study(write_study, two_nodes, "lite", storage=None)
    with pytest.raises(SearchlabError, match=r"is an SQLite file, but the Ray cluster at executor.address=.* has 2 "
                                             r"nodes.*Fix: storage: a PostgreSQL URL"):
        run_study(load_study(path), progress=False)


def test_a_storage_the_nodes_cannot_open_is_named_with_the_node(write_study, two_nodes, postgres):
    import ray

    study = load_study(_study(write_study, two_nodes, "unreachable", "postgresql://nobody@127.0.0.1:1/x"))
    ray.init(address=two_nodes.address, ignore_reinit_error=True)
    with pytest.raises(SearchlabError, match=r"Ray node 127.0.0.1 cannot open the study 'unreachable' in storage "
                                             r"'postgresql://nobody@127.0.0.1:1/x': cannot open storage"):
        check_storage_from_every_node(study, [n for n in ray.nodes() if n["Alive"]])


def test_a_run_dir_a_node_does_not_see_is_refused_naming_the_node(write_study, two_nodes, tmp_path):
    """Checkpoints written in a run_dir on a worker node's own disk stayed there, out of the export's reach."""
    import ray

    from searchlab.engine.ray_cluster import check_run_dir_from_every_node

    study = load_study(_study(write_study, two_nodes, "rundir", f"journal://{tmp_path / 'shared' / 'j.log'}"))
    ray.init(address=two_nodes.address, ignore_reinit_error=True)
    nodes = [n for n in ray.nodes() if n["Alive"]]
    check_run_dir_from_every_node(study, nodes)   # one machine: every node sees the driver's file
    assert not list(study.run_dir.glob(".node-probe-*"))
    with pytest.raises(SearchlabError, match=r"Ray node 127.0.0.1 does not see the run folder .* \(run_dir\) as this "
                                             r"machine does: the file .*elsewhere.* is missing.*Fix: run_dir on a file "
                                             r"system every node mounts"):
        check_run_dir_from_every_node(study, nodes, probe=tmp_path / "elsewhere")   # as a node's own disk would


def test_a_journal_file_on_a_shared_path_serves_a_multi_node_study(write_study, two_nodes, tmp_path):
    journal = tmp_path / "shared" / "study.log"     # one machine: every node sees the same path
    path = _study(write_study, two_nodes, "journal", f"journal://{journal}", n=4, sleep=0.3)
    run_study(load_study(path), progress=False)
    trials = optuna.load_study(study_name="journal", storage=open_storage(f"journal://{journal}")).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert len({t.user_attrs["ray_node"] for t in trials}) == 2


def test_without_max_concurrent_the_trials_fill_every_node_at_once(write_study, two_nodes, tmp_path):
    """Trials far shorter than an actor's start: only if Tune starts both trials at once does the second node
    get one (one pending trial at a time, the first actor finishes and is reused before the second starts)."""
    journal = tmp_path / "shared" / "study.log"
    path = _study(write_study, two_nodes, "filled", f"journal://{journal}", n=4, sleep=0.05, concurrent=None)
    run_study(load_study(path), progress=False)
    trials = optuna.load_study(study_name="filled", storage=open_storage(f"journal://{journal}")).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert len({t.user_attrs["ray_node"] for t in trials}) == 2
