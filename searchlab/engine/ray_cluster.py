"""Starting or joining the Ray cluster for `executor: {kind: ray}`, and checking it fits the study before any trial.

No address starts a Ray on this machine bound to 127.0.0.1 with its dashboard off (users run this on laptops);
"auto" or "host:port" joins a running cluster. Before a trial is asked, the cluster is checked: some node
can hold `resources_per_trial`, and with several nodes the storage is one every node can open (not a local
SQLite file) and does open from every node.
"""
from __future__ import annotations

import math
import os
import socket
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from searchlab.config.load import Study
from searchlab.config.schema import usable_cores
from searchlab.errors import SearchlabError, shown_url

START_A_CLUSTER = ("Fix: start one (`ray start --head` on the head node, `ray start --address=HEAD:6379` on the "
                   "others) or leave executor.address out for a Ray on this machine")
STORAGE_CHECK_SECONDS = 120


def start_ray(address: str | None) -> None:
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")   # Ray 2.60's default token auth: off for a local Ray
    _quiet_worker_deaths()
    if address is None:
        _keep_on_loopback()
        with _masked_entrypoint():
            # the cores this process may use (taskset, a container's cpuset), not the machine's: Ray counted
            # every core and ran twice the trials one core could
            ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
                     configure_logging=False, runtime_env=_worker_env(), num_cpus=usable_cores())
        return
    _check_reachable(address)
    try:
        with _masked_entrypoint():
            ray.init(address=address, log_to_driver=False, configure_logging=False, runtime_env=_worker_env())
    except ConnectionError as exc:
        raise SearchlabError(f"cannot reach the Ray cluster at executor.address={address!r} ({exc}). "
                             f"{START_A_CLUSTER}") from None


# How the raylet says a worker died (its pushed error, which the driver printed with a colour-coded "(raylet)"
# prefix, log_to_driver=False or not): searchlab says the trial failed, and where Ray's logs are, in its own line
RAY_WORKER_DIED = "A worker died or was killed"


def _quiet_worker_deaths() -> None:
    """Keep the raylet's worker-death errors off the driver's output. Ray 2.60 prints every error the raylet
    pushes (listen_error_messages, a thread of every driver) through ray._private.worker.print_to_stdstream,
    looked up at each call: wrapped here to drop those lines (they stay in Ray's session logs); any other
    pushed error is still printed. A Ray without that function (private API) is left as it is."""
    from ray._private import worker

    printer = getattr(worker, "print_to_stdstream", None)
    if printer is None or getattr(printer, "searchlab_quiet", False):
        return

    def print_to_stdstream(data: dict[str, Any], ignore_prefix: bool) -> None:
        from_raylet = data.get("pid") == "raylet"
        lines = [line for line in data.get("lines", [])
                 if not (from_raylet and str(line).startswith(RAY_WORKER_DIED))]
        if lines:
            printer({**data, "lines": lines}, ignore_prefix)

    print_to_stdstream.searchlab_quiet = True   # type: ignore[attr-defined]
    worker.print_to_stdstream = print_to_stdstream


@contextmanager
def _masked_entrypoint() -> Iterator[None]:
    """Ray records the driver's command line as its job's entrypoint, shown to everyone on the cluster (`ray list
    jobs`, the dashboard's Jobs page): a password given as `--set storage=postgresql://user:pw@...` is masked
    there as everywhere else."""
    from ray._private import utils

    original = getattr(utils, "get_entrypoint_name", None)
    if original is None:   # a Ray that records its entrypoint otherwise (private API): left as it is
        yield
        return
    utils.get_entrypoint_name = lambda: _shown_command(original())
    try:
        yield
    finally:
        utils.get_entrypoint_name = original


def _shown_command(command: str) -> str:
    """Each word of a command line with a URL's password masked (also in `key=URL` words)."""
    def masked(word: str) -> str:
        key, equals, value = word.partition("=")
        if equals and "://" in value and "://" not in key:
            return key + equals + shown_url(value)
        return shown_url(word)

    return " ".join(masked(word) for word in command.split(" "))


