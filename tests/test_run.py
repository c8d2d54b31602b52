"""`searchlab run` end to end on a real SQLite storage: records, failures, workers, Ctrl-C (resume: test_resume.py)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError, DataError, StorageError, TrialFailure
from stop_signals import default_stop_signals

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
CALLABLE = """
name: fake
task: {{kind: callable, function: "fake_tasks:{fn}"}}
space:
  x: {{float: [-3, 3]}}
  sleep: {sleep}
objective: {{metric: loss, direction: minimize}}
strategy: random
pruner: none
budget: {{n_trials: {n}}}
"""
TINY_CLASSIFY = """
name: tiny
task: classify
space:
  model: {kind: cnn, depth: 1, width: {choice: [4, 8]}, convs_per_stage: 1}
  optim: {lr: {float: [1.0e-3, 1.0e-2], log: true}}
  train: {batch_size: 128}
strategy: random
pruner: none
budget: {n_trials: 2, epochs: 2}
"""


def callable_study(write_study, fn="quadratic", n=4, sleep=0.0, extra=""):
    return write_study(CALLABLE.format(fn=fn, n=n, sleep=sleep) + extra)


def states(study: optuna.Study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def test_classify_trials_record_metrics_costs_curves_and_checkpoints(write_study, tmp_path):
    result = run_study(load_study(write_study(TINY_CLASSIFY)), progress=False)
    reloaded = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    trials = reloaded.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 2 and result.study.best_value == max(t.value for t in trials)
    for trial in trials:
        assert set(trial.params) == {"model.width", "optim.lr"}
        metrics = trial.user_attrs["metrics"]
        assert 0.0 <= metrics["auc"] <= 1.0 and trial.value == metrics["auc"]
        assert metrics["params"] > 0 and metrics["flops"] > 0 and metrics["train_seconds"] > 0
        assert metrics["images_per_second"] > 0
        assert sorted(trial.intermediate_values) == [0, 1] and len(trial.user_attrs["curve"]) == 2
        assert sum(map(sum, trial.user_attrs["confusion"])) == 78      # BreastMNIST's validation split, 2x2
        artifact = tmp_path / "run" / "artifacts" / trial.user_attrs["checkpoint"]
        assert artifact.is_file() and artifact.read_bytes()[8:9] == b"{"   # safetensors header, not a pickle


def test_flops_match_an_independent_count(write_study):
    from searchlab.models.standalone import PlainCNN
    from searchlab.tasks.costs import measure_costs
    from searchlab.data import load_dataset

    study = load_study(write_study(TINY_CLASSIFY))
    data = load_dataset(study.config.data, base_dir=study.base_dir)
    net = PlainCNN(1, 2, depth=1, width=8, convs_per_stage=1, norm="none")
    # conv 1->8, 3x3 on 28x28 (padding keeps the size): 2*9*1*8*784 MACs->flops; linear 8->2: 2*8*2
    assert measure_costs(net, data)["flops"] == 2 * 9 * 8 * 784 + 2 * 8 * 2
    assert measure_costs(net, data)["params"] == 9 * 8 + 8 + 8 * 2 + 2


def test_classify_trials_do_not_sample_settings_that_have_no_effect(write_study):
    """SGD's momentum is drawn only for SGD trials; the trial's config holds only what it used."""
    text = TINY_CLASSIFY.replace("optim: {lr: {float: [1.0e-3, 1.0e-2], log: true}}",
                                 "optim: {name: {choice: [adamw, sgd]}, momentum: {float: [0.5, 0.99]}}")
    study = run_study(load_study(write_study(text), {"budget.n_trials": 6, "budget.epochs": 1}),
                      progress=False).study
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    names = {t.params["optim.name"] for t in trials}
    assert names == {"adamw", "sgd"} and len(trials) == 6
    for trial in trials:
        assert ("optim.momentum" in trial.params) == (trial.params["optim.name"] == "sgd")
        assert ("momentum" in trial.user_attrs["config"]["optim"]) == (trial.params["optim.name"] == "sgd")


def test_a_trial_that_fails_while_sampling_its_config_stores_why(write_study, monkeypatch):
    import searchlab.engine.objective as objective

    def broken(trial, study):
        raise ValueError("cannot sample this")

    monkeypatch.setattr(objective, "sample_trial_config", broken)
    study = run_study(load_study(callable_study(write_study, n=1)), progress=False).study
    assert study.trials[0].user_attrs["error"] == "ValueError: cannot sample this"


def test_trial_left_running_by_a_killed_process_is_failed_and_retried(write_study):
    path = callable_study(write_study, n=2)
    study = run_study(load_study(path), progress=False).study
    ghost = study.ask({"x": optuna.distributions.FloatDistribution(-3, 3)})   # a RUNNING trial nobody owns
    ghost_x = ghost.params["x"]
    resumed = run_study(load_study(path, {"budget.n_trials": 3}), progress=False).study
    trials = resumed.get_trials()
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and "interrupted" in failed[0].user_attrs["error"]
    retried = [t for t in trials if t.state == TrialState.COMPLETE and t.params["x"] == ghost_x]
    assert len(retried) == 1 and states(resumed) == {"COMPLETE": 3, "FAIL": 1}


def test_an_exception_fails_its_trial_only_with_the_traceback_stored(write_study):
    path = callable_study(write_study, fn="fails_when_positive", n=6)
    study = run_study(load_study(path, {"budget.max_failed": 100}), progress=False).study
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert failed and all("ValueError" in t.user_attrs["error"] for t in failed)
    assert all("Traceback" in t.user_attrs["traceback"] and "fails_when_positive" in t.user_attrs["traceback"]
               for t in failed)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 6   # the study went on to its budget


def test_nan_objective_fails_with_the_reason(write_study):
    path = callable_study(write_study, fn="nan_objective", n=3, extra="\nbudget: {n_trials: 3, max_failed: 2}\n")
    path.write_text(path.read_text().replace("budget: {n_trials: 3}\n", ""))
    study = run_study(load_study(path), progress=False).study
    assert states(study) == {"FAIL": 2}   # max_failed stops a study whose every trial fails
    assert "objective 'loss' is nan" in study.trials[0].user_attrs["error"]


def test_a_loss_that_becomes_nan_fails_the_trial():
    from searchlab.data.types import ImageSplit
    from searchlab.tasks.classify_config import OptimSpec, TrainSpec
    from searchlab.augment import AugmentSpec
    from searchlab.imbalance import ImbalanceSpec
    from searchlab.tasks.train import Batches, make_recipe, train

    class Exploding(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, x):
            return x.flatten(1)[:, :2] * self.w * float("nan")

    split = ImageSplit(torch.zeros(8, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1] * 4))
    batches = Batches(split, split, "binary", 2, {"mean": [0.0], "std": [1.0]})
    with pytest.raises(TrialFailure, match="loss became nan at epoch 0"):
        train(Exploding(), batches, make_recipe(batches, AugmentSpec(), ImbalanceSpec(), TrainSpec()), OptimSpec(),
              TrainSpec(batch_size=4), 2, 0, ("auc", "maximize"), lambda *a: None)


def test_two_worker_processes_share_one_budget(write_study):
    path = callable_study(write_study, n=6, sleep=0.3, extra="\nexecutor: {kind: local, workers: 2}\n")
    study = run_study(load_study(path), progress=False).study
    trials = study.get_trials()
    assert states(study) == {"COMPLETE": 6}
    assert len({t.user_attrs["pid"] for t in trials}) == 2 and os.getpid() not in {t.user_attrs["pid"] for t in trials}


def test_missing_data_stops_the_run_before_any_trial(write_study, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    path = write_study(TINY_CLASSIFY + f"\ndata: {{source: medmnist, name: breastmnist, root: '{empty}', "
                       "download: false}\n")
    with pytest.raises(DataError, match="breastmnist.npz"):
        run_study(load_study(path), progress=False)


def test_after_a_multi_objective_run_the_export_hint_asks_for_a_pareto_trial(write_study, tmp_path, capsys):
    from searchlab.cli import main

    text = TINY_CLASSIFY + "objective: [auc, flops]\nexport: {after_run: true}\n"
    assert main(["run", str(write_study(text)), "--no-progress"]) == 0   # no single best: not a failed export
    err = capsys.readouterr().err
    assert "export skipped: this study has 2 objectives" in err and "--top-k" not in err
    assert f"export them with: searchlab export {tmp_path / 'run'} --trial N --out" in err


def test_a_callable_tasks_after_run_export_says_there_is_no_model_and_the_run_succeeds(write_study, capsys):
    from searchlab.cli import main

    path = callable_study(write_study, n=2, extra="\nexport: {after_run: true}\n")
    assert main(["run", str(path), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "a callable task's function trains no model searchlab could export; nothing exported" in err
    assert "searchlab export" not in err   # it suggested an export that fails the same way


def test_a_failed_after_run_export_keeps_the_run_and_says_how_to_export(write_study, tmp_path, monkeypatch,
                                                                         capsys):
    from searchlab import after_run_export
    from searchlab.cli import main

    def fails(*args, **kwargs):
        raise StorageError("cannot open storage 'sqlite:///x': disk I/O error")

    monkeypatch.setattr(after_run_export, "export_run", fails)
    path = write_study(TINY_CLASSIFY + "export: {after_run: true}\n")
    assert main(["run", str(path), "--no-progress"]) == 1   # 0 let `run && use best/` go on without an export
    err = capsys.readouterr().err
    assert "export skipped: cannot open storage" in err and f"searchlab export {tmp_path / 'run'}" in err
    assert len(optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials) == 2


def test_a_searched_architecture_is_shown_as_its_string_not_as_tens_of_parameters():
    from searchlab.trial_said import describe_trial

    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    for block in range(20):
        trial.suggest_categorical(f"model.blocks.b{block}.type", ["conv", "basic"])
    trial.suggest_float("optim.lr", 1e-3, 1e-2)
    trial.set_user_attr("architecture", "stem8-conv16x1-basic32x2")
    study.tell(trial, 0.9)
    text = describe_trial(study, study.trials[0])
    assert "architecture: stem8-conv16x1-basic32x2" in text and "optim.lr=" in text and "model.blocks" not in text


def test_ctrl_c_fails_the_running_trial_and_keeps_the_rest(write_study, tmp_path):
    path = callable_study(write_study, n=50, sleep=1.5)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    proc = subprocess.Popen([sys.executable, "-m", "searchlab.cli", "run", str(path), "--no-progress"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_stop_signals)
    storage = f"sqlite:///{tmp_path / 'run' / 'study.db'}"
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.3)
        try:
            if optuna.load_study(study_name="fake", storage=storage).get_trials(states=(TrialState.COMPLETE,)):
                break
        except (KeyError, Exception):
            continue
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    study = optuna.load_study(study_name="fake", storage=storage)
    assert TrialState.RUNNING not in {t.state for t in study.get_trials()}
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 1 and failed[0].user_attrs["error"] == "interrupted (Ctrl-C)"
    assert study.get_trials(states=(TrialState.COMPLETE,)) and "interrupted" in out


def test_search_never_reads_the_test_split(write_study, monkeypatch):
    import searchlab.tasks.classify as classify

    asked: list[tuple[str, ...]] = []
    real = classify.load_dataset

    def spy(cfg, splits=("train", "val"), **kw):
        asked.append(tuple(splits))
        return real(cfg, splits=splits, **kw)

    monkeypatch.setattr(classify, "load_dataset", spy)
    run_study(load_study(write_study(TINY_CLASSIFY)), progress=False)
    assert asked and all("test" not in splits for splits in asked)


def test_timm_backbone_trains_and_exports(write_study, tmp_path):
    from searchlab.export.exporter import export_run

    text = TINY_CLASSIFY.replace("model: {kind: cnn, depth: 1, width: {choice: [4, 8]}, convs_per_stage: 1}",
                                 "model: {kind: timm, backbone: mobilenetv3_small_050, input_size: 32}")
    study = run_study(load_study(write_study(text), {"budget.n_trials": 1, "budget.epochs": 1}), progress=False).study
    assert study.best_trial.user_attrs["model_spec"]["architecture"] == "timm"
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=100)
    assert config["model"]["args"]["backbone"] == "mobilenetv3_small_050" and 0 <= config["test_metrics"]["auc"] <= 1


def test_a_run_where_no_trial_completes_says_why_and_exits_1(write_study, tmp_path):
    path = callable_study(write_study, fn="fails_when_positive", n=2)
    path.write_text(path.read_text().replace("x: {float: [-3, 3]}", "x: {float: [1, 3]}"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    run = subprocess.run([sys.executable, "-m", "searchlab.cli", "run", str(path), "--no-progress"], env=env,
                         capture_output=True, text=True)
    assert run.returncode == 1, run.stderr
    assert "failed trial 1: ValueError: x=" in run.stdout and "is positive" in run.stdout
    assert "no trial completed" in run.stdout and "searchlab export" not in run.stdout


def test_a_run_that_max_failed_stops_exits_1_even_with_completed_trials(write_study, tmp_path, monkeypatch):
    from searchlab.cli import main

    monkeypatch.syspath_prepend(str(TESTS))
    path = callable_study(write_study, fn="fails_when_positive", n=30, extra="\nbudget: {n_trials: 30, max_failed: 2}\n"
                                                                          "export: {after_run: false}\n")
    path.write_text(path.read_text().replace("budget: {n_trials: 30}\n", "").replace(
        "strategy: random", "strategy: {name: random, points_to_evaluate: [{x: -1.0}]}"))   # one completes first
    assert main(["run", str(path), "--no-progress"]) == 1   # a script comparing runs sees the halted one
    study = optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    assert states(study)["FAIL"] == 2 and states(study).get("COMPLETE", 0) >= 1
    assert study.user_attrs["searchlab_runs"][-1]["stopped_by"] == "budget.max_failed"   # kept for later readers


def test_status_and_dashboard_commands(write_study, tmp_path):
    import json
    import socket
    import urllib.request

    path = callable_study(write_study, n=2)
    run_study(load_study(path), progress=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    status = subprocess.run([sys.executable, "-m", "searchlab.cli", "status", str(tmp_path / "run")], env=env,
                            capture_output=True, text=True)
    assert status.returncode == 0 and "2 complete" in status.stdout and "trial " in status.stdout
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "searchlab.cli", "dashboard", str(tmp_path / "run"), "--port",
                             str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        body = None
        for _ in range(60):
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as resp:
                    body = json.loads(resp.read())
                break
            except OSError:
                continue
        assert body is not None, "dashboard did not answer on 127.0.0.1"
        assert [s["study_name"] for s in body["study_summaries"]] == ["fake"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_same_study_and_seed_reproduce_configs_and_metrics_in_another_process(write_study, tmp_path):
    first = run_study(load_study(write_study(TINY_CLASSIFY)), progress=False).study
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    other = tmp_path / "other"
    subprocess.run([sys.executable, "-m", "searchlab.cli", "run", str(tmp_path / "study.yaml"), "--no-progress",
                    "--set", f"run_dir={other}"], env=env, check=True, capture_output=True)
    second = optuna.load_study(study_name="tiny", storage=f"sqlite:///{other / 'study.db'}")
    assert [t.params for t in first.trials] == [t.params for t in second.trials]
    assert [t.value for t in first.trials] == [t.value for t in second.trials]


def test_configs_are_stored_once_and_always_recoverable(write_study):
    from searchlab.engine.objective import config_of

    plain = run_study(load_study(callable_study(write_study, n=2).parent / "study.yaml"), progress=False).study
    assert all("config" in t.user_attrs for t in plain.trials)   # `sleep` is fixed: not derivable from params
    text = CALLABLE.format(fn="quadratic", n=2, sleep=0.0).replace("  sleep: 0.0\n", "").replace("name: fake",
                                                                                                  "name: bare")
    bare = run_study(load_study(write_study(text, name="bare.yaml")), progress=False).study
    for trial in bare.trials:
        assert "config" not in trial.user_attrs and "metrics" in trial.user_attrs   # x_abs is not an objective
        assert config_of(trial) == {"x": trial.params["x"]}
    assert config_of(plain.trials[0]) == plain.trials[0].user_attrs["config"]


def test_classify_trains_on_the_device_the_executor_names(write_study, tmp_path):
    """This machine has no GPU: auto trains on the CPU (and says so); cuda with kind local is refused before the
    run (each trial failed alone for it)."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here: this test is about a machine without one")
    run_study(load_study(write_study(TINY_CLASSIFY)), progress=False)
    storage = f"sqlite:///{tmp_path / 'run' / 'study.db'}"
    assert {t.user_attrs["device"] for t in optuna.load_study(study_name="tiny", storage=storage).trials} == {"cpu"}
    cuda = TINY_CLASSIFY.replace("name: tiny", "name: tiny_cuda") + "executor: {device: cuda}\n"
    with pytest.raises(ConfigError, match="executor.device: this machine's torch sees no CUDA GPU") as info:
        run_study(load_study(write_study(cuda, name="cuda.yaml")), progress=False)
    assert info.value.line is not None and "Fix: executor.device: auto" in str(info.value)
    assert "tiny_cuda" not in optuna.get_all_study_names(storage)   # refused before the study was made


