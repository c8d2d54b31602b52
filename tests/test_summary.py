"""What `run` prints at its end (summary.py), on in-memory studies whose best trials are known."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest

from searchlab.config.schema import ExportConfig
from searchlab.summary import print_run_summary


def _summary(directions: list[str], values: list[list[float]], capsys, export: ExportConfig = ExportConfig(),
             run_dir: Path = Path("runs/s"), ran: int | None = None) -> str:
    ostudy = optuna.create_study(directions=directions)
    for v in values:
        ostudy.add_trial(optuna.trial.create_trial(values=v, params={}, distributions={}))
    study = SimpleNamespace(config=SimpleNamespace(name="s", budget=SimpleNamespace(n_trials=len(values)),
                                                   export=export),
                            run_dir=run_dir, storage_url="sqlite:///runs/s/study.db")
    result = SimpleNamespace(study=ostudy, seconds=1.0, interrupted=False, trials_before=0,
                             trials_finished=len(values) if ran is None else ran)
    print_run_summary(study, result, exported=None)
    return capsys.readouterr().out


def test_the_export_hint_makes_the_export_the_study_asks_for_and_none_when_an_export_stands(capsys, tmp_path):
    """The hint named best/ and no flags, whatever export.dir, top_k, tta and bootstrap said; after a resume that
    ran nothing it invited scoring the test split again beside 'the export stands'."""
    export = ExportConfig(dir=tmp_path / "model", top_k=3, tta="flip", select="greedy", bootstrap=500)
    out = _summary(["maximize"], [[0.5], [0.6], [0.7]], capsys, export, tmp_path / "run")
    assert (f"export:    searchlab export {tmp_path / 'run'} --top-k 3 --tta flip --select greedy --bootstrap 500 "
            f"--out {tmp_path / 'model'}\n") in out
    out = _summary(["maximize"], [[0.5], [0.6]], capsys, export, tmp_path / "run")   # fewer than top_k completed
    assert f"searchlab export {tmp_path / 'run'} --top-k 2 --tta flip --select greedy" in out
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    out = _summary(["maximize"], [[0.5]], capsys, export, tmp_path / "run", ran=0)
    assert "searchlab export" not in out
    assert f"exported:  {tmp_path / 'model'}  (by an earlier run: nothing ran since, so it stands)" in out


def test_more_best_trials_than_shown_are_counted_and_a_front_is_exported_by_trial_number(capsys):
    out = _summary(["maximize"], [[0.1 * i] for i in range(5)], capsys)
    assert "(the best 3 of 5 completed shown; all: searchlab status runs/s --top 5)" in out
    assert "export:    searchlab export runs/s --out runs/s/best\n" in out
    front = [[0.9, 4.0], [0.8, 3.0], [0.7, 2.0], [0.6, 1.0]]   # every one a trade-off: all four on the front
    out = _summary(["maximize", "minimize"], front, capsys)
    assert "(the best 3 of 4 of the Pareto front shown; all: searchlab status runs/s --top 4)" in out
    assert "export:    searchlab export runs/s --trial N --out runs/s/best   (N: a trial of the Pareto front, " \
           "e.g. " in out


def test_the_commands_the_summary_suggests_quote_a_folder_with_a_space(capsys, tmp_path):
    """--set "run_dir=runs/r sp" printed `searchlab dashboard /tmp/x/runs/r sp` and `searchlab export /tmp/x/runs/r
    sp --out ...`: pasted into a shell, each folder was two arguments."""
    import shlex

    run = tmp_path / "runs" / "r sp"
    ostudy = optuna.create_study()
    for v in range(5):
        ostudy.add_trial(optuna.trial.create_trial(value=float(v), params={}, distributions={}))
    study = SimpleNamespace(config=SimpleNamespace(name="s", budget=SimpleNamespace(n_trials=5),
                                                   export=ExportConfig()),
                            run_dir=run, storage_url=f"sqlite:///{run / 'study.db'}")
    result = SimpleNamespace(study=ostudy, seconds=1.0, interrupted=False, trials_before=0, trials_finished=5)
    print_run_summary(study, result, exported=None)
    out = capsys.readouterr().out
    quoted = shlex.quote(str(run))
    assert quoted != str(run)
    assert f"all: searchlab status {quoted} --top 5)" in out
    assert f"dashboard: optuna-dashboard {shlex.quote(study.storage_url)}   " in out
    assert f"(or: searchlab dashboard {quoted})" in out
    assert f"export:    searchlab export {quoted} --out {shlex.quote(str(run / 'best'))}\n" in out
    command = out.split("export:    ", 1)[1].splitlines()[0]
    assert shlex.split(command) == ["searchlab", "export", str(run), "--out", str(run / "best")]


def test_a_trial_shows_its_chosen_thresholds_and_each_labels_auc_by_name():
    from searchlab.trial_said import describe_trial

    metrics = {"auc": 0.8, "hamming_loss": 0.12, "auc_class_0": 0.91, "auc_class_1": 0.69}
    trial = optuna.trial.create_trial(value=0.8, params={}, distributions={}, user_attrs={
        "metrics": metrics, "threshold": [0.31, 0.5], "class_names": ["effusion", "mass"]})
    text = describe_trial(None, trial)
    assert "metrics: auc=0.8, hamming_loss=0.12, thresholds effusion=0.31 mass=0.5\n" \
           "    AUC per class: effusion 0.91, mass 0.69" in text
    always = optuna.trial.create_trial(value=0.8, params={}, distributions={}, user_attrs={
        "metrics": {"auc": 0.8}, "threshold": [0.0, 0.4], "class_names": ["effusion", "mass"]})
    assert describe_trial(None, always).endswith("thresholds effusion=0 mass=0.4 (0: effusion flagged on every "
                                                 "image)")
    plain = optuna.trial.create_trial(value=0.8, params={}, distributions={},
                                      user_attrs={"metrics": {"auc": 0.8}, "threshold": 0.5})
    assert describe_trial(None, plain).endswith("metrics: auc=0.8")
    # a study's own user attribute of that name (recorded before searchlab refused it) crashed `status`
    users = optuna.trial.create_trial(value=0.8, params={}, distributions={},
                                      user_attrs={"metrics": {"auc": 0.8}, "threshold": "youden"})
    assert describe_trial(None, users).endswith("metrics: auc=0.8")


def test_a_trial_shows_its_gan_studys_doubts_and_the_generator_its_images_came_from():
    """The suspect-generator warning sent users to `status`, which showed no doubts; a classify trial trained on
    generated images looked like any other."""
    from searchlab.trial_said import describe_trial

    gan = optuna.trial.create_trial(value=40.0, params={}, distributions={},
                                    user_attrs={"metrics": {"medfid": 40.0}, "suspect": "ignores its labels"})
    assert describe_trial(None, gan).endswith("\n    suspect: ignores its labels")
    origin = {"export": "/g/gan_best", "sha256": "d4f1" * 16, "images": {"malignant": 100}}
    cls = optuna.trial.create_trial(value=0.8, params={}, distributions={},
                                    user_attrs={"metrics": {"auc": 0.8}, "synthetic_from": origin})
    assert describe_trial(None, cls).endswith("\n    synthetic images: 100 malignant from /g/gan_best (weights sha256 "
                                              "d4f1d4f1d4f1d4f1...)")


def _printed(ostudy: optuna.Study, n_trials: int, finished_before: int, capsys) -> str:
    study = SimpleNamespace(config=SimpleNamespace(name="s", budget=SimpleNamespace(n_trials=n_trials),
                                                   export=ExportConfig()),
                            run_dir=Path("runs/s"), storage_url="sqlite:///runs/s/study.db")
    result = SimpleNamespace(study=ostudy, seconds=1.0, interrupted=False, trials_before=finished_before,
                             trials_finished=len(ostudy.trials) - finished_before)
    print_run_summary(study, result, exported=None)
    return capsys.readouterr().out


def test_a_queued_retry_left_by_a_reached_budget_is_said_and_running_it_is_not_called_nothing(capsys):
    ostudy = optuna.create_study()
    for value in (1.0, 2.0, 3.0):
        ostudy.add_trial(optuna.trial.create_trial(value=value))
    ostudy.enqueue_trial({})           # an interrupted trial's config, queued again
    out = _printed(ostudy, 3, 3, capsys)
    assert "nothing ran" in out and "1 queued config(s) did not run" in out and "budget.n_trials=4" in out
    assert "  queued trial 3 (strategy.points_to_evaluate): " in out
    trial = ostudy.ask()               # a later run with n_trials=4 runs the queued config
    ostudy.tell(trial, 0.5)
    out = _printed(ostudy, 4, 3, capsys)
    assert "nothing ran" not in out and "queued" not in out
    ostudy.enqueue_trial({"model.depth": 3}, user_attrs={"zen_score": 41.25, "proxy_trial": 7})
    assert "  queued trial 4 (zen_nas's candidate, Zen-score 41.25): model.depth=3" in _printed(ostudy, 4, 4, capsys)


def test_trials_all_pruned_for_the_architecture_budget_are_not_blamed_on_the_pruner(capsys):
    ostudy = optuna.create_study()
    for flops in (4.9e7, 5.2e7):
        ostudy.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.PRUNED, user_attrs={
            "over_budget": f"over budget: flops {flops:.4g} > max_flops 3e+07"}))
    out = _printed(ostudy, 2, 0, capsys)
    assert "2 of 2 pruned trials were over the architecture budget" in out and "flops 4.9e+07 > max_flops" in out
    assert "gentler pruner" not in out


def test_a_trial_the_timeout_cut_says_so():
    from searchlab.trial_said import describe_trial

    ostudy = optuna.create_study()
    ostudy.add_trial(optuna.trial.create_trial(value=1.0, user_attrs={
        "cut_short": "stopped by budget.timeout at iteration 6 of 10"}))
    assert "cut short: stopped by budget.timeout at iteration 6 of 10" in describe_trial(ostudy, ostudy.trials[0])


def test_a_run_the_failure_cap_stopped_says_so(capsys):
    ostudy = optuna.create_study()
    for number in range(3):
        ostudy.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,
                                                   user_attrs={"error": f"boom {number}"}))
    out = _printed(ostudy, 2, 0, capsys)
    assert "stopped: 3 trials failed, budget.max_failed=2 (default: n_trials) reached" in out
    assert "trials already running finished" in out and "--set budget.max_failed=5" in out
    assert "earlier runs" not in out


def test_a_failure_cap_the_study_set_is_not_called_the_default(capsys):
    """budget.max_failed: 2, written: the stop said "budget.max_failed=2 (default: n_trials) reached"."""
    ostudy = optuna.create_study()
    for number in range(2):
        ostudy.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,
                                                   user_attrs={"error": f"boom {number}"}))
    study = SimpleNamespace(config=SimpleNamespace(name="s", budget=SimpleNamespace(n_trials=5, max_failed=2),
                                                   export=ExportConfig()),
                            run_dir=Path("runs/s"), storage_url="sqlite:///runs/s/study.db")
    result = SimpleNamespace(study=ostudy, seconds=1.0, interrupted=False, trials_before=0, trials_finished=2)
    print_run_summary(study, result, exported=None)
    out = capsys.readouterr().out
    assert "stopped: 2 trials failed, budget.max_failed=2 reached; trials already running finished." in out
    assert "default" not in out


def test_a_resumed_run_the_failure_cap_stops_at_once_says_the_cap_counts_earlier_runs():
    from searchlab.summary import failure_cap_reached

    text = failure_cap_reached(3, 3, 3)
    assert text.startswith("stopped: 3 trials failed, budget.max_failed=3 (default: n_trials) reached (3 of them in "
                           "earlier runs: the cap counts the study's failures over all its runs). Fix what")
    assert text.endswith("--set budget.max_failed=6") and "already running" not in text


def test_status_says_running_trials_no_run_holds_are_left_over(tmp_path, capsys):
    from searchlab.engine.rundir import OpenRun
    from searchlab.engine.run import run_lock
    from searchlab.summary import print_status

    ostudy = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="s")
    ostudy.ask()                     # RUNNING, as a killed runner leaves it
    run = OpenRun(tmp_path, ostudy, f"sqlite:///{tmp_path / 'study.db'}", tmp_path / "artifacts")
    print_status(run, 3)
    assert "1 'running' left by a run that stopped without finishing them" in capsys.readouterr().out
    with run_lock(tmp_path):         # a run of the folder in progress: its trials really are running
        print_status(run, 3)
    assert "left by a run" not in capsys.readouterr().out


def test_failures_are_shown_beside_completed_trials(capsys):
    ostudy = optuna.create_study()
    ostudy.add_trial(optuna.trial.create_trial(value=1.0))
    ostudy.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL,
                                               user_attrs={"error": "timm could not fetch efficientnet_b0"}))
    out = _printed(ostudy, 2, 0, capsys)
    assert "failed trial 1: timm could not fetch efficientnet_b0" in out and "trial 0: value 1.0000" in out


def test_a_search_the_timeout_ended_early_says_so(capsys):
    ostudy = optuna.create_study()
    ostudy.add_trial(optuna.trial.create_trial(value=0.5, params={}, distributions={}))
    study = SimpleNamespace(config=SimpleNamespace(name="s", budget=SimpleNamespace(n_trials=20, timeout=12),
                                                   export=ExportConfig()),
                            run_dir=Path("runs/s"), storage_url="sqlite:///runs/s/study.db")
    result = SimpleNamespace(study=ostudy, seconds=15.2, interrupted=False, trials_before=0, trials_finished=1)
    print_run_summary(study, result, exported=None)
    assert "stopped: budget.timeout=12 s reached after 1 of budget.n_trials=20 trials (completed and pruned); " \
           "running the study again resumes it" in capsys.readouterr().out
    print_run_summary(study, SimpleNamespace(**{**vars(result), "seconds": 3.0}), exported=None)
    assert "budget.timeout" not in capsys.readouterr().out   # ended for another reason: not said to be the clock


def test_status_says_how_the_search_was_set_up(write_study, capsys):
    from searchlab.config.load import load_study
    from searchlab.engine.rundir import open_run
    from searchlab.engine.run import run_study
    from searchlab.summary import print_status
    from test_run import callable_study

    path = callable_study(write_study, n=2)
    run_study(load_study(path, {"budget.n_trials": 3, "budget.timeout": 600, "export.after_run": False}),
              progress=False)
    print_status(open_run(path.parent / "run"), 3)
    out = capsys.readouterr().out
    assert ("search:    random, pruner none, n_trials 3, epochs 20, timeout 600.0, seed 0, local x1; 1 searched, "
            "1 fixed settings; --set budget.n_trials=3 --set budget.timeout=600 --set export.after_run=false "
            "(the latest run's") in out
    assert "s of trials run (summed over 3 ended trial(s)); " in out


def test_a_classifier_trial_says_its_metrics_are_validation_ones_with_costs_and_classes_apart():
    from searchlab.trial_said import describe_trial

    metrics = {"auc": 0.8, "params": 1200, "auc_class_0": 0.9, "recall_class_0": 0.25, "auc_class_1": 0.7,
               "recall_class_1": 0.9}
    attrs = {"metrics": metrics, "task_kind": "multiclass", "class_names": ["carcinoma", "benign"], "cv_folds": []}
    text = describe_trial(None, optuna.trial.create_trial(value=0.8, params={}, distributions={}, user_attrs=attrs))
    assert text.endswith("    validation (mean over folds): auc=0.8\n    AUC per class: carcinoma 0.9, benign 0.7\n"
                         "    sensitivity per class: carcinoma 0.25, benign 0.9\n    costs: params=1200")


def test_a_run_folder_whose_study_file_was_deleted_is_not_called_a_resume(write_study, capsys):
    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study
    from searchlab.summary import print_run_header
    from test_run import callable_study

    path = callable_study(write_study, n=1)
    run_study(load_study(path), progress=False)
    print_run_header(load_study(path))
    assert "(resuming the trials stored there)" in capsys.readouterr().out
    for file in (path.parent / "run").glob("study.db*"):
        file.unlink()
    print_run_header(load_study(path))
    assert "study.db is missing: a new study starts there; the checkpoints in artifacts/" in capsys.readouterr().out


def test_failures_listed_are_failed_configs_not_attempts_a_retry_took_over(capsys):
    """An interrupted attempt whose retry completed was listed as a failure of the run."""
    from searchlab.summary import print_failures

    ostudy = optuna.create_study()
    fail = optuna.trial.TrialState.FAIL
    ostudy.add_trial(optuna.trial.create_trial(state=fail, params={}, distributions={},
                                               user_attrs={"error": "interrupted: its process ended"}))
    ostudy.add_trial(optuna.trial.create_trial(value=1.0, params={}, distributions={}, user_attrs={"retry_of": 0}))
    ostudy.add_trial(optuna.trial.create_trial(state=fail, params={}, distributions={},
                                               user_attrs={"error": "CUDA out of memory"}))
    print_failures(ostudy)
    assert capsys.readouterr().out == "  failed trial 2: CUDA out of memory\n"


def test_a_gan_trial_shows_the_duplicates_and_density_its_suspect_note_may_cite():
    """"collapses: 64% of its samples are near-duplicates" was said beside a metrics line without duplicates."""
    from searchlab.trial_said import describe_trial

    metrics = {"medfid": 0.4, "density": 0.9, "coverage": 0.5, "copying": 0.0, "duplicates": 0.64}
    trial = optuna.trial.create_trial(value=0.4, params={}, distributions={}, user_attrs={"metrics": metrics})
    assert "metrics: medfid=0.4, density=0.9, coverage=0.5, copying=0, duplicates=0.64" in describe_trial(None, trial)


@pytest.mark.parametrize("attrs, said", [
    ({"zen_score": 41.5, "proxy_trial": 7}, "picked as zen_nas's candidate, Zen-score 41.5 (trial 7 of its stage's"),
    ({"entropy": 3.25}, "picked as deepmad's design, entropy 3.25\n"),
    ({"zen_score": "high"}, None)])   # a user attribute of that name, not a score of ours
def test_a_trial_a_proxy_picked_shows_its_proxy_score_beside_the_trained_one(attrs, said):
    """status showed a zen_nas or deepmad trial's trained scores alone: whether the training-free ranking held
    was in `searchlab trials` and the export only."""
    from searchlab.trial_said import describe_trial

    trial = optuna.trial.create_trial(value=0.8, params={}, distributions={},
                                      user_attrs={"metrics": {"auc": 0.8}, "task_kind": "binary", **attrs})
    text = describe_trial(None, trial) + "\n"
    assert (said in text) if said else "picked as" not in text


def test_a_bagged_trials_threshold_says_where_it_was_chosen_and_an_edge_value_is_not_rounded_onto_the_edge():
    """A bag's threshold was said "chosen on val" (it is chosen out of fold on train+val, as its export says), and
    0.9999969601631165 was shown as threshold=1."""
    from searchlab.trial_said import describe_trial

    attrs = {"metrics": {"auc": 0.8}, "task_kind": "binary", "cv_folds": [], "bag": {}, "threshold": 0.9999969601631165}
    text = describe_trial(None, optuna.trial.create_trial(value=0.8, params={}, distributions={}, user_attrs=attrs))
    assert ", threshold=0.999997 (the exported model's, chosen out of fold on train+val)" in text
