"""Trial-level faults: a hang past budget.trial_timeout, a worker killed mid-trial, out of memory, non-finite
values. Each fails its own trial with the reason; the study goes on and ends with nothing left RUNNING."""
from __future__ import annotations

import time

import optuna
from optuna.trial import TrialState

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from test_run import callable_study


def _trials(tmp_path):
    return optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials


def _split(trials):
    by_state = {s: [t for t in trials if t.state == s] for s in TrialState}
    assert not by_state[TrialState.RUNNING] and not by_state[TrialState.WAITING]
    return by_state[TrialState.COMPLETE], by_state[TrialState.FAIL]


def test_a_trial_past_its_time_limit_is_killed_and_failed_with_the_reason(write_study, tmp_path):
    # 2 s: a config that does not hang returns at once, so any limit above a scheduling hiccup tells them apart
    extra = "\nbudget: {n_trials: 4, trial_timeout: 2, max_failed: 2}\n"
    text = callable_study(write_study, fn="hangs_when_positive", n=4).read_text().replace("budget: {n_trials: 4}\n", "")
    started = time.time()
    run_study(load_study(write_study(text + extra)), progress=False)
    complete, failed = _split(_trials(tmp_path))
    assert time.time() - started < 90                                   # the hangs did not hold the study
    assert failed and all(t.params["x"] > 0 for t in failed)
    assert all(t.user_attrs["error"].startswith("exceeded budget.trial_timeout=2 s") for t in failed)
    assert all("retry_of" not in t.user_attrs for t in complete + failed)   # a hang is not retried
    assert all(t.params["x"] <= 0 for t in complete) and (len(complete) == 4 or len(failed) == 2)


def test_a_worker_killed_mid_trial_fails_that_trial_whose_config_is_retried(write_study, tmp_path):
    # max_failed 2, not 4: each killed attempt costs a new worker process (seconds of imports); two killed configs,
    # each retried once, check the same as four
    extra = "\nexecutor: {workers: 2, max_retries: 1}\nbudget: {n_trials: 4, max_failed: 2}\n"
    text = callable_study(write_study, fn="dies_when_positive", n=4).read_text().replace("budget: {n_trials: 4}\n", "")
    run_study(load_study(write_study(text + extra)), progress=False)
    trials = _trials(tmp_path)
    # A retry queued just as a budget was reached stays queued (the run names it): the 4th completed trial, or
    # the 2nd config failed for good, can land while the other worker's killed config waits for its retry.
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    complete, failed = _split([t for t in trials if t not in waiting])
    originals = [t for t in failed if "retry_of" not in t.user_attrs]
    retries = {t.user_attrs["retry_of"]: t for t in failed + waiting if "retry_of" in t.user_attrs}
    assert all("retry_of" in t.user_attrs for t in waiting)
    assert not waiting or len(complete) >= 4 or len([t for t in originals if retries[t.number] in failed]) >= 2
    assert failed and all("killed by SIGKILL" in t.user_attrs["error"] for t in failed)
    for trial in originals:   # retried once (max_retries: 1) with the same config, then left failed
        assert trial.number in retries and retries[trial.number].params == trial.params
    assert all(t.params["x"] <= 0 for t in complete)


def test_a_killed_trial_is_failed_and_requeued_under_the_workers_budget_lock(write_study, tmp_path, monkeypatch):
    """Between FAIL and its queued retry, a worker reading the budget would count the config as failed for good,
    stop at max_failed, and leave the retry WAITING: the supervisor holds the lock workers read the budget under."""
    import fcntl

    import searchlab.engine.supervise as supervise

    lock_free_at_retry = []
    real_callback = supervise.retry_callback

    def checking_callback(max_retries):
        real = real_callback(max_retries)

        def retry(study, trial):
            with (tmp_path / "run" / ".ask.lock").open("a") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    lock_free_at_retry.append(True)
                    fcntl.flock(fh, fcntl.LOCK_UN)
                except BlockingIOError:
                    lock_free_at_retry.append(False)
            real(study, trial)
        return retry

    monkeypatch.setattr(supervise, "retry_callback", checking_callback)
    text = callable_study(write_study, fn="dies_when_positive", n=2).read_text().replace("[-3, 3]", "[1, 3]")
    extra = "\nexecutor: {workers: 2, max_retries: 1}\n"
    run_study(load_study(write_study(text + extra)), progress=False)
    assert lock_free_at_retry and not any(lock_free_at_retry)


def test_out_of_memory_fails_the_trial_and_the_study_goes_on(write_study, tmp_path):
    run_study(load_study(callable_study(write_study, fn="out_of_memory_when_positive", n=6)), progress=False)
    complete, failed = _split(_trials(tmp_path))
    assert failed and all(t.params["x"] > 0 and t.user_attrs["error"].startswith("MemoryError") for t in failed)
    assert all(t.params["x"] <= 0 for t in complete) and len(complete) + len(failed) == len(_trials(tmp_path))


def test_non_finite_objective_fails_the_trial_with_the_reason(write_study, tmp_path):
    run_study(load_study(callable_study(write_study, fn="nan_objective", n=2)), progress=False)
    complete, failed = _split(_trials(tmp_path))
    assert not complete and all("objective 'loss' is nan" in t.user_attrs["error"] for t in failed)


def test_four_workers_on_a_journal_file_stop_exactly_at_the_budget(write_study, tmp_path):
    """Regression: a per-worker allowance of trials between budget reads overshot 200 trials by up to 33."""
    journal = tmp_path / "study.log"
    extra = f"\nexecutor: {{kind: local, workers: 4}}\nstorage: 'journal://{journal}'\n"
    run_study(load_study(callable_study(write_study, n=200, extra=extra)), progress=False)
    from searchlab.engine.storage import open_storage

    trials = optuna.load_study(study_name="fake", storage=open_storage(f"journal://{journal}")).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 200


def test_the_budget_counts_a_retried_config_once_so_its_queued_retry_still_runs():
    from types import SimpleNamespace

    from optuna.distributions import FloatDistribution

    from searchlab.engine.worker import Budget

    def add(state, **attrs):
        ostudy.add_trial(optuna.trial.create_trial(state=state, params={"x": 1.0}, user_attrs=attrs,
                                                   distributions={"x": FloatDistribution(-3, 3)},
                                                   value=0.0 if state == TrialState.COMPLETE else None))

    ostudy = optuna.create_study()
    budget = Budget(SimpleNamespace(config=SimpleNamespace(budget=SimpleNamespace(n_trials=2, max_failed=2))))
    add(TrialState.FAIL)                   # 0: its worker was killed ...
    add(TrialState.FAIL, retry_of=0)       # ... and so was its retry: one failed config
    add(TrialState.COMPLETE)
    add(TrialState.FAIL)                   # 3: killed, its retry queued (3 failed attempts; 1 failed config)
    add(TrialState.WAITING, retry_of=3)
    assert budget.left(ostudy)             # 1 of 2 trials done (failed ones have their own cap), 1 of 2 failed
    retry = ostudy.trials[-1]._trial_id
    ostudy._storage.set_trial_state_values(retry, TrialState.RUNNING)
    assert not budget.left(ostudy)         # the retry running: n_trials reached
    budget.n_trials = 10
    assert budget.left(ostudy)
    ostudy._storage.set_trial_state_values(retry, TrialState.FAIL)
    assert not budget.left(ostudy)         # the retry failed too: 2 failed configs, max_failed reached