def test_worker_processes_run_the_study_as_loaded_with_its_overrides_whatever_the_file_says_now(write_study):
    """A file edited during a run (for the next one) gave workers started after the edit its settings."""
    path = callable_study(write_study, n=2, extra="\nexecutor: {workers: 2}\n")
    study = load_study(path, {"space.sleep": 0.01})
    path.write_text(path.read_text().replace("x: {float: [-3, 3]}", "x: {float: [10, 11]}"))
    ran = run_study(study, progress=False).study
    assert [t.user_attrs["config"]["sleep"] for t in ran.trials] == [0.01, 0.01]
    assert all(-3 <= t.params["x"] <= 3 for t in ran.trials)


def test_a_run_folder_keeps_its_storage(write_study, tmp_path, capsys):
    path = callable_study(write_study, n=1)
    run_study(load_study(path), progress=False)
    other = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    with pytest.raises(StorageError, match=f"holds the study stored in sqlite:///{tmp_path / 'run' / 'study.db'}; "
                                           f"this run's storage is {other}"):
        run_study(load_study(path, {"storage": other}), progress=False)
    assert not (tmp_path / "elsewhere.db").exists()
    from searchlab.summary import print_run_header

    capsys.readouterr()
    with pytest.raises(StorageError, match="holds the study stored in"):   # it said "a new study starts there"
        print_run_header(load_study(path, {"storage": other}))
    assert capsys.readouterr().out == ""
    renamed = load_study(path, {"name": "other"})
    print_run_header(renamed)   # it said "resuming the trials stored there" of a new, empty study
    assert f"run:  {tmp_path / 'run'} (a new study 'other'; the folder held 'fake')" in capsys.readouterr().out
    run_study(renamed, progress=False)
    assert "held the study 'fake'; it now names 'other', so `status`, `export` and `report` of the folder see " \
           "'other' only" in capsys.readouterr().err


