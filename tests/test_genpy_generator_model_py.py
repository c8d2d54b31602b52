"""A generator export's model.py holds what sampling needs and nothing else: the safetensors reader, the shared GAN
helpers and its own family's generator, then load_generator / sample_images. It held all of standalone.py (the
classifier code: PlainCNN, Ensemble, predict_proba ...), both StyleGAN2 networks and the DCGAN discriminator: ~950
lines for a DCGAN. It still loads and samples, without searchlab, the images searchlab's own sampling gives."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from searchlab.models import generator_source, model_source
from searchlab.models.gan import build_generator
from searchlab.models.gan_sampling import load_generator, sample_images
from test_generator_export_notes import hand_gan_export

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ARGS = {"latent": 8, "width": 8, "n_classes": 2}
CLASSIFIER_CODE = ("class PlainCNN", "class Ensemble", "def predict_proba", "def build_export_model", "def save(")
DISCRIMINATORS = ("Discriminator", "minibatch_stddev", "_gan_Projection", "_gan_ResBlock", "build_discriminator")
STYLEGAN2_CODE = ("class StyleGAN2", "MappingNetwork", "ModulatedConv2d", "modulated_conv2d")

SAMPLE_WITHOUT_SEARCHLAB = r"""
import json, sys
sys.modules["searchlab"] = None          # any `import searchlab` now fails
sys.path.insert(0, sys.argv[1])
import model
G, config = model.load_generator(sys.argv[1])
print(json.dumps(model.sample_images(G, 4, labels=["a", "b", "b", "a"], seed=5).tolist()))
"""


def _exported(folder: Path, family: str, breastmnist_root: Path) -> Path:
    """A generator of `family` (untrained, 28 px, conditional) exported by export_generator from a run folder
    whose one trial recorded its spec: the exporter's own model.py, without a training run."""
    spec = {"family": family, "image_size": 28, "channels": 1, "args": ARGS, "class_names": ["a", "b"]}
    torch.manual_seed(0)
    return hand_gan_export(folder, spec, build_generator(family, 28, 1, **ARGS).state_dict(), breastmnist_root)


@pytest.mark.parametrize("family", ["dcgan", "wgan_gp", "stylegan2"])
def test_a_generator_exports_model_py_holds_its_familys_generator_alone(tmp_path, breastmnist_root, family):
    text = (_exported(tmp_path, family, breastmnist_root) / "model.py").read_text()
    assert text == generator_source(family)
    assert not [code for code in CLASSIFIER_CODE + DISCRIMINATORS if code in text]
    assert "def load_generator" in text and "def sample_images" in text and "def read_safetensors" in text
    assert "hashlib.sha256" in text                      # the weights' check load_generator does
    if family == "stylegan2":
        assert "class StyleGAN2Generator" in text and "DCGANGenerator" not in text
    else:
        assert "class DCGANGenerator" in text and not [code for code in STYLEGAN2_CODE if code in text]
    classifier = model_source({"architecture": "plain_cnn", "args": {}})
    print(f"{family} generator model.py: {len(text.splitlines())} lines; plain CNN classifier's: "
          f"{len(classifier.splitlines())}")
    assert len(text.splitlines()) < (600 if family == "stylegan2" else 420)


@pytest.mark.parametrize("family", ["dcgan", "stylegan2"])
def test_the_model_py_samples_without_searchlab_the_images_searchlab_samples(tmp_path, breastmnist_root, family):
    export = _exported(tmp_path, family, breastmnist_root)
    out = subprocess.run([sys.executable, "-c", SAMPLE_WITHOUT_SEARCHLAB, str(export)], capture_output=True,
                         text=True, cwd=tmp_path, check=True)
    G, _ = load_generator(export)
    assert json.loads(out.stdout) == sample_images(G, 4, labels=["a", "b", "b", "a"], seed=5).tolist()


def test_another_familys_export_loaded_with_this_model_py_is_refused_with_the_fix(tmp_path, breastmnist_root):
    dcgan = _exported(tmp_path / "d", "dcgan", breastmnist_root)
    stylegan2 = _exported(tmp_path / "s", "stylegan2", breastmnist_root)
    script = ("import sys; sys.modules['searchlab'] = None; sys.path.insert(0, sys.argv[1]); import model\n"
              "try:\n    model.load_generator(sys.argv[2])\nexcept ValueError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", script, str(dcgan), str(stylegan2)], capture_output=True, text=True,
                         cwd=tmp_path, check=True)
    assert "holds the generators of ['dcgan', 'wgan_gp'] only, not 'stylegan2'" in out.stdout
    assert "Fix: load each export with the model.py exported with it" in out.stdout


def test_every_familys_generator_without_a_family_and_an_unknown_family_refused():
    text = generator_source()   # callers that name no family: every generator, still no discriminator
    assert "class DCGANGenerator" in text and "class StyleGAN2Generator" in text
    assert not [code for code in CLASSIFIER_CODE + DISCRIMINATORS if code in text]
    with pytest.raises(ValueError, match="unknown GAN family 'vanilla'.*valid families: dcgan, wgan_gp, stylegan2"):
        generator_source("vanilla")