def _keep_on_loopback() -> None:
    """Measured with Ray 2.60: without this, a local Ray advertises the machine's network address and its
    raylet/GCS listen on all interfaces even with _node_ip_address="127.0.0.1"; with it, loopback only.
    Ray reads the variable when it is imported, so the constant is set too (the processes it starts read the
    variable); tests/test_ray_executor.py checks the listening addresses."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def _worker_env() -> dict[str, Any]:
    """Workers import what this process imports from outside the installed packages (the study's folder,
    plug-ins named "module:Class", a callable task): those path entries go on the workers' PYTHONPATH.
    Installed packages (searchlab itself) must be installed on every node; paths of this Python's own
    installation are left out, so a node with another Python layout is not handed foreign site-packages."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    own = [p for p in sys.path if p and not any(os.path.realpath(p).startswith(x) for x in prefixes)]
    extra = [os.path.realpath(p) for p in own if os.path.isdir(p)]
    inherited = os.environ.get("PYTHONPATH")
    return {"env_vars": {"PYTHONPATH": os.pathsep.join(extra + ([inherited] if inherited else []))}}


def _check_reachable(address: str) -> None:
    """A "host:port" that refuses connections fails in seconds (ray.init would keep retrying for minutes)."""
    if not address.rpartition(":")[0]:
        return   # "auto": Ray finds the cluster started on this machine
    if refused := _connect_error(address):
        raise SearchlabError(f"cannot reach the Ray cluster at executor.address={address!r} ({refused}). "
                             f"{START_A_CLUSTER}") from None
    try:
        from ray._private.services import canonicalize_bootstrap_address
    except ImportError:   # a Ray without this private helper: dialled as it dials
        return
    # Ray dials 127.0.0.1/localhost as this machine's network address; a cluster listening on loopback only
    # (started with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, as a local Ray is) never answered there, and ray.init
    # retried for good, printing "Failed to connect to GCS at address <ip>:<port>" every 30 s
    dialled = canonicalize_bootstrap_address(address)
    if dialled and dialled != address and _connect_error(dialled):
        _keep_on_loopback()


