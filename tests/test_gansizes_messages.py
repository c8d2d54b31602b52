"""Three GAN messages that misled (audit "gansizes"): a GAN study searching nothing was told to use train.repeats,
a classifier-only setting; a size no family makes was answered "leave dcgan out of space.gan.family", which only
brought the same refusal for the next family; the note that MedFID keeps the run's feature network was printed
once per process (3 times with 2 workers) and spoke of "earlier" trials in a new run folder that had none."""
from __future__ import annotations

import shutil

import optuna
import pytest
import torch
from optuna.trial import TrialState

from searchlab.config.load import load_study
from searchlab.data.types import ImageDataset, ImageSplit
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError
from searchlab.gan import features as gan_features
from searchlab.gan.features import CACHE_DIR, PenultimateFeatures, feature_network
from searchlab.models.standalone import load
from searchlab.tasks import generate
from searchlab.tasks.generate import GenerateTask
from searchlab.tasks.generate_config import GenerateTrialConfig
from test_generate import STUDY as GAN_STUDY

GAN = GAN_STUDY.replace("conditional: COND", "conditional: false").replace("evaluations: 2", "evaluations: 1")
CLASSIFY = """
name: c
task: classify
space: {model: {kind: cnn, depth: 2, width: 8}}
strategy: random
budget: {n_trials: 2, epochs: 1}
"""


# ------------------------------------------------------------------ 1: what repeats seeds, per task
def test_a_gan_study_searching_nothing_is_not_told_to_use_train_repeats(write_study):
    with pytest.raises(ConfigError, match="the space searches nothing") as info:
        load_study(write_study(GAN.replace("FAMILY", "dcgan").replace("n_trials: 1", "n_trials: 2")))
    assert info.value.key == "budget.n_trials"
    assert "repeats" not in str(info.value)   # the generate task has no such setting
    assert "n_trials: 1 to train this config once" in info.value.fix and "--set seed=1" in info.value.fix


def test_a_classify_study_searching_nothing_is_still_offered_train_repeats(write_study):
    with pytest.raises(ConfigError, match="the space searches nothing") as info:
        load_study(write_study(CLASSIFY))
    assert "train.repeats: N averages N seeds in one trial" in info.value.fix


# ------------------------------------------------------------------ 2: a size no family of the space makes
def _square(side: int) -> ImageDataset:
    split = ImageSplit(torch.zeros(4, 1, side, side, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]))
    return ImageDataset({"train": split}, ["a", "b"], "binary")


def _specs(*families: str) -> list[GenerateTrialConfig]:
    return [GenerateTrialConfig.model_validate({"gan": {"family": family, "g_width": 8, "d_width": 8}})
            for family in families]


def test_a_size_no_family_of_the_space_makes_gives_the_nearest_sizes_not_a_family_to_drop():
    with pytest.raises(ConfigError) as info:
        generate._check_resolutions(_specs("dcgan", "stylegan2"), _square(36), "data.image_size")
    err = info.value
    assert "no GAN family in the space (dcgan, stylegan2) can make 36x36 images" in err.rule
    assert err.fix.startswith("resize the data (data.image_size) to 32 or 40 px")   # computed, not a fixed list
    assert "leave" not in err.fix and err.key == "data.image_size" and err.got == 36
    with pytest.raises(ConfigError) as info:
        generate._check_resolutions(_specs("wgan_gp"), _square(100), "data.size")
    assert "to 96 or 112 px" in info.value.fix   # 6 * 16 and 7 * 16


def test_dropping_a_family_is_offered_when_another_family_of_the_space_makes_the_size(monkeypatch):
    """Every family shares one size rule today; a family with a rule of its own must still be named alone."""
    real = generate.build_pair

    def dcgan_only_at_32(spec, size, channels, classes):
        if spec.gan.family == "dcgan" and size != 32:
            raise ValueError(f"dcgan makes 32 px only, not {size}")
        return real(spec, size, channels, classes)

    monkeypatch.setattr(generate, "build_pair", dcgan_only_at_32)
    with pytest.raises(ConfigError) as info:
        generate._check_resolutions(_specs("dcgan", "stylegan2", "dcgan"), _square(28), "data.image_size")
    err = info.value
    assert "the GAN family dcgan (space.gan.family) cannot generate this data's 28x28 images" in err.rule
    assert "no GAN family" not in err.rule
    assert err.fix == ("resize the data (data.image_size) to 32 px, or leave dcgan out of space.gan.family "
                       "(stylegan2 can make 28x28 images)")


