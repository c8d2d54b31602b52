"""Selection by k-fold cross-validation over train+val (train: {cv_folds: K}): folds, reports, metrics, export."""
from __future__ import annotations

import re

import numpy as np
import optuna
import pytest
import torch
from optuna.trial import TrialState
from sklearn.metrics import roc_auc_score

from searchlab.config.load import load_study
from searchlab.data import load_dataset
from searchlab.engine.run import run_study
from searchlab.export.exporter import export_run
from searchlab.models.standalone import load, predict_proba
from searchlab.errors import TrialFailure
from searchlab.tasks.bagging import bag_record
from searchlab.tasks.crossval import FOLD_SCHEME, CVResult, fold_batches, fold_indices, pool_train_val

TINY = """
name: tiny_cv
task: classify
space:
  model: {kind: cnn, depth: 1, width: 4, convs_per_stage: 1}
  optim: {lr: 3.0e-3}
  train: {batch_size: 128TRAIN}
strategy: random
pruner: none
budget: {n_trials: 1, epochs: 2}
"""


def test_folds_are_stratified_disjoint_and_cover_train_val_without_test(write_study):
    study = load_study(write_study(TINY.replace("TRAIN", "")))
    data = load_dataset(study.config.data, splits=("train", "val", "test"), base_dir=study.base_dir)
    pool = pool_train_val(data)
    train, val, test = (data.splits[s] for s in ("train", "val", "test"))
    assert len(train) == 546 and len(val) == 78 and len(test) == 156 and len(pool) == 624
    assert torch.equal(pool.images, torch.cat([train.images, val.images]))   # train+val only, never test
    assert torch.equal(pool.labels, torch.cat([train.labels, val.labels]))
    folds = fold_indices(pool.labels, 3, seed=7)
    everything = np.concatenate(folds)
    assert len(everything) == 624 and sorted(everything.tolist()) == list(range(624))   # disjoint, covering
    totals = np.bincount(pool.labels.numpy(), minlength=2)
    for fold in folds:
        counts = np.bincount(pool.labels.numpy()[fold], minlength=2)
        assert np.all(np.abs(counts - totals / 3) <= 1), (counts, totals)   # stratified
        assert abs(len(fold) - 208) <= 1
    assert all(np.array_equal(a, b) for a, b in zip(folds, fold_indices(pool.labels, 3, seed=7)))   # deterministic
    assert not all(np.array_equal(a, b) for a, b in zip(folds, fold_indices(pool.labels, 3, seed=8)))
    batches = fold_batches(pool, folds, 1, data.kind, data.class_names)
    assert len(batches.train) == 624 - len(folds[1]) and torch.equal(batches.val.images, pool.images[folds[1]])
    mean = (batches.train.images.float() / 255).mean().item()
    assert batches.preprocessing["mean"][0] == pytest.approx(mean, rel=1e-5)   # this fold's training part only


def _rare_label_set(n: int = 96, rare: int = 8) -> np.ndarray:
    """Multi-label (n, 3): a common label, a middling one and one with `rare` positives."""
    rng = np.random.default_rng(0)
    labels = (rng.random((n, 3)) < [0.5, 0.3, 0.0]).astype(np.int64)
    labels[rng.choice(n, rare, replace=False), 2] = 1
    return labels


def test_multilabel_folds_give_each_fold_its_share_of_every_labels_positives():
    labels = _rare_label_set()
    for seed in range(20):
        folds = fold_indices(torch.from_numpy(labels), 5, seed=seed)
        assert sorted(np.concatenate(folds).tolist()) == list(range(96))   # disjoint, covering
        assert max(map(len, folds)) - min(map(len, folds)) <= 2
        for fold in folds:
            share = labels[fold].sum(0)
            assert np.all(np.abs(share - labels.sum(0) / 5) <= 1.5), (seed, share)
            assert share[2] >= 1   # 8 positives of the rare label: one or two in every fold
    assert all(np.array_equal(a, b) for a, b in zip(folds, fold_indices(labels, 5, seed=19)))   # seeded


