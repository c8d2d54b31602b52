"""executor: {kind: ray} on a real local Ray (127.0.0.1 only): the Optuna study stays the source of truth."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

pytest.importorskip("ray")

from searchlab.config.load import load_study  # noqa: E402
from searchlab.engine.run import run_study  # noqa: E402
from searchlab.errors import SearchlabError  # noqa: E402
from test_run import TINY_CLASSIFY, callable_study  # noqa: E402

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
    addresses = ray_listening_addresses()
    assert addresses and all("127.0.0.1" in address for address in addresses), addresses


def ray_listening_addresses() -> list[str]:
    """host:port of every TCP listener of the Ray raylets and GCS servers on this machine."""
    pids = subprocess.run(["pgrep", "-f", "raylet|gcs_server"], capture_output=True, text=True).stdout.split()
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout.splitlines()
    return [line.split()[3] for line in listening if any(f"pid={pid}," in line for pid in pids)]


def test_a_failing_trial_fails_alone_with_its_reason(write_study, tmp_path):
    run_study(load_study(callable_study(write_study, fn="fails_when_positive", n=3, extra=RAY)), progress=False)
    trials = _trials(tmp_path)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert all(t.params["x"] > 0 and "is positive" in t.user_attrs["error"] for t in failed)
    assert all(t.params["x"] <= 0 and t.value == t.params["x"] ** 2 for t in complete)
    assert failed and len(failed) + len(complete) == len(trials)    # nothing left RUNNING or lost
    assert len(complete) == 3 or len(failed) >= 3                   # the budget, or the failure cap (max_failed)


def test_a_trial_failing_while_the_budget_is_in_flight_is_replaced(write_study, tmp_path):
    """With n_trials trials running the searcher said FINISHED, which Tune never asks again: a trial of that
    last wave that failed (or whose worker died and was queued again) left the study short of n_trials."""
    # no max_concurrent: Tune then asks the searcher for more while both trials run (its limiter would not)
    path = callable_study(write_study, fn="only_trial_1_fails", n=2, sleep=3.0, extra="\nexecutor: {kind: ray}\n")
    run_study(load_study(path), progress=False)
    states = [t.state for t in _trials(tmp_path)]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]


def test_a_plugin_strategys_bad_draw_fails_that_trial_not_the_ray_run(write_study, tmp_path):
    """Sampling happens in the searcher: its error went out of Tune's fit and ended the run (trials in flight
    left RUNNING); locally it fails that one trial."""
    path = callable_study(write_study, n=3, extra=RAY)
    path.write_text(path.read_text().replace("strategy: random", 'strategy: {class: "strategy_plugins:OutOfRange"}'))
    run_study(load_study(path), progress=False)
    trials = _trials(tmp_path)
    assert [t.state for t in trials] == [TrialState.FAIL] * 3   # the failure cap (max_failed: n_trials)
    assert all(t.user_attrs["error"].startswith("StrategyError: strategy 'strategy_plugins:OutOfRange' proposed x=30")
               for t in trials)


def test_a_trial_past_its_time_limit_is_killed_and_failed_with_the_reason(write_study, tmp_path):
    """Tune reads its stop criteria at reports only: a hang held its slot and the run forever."""
    text = callable_study(write_study, fn="hangs_when_positive", n=6, extra=RAY).read_text()
    # 3 s: the limit counts from the objective's start on its worker, where a config that does not hang returns at once
    extra = "budget: {n_trials: 6, trial_timeout: 3, max_failed: 2}\n"
    started = time.time()
    run_study(load_study(write_study(text.replace("budget: {n_trials: 6}\n", "") + extra)), progress=False)
    trials = _trials(tmp_path)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert time.time() - started < 120 and len(failed) + len(complete) == len(trials)
    assert failed and all(t.params["x"] > 0 for t in failed)
    assert all(t.user_attrs["error"].startswith("exceeded budget.trial_timeout=3 s: its Ray worker") for t in failed)
    assert all("retry_of" not in t.user_attrs for t in trials)           # a hang is not retried
    assert all(t.params["x"] <= 0 for t in complete) and (len(complete) == 6 or len(failed) >= 2)   # 2 at once


def test_a_ray_scheduler_stops_bad_trials_and_they_are_recorded_pruned(write_study, tmp_path):
    extra = ("\nexecutor: {kind: ray, max_concurrent: 2, scheduler: {kind: asha, grace_period: 1, "
             "reduction_factor: 2}}\nbudget: {n_trials: 8, epochs: 10}\n")
    text = callable_study(write_study, fn="learning_curve", n=8, extra=extra).read_text()
    path = write_study(text.replace("budget: {n_trials: 8}\n", "").replace("pruner: none\n", ""))
    run_study(load_study(path), progress=False)
    trials = _trials(tmp_path)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(pruned) + len(complete) == len(trials) == 8 and pruned and complete
    for trial in pruned:   # stopped at an ASHA rung (1, 2, 4, 8 epochs), with its curve up to there
        stopped_at = max(trial.intermediate_values)
        assert stopped_at + 1 in (1, 2, 4, 8), trial.intermediate_values
        assert trial.user_attrs["pruned"] == f"stopped by the Ray asha scheduler after {stopped_at + 1} epoch(s)"
    for trial in complete:
        assert sorted(trial.intermediate_values) == list(range(10)) and trial.value == trial.params["x"] ** 2
    # the scheduler keeps the better half at each rung: the best trial overall always finishes
    assert min(trials, key=lambda t: t.params["x"] ** 2).state == TrialState.COMPLETE


def test_a_trial_asking_more_than_any_node_has_is_refused_naming_the_largest(write_study):
    extra = "\nexecutor: {kind: ray, resources_per_trial: {cpu: 64}}\n"
    path = callable_study(write_study, n=1, extra=extra)
    with pytest.raises(SearchlabError, match=r"asks for \{cpu: 64, gpu: 0\} per trial, more than any node .* "
                                             r"the largest, 127.0.0.1, has \d+ CPUs and 0 GPUs"):
        run_study(load_study(path), progress=False)
    assert not (path.parent / "run").exists()


@pytest.mark.parametrize("resources, slots", [
    ("{cpu: 1}", 8 + 4 + 2),                   # CPUs only: a GPU-less node holds trials too
    ("{cpu: 3}", 2 + 1 + 0),                   # whole trials only; the 2-CPU node holds none
    ("{cpu: 1, gpu: 0.5}", 4 + 0 + 2),         # GPU shares or CPUs bound it; a node without GPUs holds none
    ("{cpu: 2.5, gpu: 1}", 2 + 0 + 0),
])
def test_trial_slots_count_whole_trials_per_node(write_study, resources, slots):
    from searchlab.engine.ray_cluster import trial_slots

    extra = f"\nexecutor: {{kind: ray, resources_per_trial: {resources}}}\n"
    study = load_study(callable_study(write_study, n=1, extra=extra))
    nodes = [{"Resources": {"CPU": 8.0, "GPU": 2.0}}, {"Resources": {"CPU": 4.0}},
             {"Resources": {"CPU": 2.0, "GPU": 2.0}}]
    assert trial_slots(study, nodes) == slots


@pytest.mark.parametrize("extra, rule", [
    ("executor: {kind: local, scheduler: asha}", "needs kind: ray"),
    ("executor: {kind: ray, scheduler: asha}\npruner: median", r"give either pruner \('median'"),
    ("executor: {kind: ray, scheduler: {kind: fifo}}", "scheduler"),
])
def test_scheduler_options_that_cannot_work_are_refused(write_study, extra, rule):
    text = callable_study(write_study, n=1).read_text().replace("pruner: none\n", "")
    with pytest.raises(SearchlabError, match=rule):
        load_study(write_study(text + "\n" + extra + "\n"))


def test_an_unreachable_cluster_is_named_with_the_fix(write_study):
    import ray

    ray.shutdown()   # next to the killed driver's test, which shuts it down too: one Ray start less
    extra = "\nexecutor: {kind: ray, address: '127.0.0.1:1'}\n"
    path = callable_study(write_study, n=1, extra=extra)
    with pytest.raises(SearchlabError, match="cannot reach the Ray cluster at executor.address='127.0.0.1:1'"):
        run_study(load_study(path), progress=True)   # as the CLI runs it: the progress bar must not read the study
    assert not (path.parent / "run").exists()   # refused before any trial: no run folder, no empty study


def test_a_killed_driver_is_resumed_from_the_storage(write_study, tmp_path):
    """kill -9 the `searchlab run` process mid-study, run again: finished trials stay, none is lost or doubled."""
    import ray

    ray.shutdown()
    path = callable_study(write_study, n=6, sleep=1.0, extra=RAY)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    driver = subprocess.Popen([sys.executable, "-c", "import sys; from searchlab.cli import main; sys.exit(main())",
                               "run", str(path)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: _count(tmp_path, TrialState.COMPLETE) >= 2, seconds=300)   # a loaded machine starts Ray slowly
    finally:
        driver.kill()
        driver.wait()
    before = {t.number: t.value for t in _trials(tmp_path) if t.state == TrialState.COMPLETE}
    tune_folder = tmp_path / "run" / "ray"
    killed_runs = _tune_experiments(tune_folder)
    (tune_folder / "notes.txt").write_text("mine")
    run_study(load_study(path), progress=False)
    # Tune's files of the killed run are gone (the study is the record); this run's and the user's stay
    assert len(killed_runs) == 1 and not killed_runs[0].exists() and len(_tune_experiments(tune_folder)) == 1
    assert (tune_folder / "notes.txt").read_text() == "mine"
    trials = _trials(tmp_path)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    interrupted = [t for t in trials if t.state == TrialState.FAIL]
    assert len(complete) == 6 and not [t for t in trials if t.state == TrialState.RUNNING]
    assert {t.number: t.value for t in complete if t.number in before} == before      # kept as they were
    assert all("interrupted" in t.user_attrs["error"] for t in interrupted)
    retried = {t.user_attrs["retry_of"]: t.params for t in complete if "retry_of" in t.user_attrs}
    assert set(retried) == {t.number for t in interrupted}                            # each ran again,
    # with its config; a trial killed between Optuna's ask and its sampling has none, so its retry samples one
    assert all(retried[t.number] == t.params for t in interrupted if t.params)
    assert not [t for t in complete if "error" in t.user_attrs]   # a retry does not inherit the lost attempt's


def _tune_experiments(folder):
    return [p for p in folder.iterdir() if (p / "tuner.pkl").is_file()]


def _count(tmp_path, state):
    try:
        return sum(t.state == state for t in _trials(tmp_path))
    except Exception:   # the study is not created yet
        return 0


def _wait_for(condition, seconds):
    deadline = time.time() + seconds
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.2)


@pytest.mark.parametrize("scheduler, cls, brackets", [
    ("{kind: hyperband, brackets: 2}", "AsyncHyperBandScheduler", 2),
    ("asha", "AsyncHyperBandScheduler", 1),
    ("{kind: median, grace_period: 2}", "MedianStoppingRule", None),
])
def test_each_scheduler_kind_judges_the_first_objective_per_epoch(write_study, scheduler, cls, brackets):
    from ray.tune import schedulers

    from searchlab.engine.ray_executor import build_scheduler
    from searchlab.engine.ray_worker import METRIC

    text = callable_study(write_study, n=1).read_text().replace("pruner: none\n", "")
    built = build_scheduler(load_study(write_study(text + f"\nexecutor: {{kind: ray, scheduler: {scheduler}}}\n")))
    assert isinstance(built, getattr(schedulers, cls)) and built.metric == METRIC and built._mode == "min"
    if brackets is not None:   # max_t past the last epoch's report: finishing is never "stopped"
        assert len(built._brackets) == brackets and built._max_t == 20 + 1


def test_a_relative_run_dir_and_a_task_functions_relative_paths_name_the_folder_the_run_started_in(
        write_study, tmp_path, monkeypatch):
    """Tune runs each trial in a folder of its own: a relative run_dir failed ("Record does not exist"), and
    `open("labels.csv")` in a task function failed every Ray trial of a study that ran locally. One Ray run
    checks both (each was a run of its own)."""
    monkeypatch.chdir(tmp_path)   # as a user does: `searchlab run study.yaml` in the study's folder
    (tmp_path / "weights_of_x.txt").write_text("2.0")
    text = callable_study(write_study, fn="reads_a_relative_file", n=2, extra=RAY).read_text()
    path = write_study(text.replace(f"run_dir: '{tmp_path / 'run'}'", "run_dir: run"))
    assert "run_dir: run\n" in path.read_text()
    run_study(load_study(path.name), progress=False)
    trials = _trials(tmp_path)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2, trials[0].user_attrs.get("error")
    assert {t.user_attrs["folder"] for t in trials} == {str(tmp_path)}


def test_a_relative_searchlab_data_is_read_where_the_run_started(write_study, tmp_path, monkeypatch,
                                                                 breastmnist_root):
    """As the README's quickstart sets it (SEARCHLAB_DATA=../shared/data): every Ray trial failed, reading it
    from the trial's own working folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEARCHLAB_DATA", os.path.relpath(breastmnist_root, tmp_path))
    text = TINY_CLASSIFY + RAY + "data: {source: medmnist, name: breastmnist, download: false}\n"
    # one trial of one epoch: the data is read (or not) when a Ray trial starts, whatever it then trains
    run_study(load_study(write_study(text), {"budget.n_trials": 1, "budget.epochs": 1}), progress=False)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    assert [t.state for t in study.trials] == [TrialState.COMPLETE], study.trials[0].user_attrs.get("error")
    assert study.user_attrs["searchlab"]["data"]["root"] is None   # an export reads the variable when it runs