def test_more_local_workers_than_cores_and_workers_under_ray_are_warned_about(write_study, monkeypatch, capsys):
    from searchlab.engine import run as run_module

    monkeypatch.setattr(run_module, "usable_cores", lambda: 2)
    run_module._warn_if_oversubscribed(load_study(callable_study(write_study, extra="\nexecutor: {workers: 3}\n")))
    assert "executor.workers=3 on 2 cores" in capsys.readouterr().err
    run_module._warn_if_oversubscribed(load_study(callable_study(write_study, extra="\nexecutor: {workers: 2}\n")))
    run_module._warn_if_oversubscribed(load_study(callable_study(write_study, extra="\nexecutor: {kind: ray}\n")))
    assert capsys.readouterr().err == ""
    ray = "\nexecutor: {kind: ray, workers: 4}\n"
    run_module._warn_if_oversubscribed(load_study(callable_study(write_study, extra=ray)))
    assert "executor.workers is for kind: local" in capsys.readouterr().err
    for ray, said in [("{kind: ray, threads_per_worker: 2}", "executor.threads_per_worker=2 with executor."
                       "resources_per_trial.cpu=1: each trial runs 2 torch thread(s) on the 1 CPU"),
                      ("{kind: ray, resources_per_trial: {cpu: 0.5}}", "resources_per_trial.cpu=0.5: each trial "
                       "runs 1 torch thread(s) on the 0.5 CPU")]:
        run_module._warn_if_oversubscribed(load_study(callable_study(write_study, extra=f"\nexecutor: {ray}\n")))
        assert said in capsys.readouterr().err
    for fits in ("{kind: ray, threads_per_worker: 2, resources_per_trial: {cpu: 2}}",
                 "{kind: ray, resources_per_trial: {cpu: 0.5, gpu: 0.5}}"):   # a GPU trial's CPU share feeds it
        run_module._warn_if_oversubscribed(load_study(callable_study(write_study, extra=f"\nexecutor: {fits}\n")))
        assert capsys.readouterr().err == ""