def _connect_error(address: str) -> OSError | ValueError | None:
    """Why a TCP connection to "host:port" fails within 5 s, or None when something answers there."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except (OSError, ValueError) as exc:
        return exc
    return None


def alive_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def check_cluster(study: Study) -> None:
    """Refuse, before any trial, a study this cluster cannot run (each message names the value and the fix)."""
    nodes = alive_nodes()
    check_resources_fit(study, nodes)
    if study.config.executor.address is None:
        return   # the local Ray: one node, this machine, the same files
    if len(nodes) > 1 and study.storage_url.startswith("sqlite"):
        raise SearchlabError(
            f"storage {study.storage_url!r} is an SQLite file, but the Ray cluster at executor.address="
            f"{study.config.executor.address!r} has {len(nodes)} nodes: trials on other machines cannot write "
            "to it, and SQLite's locking is not safe on network file systems. Fix: storage: a PostgreSQL URL "
            "every node reaches (postgresql://user@host/db), or journal:///path on a file system every node "
            "mounts at the same path")
    check_storage_from_every_node(study, nodes)
    if len(nodes) > 1:
        check_run_dir_from_every_node(study, nodes)


def _capacity(node: dict[str, Any]) -> tuple[float, float]:
    return node["Resources"].get("CPU", 0.0), node["Resources"].get("GPU", 0.0)


def trial_slots(study: Study, nodes: list[dict[str, Any]]) -> int:
    """How many trials of resources_per_trial the nodes run side by side (a trial never spans two nodes)."""
    want = study.config.executor.resources_per_trial

    def fits(have: float, need: float) -> float:
        return math.floor(have / need + 1e-9) if need > 0 else math.inf

    return int(sum(min(fits(cpu, want.cpu), fits(gpu, want.gpu)) for cpu, gpu in map(_capacity, nodes)))


def check_resources_fit(study: Study, nodes: list[dict[str, Any]]) -> None:
    want = study.config.executor.resources_per_trial
    if any(cpu >= want.cpu and gpu >= want.gpu for cpu, gpu in map(_capacity, nodes)):
        return
    largest = max(nodes, key=_capacity)
    cpu, gpu = _capacity(largest)
    raise SearchlabError(
        f"executor.resources_per_trial asks for {{cpu: {want.cpu:g}, gpu: {want.gpu:g}}} per trial, more than "
        f"any node of the Ray cluster has: the largest, {largest['NodeManagerAddress']}, has {cpu:g} CPUs and "
        f"{gpu:g} GPUs ({len(nodes)} node(s)). Fix: lower resources_per_trial or add a node that large")


def check_storage_from_every_node(study: Study, nodes: list[dict[str, Any]]) -> None:
    """Each node opens the study in the storage, as its trials will (a task pinned to the node)."""
    for node, problem in _on_every_node(nodes, _open_study_here, study.storage_url, study.config.name):
        _storage_unreachable(study, node, problem)


def check_run_dir_from_every_node(study: Study, nodes: list[dict[str, Any]], probe: Path | None = None) -> None:
    """Each node sees a file the driver writes in run_dir: trials store their checkpoints there, and on a
    node's own disk they stay on that node (the export cannot find the winner's weights; keep_checkpoints
    deletes nothing there, and its disk fills)."""
    written = probe is None
    probe = probe or study.run_dir.resolve() / f".node-probe-{uuid.uuid4().hex}"
    if written:
        probe.parent.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
    try:
        for node, problem in _on_every_node(nodes, _sees_file_here, str(probe)):
            raise SearchlabError(
                f"Ray node {node['NodeManagerAddress']} does not see the run folder {study.run_dir.resolve()} "
                f"(run_dir) as this machine does: {problem}. Its trials' checkpoints would stay on that node, "
                "out of reach of the export. Fix: run_dir on a file system every node mounts at the same path")
    finally:
        if written:
            probe.unlink(missing_ok=True)


def _on_every_node(nodes: list[dict[str, Any]], check: Any, *args: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """(node, problem) for each node where `check(*args)`, run there as a task pinned to it, names one."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0)(check)
    pending = {probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
               .remote(*args): n for n in nodes}
    ready, late = ray.wait(list(pending), num_returns=len(pending), timeout=STORAGE_CHECK_SECONDS)
    for ref in late:
        yield pending[ref], f"no answer within {STORAGE_CHECK_SECONDS} s"
    for ref in ready:
        try:
            problem = ray.get(ref)
        except Exception as exc:   # e.g. the task could not even be loaded there: searchlab not installed
            problem = (f"the check could not run there: {str(exc).strip().splitlines()[-1]}; install searchlab "
                       "on every node")
        if problem:
            yield pending[ref], problem


def _sees_file_here(path: str) -> str | None:
    """Runs on a node: None if the driver's probe file is there, else what is missing."""
    return None if os.path.exists(path) else f"the file {path} the driver wrote there is missing"


def _open_study_here(url: str, name: str) -> str | None:
    """Runs on a node: None if the study opens there, else why not."""
    from searchlab.engine.storage import open_storage

    if url.startswith("journal://") and not os.path.exists(url.removeprefix("journal://")):
        return "the journal file does not exist there (not a shared path)"
    try:
        storage = open_storage(url)
        storage.get_study_id_from_name(name)
    except Exception as exc:   # a StorageError, or the study missing from a different database
        return str(exc).splitlines()[0]
    return None


# A node's trials open the storage with the environment its Ray was started with, not the driver's
NODE_PASSWORD_FIX = ("start each node's Ray with the password in its environment (PGPASSWORD=... ray start ...), or "
                     "give each node's user a ~/.pgpass (host:port:database:user:password, mode 0600); not through "
                     "Ray's runtime_env, which everyone on the cluster can read")


def _storage_unreachable(study: Study, node: dict[str, Any], problem: str) -> None:
    from searchlab.engine.storage import is_auth_failure

    # The storage's own fix (in `problem`) is written for this machine: the node's fix replaces it
    problem = problem.partition(". Fix: ")[0]
    fix = NODE_PASSWORD_FIX if is_auth_failure(problem) else (
        "use a storage every node reaches under the same URL (a PostgreSQL server address the nodes can connect "
        "to, not localhost; or journal:///path on a shared file system), its driver installed on every node "
        "(PostgreSQL: pip install 'searchlab[postgres]')")
    raise SearchlabError(f"Ray node {node['NodeManagerAddress']} cannot open the study '{study.config.name}' in "
                         f"storage {shown_url(study.storage_url)!r}: {problem}. Fix: {fix}")