def test_the_driver_deletes_the_checkpoints_that_fell_out_of_the_best(write_study, tmp_path):
    from test_retention import _kept_invariant

    extra = RAY + "export: {keep_checkpoints: 2}\n"
    run_study(load_study(callable_study(write_study, fn="checkpointed", n=5, extra=extra)), progress=False)
    assert len(_kept_invariant(tmp_path / "run", 2)) == 5


@pytest.mark.parametrize("sig, reason", [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C")])
def test_a_stopped_driver_fails_the_trials_in_flight_as_interrupted(write_study, tmp_path, sig, reason):
    """SIGTERM: Ray's core aborted the driver (exit 134, a stack dump). Ctrl-C: Tune's handler ended the
    search as if done (exit 0), its trials left RUNNING; pressed again and again, it cut the summary off or
    printed Ray's traceback from its shutdown at exit."""
    from test_signals import _start_run, _study, _wait_for_pids

    path, pid_dir = _study(write_study, tmp_path, n=4, sleep=120, extra=RAY)
    proc = _start_run(path)
    _wait_for_pids(pid_dir, 2)
    for _ in range(6 if sig == signal.SIGINT else 1):   # an impatient user's Ctrl-Cs, as the run winds down
        proc.send_signal(sig)
        time.sleep(0.3)
    out, err = proc.communicate(timeout=120)
    # a Ctrl-C in the last moments of Python's exit, whose handlers are then the system's, ends it by the
    # signal: a shell says 130 all the same
    assert proc.returncode in ((128 + sig, -sig) if sig == signal.SIGINT else (128 + sig,)), (out, err)
    assert "study 'fake': 2 fail" in out and "Traceback" not in err, (out, err)
    trials = _trials(tmp_path)
    assert [t.state for t in trials] == [TrialState.FAIL] * 2
    assert all(t.user_attrs["error"] == f"interrupted ({reason})" for t in trials)


class _RecordedTrial:
    def __init__(self):
        self.user_attrs = {}

    def set_user_attr(self, key, value):
        self.user_attrs[key] = value


def test_the_watchdog_kills_only_a_trial_still_running_at_its_limit(monkeypatch):
    import searchlab.engine.ray_timeout as ray_timeout

    kills = []
    monkeypatch.setattr(ray_timeout.os, "kill", lambda pid, sig: kills.append((pid, sig)))
    done_in_time = _RecordedTrial()
    ray_timeout.TrialWatchdog(done_in_time, 0.3).finish()
    overrun = _RecordedTrial()
    ray_timeout.TrialWatchdog(overrun, 0.3)
    time.sleep(1.0)
    assert kills == [(os.getpid(), signal.SIGKILL)]                      # the overrun only, not the finished one
    assert done_in_time.user_attrs == {}
    assert overrun.user_attrs["error"].startswith("exceeded budget.trial_timeout=0.3 s: its Ray worker")


def test_a_trial_a_worker_starts_after_the_deadline_is_not_run_and_its_time_counts_from_its_start(
        write_study, tmp_path, monkeypatch):
    """Tune asks for trials ahead of free slots: one asked before budget.timeout and started after it trained
    an epoch and ranked as complete, and every trial's duration counted its time in Tune's queue."""
    from datetime import datetime, timedelta

    from ray import tune

    from searchlab.engine import objective, ray_worker
    from searchlab.engine.run import create_or_load
    from searchlab.engine.trial_time import AFTER_THE_DEADLINE, trial_seconds

    study = load_study(callable_study(write_study, n=2, extra=RAY))
    tmp_path.joinpath("run").mkdir()
    ostudy = create_or_load(study)
    asked = ostudy.ask({"x": optuna.distributions.FloatDistribution(-3, 3)})
    actor = ray_worker._Actor(ostudy, None, None, "node", "127.0.0.1")
    monkeypatch.setattr(ray_worker, "_actor_state", lambda study: actor)
    reported = []
    monkeypatch.setattr(tune, "report", reported.append)
    monkeypatch.setattr(objective, "make_objective", lambda *a, **k: pytest.fail("a late trial ran"))
    ray_worker.ray_trial({"trial_id": asked._trial_id}, study, deadline=time.time() - 1)
    assert reported == [{ray_worker.STATE: "FAIL", ray_worker.VALUES: "[]"}]
    late = ostudy._storage.get_trial(asked._trial_id)
    assert late.user_attrs["error"] == AFTER_THE_DEADLINE
    queued = late.user_attrs["started_at"] - 30   # as if Optuna had stamped it 30 s before a worker started it
    ended = datetime.fromtimestamp(late.user_attrs["started_at"]) + timedelta(seconds=5)
    stamped = optuna.trial.create_trial(state=TrialState.COMPLETE, value=1.0, user_attrs=late.user_attrs,
                                        params={}, distributions={})
    stamped.datetime_start, stamped.datetime_complete = datetime.fromtimestamp(queued), ended
    assert trial_seconds(stamped) == pytest.approx(5, abs=0.01)
