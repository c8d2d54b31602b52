"""A generator export's own words: weights.safetensors swapped for another trial's is said with a generator's text
and fix (its model.py has no save(), it holds no test metrics or thresholds), with one "Fix:" in searchlab's
one-line error; `export` of a GAN run refuses --bootstrap and --select as it refuses --top-k and --tta; the
export's sample_images refuses n below 1 and labels that are not whole numbers, and takes one class name for all.
Built by hand (a tiny untrained DCGAN), nothing trained."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from searchlab.cli import main
from searchlab.export.damaged import unloadable
from searchlab.models import generator_source, standalone
from searchlab.models.gan import build_generator
from searchlab.models.gan_sampling import load_generator, sample_images
from test_generator_export_notes import hand_gan_run
from test_model_save_guards import module_of

NOT_ITS = "is not the weights file its config.json was exported with"
SPEC = {"family": "dcgan", "image_size": 16, "channels": 1, "args": {"latent": 8, "width": 8, "n_classes": 2},
        "class_names": ["benign", "malignant"]}


def _export(folder: Path, seed: int) -> Path:
    """A generator export as `searchlab export` writes its loadable part: model.py, weights and their sha256."""
    folder.mkdir(parents=True)
    torch.manual_seed(seed)
    save_file(build_generator("dcgan", 16, 1, **SPEC["args"]).state_dict(), str(folder / "weights.safetensors"))
    digest = hashlib.sha256((folder / "weights.safetensors").read_bytes()).hexdigest()
    (folder / "config.json").write_text(json.dumps({"generator": SPEC, "trial": {"number": seed},
                                                    "weights_sha256": digest}))
    (folder / "model.py").write_text(generator_source())
    return folder


@pytest.fixture()
def swapped(tmp_path):
    """Export 0 with export 1's weights (the same architecture), its config.json left as export 0's."""
    first, other = _export(tmp_path / "g0", 0), _export(tmp_path / "g1", 1)
    shutil.copy(other / "weights.safetensors", first / "weights.safetensors")
    return first


def test_searchlab_says_a_swapped_generator_weights_file_in_one_line_with_one_fix(swapped, tmp_path, capsys):
    assert main(["sample", str(swapped), "--out", str(tmp_path / "out"), "--n", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.count("Fix:") == 1 and NOT_ITS in err
    assert "trial, metrics" in err and "not these weights'" in err
    assert "model.save" not in err and "thresholds" not in err and "test metrics" not in err


def test_a_generator_exports_model_py_warns_with_a_fix_it_can_follow_and_loads(swapped):
    model = module_of(swapped / "model.py", "model_genexport_swap")
    with pytest.warns(UserWarning, match=NOT_ITS) as said:
        G, config = model.load_generator(swapped)
    text = str(said[0].message)
    assert text.count("Fix:") == 1 and "Fix: export the GAN run again, or copy all of one export's files" in text
    assert "model.save" not in text and "thresholds" not in text and not hasattr(model, "save")
    assert config["trial"]["number"] == 0 and model.sample_images(G, 2, seed=0).shape == (2, 1, 16, 16)


def test_a_classifiers_swapped_weights_keep_their_save_fix_and_the_one_line_form_holds_one_fix(tmp_path):
    message = standalone.not_described_message(tmp_path / "w", "a" * 64, "b" * 64, standalone.CLASSIFIER_NOT_ITS)
    assert message.count("Fix:") == 1 and "model.save(net, config, NEW_FOLDER)" in message
    line = f"{unloadable(tmp_path, standalone.WeightsNotDescribed(message))}. Fix: export the run again"
    assert line.count("Fix:") == 1 and "test metrics, thresholds and provenance in config.json are not its" in line


def test_sample_images_refuses_a_count_below_one_naming_n_the_value_and_the_fix(tmp_path):
    G, _ = load_generator(_export(tmp_path / "g", 0))
    for n in (0, -1, 2.0, True, "3"):
        with pytest.raises(ValueError, match=rf"n is the number of images to draw, a whole number >= 1; got "
                                             rf"{repr(n)}\. Fix: pass e\.g\. sample_images\(G, 16\)"):
            sample_images(G, n)
    assert sample_images(G, torch.tensor(2)).shape == (2, 1, 16, 16)


def test_one_class_name_or_index_stands_for_every_image_and_fractions_are_refused(tmp_path):
    G, _ = load_generator(_export(tmp_path / "g", 0))
    malignant = sample_images(G, 3, labels="malignant", seed=4)
    assert torch.equal(malignant, sample_images(G, 3, labels=[1, 1, 1], seed=4))
    assert torch.equal(malignant, sample_images(G, 3, labels=1, seed=4))
    assert torch.equal(malignant, sample_images(G, 3, labels=torch.tensor([1.0, 1.0, 1.0]), seed=4))
    with pytest.raises(ValueError, match=r"got \['malign'\], which are not its classes"):
        sample_images(G, 3, labels="malign")
    with pytest.raises(ValueError, match=r"got 1\.5 at position 3, which is not a whole number\. Fix: pass class"):
        sample_images(G, 4, labels=torch.tensor([0, 1, 0, 1.5]))
    with pytest.raises(ValueError, match=r"got nan at position 0"):
        sample_images(G, 2, labels=[float("nan"), 1])


def test_the_exports_model_py_checks_n_and_labels_in_a_fresh_process(tmp_path):
    export = _export(tmp_path / "g", 0)
    script = ("import model, torch\nG, _ = model.load_generator('.')\nprint(model.sample_images(G, 2, labels="
              "'benign').shape[0])\nfor n in (0, -1):\n    try:\n        model.sample_images(G, n)\n"
              "    except ValueError as e:\n        print(str(e).split(';')[0])\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=export, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["2"] + ["n is the number of images to draw, a whole number >= 1"] * 2


def _gan_run(folder: Path) -> Path:
    """A GAN run folder with one complete trial and its generator's spec (no checkpoint: the options are refused
    before one is looked for)."""
    return hand_gan_run(folder, {"generator": SPEC})


@pytest.mark.parametrize("options, named", [(["--bootstrap", "100"], "--bootstrap"),
                                            (["--select", "greedy"], "--select"),
                                            (["--select", "top", "--bootstrap", "2000"], "--bootstrap and --select"),
                                            (["--top-k", "2"], "--top-k")])
def test_export_of_a_gan_run_refuses_the_classifier_options_given(tmp_path, capsys, options, named):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # optuna's experimental create_trial
        run = _gan_run(tmp_path / "run")
    assert main(["export", str(run), "--out", str(tmp_path / "out"), *options]) == 2
    err = capsys.readouterr().err
    assert "a generator exports alone and is not scored on the test split" in err and f"Fix: leave out {named}" in err
    assert "ensemble advice" not in err and "--top-k 5" not in err and not (tmp_path / "out").exists()
    assert main(["export", str(run), "--out", str(tmp_path / "out")]) != 0   # no checkpoint here, but not refused
    assert "a generator exports alone" not in capsys.readouterr().err
