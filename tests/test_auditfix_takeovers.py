"""What an audit of the take-overs found: runs with two TMPDIRs (SLURM jobs, systemd's PrivateTmp) each took one
lock of their own, so a killed trial was queued twice and a killed stage continued twice."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import optuna
from optuna.trial import TrialState

from searchlab.engine.host_locks import storage_lock_folder
from searchlab.engine.recovery import recover_left_trials
from test_run import REPO

HOLD = ("import sys, time; from searchlab.nas.stage_live import stage_lock; "
        "lock = stage_lock(sys.argv[1], sys.argv[2], None); "
        "assert lock.take(); print(lock.path, flush=True); time.sleep(60)")


def test_a_stage_lock_of_a_local_storage_file_is_shared_whatever_the_tmpdir(tmp_path, monkeypatch):
    from searchlab.nas.stage_live import stage_lock

    url = f"sqlite:///{tmp_path / 'study.db'}"
    beside = storage_lock_folder(url)
    assert beside == tmp_path / ".searchlab-locks"
    (tmp_path / "tmp_a").mkdir()
    (tmp_path / "tmp_b").mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, url, "s.zen_proxy"], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path / "tmp_a")})
    try:
        path = holder.stdout.readline().strip()
        assert path.startswith(str(beside))
        monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp_b"))   # this run's own temporary folder
        assert not stage_lock(url, "s.zen_proxy", None).take()
        holder.kill()
        holder.wait()
        lock = stage_lock(url, "s.zen_proxy", None)
        assert lock.take()
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
    assert storage_lock_folder("postgresql://u:p@db/x") is None


def test_a_second_run_whose_write_came_too_late_queues_nothing(tmp_path):
    """Two runs sharing no lock both found trial 0 orphaned. The first failed it and was about to queue its config
    when the second read the trials: it saw an interrupted trial without a retry, and queued it too. Only the run
    whose write failed a trial queues it now."""
    ostudy = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}")
    trial = ostudy.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    trial.set_user_attr("ran_with", {"seed": 1})
    ostudy._storage.set_trial_user_attr(trial._trial_id, "error", "interrupted: its process ended without finishing")
    ostudy._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)   # the first run's write
    late = recover_left_trials(ostudy, 3, fail_running=False, gone={trial.number}, only_failed_here=True)
    assert late.failed == [] and not ostudy.get_trials(states=(TrialState.WAITING,))


def test_a_run_of_another_pid_space_on_this_host_counts_as_open_not_killed(tmp_path):
    """A run in a container sharing the host name (`unshare --pid`): its pid means nothing here. A run outside read
    it as killed, took itself for the only run, and failed its live trial as a run starting alone does."""
    from searchlab.engine.process_space import pid_space
    from searchlab.engine.run_history import KEY, latest_run_live, others_alive

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    ostudy = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}")
    here = pid_space()
    entry = {"started_utc": "2026-01-01T00:00:00+00:00", "pid": ended.pid, "stopped_by": None,
             "run_dir": str(tmp_path / "a"), **here}
    ostudy.set_user_attr(KEY, [{**entry, "pidns": (here["pidns"] or 0) + 1}])
    assert others_alive(ostudy, 0.0) and latest_run_live(ostudy, False) is None
    ostudy.set_user_attr(KEY, [entry])   # of this pid space, its process gone: killed
    assert not others_alive(ostudy, 0.0) and latest_run_live(ostudy, False) is False


def test_a_stage_stamped_with_no_pause_or_no_end_starts_no_stamping_thread():
    """A chunk every round (CHUNK_SECONDS 0) stamped without a pause from a thread; one of no end raised in it
    (Event.wait overflows), a traceback in the run's stderr."""
    import math
    import threading

    from searchlab.nas.stage_live import stamping

    stamps = []
    for every in (0.0, math.inf):
        before = threading.active_count()
        with stamping(lambda: stamps.append(1), every):
            assert threading.active_count() == before
    with stamping(lambda: stamps.append(1), 0.01):
        __import__("time").sleep(0.1)
    assert stamps   # a finite pause still stamps
