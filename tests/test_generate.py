"""The generate task: GAN trials scored by MedFID, KID, precision/recall; failures that fail alone; bad input."""
from __future__ import annotations

import json
import shutil

import optuna
import pytest
import torch
from optuna.artifacts import FileSystemArtifactStore, download_artifact
from optuna.trial import TrialState
from PIL import Image

from searchlab.config.load import load_study
from searchlab.data.types import ImageDataset, ImageSplit
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError, TrialFailure
from searchlab.gan import train as gan_train
from searchlab.gan.features import CACHE_DIR, PenultimateFeatures, feature_network
from searchlab.gan.metrics import Reference, precision_recall
from searchlab.models.gan import build_generator
from searchlab.models.standalone import read_safetensors
from searchlab.tasks.generate import _check_enough_images, _check_resolution
from searchlab.tasks.generate_config import GenerateTrialConfig

STUDY = """
name: gan
task: generate
space:
  gan: {family: FAMILY, latent: 16, g_width: 16, d_width: 16, conditional: COND}
  train: {batch_size: 16, iterations: 40, evaluations: 2, ema: 0.9}
strategy: random
pruner: none
budget: {n_trials: 1}
seed: 0
"""


# breast and extractor_run (the purpose-trained MedFID network, once a session): tests/conftest.py


def _study(write_study, tmp_path, extractor_run, family="dcgan", conditional="false", extra=""):
    shutil.copytree(extractor_run / CACHE_DIR, tmp_path / "run" / CACHE_DIR)
    return load_study(write_study(STUDY.replace("FAMILY", family).replace("COND", conditional) + extra))