def test_multilabel_folds_of_scheme_1_stay_random_for_bags_recorded_before_scheme_2():
    """Exports re-deal a bag's folds from its record: one recorded before scheme 2 must get the random folds its
    models held out, or images would be scored by models that trained on them."""
    labels = _rare_label_set()
    old = fold_indices(labels, 5, seed=3, scheme=1)
    order = np.random.default_rng(3).permutation(96)
    assert all(np.array_equal(f, np.sort(order[i::5])) for i, f in enumerate(old))
    missing = [seed for seed in range(20)
               if min(labels[f, 2].sum() for f in fold_indices(labels, 5, seed=seed, scheme=1)) == 0]
    assert missing   # what scheme 2 is for: random folds left the rare label out of some fold
    assert bag_record(CVResult(metrics={}), 0, 5)["fold_scheme"] == FOLD_SCHEME == 2


def test_multilabel_folds_need_as_many_images_as_folds():
    with pytest.raises(TrialFailure, match=r"cv_folds=5: train\+val holds 3 image\(s\), fewer than the folds"):
        fold_indices(np.eye(3, dtype=np.int64), 5, seed=0)


def _run(write_study, tmp_path, train_extra: str, run: str = "run") -> optuna.trial.FrozenTrial:
    text = TINY.replace("TRAIN", train_extra) + f"run_dir: '{tmp_path / run}'\n"
    run_study(load_study(write_study(text, name=f"{run}.yaml")), progress=False)
    study = optuna.load_study(study_name="tiny_cv", storage=f"sqlite:///{tmp_path / run / 'study.db'}")
    (trial,) = study.get_trials(states=(TrialState.COMPLETE,))
    return trial


def test_cv_trial_reports_running_fold_means_warns_of_each_folds_best_epoch_and_exports(write_study, tmp_path, capsys):
    trial = _run(write_study, tmp_path, ", cv_folds: 3")
    _check_cv_that_keeps_each_folds_best_epoch_is_warned_of(write_study, tmp_path, capsys)
    folds = trial.user_attrs["cv_folds"]
    assert [f["fold"] for f in folds] == [0, 1, 2] and sum(f["n_val"] for f in folds) == 624
    aucs = [f["auc"] for f in folds]
    assert sorted(trial.intermediate_values) == [0, 1, 2]
    for step in range(3):
        assert trial.intermediate_values[step] == pytest.approx(np.mean(aucs[:step + 1]))
    metrics = trial.user_attrs["metrics"]
    assert trial.value == pytest.approx(np.mean(aucs)) and metrics["auc"] == pytest.approx(np.mean(aucs))
    assert metrics["auc_std"] == pytest.approx(np.std(aucs)) and metrics["cv_folds_done"] == 3
    assert metrics["f1"] == pytest.approx(np.mean([f["f1"] for f in folds]))
    final_epochs = int(np.median([f["best_epoch"] for f in folds])) + 1
    assert metrics["epochs_trained"] == final_epochs and metrics["best_epoch"] == final_epochs - 1
    assert (tmp_path / "run" / "artifacts" / trial.user_attrs["checkpoint"]).is_file()
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=50)
    assert config["test_size"] == 156 and 0.0 <= config["test_metrics"]["auc"] <= 1.0
    assert (tmp_path / "best" / "weights.safetensors").is_file()
    # the export holds the refit model: its own validation AUC beside the folds' mean, each said for what it is
    net, loaded = load(tmp_path / "best")
    data = load_study(tmp_path / "run.yaml").config.data
    val = load_dataset(data, splits=("val",), base_dir=tmp_path).splits["val"]
    own = roc_auc_score(val.labels.numpy(), predict_proba(net, loaded, val.images).numpy())
    assert config["model_validation_metrics"]["auc"] == pytest.approx(own, abs=1e-6)
    assert config["validation_metrics"]["auc"] == pytest.approx(np.mean(aucs))
    assert config["validation_metrics_are"].startswith("the trial's selection score: the mean over its cross-")
    # the refit's own epochs beside its own metrics; every setting as it ran, the defaults and epochs included
    assert config["model_validation_metrics"]["epochs_trained"] == final_epochs
    ran = config["trial"]["config_with_defaults"]
    assert ran["train"]["cv_folds"] == 3 and ran["train"]["cv_model"] == "refit" and ran["train"]["epochs"] == 2
    assert ran["train"]["checkpoint"] == "best" and ran["imbalance"]["loss"] == "ce"


