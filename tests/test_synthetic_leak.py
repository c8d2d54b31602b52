"""A generator export says what it learned from and how it was scored, so that a classify study adding its images
(`augment.synthetic`) is told when the GAN trained on the study's own test or validation images.

The audit's case: a GAN trained on a folder split with seed 0, used by a classify study of the same folder split
with seed 1: most of the study's test images had been the GAN's training images, and nothing said so.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from searchlab.config.load import load_study
from searchlab.config.schema import FolderData
from searchlab.data.loading import files_by_split
from searchlab.engine.run import run_study
from searchlab.export import trained_on
from searchlab.export.exporter import export_run
from searchlab.export.provenance import file_digest

PER_CLASS = 30   # 60 images: 36 train, 12 val, 12 test at fractions 0.2
SPLIT = "val_fraction: 0.2, test_fraction: 0.2"
FEATURES = """name: features
task: classify
space:
  model: {kind: cnn, depth: 1, width: 4}
strategy: random
pruner: none
budget: {n_trials: 1, epochs: 1}
seed: 0
"""
# A 4-feature classifier export as MedFID's network: MedFID needs more real images per split than features
GAN = """name: gan
task: {kind: generate, features: features}
space:
  gan: {family: dcgan, latent: 16, g_width: 16, d_width: 16, conditional: true}
  train: {batch_size: 16, iterations: 40, evaluations: 1, ema: 0.9}
strategy: random
pruner: none
budget: {n_trials: 1}
seed: 0
"""
CLASSIFY = """name: cls{seed}
task: classify
space:
  model: {{kind: cnn, depth: 1, width: 4}}
  augment: {{synthetic: gan_export, synthetic_per_class: 4, synthetic_classes: all}}