@pytest.mark.parametrize("family, conditional", [("dcgan", "true"), ("wgan_gp", "false"), ("stylegan2", "true")])
def test_each_family_trains_and_is_scored_with_its_artifacts(write_study, tmp_path, extractor_run, family,
                                                            conditional):
    study = _study(write_study, tmp_path, extractor_run, family, conditional)
    run_study(study, progress=False)
    trial = optuna.load_study(study_name="gan", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials[0]
    assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("error")
    metrics = trial.user_attrs["metrics"]
    assert trial.value > 0 and 0 <= metrics["precision"] <= 1 and 0 <= metrics["recall"] <= 1
    assert 0 < metrics["medfid_floor"] < trial.value          # 40 iterations do not reach real-vs-real
    assert [e["iteration"] for e in trial.user_attrs["evaluations"]] == [20, 40]
    store = FileSystemArtifactStore(str(tmp_path / "run" / "artifacts"))
    png = tmp_path / "grid.png"
    download_artifact(artifact_store=store, artifact_id=trial.user_attrs["samples"], file_path=str(png))
    rows = 2 if conditional == "true" else 8                  # a row of 8 per class, else 8 x 8
    assert Image.open(png).size == (8 * 30 + 2, rows * 30 + 2)
    weights = tmp_path / "g.safetensors"
    download_artifact(artifact_store=store, artifact_id=trial.user_attrs["checkpoint"], file_path=str(weights))
    spec = trial.user_attrs["generator"]
    generator = build_generator(spec["family"], spec["image_size"], spec["channels"], **spec["args"])
    generator.load_state_dict(read_safetensors(weights))
    assert generator.sample(4).shape == (4, 1, 28, 28)


def test_a_diverging_trial_fails_with_the_reason_and_the_study_goes_on(write_study, tmp_path, extractor_run,
                                                                       monkeypatch):
    real_loss = gan_train.generator_loss
    calls = {"n": 0}

    def nan_in_the_first_trial(family, scores):
        calls["n"] += 1
        loss = real_loss(family, scores)
        return loss * float("nan") if calls["n"] == 5 else loss

    monkeypatch.setattr(gan_train, "generator_loss", nan_in_the_first_trial)
    shutil.copytree(extractor_run / CACHE_DIR, tmp_path / "run" / CACHE_DIR)
    study = _study_n(write_study, 2)
    run_study(study, progress=False)
    trials = optuna.load_study(study_name="gan", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]  # 2 finished
    assert "diverged: the generator loss became nan at iteration 5" in trials[0].user_attrs["error"]


def _study_n(write_study, n):
    """`n` trials, so a searched parameter (a fixed space would train one config n times, refused at load)."""
    return load_study(write_study(STUDY.replace("FAMILY", "dcgan").replace("COND", "false")
                                  .replace("latent: 16", "latent: {choice: [16, 17]}")
                                  .replace("n_trials: 1", f"n_trials: {n}")))


def test_budget_epochs_in_a_gan_study_is_refused_naming_train_iterations(write_study):
    """A GAN never reads budget.epochs (it trains train.iterations): written, it trained nothing longer, unsaid,
    and `status` showed "epochs 20" for every GAN study."""
    from searchlab.engine.setup_record import search_setup

    gan = STUDY.replace("FAMILY", "dcgan").replace("COND", "false").replace("latent: 16", "latent: {choice: [16, 17]}")
    with pytest.raises(ConfigError) as info:
        load_study(write_study(gan.replace("budget: {", "budget: {epochs: 5, ")))
    assert (info.value.key, info.value.got) == ("budget.epochs", 5) and "train.iterations" in info.value.fix
    with pytest.raises(ConfigError, match=r"\(--set budget.epochs\)"):
        load_study(write_study(gan), {"budget.epochs": 5})
    assert "epochs" not in search_setup(load_study(write_study(gan)))["budget"]


def test_identical_samples_fail_as_collapsed(breast, extractor_run):
    features = feature_network(None, extractor_run, extractor_run, breast, seed=0)
    reference = Reference(features, breast.splits["train"].images.float() / 255)
    constant = build_generator("dcgan", 28, 1, latent=8, width=8)
    for p in constant.parameters():
        torch.nn.init.zeros_(p)
    real = gan_train.RealImages(gan_train.to_signed(breast.splits["train"].images), breast.splits["train"].labels, 2)
    with pytest.raises(TrialFailure, match="collapsed: all 546 samples are nearly identical"):
        gan_train.evaluate(constant.eval(), real, reference, seed=0)


def test_real_images_score_as_real_and_disjoint_features_as_unrelated(breast, extractor_run):
    features = feature_network(None, extractor_run, extractor_run, breast, seed=0)
    train01 = breast.splits["train"].images.float() / 255
    stats = Reference(features, train01).score(train01)
    assert abs(stats.medfid) < 1e-3 and stats.precision == 1.0 and stats.recall == 1.0
    assert abs(stats.kid) < 1e-2
    real = torch.randn(200, 8, dtype=torch.float64)
    assert precision_recall(real, real + 100.0) == (0.0, 0.0)
    noisy = Reference(features, train01).score(torch.rand_like(train01))
    assert noisy.medfid > 100 * max(stats.medfid, 1e-3) and noisy.precision < 0.5


def test_a_resolution_the_family_cannot_make_is_refused(breast):
    odd = ImageDataset({"train": ImageSplit(torch.zeros(4, 1, 30, 30, dtype=torch.uint8), torch.zeros(4).long())},
                       breast.class_names, "binary")
    said = "stylegan2 \\(space.gan.family\\) cannot generate this data's 30x30 images.*base \\* 2\\*\\*k"
    with pytest.raises(ConfigError, match=said):
        _check_resolution(GenerateTrialConfig.model_validate({"gan": {"family": "stylegan2"}}), odd)


def test_too_few_real_images_say_how_many_are_needed(breast):
    wide = PenultimateFeatures(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 2)),
                               {"mean": [0.0], "std": [1.0]})
    with pytest.raises(ConfigError, match="needs at least 785 real images per split.*the train split has 546"):
        _check_enough_images(wide.num_features, breast)
    from searchlab.gan.features import trained_feature_count   # known before the network trains a minute

    assert trained_feature_count(breast) == 32