def _check_cv_that_keeps_each_folds_best_epoch_is_warned_of(write_study, tmp_path, capsys):
    """Right after the cv_folds: 3 run of the test above (one run serves both): its warning, then a run that
    keeps the last epoch, which is not warned of."""
    err = capsys.readouterr().err
    assert "each fold keeps, and is scored at, the epoch that scored best on its own held-out images" in err
    assert "Fix: space.train.checkpoint: last" in err
    _run(write_study, tmp_path, ", cv_folds: 3, checkpoint: last", run="last")
    assert "scored best on its own held-out" not in capsys.readouterr().err
    runs = optuna.load_study(study_name="tiny_cv", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").user_attrs
    # the run's start warnings are kept in the study with what stopped the run, for whoever asks later
    (history,) = runs["searchlab_runs"]
    assert history["stopped_by"] == "budget.n_trials" and history["trials_finished"] == 1
    assert any("scored best on its own held-out" in line for line in history["start_warnings"])


def test_without_cv_folds_the_trial_is_unchanged(write_study, tmp_path):
    trial = _run(write_study, tmp_path, "")
    assert "cv_folds" not in trial.user_attrs and "auc_std" not in trial.user_attrs["metrics"]
    assert sorted(trial.intermediate_values) == [0, 1] and len(trial.user_attrs["curve"]) == 2
    assert trial.value == trial.user_attrs["metrics"]["auc"]
    assert (tmp_path / "run" / "artifacts" / trial.user_attrs["checkpoint"]).is_file()
    export_run(tmp_path / "run", tmp_path / "best", bootstrap=50)
    assert (tmp_path / "best" / "weights.safetensors").is_file()


def test_repeated_cv_uses_new_folds_per_repeat(write_study, tmp_path):
    trial = _run(write_study, tmp_path, ", cv_folds: 2, repeats: 2")
    runs = trial.user_attrs["cv_folds"]
    assert [(r["repeat"], r["fold"]) for r in runs] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert sorted(trial.intermediate_values) == [0, 1, 2, 3]
    assert trial.value == pytest.approx(np.mean([r["auc"] for r in runs]))
    assert trial.user_attrs["metrics"]["cv_folds_done"] == 4
    pool_labels = pool_train_val(load_dataset(load_study(tmp_path / "run.yaml").config.data,
                                              splits=("train", "val"), base_dir=tmp_path)).labels
    first, second = fold_indices(pool_labels, 2, seed=0), fold_indices(pool_labels, 2, seed=1)
    assert not np.array_equal(first[0], second[0])   # repeat 1 splits with the next fold seed


def test_repeated_seeds_select_on_the_mean_and_keep_the_first_run(write_study, tmp_path):
    trial = _run(write_study, tmp_path, ", repeats: 3")
    runs = trial.user_attrs["repeats"]
    assert [r["repeat"] for r in runs] == [0, 1, 2] and all(r["n_val"] == 78 for r in runs)
    assert trial.value == pytest.approx(np.mean([r["auc"] for r in runs]))
    assert trial.user_attrs["metrics"]["repeats_done"] == 3 and "cv_folds" not in trial.user_attrs
    assert len({r["auc"] for r in runs}) > 1   # each run has its own seed
    assert trial.user_attrs["metrics"]["best_epoch"] == runs[0]["best_epoch"]
    # the exported checkpoint is the first run's model: its validation AUC is that run's
    export_run(tmp_path / "run", tmp_path / "best", bootstrap=20)
    net, config = load(tmp_path / "best")
    val = load_dataset(load_study(tmp_path / "run.yaml").config.data, splits=("val",), base_dir=tmp_path).splits["val"]
    probs = predict_proba(net, config, val.images).numpy()   # binary: P(positive class)
    assert roc_auc_score(val.labels.numpy(), probs) == pytest.approx(runs[0]["auc"], abs=1e-6)


def test_checkpoint_last_trains_every_epoch_and_keeps_the_final_weights(write_study, tmp_path):
    trial = _run(write_study, tmp_path, ", epochs: 4, early_stopping: 1, checkpoint: last")
    curve = trial.user_attrs["curve"]
    metrics = trial.user_attrs["metrics"]
    assert len(curve) == 4 and metrics["epochs_trained"] == 4 and metrics["best_epoch"] == 3   # no early stop
    export_run(tmp_path / "run", tmp_path / "best", bootstrap=20)
    net, config = load(tmp_path / "best")
    val = load_dataset(load_study(tmp_path / "run.yaml").config.data, splits=("val",), base_dir=tmp_path).splits["val"]
    auc = roc_auc_score(val.labels.numpy(), predict_proba(net, config, val.images).numpy())
    assert auc == pytest.approx(curve[-1]["auc"], abs=1e-6) == pytest.approx(metrics["auc"], abs=1e-6)


def test_the_pruner_judges_a_cv_trial_from_its_second_run_on(write_study):
    """One 208-image fold is noise: fold 0's mean is recorded, but only the running mean of 2+ folds may prune."""
    from types import SimpleNamespace

    from searchlab.engine.context import TrialContext
    from searchlab.tasks.crossval import cross_validate, progress_steps
    from searchlab.tasks.train import TrainResult

    study = load_study(write_study(TINY.replace("TRAIN", ", cv_folds: 3")))
    optuna_study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    ctx = TrialContext(optuna_study.ask(), study, artifacts=None, seed=0)   # this pruner prunes any AUC it judges
    fitted = []

    def fit(batches, seed):
        fitted.append(seed)
        return TrainResult({"auc": 0.7 + 0.1 * len(fitted)}, 0, {}, 0.5, 1.0, 4, 1, [[1, 0], [0, 1]])

    splits = iter([({"fold": i}, SimpleNamespace(train=[0] * 4, val=[0] * 2)) for i in range(3)])
    step_of = progress_steps(3, 20)
    with pytest.raises(optuna.TrialPruned):
        cross_validate(splits, 0, "auc", fit, ctx.report, lambda: False, step_of=step_of)
    assert fitted == [0, 1]   # not pruned after fold 0; pruned after fold 1, before fold 2 trained
    (trial,) = optuna_study.get_trials()
    assert trial.intermediate_values == {step_of(0): pytest.approx(0.8), step_of(1): pytest.approx(0.85)}


def test_a_cv_trial_the_timeout_cuts_is_pruned_with_its_reason(write_study, tmp_path):
    """A mean over fewer or shorter folds is noisier than the others' and would win the selection by luck
    (seen: one fold cut at epoch 34 of 40 ranked first of a 30-minute search, above every 3-fold mean)."""
    # checkpoint: last never stops early, so every fold would run 100000 epochs: only the timeout ends it
    text = TINY.replace("TRAIN", ", cv_folds: 3, checkpoint: last").replace("budget: {n_trials: 1, epochs: 2}",
                                                          "budget: {n_trials: 1, epochs: 100000, timeout: 4}")
    run_study(load_study(write_study(text + f"run_dir: '{tmp_path / 'run'}'\n")), progress=False)
    study = optuna.load_study(study_name="tiny_cv", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    (trial,) = study.get_trials()
    assert trial.state == TrialState.PRUNED
    reason = re.fullmatch(r"stopped by budget\.timeout after (\d) of 3 runs, the last cut at epoch (\d+) of 100000: "
                          r"not comparable with trials that finished every run", trial.user_attrs["pruned"])
    assert reason, trial.user_attrs["pruned"]
    folds = trial.user_attrs["cv_folds"]
    assert len(folds) == int(reason[1]) < 3 and folds[-1]["epochs_trained"] == int(reason[2]) < 100000


def test_a_cv_trial_whose_exported_model_the_timeout_cuts_is_pruned_with_its_reason(write_study, tmp_path,
                                                                                    monkeypatch):
    """Every fold finished, then the timeout stopped the model trained on the training split (the export):
    ranking it by the folds' mean would ship a far weaker model than the score it was chosen on."""
    from searchlab.engine.context import TrialContext
    from searchlab.tasks import classify

    real_fit = classify.fit

    def fit(*args, keep_last=False, **kwargs):
        if keep_last:   # the refit, after the folds: the deadline passes now
            monkeypatch.setattr(TrialContext, "out_of_time", lambda self: True)
        return real_fit(*args, keep_last=keep_last, **kwargs)

    monkeypatch.setattr(classify, "fit", fit)
    text = TINY.replace("TRAIN", ", cv_folds: 2, checkpoint: last").replace("epochs: 2}", "epochs: 3}")
    run_study(load_study(write_study(text + f"run_dir: '{tmp_path / 'run'}'\n")), progress=False)
    study = optuna.load_study(study_name="tiny_cv", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    (trial,) = study.get_trials()
    assert trial.state == TrialState.PRUNED and len(trial.user_attrs["cv_folds"]) == 2
    assert trial.user_attrs["pruned"] == (
        "stopped by budget.timeout after 1 of 3 epochs of the model trained on the training split (the one "
        "exported), after every cross-validation run had finished: its folds' mean is not this model's")


def test_a_run_that_finished_before_the_timeout_is_not_cut():
    from types import SimpleNamespace

    from searchlab.tasks.crossval import cross_validate
    from searchlab.tasks.train import TrainResult

    def fit(batches, seed, cut=False):
        return TrainResult({"auc": 0.8}, 0, {}, 0.5, 1.0, 4, 2, [[1, 0], [0, 1]], cut_short=cut)

    def splits():
        return iter([({"fold": i}, SimpleNamespace(train=[0] * 4, val=[0] * 2)) for i in range(2)])

    def no_report(step, metrics, judge):
        pass

    done = cross_validate(splits(), 0, "auc", fit, no_report, out_of_time=lambda: True)
    assert len(done.folds) == 1 and not done.cut_short   # stopped between runs: the caller sees 1 of 2
    cut = cross_validate(splits(), 0, "auc", lambda b, s: fit(b, s, cut=True), no_report, out_of_time=lambda: True)
    assert cut.cut_short


def test_each_fold_is_scored_at_a_threshold_chosen_on_the_other_folds():
    """Uninformative scores: a Youden threshold chosen on the fold it scores gives a mean balanced accuracy
    above chance over five 40-image folds (0.59 here); chosen on the other folds, it stays at chance."""
    from types import SimpleNamespace

    from searchlab.data.types import ImageSplit
    from searchlab.imbalance import ImbalanceSpec, choose_threshold
    from searchlab.metrics import compute_metrics
    from searchlab.tasks.crossval import CrossFoldThresholds, cross_validate
    from searchlab.tasks.train import TrainResult

    rng = np.random.default_rng(3)
    folds = [(torch.from_numpy(rng.integers(0, 2, 40)), rng.random(40)) for _ in range(5)]
    youden = ImbalanceSpec(threshold="youden")

    def fit(batches, seed):
        labels, probs = batches.val.labels.numpy(), batches.probs
        own = choose_threshold(youden, "binary", labels, probs)   # what the training loop chose on the fold itself
        return TrainResult(compute_metrics(labels, probs, "binary", 2, threshold=own), 0, {}, own, 1.0, 4, 1,
                           [[1, 0], [0, 1]], val_probs=probs)

    def splits():
        return iter([({"repeat": 0, "fold": i}, SimpleNamespace(train=[0] * 160, probs=p,
                                                               val=ImageSplit(torch.zeros(40, 1, 2, 2), y)))
                     for i, (y, p) in enumerate(folds)])

    def no_report(step, metrics, judge):
        pass

    own = cross_validate(splits(), 0, "balanced_accuracy", fit, no_report, lambda: False)
    thresholds = CrossFoldThresholds(lambda y, p: choose_threshold(youden, "binary", y, p), "binary", 2)
    honest = cross_validate(splits(), 0, "balanced_accuracy", fit, no_report, lambda: False, thresholds=thresholds)
    assert own.metrics["balanced_accuracy"] > 0.57   # the optimism the cross-fold thresholds remove
    assert abs(honest.metrics["balanced_accuracy"] - 0.5) < 0.06
    assert honest.metrics["auc"] == pytest.approx(own.metrics["auc"])   # threshold-free metrics unchanged
    for i, record in enumerate(honest.folds):
        others = [f for j, f in enumerate(folds) if j != i]
        expected = choose_threshold(youden, "binary", np.concatenate([y.numpy() for y, _ in others]),
                                    np.concatenate([p for _, p in others]))
        assert record["threshold"] == pytest.approx(expected)


def test_more_folds_than_the_rarest_class_has_images_is_refused_before_any_trial(write_study, tmp_path):
    from searchlab.errors import ConfigError
    from test_data import class_folder

    folder = class_folder(tmp_path / "imgs", {"a": 20, "b": 5})
    study = write_study(TINY.replace("TRAIN", ", cv_folds: {choice: [6, 8]}") +
                        f"data: {{source: folder, path: '{folder}', image_size: 8, test_fraction: 0.2}}\n")
    with pytest.raises(ConfigError) as info:
        run_study(load_study(study), progress=False)
    assert info.value.key == "space.train.cv_folds"
    assert "6-fold cross-validation needs at least 6 images of every class in train+val, and class 'b' " \
           "has 4" in str(info.value) and "use cv_folds 4 or fewer" in str(info.value)
    assert not (tmp_path / "run" / "study.db").exists() or not optuna.get_all_study_summaries(
        f"sqlite:///{tmp_path / 'run' / 'study.db'}")[0].n_trials


def test_a_setting_found_wrong_once_the_data_is_read_is_named_at_its_included_fragments_line(write_study, tmp_path):
    """Checks that need the data run when the run starts: one on a key an included fragment wrote named the study
    file's `include:` line (or none), and the user looked for cv_folds in the wrong file."""
    from searchlab.errors import ConfigError
    from test_data import class_folder

    folder = class_folder(tmp_path / "imgs", {"a": 20, "b": 5})
    (tmp_path / "folds.yaml").write_text("# my training settings\ntrain:\n  batch_size: 128\n  cv_folds: 6\n")
    study = write_study(TINY.replace("  train: {batch_size: 128TRAIN}\n", "  include: folds.yaml\n") +
                        f"data: {{source: folder, path: '{folder}', image_size: 8, test_fraction: 0.2}}\n")
    with pytest.raises(ConfigError) as info:
        run_study(load_study(study), progress=False)
    assert (info.value.file, info.value.line, info.value.key) == (str(tmp_path / "folds.yaml"), 4, "train.cv_folds")


def _val_only(labels: torch.Tensor, names: tuple[str, ...], kind: str):
    from searchlab.data.types import ImageDataset, ImageSplit

    images = torch.zeros((len(labels), 1, 4, 4), dtype=torch.uint8)
    return ImageDataset(splits={"val": ImageSplit(images, labels)}, class_names=names, kind=kind)


def test_a_validation_split_with_few_images_of_a_class_is_warned_about_unless_trials_cross_validate():
    from searchlab.tasks.selection_advice import small_validation_warning

    four = _val_only(torch.tensor([0] * 40 + [1] * 4), ("benign", "malignant"), "binary")
    warning = small_validation_warning(four, cross_validated=False)
    assert warning.startswith("the validation split has 44 images, and only 4 of them are of class 'malignant': "
                              "one image of those moves a trial's validation scores about its class (sensitivity, "
                              "F1, AUC, ...) by up to 0.25, so trials")
    assert "space.train.cv_folds: 5" in warning
    assert small_validation_warning(four, cross_validated=True) is None
    ten = _val_only(torch.tensor([0] * 40 + [1] * 10), ("benign", "malignant"), "binary")
    assert small_validation_warning(ten, cross_validated=False) is None
    labels = torch.tensor([[1.0, 0.0]] * 30 + [[1.0, 1.0]] * 3)   # label "a" is never off: 0 negatives
    multi = _val_only(labels, ("a", "b"), "multilabel")
    assert "only 3 of them are b positives" in small_validation_warning(multi, cross_validated=False)


def test_the_small_validation_warning_names_every_short_class_and_counts_their_patients():
    """It named the rarest class alone, by images: 6 images of one patient looked like 6 chances to judge."""
    from searchlab.data.types import ImageDataset, ImageSplit
    from searchlab.tasks.selection_advice import small_validation_warning

    labels = torch.tensor([0] * 40 + [1] * 6 + [2] * 3)
    groups = tuple(f"p{i % 20}" for i in range(40)) + ("q1",) * 6 + ("r1", "r2", "r3")
    images = torch.zeros((len(labels), 1, 4, 4), dtype=torch.uint8)
    data = ImageDataset(splits={"val": ImageSplit(images, labels, groups=groups)}, class_names=("a", "b", "c"),
                        kind="multiclass")
    warning = small_validation_warning(data, cross_validated=False)
    assert warning.startswith("the validation split has 49 images, and only 3 of them are of class 'c' (3 patients), "
                              "6 of class 'b' (1 patient): one image of the rarest moves")
    assert "by up to 0.33 (and one patient's images move them together), so" in warning
    plain = ImageDataset(splits={"val": ImageSplit(images, labels)}, class_names=("a", "b", "c"), kind="multiclass")
    assert "3 of them are of class 'c', 6 of class 'b': " in small_validation_warning(plain, cross_validated=False)


def test_a_validation_split_without_a_class_is_warned_about_whatever_the_objective():
    """Said for 2 images of a class, nothing for none: a run selecting on balanced accuracy went on without a word
    while the class was left out of every trial's score (AUC, undefined there, is refused elsewhere)."""
    from searchlab.tasks.selection_advice import small_validation_warning

    names = ("benign", "malignant", "normal", "rare_lesion")
    none = _val_only(torch.tensor([0] * 39 + [1] * 13 + [2] * 78), names, "multiclass")
    warning = small_validation_warning(none, cross_validated=False)
    assert warning.startswith("the validation split has 130 images and none of class(es) 'rare_lesion': trials are "
                              "selected without them") and "space.train.cv_folds: 5" in warning
    assert small_validation_warning(none, cross_validated=True) is None
    two = _val_only(torch.tensor([0] * 39 + [1] * 13 + [2] * 78 + [3] * 2), names, "multiclass")
    assert "only 2 of them are of class 'rare_lesion'" in small_validation_warning(two, cross_validated=False)


def test_objectives_that_select_on_chosen_thresholds_or_one_side_are_warned_about():
    from searchlab.tasks.selection_advice import one_sided_objective_warning, threshold_selection_warning

    warning = threshold_selection_warning(["balanced_accuracy"], chosen_on_val=True)
    assert warning.startswith("balanced_accuracy is scored at a decision threshold chosen on the same validation "
                              "images that rank the trials") and "space.train.cv_folds" in warning
    assert threshold_selection_warning(["balanced_accuracy"], chosen_on_val=False) is None
    assert threshold_selection_warning(["auc", "average_precision"], chosen_on_val=True) is None
    assert one_sided_objective_warning(["sensitivity"]).startswith(
        "sensitivity alone is the objective: a model that calls every image positive scores 1. Fix: add specificity")
    assert one_sided_objective_warning(["sensitivity", "specificity"]) is None
    assert one_sided_objective_warning(["auc"]) is None
    assert "calls every label on for every image scores 1" in one_sided_objective_warning(["recall"], "multilabel")
    assert one_sided_objective_warning(["recall"], "multiclass") is None   # every image one class: recall 1/K
    assert "calls class 2 for every image scores 1" in one_sided_objective_warning(["recall_class_2"], "multiclass")
    assert "calls label 0 for every image" in one_sided_objective_warning(["recall_class_0"], "multilabel")


def test_a_class_or_label_the_training_images_never_show_is_warned_of():
    """A label with no positive in the training split trained and exported a model that cannot know it."""
    from searchlab.data.types import ImageDataset, ImageSplit
    from searchlab.tasks.selection_advice import untrainable_class_warning

    def data(train, val, kind, names):
        split = lambda labels: ImageSplit(images=torch.zeros(len(labels), 1, 4, 4, dtype=torch.uint8),
                                          labels=torch.tensor(labels))
        return ImageDataset(splits={"train": split(train), "val": split(val)}, class_names=names, kind=kind)

    multi = data([[1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [1.0, 0.0]], "multilabel", ("a", "rare"))
    assert untrainable_class_warning(multi, cross_validated=False).startswith(
        "label(s) 'rare' are on in none of the 2 images in the training split: no trial can learn them")
    assert untrainable_class_warning(multi, cross_validated=True) is None   # the folds pool val's positive in
    single = data([0, 0, 2], [1, 2], "multiclass", ("a", "b", "c"))
    assert "class(es) 'b' have none of the 3 images in the training split" in \
        untrainable_class_warning(single, cross_validated=False)
    assert untrainable_class_warning(data([0, 1], [1, 0], "binary", ("a", "b")), cross_validated=False) is None


def test_a_multilabel_validation_split_where_a_label_never_changes_is_warned_of_when_thresholds_are_chosen():
    from searchlab.tasks.selection_advice import unchoosable_threshold_warning

    labels = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])   # "rare" never on among these images
    multi = _val_only(labels, ("effusion", "rare"), "multilabel")
    assert unchoosable_threshold_warning(multi, chosen=True).startswith(
        "label(s) 'rare' (never on) in all 3 validation images: no threshold can be chosen for them there")
    assert unchoosable_threshold_warning(multi, chosen=False) is None   # fixed thresholds choose nothing
    both = _val_only(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), ("effusion", "rare"), "multilabel")
    assert unchoosable_threshold_warning(both, chosen=True) is None


def test_an_undefined_objective_under_cv_names_the_held_out_fold_not_the_validation_split(write_study):
    from searchlab.engine.objective import objective_values

    study = load_study(write_study(TINY.replace("TRAIN", ", cv_folds: 3")))
    with pytest.raises(TrialFailure, match=r"'auc' is nan \(undefined on a held-out fold: .*\)\. Fix: lower "
                                           r"space\.train\.cv_folds, or add images of the rarest class"):
        objective_values(study, {"auc": float("nan"), "cv_folds_done": 3.0})
    with pytest.raises(TrialFailure, match=r"undefined on this validation split.*Fix: a validation split"):
        objective_values(study, {"auc": float("nan")})