strategy: random
pruner: none
budget: {{n_trials: 1, epochs: 1}}
seed: {seed}
"""


def noise_folder(root: Path, seed: int = 0) -> Path:
    """Two classes of distinct grey noise images: every file has its own content digest (another seed: others)."""
    rng = np.random.default_rng(seed)
    for cls, level in (("a", 60), ("b", 180)):
        for i in range(PER_CLASS):
            path = root / cls / f"{i:02d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.clip(level + rng.normal(0, 30, (28, 28)), 0, 255).astype(np.uint8), "L").save(path)
    return root


def write(folder: Path, name: str, text: str) -> Path:
    data = f"data: {{source: folder, path: '{folder / 'images'}', {SPLIT}}}\nrun_dir: '{folder / name}_run'\n"
    (folder / f"{name}.yaml").write_text(text + data)
    return folder / f"{name}.yaml"


def build_gan_export(folder: Path) -> Path:
    """`folder` with the MedFID feature network exported from a classifier of it, and a GAN study of it (seed 0)
    exported as `gan_export`: the session fixture `gan_export` (tests/conftest.py), built once for this module
    and test_sample.py. Tests here that run more studies write beside them, never into images/, features/,
    gan_run/ or gan_export/, which test_sample.py reads (one moves gan_export/ aside and back within itself)."""
    noise_folder(folder / "images")
    run_study(load_study(write(folder, "features", FEATURES)), progress=False)
    export_run(folder / "features_run", folder / "features", bootstrap=10)
    run_study(load_study(write(folder, "gan", GAN)), progress=False)
    export_run(folder / "gan_run", folder / "gan_export")
    return folder


def split_files(folder: Path, seed: int) -> dict[str, set[Path]]:
    cfg = FolderData(source="folder", path=folder / "images", val_fraction=0.2, test_fraction=0.2)
    return {split: set(files) for split, files in files_by_split(cfg, seed, folder, ("train", "val", "test")).items()}


def test_a_generator_export_lists_the_files_it_trained_on_and_says_how_it_was_set_up_and_scored(gan_export):
    export = gan_export / "gan_export"
    gan = split_files(gan_export, seed=0)
    listed = json.loads((export / "trained_on.json").read_text())
    assert set(listed["train"]) == trained_on.digests(gan["train"]) and len(listed["train"]) == 36
    assert set(listed["val"]) == trained_on.digests(gan["val"]) and len(listed["val"]) == 12
    config = json.loads((export / "config.json").read_text())
    assert config["input"] == {"fit": "stretch"}   # how its images were framed: a classifier's must match
    ran = config["trial"]["config_with_defaults"]   # every setting as run, those the space left out too
    assert {key: ran["train"][key] for key in ("batch_size", "iterations", "evaluations", "diff_augment")} == {
        "batch_size": 16, "iterations": 40, "evaluations": 1, "diff_augment": "none"}
    assert ran["optim"]["lr_g"] == 2e-4 and ran["optim"]["beta1_d"] == 0.5   # as it ran (DCGAN's defaults)
    assert "rebuilt at export" in config["trial"]["config_with_defaults_is"]
    assert isinstance(config["trial"]["seed"], int) and config["search"]["seed"] == 0
    assert config["objectives"] == ["medfid"]
    assert config["data_splits"]["train"] == {"images": 36, "per_class": {"a": 18, "b": 18}}
    assert config["data_files"]["splits"]["test"]["files"] == 12   # the folder's fingerprint: which data set
    assert config["feature_network"]["export"] == str((gan_export / "features").resolve())
    assert config["feature_network"]["weights_sha256"] == file_digest(gan_export / "features" / "weights.safetensors")
    assert "not ImageNet's Inception" in config["metrics_measured_with"] and "kid" in config["metrics_measured_with"]


def test_a_classify_study_adding_images_of_a_gan_trained_on_its_test_images_is_warned_and_its_export_says_so(
        gan_export, capsys):
    gan, mine = split_files(gan_export, seed=0), split_files(gan_export, seed=1)
    test_seen = len(mine["test"] & (gan["train"] | gan["val"]))
    val_seen = len(mine["val"] & gan["train"])
    assert test_seen and val_seen   # another seed moved images between splits: the case to catch
    capsys.readouterr()
    run_study(load_study(write(gan_export, "cls1", CLASSIFY.format(seed=1))), progress=False)
    err = capsys.readouterr().err
    assert (f"warning: space.augment.synthetic 'gan_export': this study has {test_seen} of its 12 test images and "
            f"{val_seen} of its 12 val images among the images the generator's GAN study trained or scored on") in err
    assert "Test metrics of this study's exports would be optimistic" in err
    assert "Fix: split this study as the GAN study did" in err
    config = export_run(gan_export / "cls1_run", gan_export / "cls1_export", bootstrap=10)
    assert config["test_images_seen_by_weights"] == [{"weights": str((gan_export / "gan_export").resolve()),
                                                      "test_images": test_seen,
                                                      "used_as": "space.augment.synthetic"}]
    # which generator made its images, by content: the export folder may be replaced later
    generator = json.loads((gan_export / "gan_export" / "config.json").read_text())
    doubt = {"suspect": generator["suspect"]} if generator.get("suspect") else {}   # its GAN study's, if any
    assert config["trial"]["synthetic_from"] == {"export": str((gan_export / "gan_export").resolve()),
                                                 "sha256": generator["weights_sha256"],
                                                 "images": {"a": 4, "b": 4}, **doubt}
    from searchlab.export.export_notes import warn_about_export

    warn_about_export(config)
    said = capsys.readouterr().err
    assert f"warning: {test_seen} of the 12 test images were trained or selected on by the GAN study of the " \
        "generator whose images these trials trained on" in said and "use a generator trained on other data" in said
    # the generator moved away since: what is at its path no longer says which test images it saw
    moved = gan_export / "gan_export_moved"
    (gan_export / "gan_export").rename(moved)
    try:
        config = export_run(gan_export / "cls1_run", gan_export / "cls1_export_after", bootstrap=10)
    finally:
        moved.rename(gan_export / "gan_export")
    [unchecked] = config["test_images_seen_by_weights"]
    assert unchecked["test_images"] is None and unchecked["unchecked"] == "it is no longer at that path"
    warn_about_export(config)
    assert "warning: could not check whether the GAN study of the generator" in capsys.readouterr().err
    # split as the GAN's study was: the same validation images (no leak), no test image among its files
    run_study(load_study(write(gan_export, "cls0", CLASSIFY.format(seed=0))), progress=False)
    assert "space.augment.synthetic 'gan_export'" not in capsys.readouterr().err


def test_cross_validating_with_images_of_a_gan_trained_on_the_same_split_is_warned(gan_export, capsys):
    """Folds are dealt over train and val: a held-out fold holds images the GAN trained on, whose copies the
    other folds' models trained on, so fold scores favoured trials adding synthetic images, unsaid."""
    gan = split_files(gan_export, seed=0)
    text = CLASSIFY.format(seed=0).replace("  model:", "  train: {cv_folds: 2}\n  model:")
    capsys.readouterr()
    run_study(load_study(write(gan_export, "cls0_cv", text)), progress=False)
    err = capsys.readouterr().err
    assert (f"space.augment.synthetic 'gan_export': train.cv_folds deals this study's train and val images into "
            f"folds, and {len(gan['train'])} of the {len(gan['train']) + len(gan['val'])} are images the generator's "
            "GAN study trained on") in err and "drop train.cv_folds" in err
    assert "this study has" not in err   # split as the GAN's study was: no test or val leak besides