def test_a_feature_network_for_other_images_is_refused(breast, tmp_path):
    from safetensors.torch import save_file

    from searchlab.models.standalone import build_model

    spec = {"architecture": "plain_cnn", "args": {"depth": 2, "width": 8}, "in_channels": 3, "num_outputs": 2}
    export = tmp_path / "rgb_export"
    export.mkdir()
    save_file(build_model(spec).state_dict(), str(export / "weights.safetensors"))
    (export / "config.json").write_text(
        '{"model": %s, "preprocessing": {"mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2]}}'
        % str(spec).replace("'", '"'))
    with pytest.raises(ConfigError, match="does not take this data's 1x28x28 images"):
        feature_network("rgb_export", tmp_path, tmp_path, breast, seed=0)


def test_objective_must_be_a_generate_metric(write_study):
    with pytest.raises(ConfigError, match="not a metric of the generate task.*medfid, kid, precision, recall"):
        load_study(write_study(STUDY.replace("FAMILY", "dcgan").replace("COND", "false") + "objective: auc\n"))


def test_a_direction_against_the_metrics_own_is_refused(write_study):
    """maximize medfid ranked the worst generator first, and export wrote it."""
    base = STUDY.replace("FAMILY", "dcgan").replace("COND", "false")
    for objective, natural in (("{metric: medfid, direction: maximize}", "minimized"),
                               ("{metric: recall, direction: minimize}", "maximized")):
        with pytest.raises(ConfigError, match=f"better when .*this objective asks to .*Fix: drop direction "
                                              f"\\(\\w+ is {natural}\\)"):
            load_study(write_study(base + f"objective: {objective}\n"))


def test_the_pruner_steps_through_a_gan_trials_medfid_checkpoints_not_budget_epochs(write_study):
    """A GAN reports train.evaluations checkpoints (steps 0..3 by default); the median pruner's warm-up was
    sized from budget.epochs (20 // 4 = 5 steps), so it never pruned a GAN trial."""
    from searchlab.strategy import build_pruner
    from searchlab.tasks import pruner_steps

    gan = STUDY.replace("FAMILY", "dcgan").replace("COND", "false").replace("pruner: none", "pruner: median")
    fixed = load_study(write_study(gan))
    assert pruner_steps(fixed) == 2                                   # the study's train.evaluations
    searched = load_study(write_study(gan.replace("evaluations: 2", "evaluations: {int: [2, 5]}")))
    assert pruner_steps(searched) == 5                                # the most any trial reports
    default = load_study(write_study(gan.replace("evaluations: 2, ", "").replace("iterations: 40", "iterations: 400")))
    assert pruner_steps(default) == GenerateTrialConfig().train.evaluations == 4
    pruner = build_pruner(default.config.pruner, pruner_steps(default))
    study = optuna.create_study(pruner=pruner)
    for _ in range(6):
        trial = study.ask()
        for step, value in enumerate((5.0, 4.0, 3.0, 2.0)):
            trial.report(value, step)
        study.tell(trial, 2.0)
    hopeless = study.ask()
    for step in range(3):
        hopeless.report(100.0, step)
    assert hopeless.should_prune()                                    # within the trial's 4 checkpoints
    classify = load_study(write_study("name: c\ntask: classify\nspace: {optim: {lr: {float: [1.0e-3, 2.0e-3]}}}\n"
                                      "budget: {epochs: 7}\n"))
    assert pruner_steps(classify) == 7


@pytest.mark.parametrize("damage", ["not json", "no architecture", "cut weights"])
def test_a_damaged_feature_network_export_is_named_in_one_line(breast, tmp_path, damage):
    folder = tmp_path / "features"
    folder.mkdir()
    config = {"model": {"architecture": "plain_cnn"}, "preprocessing": {}}
    if damage == "no architecture":
        config["model"] = {}
    (folder / "config.json").write_text("{bad" if damage == "not json" else json.dumps(config))
    (folder / "weights.safetensors").write_bytes(b"\x10\x00")
    with pytest.raises(ConfigError, match=r"the MedFID feature network: .*features cannot be loaded \(\w+") as info:
        feature_network("features", tmp_path, tmp_path, breast, seed=0)
    assert info.value.key == "task.features"