def test_a_local_ray_counts_the_cores_this_process_may_use(monkeypatch):
    """Under `taskset -c 0`, the Ray searchlab starts counted both cores and ran two trials on one."""
    import ray

    from searchlab.engine import ray_cluster

    seen = {}
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: seen.update(kwargs))
    monkeypatch.setattr(ray_cluster, "usable_cores", lambda: 1)
    monkeypatch.setattr(ray_cluster, "_keep_on_loopback", lambda: None)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")   # restored after: start_ray sets it for the process
    ray_cluster.start_ray(None)
    assert seen["num_cpus"] == 1 and seen["address"] == "local"


def test_a_password_in_the_storage_url_is_never_printed(write_study, tmp_path, capsys):
    from types import SimpleNamespace

    from searchlab.engine.rundir import write_manifest
    from searchlab.errors import shown_url

    url = "postgresql://sl:S3cretPW@127.0.0.1:55499/db"
    assert shown_url(url) == "postgresql://sl:***@127.0.0.1:55499/db" and shown_url("sqlite:///a.db") == "sqlite:///a.db"
    with pytest.raises(StorageError) as info:
        run_study(load_study(callable_study(write_study, n=1), {"storage": url}), progress=False)
    assert "S3cretPW" not in str(info.value) and "sl:***@127.0.0.1" in str(info.value)
    (tmp_path / "pw").mkdir()
    write_manifest(SimpleNamespace(config=SimpleNamespace(name="s"), storage_url=url, run_dir=tmp_path / "pw"))
    assert (tmp_path / "pw" / "searchlab.json").stat().st_mode & 0o777 == 0o600