def test_only_a_generator_that_adds_images_is_a_source_and_its_path_is_the_study_files(tmp_path):
    """learned_from reads augment.synthetic from each trial's config, relative to the study file's folder; with
    synthetic_per_class 0 the generator adds nothing, so it is no source."""
    adds = {"trial": {"config_with_defaults": {"augment": {"synthetic": "g", "synthetic_per_class": 3}}}}
    assert trained_on.learned_from(adds, tmp_path) == {str(tmp_path / "g"): trained_on.SYNTHETIC}
    sampled = {"trials": [{"config": {"augment": {"synthetic": "g", "synthetic_per_class": 0}}},
                          {"weights_from": {"export": "/w"}}]}
    assert trained_on.learned_from(sampled, tmp_path) == {"/w": trained_on.WEIGHTS}


def test_a_gan_run_says_what_the_datas_files_say_as_a_classify_run_does(gan_export, tmp_path, capsys):
    """A copy of one image under two labels (or colour read as grey, a misspelt class) was said by a classify run
    of the folder and not by a GAN run, whose images then carry it into a classifier's training."""
    shutil.copytree(gan_export / "images", tmp_path / "images")
    shutil.copy(tmp_path / "images" / "a" / "00.png", tmp_path / "images" / "b" / "copy.png")
    (tmp_path / "features").symlink_to(gan_export / "features")
    capsys.readouterr()
    # said before any trial, so half the GAN's iterations (at 10 its trial failed as collapsed: a run less whole)
    shorter = GAN.replace("iterations: 40", "iterations: 20")
    assert shorter != GAN
    run_study(load_study(write(tmp_path, "gan_dup", shorter)), progress=False)
    assert "byte-for-byte copies" in capsys.readouterr().err


def test_a_model_taught_by_a_generators_images_passes_what_its_gan_study_learned_down_a_chain(gan_export, capsys):
    """A classifier of other images with the GAN's images added, exported, then used as weights by a study of the
    GAN's folder split with another seed: the GAN's training images were this study's test images, and its
    check was silent, since the classifier's trained_on.json listed its own folder's files only."""
    other = noise_folder(gan_export / "other_images", seed=1)
    study = CLASSIFY.format(seed=0).replace("name: cls0", "name: taught")
    (gan_export / "taught.yaml").write_text(study + f"data: {{source: folder, path: '{other}', {SPLIT}}}\n"
                                            f"run_dir: '{gan_export / 'taught_run'}'\n")
    run_study(load_study(gan_export / "taught.yaml"), progress=False)
    export_run(gan_export / "taught_run", gan_export / "taught_export", bootstrap=10)
    generator = str((gan_export / "gan_export").resolve())
    listed = json.loads((gan_export / "taught_export" / "trained_on.json").read_text())
    gan = split_files(gan_export, seed=0)
    assert listed["inherited_from"] == [generator]
    assert listed["learned_by"][generator]["train"] == sorted(trained_on.digests(gan["train"]))
    assert trained_on.digests(gan["train"]) <= set(listed["train"])   # merged in, as a weights ancestor's are

    weights = f"  model: {{kind: cnn, depth: 1, width: 4, transfer: full, weights: '{gan_export / 'taught_export'}'}}"
    downstream = CLASSIFY.format(seed=1).replace("name: cls1", "name: down").replace(
        "  model: {kind: cnn, depth: 1, width: 4}\n  augment: {synthetic: gan_export, synthetic_per_class: 4, "
        "synthetic_classes: all}", weights)
    capsys.readouterr()
    run_study(load_study(write(gan_export, "down", downstream)), progress=False)
    err = capsys.readouterr().err
    test_seen = len(split_files(gan_export, seed=1)["test"] & (gan["train"] | gan["val"]))
    assert test_seen and "by models in their lineage" in err and f"whose run learned them: {generator} " \
        f"({test_seen} test" in err, err