def test_a_damaged_cached_feature_network_is_trained_again(breast, extractor_run, tmp_path, capsys, monkeypatch):
    from searchlab.gan import features as gan_features

    real_training = gan_features._train_extractor

    def one_epoch(data, seed):   # the real training, one epoch: what is checked is that it is trained again
        with monkeypatch.context() as patch:
            patch.setattr(gan_features, "EXTRACTOR_EPOCHS", 1)
            return real_training(data, seed)

    monkeypatch.setattr(gan_features, "_train_extractor", one_epoch)
    shutil.copytree(extractor_run / CACHE_DIR, tmp_path / CACHE_DIR)
    weights = tmp_path / CACHE_DIR / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])                   # a copy cut short
    net = feature_network(None, tmp_path, tmp_path, breast, seed=0)
    err = capsys.readouterr().err
    assert "warning: the cached MedFID feature network:" in err and "training it again" in err
    assert weights.stat().st_size == (extractor_run / CACHE_DIR / "weights.safetensors").stat().st_size
    assert net(torch.zeros(1, 1, 28, 28)).shape[0] == 1


SAMPLE_WITHOUT_SEARCHLAB = r"""
import json, sys
sys.modules["searchlab"] = None          # any `import searchlab` now fails
sys.path.insert(0, sys.argv[1])
import model
G, config = model.load_generator(sys.argv[1])
images = model.sample_images(G, 6, labels=[0, 1, 0, 1, 0, 1], seed=3)
print(json.dumps({"shape": list(images.shape), "dtype": str(images.dtype), "sum": int(images.sum())}))
"""


def test_the_best_generator_exports_and_samples_with_torch_alone_and_adds_only_training_images(
        write_study, tmp_path, extractor_run, monkeypatch):
    import json
    import subprocess
    import sys

    from searchlab.export.exporter import export_run
    from searchlab.models.gan_sampling import load_generator, sample_images

    run_study(_study(write_study, tmp_path, extractor_run, "dcgan", "true"), progress=False)
    config = export_run(tmp_path / "run", tmp_path / "best")
    assert set(p.name for p in (tmp_path / "best").iterdir()) == {"config.json", "model.py", "weights.safetensors"}
    assert config["generator"]["family"] == "dcgan" and config["metrics"]["medfid"] > 0
    out = subprocess.run([sys.executable, "-c", SAMPLE_WITHOUT_SEARCHLAB, str(tmp_path / "best")], check=True,
                         capture_output=True, text=True, cwd=tmp_path)
    fresh = json.loads(out.stdout)
    G, _ = load_generator(tmp_path / "best")
    here = sample_images(G, 6, labels=[0, 1, 0, 1, 0, 1], seed=3)
    assert fresh == {"shape": [6, 1, 28, 28], "dtype": "torch.uint8", "sum": int(here.sum())}
    with pytest.raises(Exception, match="a generator exports alone"):
        export_run(tmp_path / "run", tmp_path / "best2", top_k=2)
    from searchlab.report.build import write_report

    report = write_report(tmp_path / "run").read_text()   # the sample grids, inlined in the one-file report
    assert "Generated samples of the best trials" in report and 'src="data:image/png;base64,' in report
    _check_synthetic_minority_images_join_only_the_training_split(write_study, tmp_path, monkeypatch)


def _check_synthetic_minority_images_join_only_the_training_split(write_study, tmp_path, monkeypatch):
    """On the run of the test above (a conditional dcgan: one GAN run serves both)."""
    from searchlab.export.exporter import export_run
    from searchlab.tasks import classify

    export_run(tmp_path / "run", tmp_path / "generator")
    seen = []
    real_recipe = classify.make_recipe

    def spy(batches, *args):
        seen.append((len(batches.train), torch.bincount(batches.train.labels.long()).tolist(), len(batches.val)))
        return real_recipe(batches, *args)

    monkeypatch.setattr(classify, "make_recipe", spy)
    text = ("name: cls\ntask: classify\nspace:\n  model: {kind: cnn, depth: 1, width: 8}\n"
            "  augment: {synthetic: generator, synthetic_per_class: 50}\n"
            "pruner: none\nbudget: {n_trials: 1, epochs: 1}\nrun_dir: '%s'\n" % (tmp_path / "cls"))
    run_study(load_study(write_study(text, name="cls.yaml")), progress=False)
    assert seen == [(546 + 50, [147 + 50, 399], 78)]      # malignant (the minority) gets 50 more; val untouched