def test_configs_that_differ_only_in_the_threshold_rule_get_one_seed():
    """The rule is applied after training: comparing rules must not compare seeds (weights, data order)."""
    from searchlab.engine.objective import trial_seed

    youden = {"imbalance": {"threshold": "youden", "loss": "ce"}, "optim": {"lr": 0.001}}
    fixed = {"imbalance": {"threshold": "fixed", "loss": "ce"}, "optim": {"lr": 0.001}}
    assert trial_seed(0, youden) == trial_seed(0, fixed)
    assert trial_seed(0, youden) != trial_seed(0, {**youden, "imbalance": {"threshold": "youden", "loss": "focal"}})
    assert trial_seed(0, youden) != trial_seed(1, youden)
    assert youden["imbalance"]["threshold"] == "youden"   # the trial's own config is left as sampled


def test_a_resume_with_nothing_to_run_keeps_the_export_and_scores_no_test_split_again(write_study, tmp_path,
                                                                                       capsys):
    from searchlab.cli import main

    one_trial = TINY_CLASSIFY.replace("n_trials: 2", "n_trials: 1")
    path = write_study(one_trial + "export: {after_run: true, bootstrap: 100}\n")
    assert main(["run", str(path), "--no-progress"]) == 0
    card = tmp_path / "run" / "best" / "config.json"
    first = card.read_text()
    capsys.readouterr()
    assert main(["run", str(path), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert f"export: nothing ran, so the export in {tmp_path / 'run' / 'best'} stands" in err
    assert card.read_text() == first and json.loads(first)["test_split_scored"]["times"] == 1
