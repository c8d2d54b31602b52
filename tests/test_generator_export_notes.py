"""What a generator export's config.json says of its scores: its own MedFID floor (not fixed BreastMNIST numbers
that contradicted it), and where its purpose-trained feature network is (absolute, not relative to where
`searchlab export` ran)."""
from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from searchlab.engine.rundir import open_run
from searchlab.export.generator import feature_network_used, floor_images_note
from searchlab.export.provenance import file_digest
from searchlab.gan.features import CACHE_DIR

# As the audit found them: a BreastMNIST trial (78 val images, 546 train) and a folder set's (12 val, 36 train)
BREASTMNIST = {"medfid": 0.62, "medfid_floor": 0.191, "medfid_floor_images": 78.0, "medfid_samples": 546.0}
FOLDER = {"medfid": 0.4, "medfid_floor": 0.085, "medfid_floor_images": 12.0, "medfid_samples": 36.0}


@pytest.mark.parametrize("metrics, own", [(BREASTMNIST, "0.191 at 78 images"), (FOLDER, "0.085 at 12 images")])
def test_the_floor_note_quotes_the_exports_own_floor_and_no_fixed_breastmnist_numbers(metrics, own):
    """Every export's note said "BreastMNIST, real vs train: 0.151 at 78 images ...": beside a floor of 0.191 at
    78 images in the same file, and in a folder set's export, whose feature network is another."""
    note = floor_images_note(metrics)
    assert f"this export's medfid_floor is {own}, the only count it was measured at" in note
    assert "BreastMNIST" not in note and "0.151" not in note and "0.120" not in note
    assert note.startswith(f"medfid_floor was measured with {metrics['medfid_floor_images']:.0f} validation images")
    assert "not directly comparable with medfid" in note


def test_no_floor_note_when_the_counts_match_or_were_not_recorded():
    assert floor_images_note(BREASTMNIST | {"medfid_floor_images": 546.0}) is None
    assert floor_images_note({"medfid": 0.62, "medfid_floor": 0.191}) is None   # an earlier searchlab's trial


def test_a_floor_note_without_the_floor_value_says_so():
    note = floor_images_note({k: v for k, v in FOLDER.items() if k != "medfid_floor"})
    assert "its medfid_floor value was not recorded" in note and "this export's medfid_floor is" not in note


def hand_gan_run(folder: Path, user_attrs: dict) -> Path:
    """A GAN run folder as `searchlab run` leaves it, without training anything: the record and one complete
    trial with these user attrs."""
    folder.mkdir(parents=True)
    url = f"sqlite:///{folder.resolve() / 'study.db'}"
    study = optuna.create_study(study_name="gan", storage=url)
    study.set_user_attr("searchlab", {"objectives": [["medfid", "minimize"]], "seed": 0,
                                      "task": {"kind": "generate", "features": None},
                                      "base_dir": str(folder.parent.resolve())})
    study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, values=[1.0], user_attrs=user_attrs))
    (folder / "searchlab.json").write_text(json.dumps({"study_name": "gan", "storage": url}))
    return folder


def hand_gan_export(folder: Path, spec: dict, state: dict, breastmnist_root: Path) -> Path:
    """folder/export: a generator of `spec` with weights `state` exported by export_generator (its own model.py)
    from a hand-made run folder (hand_gan_run) on BreastMNIST, without a training run."""
    import warnings

    from searchlab.export.generator import export_generator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # optuna's experimental create_trial
        run_dir = hand_gan_run(folder / "run", {"generator": spec})
    run = open_run(run_dir)
    run.study.set_user_attr("searchlab", run.study.user_attrs["searchlab"] | {"data": {
        "source": "medmnist", "name": "breastmnist", "root": str(breastmnist_root), "download": False}})
    run = open_run(run_dir)
    export_generator(run, run.study.trials[0], state, folder / "export")
    return folder / "export"


def _gan_run_with_trained_features(folder: Path) -> Path:
    """A GAN run folder that trained its own MedFID network (no task.features): medfid_features/ with a config
    and weights."""
    hand_gan_run(folder, {"medfid_features": "d1g35t"})
    (folder / CACHE_DIR).mkdir()
    (folder / CACHE_DIR / "config.json").write_text(json.dumps({"model": {"kind": "cnn"}}))
    (folder / CACHE_DIR / "weights.safetensors").write_bytes(b"weights")
    return folder


def test_the_trained_feature_network_folder_is_recorded_absolute(tmp_path, monkeypatch):
    """`searchlab export runs/gan` recorded feature_network.folder as "runs/gan/medfid_features": relative to
    where export ran, wrong as soon as the export is read from anywhere else (task.features' is absolute)."""
    run_dir = _gan_run_with_trained_features(tmp_path / "runs" / "gan")
    monkeypatch.chdir(tmp_path)
    run = open_run(Path("runs") / "gan")          # as the cli opens `searchlab export runs/gan`
    about = feature_network_used(run, run.study.trials[0])
    assert about["folder"] == str((run_dir / CACHE_DIR).resolve())
    monkeypatch.chdir(run_dir)                     # read from elsewhere: still the network's folder
    assert (Path(about["folder"]) / "config.json").is_file()
    assert about["model"] == {"kind": "cnn"} and about["digest"] == "d1g35t"
    assert about["weights_sha256"] == file_digest(run_dir / CACHE_DIR / "weights.safetensors")