def test_synthetic_images_are_asked_for_by_class_name_not_position(tmp_path):
    """positive_class reorders the data's classes (and a folder's sort by name): the generator's class 1 may be
    the data's class 0. Labels used to be passed by position, so the minority class got the other's images."""
    import json

    from searchlab.augment.synthetic import _generator_labels, generator_mismatch

    generator = {"channels": 1, "image_size": 28, "args": {"n_classes": 2}, "class_names": ["malignant", "benign"]}
    (tmp_path / "config.json").write_text(json.dumps({"generator": generator}))
    (tmp_path / "weights.safetensors").write_bytes(b"")   # no digest recorded: not compared
    data_order = ("benign", "malignant")
    assert generator_mismatch(tmp_path, (1, 28, 28), data_order) is None
    assert _generator_labels(torch.tensor([1, 1, 0]), data_order, {"generator": generator}).tolist() == [0, 0, 1]
    rule, fix = generator_mismatch(tmp_path, (1, 28, 28), ("normal", "abnormal"))
    assert "makes the classes ['malignant', 'benign']; this data's are ['normal', 'abnormal']" in rule
    assert "rename" in fix


def _check_an_unconditional_generator_cannot_add_class_images(write_study, tmp_path):
    """On the run of the last-checkpoint test below (an unconditional dcgan: one GAN run serves both)."""
    from searchlab.export.exporter import export_run

    export_run(tmp_path / "run", tmp_path / "generator")
    with pytest.raises(ConfigError, match="is not conditional on this data's 2 classes \\(unconditional") as info:
        run_study(load_study(write_study(SYNTHETIC_STUDY % ("generator", tmp_path / "cls"), name="cls.yaml")),
                  progress=False)
    assert info.value.key == "space.augment.synthetic" and "space.gan.conditional=true" in info.value.fix
    assert not (tmp_path / "cls" / "study.db").exists()   # refused before any trial


def test_a_classifier_export_named_as_a_generator_or_a_generator_as_features_is_said(write_study, tmp_path, breast):
    from searchlab.models import standalone
    from searchlab.models.gan_sampling import load_generator

    classifier = tmp_path / "classifier"
    classifier.mkdir()
    (classifier / "config.json").write_text('{"model": {"architecture": "plain_cnn"}, "preprocessing": {}}')
    with pytest.raises(ConfigError, match="is a classifier export, not a generator's"):
        run_study(load_study(write_study(SYNTHETIC_STUDY % ("classifier", tmp_path / "cls"), name="cls.yaml")),
                  progress=False)
    with pytest.raises(ValueError, match="is a classifier export: load it with model.load"):
        load_generator(classifier)
    generator = tmp_path / "generator"
    generator.mkdir()
    (generator / "config.json").write_text('{"generator": {"family": "dcgan"}}')
    with pytest.raises(ConfigError, match="is a generator export; MedFID's feature network is a classifier") as info:
        feature_network("generator", tmp_path, tmp_path, breast, seed=0)
    assert info.value.key == "task.features"
    with pytest.raises(ValueError, match="is a generator export: load it with model.load_generator"):
        standalone.load(generator)


SYNTHETIC_STUDY = ("name: cls\ntask: classify\nspace:\n  model: {kind: cnn, depth: 1, width: 8}\n"
                   "  augment: {synthetic: %s, synthetic_per_class: 5}\n"
                   "pruner: none\nbudget: {n_trials: 1, epochs: 1}\nrun_dir: '%s'\n")