def test_a_folder_at_36_px_with_two_families_is_refused_once_for_both(write_study, tmp_path):
    """The audit's case, before any network trains: following "leave dcgan out" gave the same for stylegan2."""
    from test_data import class_folder

    folder = class_folder(tmp_path / "images", {"a": 12, "b": 12})
    text = (GAN.replace("FAMILY", "{choice: [dcgan, stylegan2]}") +
            f"data: {{source: folder, path: '{folder}', image_size: 36}}\n")
    with pytest.raises(ConfigError, match="no GAN family in the space \\(dcgan, stylegan2\\) can make 36x36") as info:
        run_study(load_study(write_study(text)), progress=False)
    assert "to 32 or 40 px" in info.value.fix and "leave" not in info.value.fix
    assert not (tmp_path / "run" / CACHE_DIR).exists()


# ------------------------------------------------------------------ 3: the note on a kept feature network
@pytest.fixture
def copied_network(tmp_path, breast, monkeypatch):
    """A run folder holding only a medfid_features/ trained with seed 0 (copied in, as the README allows); one
    epoch: what is checked is what is said, not the feature space."""
    monkeypatch.setattr(gan_features, "EXTRACTOR_EPOCHS", 1)
    source = tmp_path / "source"
    feature_network(None, source, source, breast, seed=0)
    shutil.copytree(source / CACHE_DIR, tmp_path / "run" / CACHE_DIR)
    return tmp_path / "run" / CACHE_DIR


def test_the_kept_network_note_is_said_once_at_the_start_of_a_new_run_without_earlier_trials(
        write_study, copied_network, capsys):
    study = load_study(write_study(GAN.replace("FAMILY", "dcgan").replace("seed: 0", "seed: 5")))
    capsys.readouterr()
    GenerateTask(study.config.task).prepare(study)           # the process that starts the run
    GenerateTask(study.config.task)._reference(study)        # each worker process opens the network too
    GenerateTask(study.config.task)._reference(study)
    err = capsys.readouterr().err
    assert err.count("note: MedFID") == 1, err
    assert (f"note: MedFID uses the feature network already in {copied_network} (trained with seed 0) instead of "
            "training one with seed 5") in err
    assert "earlier ones" not in err


def test_the_kept_network_note_speaks_of_earlier_trials_when_the_run_has_them(write_study, copied_network, capsys):
    net, config = load(copied_network)
    digest = PenultimateFeatures(net, config["preprocessing"]).digest
    study = load_study(write_study(GAN.replace("FAMILY", "dcgan").replace("seed: 0", "seed: 5")))
    ostudy = optuna.create_study(study_name="gan", storage=study.storage_url)
    ostudy.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=20.0,
                                               user_attrs={"medfid_features": digest}))
    capsys.readouterr()
    GenerateTask(study.config.task).prepare(study)
    err = capsys.readouterr().err
    assert err.count("note: MedFID") == 1
    assert ("note: MedFID keeps this run's feature network (trained with seed 0), so trials of seed 5 are scored "
            "in the same feature space as the run's earlier ones") in err
    same_seed = load_study(write_study(GAN.replace("FAMILY", "dcgan")))
    capsys.readouterr()
    GenerateTask(same_seed.config.task).prepare(same_seed)   # trained with the run's own seed: nothing to say
    assert "note: MedFID" not in capsys.readouterr().err


def test_the_label_agreement_note_is_said_once_at_the_run_start_not_per_worker(write_study, copied_network, capsys,
                                                                               monkeypatch):
    # a feature network with no output per class of this data (an export of another data set's classifier)
    monkeypatch.setattr(gan_features, "_class_order", lambda *args: None)
    study = load_study(write_study(GAN.replace("FAMILY", "dcgan")))
    capsys.readouterr()
    GenerateTask(study.config.task).prepare(study)           # the process that starts the run
    GenerateTask(study.config.task)._reference(study)        # each worker process opens the network too
    err = capsys.readouterr().err
    assert err.count("note: label_agreement is not measured") == 1, err