def test_synthetic_images_for_a_multilabel_set_are_refused_before_any_trial(write_study, tmp_path):
    """Every trial failed with torch's 'bincount only supports 1-d non-negative integral inputs'."""
    from test_csv_data import write_csv
    from test_data import png

    rows = [[png(tmp_path / "i" / f"{n}.png").relative_to(tmp_path).as_posix(), n % 2, n // 2 % 2] for n in range(24)]
    sheet = write_csv(tmp_path / "m.csv", ["path", "x", "y"], rows)
    study = SYNTHETIC_STUDY % ("generator", tmp_path / "ml") + (f"data: {{source: csv, path: '{sheet}', label_columns: "
                                                                 "[x, y], image_size: 8, val_fraction: 0.25}\n")
    with pytest.raises(ConfigError, match=r"this data set is multi-label \(an image has any of the labels x, y\), "
                                          "which a class-conditional generator cannot make") as info:
        run_study(load_study(write_study(study, name="ml.yaml")), progress=False)
    assert info.value.key == "space.augment.synthetic"


def test_a_two_objective_gan_study_records_medfid_and_recall(write_study, tmp_path, extractor_run):
    study = _study(write_study, tmp_path, extractor_run, extra="objective: [medfid, recall]\n")
    assert study.objectives == (("medfid", "minimize"), ("recall", "maximize"))
    run_study(study, progress=False)
    trial = optuna.load_study(study_name="gan", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials[0]
    assert trial.state == TrialState.COMPLETE and len(trial.values) == 2
    best = trial.user_attrs["metrics"]["best_iteration"]   # the checkpoint kept: best by the first objective
    assert trial.values[1] == next(e["recall"] for e in trial.user_attrs["evaluations"] if e["iteration"] == best)
    from searchlab.export.exporter import export_run   # a member of the front exports, each metric its own

    config = export_run(tmp_path / "run", tmp_path / "best", trial_number=0)
    assert (config["metrics"]["medfid"], config["metrics"]["recall"]) == tuple(trial.values)
    assert config["metrics"]["kid"] == trial.user_attrs["metrics"]["kid"] != trial.values[0]


@pytest.mark.parametrize("labels", [[2] * 4, ["malignant"] * 4, [0, 1], [[0, 1], [1, 0]]])
def test_labels_a_conditional_generator_cannot_take_are_said(labels):
    from searchlab.models.gan_sampling import sample_images

    conditional = build_generator("dcgan", 28, 1, latent=8, width=8, n_classes=2)
    with pytest.raises(ValueError, match=r"labels are 4 class indices 0\.\.1, one per image"):
        sample_images(conditional, 4, labels=labels)
    assert sample_images(conditional, 4, labels=[0, 1, 1, 0]).shape == (4, 1, 28, 28)


def test_sampling_draws_anew_unless_seeded_and_takes_class_names():
    from searchlab.models.gan_sampling import sample_images

    conditional = build_generator("dcgan", 28, 1, latent=8, width=8, n_classes=2).eval()
    conditional.class_names = ("malignant", "normal, benign")   # as load_generator sets them from config.json
    assert not torch.equal(sample_images(conditional, 4, labels=[0] * 4), sample_images(conditional, 4, labels=[0] * 4))
    seeded = sample_images(conditional, 4, labels=[1, 0, 1, 0], seed=7)
    assert torch.equal(seeded, sample_images(conditional, 4, labels=["normal, benign", "malignant"] * 2, seed=7))
    with pytest.raises(ValueError, match=r"or names \['malignant', 'normal, benign'\].*got \['benign'\], which are "
                                         "not its classes"):
        sample_images(conditional, 2, labels=["benign", "malignant"])


def test_a_gan_trial_the_timeout_cuts_completes_saying_where(write_study, tmp_path, extractor_run, monkeypatch):
    from searchlab.engine.context import TrialContext

    # The study's clock runs out after 60 iterations whatever the machine's load (a wall-clock timeout would
    # cut an untrained generator on a busy machine, which then fails as collapsed; 40 train well enough above)
    calls = iter(range(10**9))
    monkeypatch.setattr(TrialContext, "out_of_time", lambda self: next(calls) >= 60)
    shutil.copytree(extractor_run / CACHE_DIR, tmp_path / "run" / CACHE_DIR)
    text = STUDY.replace("FAMILY", "dcgan").replace("COND", "false").replace("iterations: 40", "iterations: 100000")
    run_study(load_study(write_study(text)), progress=False)
    trial = optuna.load_study(study_name="gan", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials[0]
    assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("error")
    done = int(trial.user_attrs["metrics"]["iterations"])
    assert done < 100000
    assert trial.user_attrs["cut_short"] == f"stopped by budget.timeout at iteration {done} of 100000"


def test_a_resolution_no_family_can_make_is_refused_before_the_feature_network_trains(write_study, tmp_path):
    from test_data import class_folder

    folder = class_folder(tmp_path / "images", {"a": 12, "b": 12})
    text = (STUDY.replace("FAMILY", "stylegan2").replace("COND", "false") +
            f"data: {{source: folder, path: '{folder}', image_size: 30}}\n")
    with pytest.raises(ConfigError, match="stylegan2 \\(space.gan.family\\) cannot generate this data's 30x30") as info:
        run_study(load_study(write_study(text)), progress=False)
    assert "Fix: resize the data (data.image_size)" in str(info.value) and info.value.key == "data.image_size"
    assert not (tmp_path / "run" / CACHE_DIR).exists()


def test_another_familys_settings_are_warned_about_and_not_sampled(write_study):
    from searchlab.space import sample_config
    from searchlab.space.unused import unused_settings
    from searchlab.tasks.generate_usage import generate_setting_used

    text = STUDY.replace("FAMILY", "dcgan").replace("COND", "false").replace(
        "conditional: false}", "conditional: false, gp_weight: {float: [1, 20]}, r1_gamma: 0.5}")
    study = load_study(write_study(text))
    assert [u.path for u in unused_settings(study.space, generate_setting_used)] == ["gan.gp_weight", "gan.r1_gamma"]
    trial = optuna.create_study().ask()
    config = sample_config(trial, study.space, generate_setting_used)
    assert "gp_weight" not in config["gan"] and "gan.gp_weight" not in trial.params


def test_a_setting_written_onto_a_family_that_ignores_it_is_warned_about_though_another_family_uses_it(
        write_study):
    """`gp_weight` written onto the shipped space's dcgan option was unsaid: the wgan_gp option's own gp_weight
    is used, and the check looked at the key across every family at once."""
    from searchlab.space.unused import describe, unused_settings
    from searchlab.tasks.generate_usage import generate_setting_default, generate_setting_used

    study = load_study(write_study("name: g\ntask: generate\nspace:\n  include: gan.yaml\n"
                                   "  gan: {dcgan: {gp_weight: 5.0}}\n"))
    found = unused_settings(study.space, generate_setting_used)
    assert [u.shown for u in found] == ["gan.dcgan.gp_weight"]
    assert describe(found[0], generate_setting_default).startswith(
        "space.gan.dcgan.gp_weight (5.0) has no effect in any trial of this space, given gan.family: 'dcgan';")
    assert unused_settings(load_study(write_study("name: g\ntask: generate\nspace: {include: gan.yaml}\n")).space,
                           generate_setting_used) == []


def test_a_gan_trial_is_never_judged_at_its_last_checkpoint_and_its_unconditional_generator_adds_no_class(
        write_study, tmp_path, extractor_run, monkeypatch):
    """The pruner could prune a GAN trial at its last MedFID checkpoint, its generator fully trained."""
    from searchlab.engine.context import TrialContext

    judged, report = [], TrialContext.report
    monkeypatch.setattr(TrialContext, "report", lambda self, step, metrics, judge=True: (
        judged.append((step, judge)), report(self, step, metrics, judge))[-1])
    run_study(_study(write_study, tmp_path, extractor_run, "dcgan", "false"), progress=False)
    assert judged == [(0, True), (1, False)]
    _check_an_unconditional_generator_cannot_add_class_images(write_study, tmp_path)


def test_the_purpose_trained_feature_network_named_as_task_features_still_measures_label_agreement(breast,
                                                                                                 extractor_run):
    """Its cached folder is an export-like one, but held no class names: named as task.features (as the GAN
    benchmark does, to train it once for several studies), label agreement was not measured."""
    net = feature_network(str(extractor_run / CACHE_DIR), extractor_run, extractor_run, breast, seed=0)
    assert net.class_order == [0, 1]
    images = breast.splits["val"].images.float() / 255.0
    assert (net.classify(images) == breast.splits["val"].labels).double().mean() > 0.6
