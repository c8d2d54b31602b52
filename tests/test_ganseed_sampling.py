"""A GAN's random draws come from the generator it is given, never from torch's global RNG: StyleGAN2's per-layer
noise and style mixing drew from the device's global generator (so a trial's seed did not fix them, on CUDA nor on
CPU), and `searchlab sample --seed S` drew from a seeding (numpy SeedSequence per class, batches of 256) that only
searchlab's private code knew: the export's model.py now holds it (sample_class), and `searchlab sample` calls it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from searchlab.cli import main
from searchlab.models.gan import StyleGAN2Generator, build_generator
from searchlab.models import gan_sampling   # its functions read at call time: each test fails alone without them
from test_generator_export_notes import hand_gan_export

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# run with `python -I` (no PYTHONPATH, no user site, not the current folder) and searchlab made unimportable
SAMPLE_CLASS_WITHOUT_SEARCHLAB = r"""
import json, sys
sys.modules["searchlab"] = None
sys.path.insert(0, sys.argv[1])
import model, torch
torch.set_num_threads(int(sys.argv[5]))   # the test's: a conv summed in another order can round a pixel apart
G, config = model.load_generator(sys.argv[1])
label = None if sys.argv[3] == "-" else sys.argv[3]
print(json.dumps(model.sample_class(G, int(sys.argv[2]), label, seed=int(sys.argv[4])).tolist()))
"""


def _stylegan2_with_noise() -> StyleGAN2Generator:
    """An 8 px StyleGAN2 generator in training mode that always mixes styles and whose noise shows in its images
    (noise strengths start at zero, which would hide where the noise came from)."""
    torch.manual_seed(0)
    G = StyleGAN2Generator(8, 1, latent=8, width=8, mixing_prob=1.0).train()
    with torch.no_grad():
        for layer in G.layers:
            layer.noise_strength.fill_(0.5)
    return G


def _forward_after(global_seed: int, G: torch.nn.Module, z: torch.Tensor, **kw) -> torch.Tensor:
    torch.manual_seed(global_seed)   # what else the process drew from torch's global RNG
    with torch.no_grad():
        return G(z, generator=torch.Generator().manual_seed(1), **kw)


def test_stylegan2_training_noise_and_mixing_come_from_the_given_generator_whatever_the_global_seed():
    G, z = _stylegan2_with_noise(), torch.randn(4, 8, generator=torch.Generator().manual_seed(2))
    first = _forward_after(0, G, z)
    assert torch.equal(first, _forward_after(12345, G, z))
    with torch.no_grad():   # the noise and mixing do move the images: another stream, other images
        other = G(z, generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(first, other)


def test_stylegan2_sampling_with_random_noise_draws_it_from_the_sampling_generator():
    G = _stylegan2_with_noise().eval()
    drawn = []
    for global_seed in (0, 777):
        torch.manual_seed(global_seed)
        drawn.append(G.sample(3, generator=torch.Generator().manual_seed(5), noise_mode="random"))
    assert torch.equal(*drawn)


def _export(folder: Path, family: str, n_classes: int, breastmnist_root: Path) -> Path:
    """An untrained 28 px generator of `family` exported by export_generator (its own model.py), no training run."""
    args = {"latent": 8, "width": 8, "n_classes": n_classes}
    spec = {"family": family, "image_size": 28, "channels": 1, "args": args,
            "class_names": ["a", "b"] if n_classes else []}
    torch.manual_seed(0)
    with torch.no_grad():
        G = build_generator(family, 28, 1, **args)
        for name, value in G.named_parameters():   # visible noise, so a noise drawn elsewhere would show
            if name.endswith("noise_strength"):
                value.fill_(0.5)
    return hand_gan_export(folder, spec, G.state_dict(), breastmnist_root)


def _redrawn_without_searchlab(export: Path, n: int, label: str | None, seed: int, cwd: Path) -> np.ndarray:
    args = [str(export), str(n), label or "-", str(seed), str(torch.get_num_threads())]
    out = subprocess.run([sys.executable, "-I", "-c", SAMPLE_CLASS_WITHOUT_SEARCHLAB, *args], capture_output=True,
                         text=True, cwd=cwd, check=True)
    return np.array(json.loads(out.stdout), dtype=np.uint8)


def _written(folder: Path, seed: int, n: int) -> np.ndarray:
    return np.stack([np.array(Image.open(folder / f"synthetic_s{seed}_{i:05d}.png"))[None] for i in range(n)])


@pytest.mark.parametrize("family", ["dcgan", "stylegan2"])
def test_model_py_sample_class_gives_the_pixels_searchlab_sample_wrote(tmp_path, breastmnist_root, family, capsys):
    export = _export(tmp_path, family, 2, breastmnist_root)
    assert main(["sample", str(export), "--out", str(tmp_path / "drawn"), "--n", "3", "--seed", "11"]) == 0
    capsys.readouterr()
    for label in ("a", "b"):
        assert np.array_equal(_redrawn_without_searchlab(export, 3, label, 11, tmp_path),
                              _written(tmp_path / "drawn" / label, 11, 3))


def test_an_unconditional_draw_past_one_batch_is_redrawn_by_sample_class(tmp_path, breastmnist_root, capsys):
    export, n = _export(tmp_path, "dcgan", 0, breastmnist_root), 258   # 256 + 2: a second batch of the stream
    assert main(["sample", str(export), "--out", str(tmp_path / "drawn"), "--n", str(n), "--seed", "4"]) == 0
    capsys.readouterr()
    assert np.array_equal(_redrawn_without_searchlab(export, n, None, 4, tmp_path), _written(tmp_path / "drawn", 4, n))


def test_sampling_an_export_twice_with_one_seed_gives_the_same_images_whatever_the_global_seed(tmp_path,
                                                                                              breastmnist_root):
    G, _ = gan_sampling.load_generator(_export(tmp_path, "stylegan2", 2, breastmnist_root))
    draws = []
    for global_seed in (0, 99):
        torch.manual_seed(global_seed)
        draws.append((gan_sampling.sample_class(G, 4, "b", seed=6),
                      gan_sampling.sample_images(G, 4, labels=[0, 1, 1, 0], seed=6)))
    assert all(torch.equal(one, two) for one, two in zip(*draws))


def test_class_stream_is_numpys_seed_sequence_and_bad_arguments_are_refused():
    for seed, index in [(0, None), (7, 1), (2**40 + 3, 12), (2**31 - 1, None)]:
        state = np.random.SeedSequence([seed] if index is None else [seed, index]).generate_state(1, np.uint64)[0]
        assert gan_sampling.class_stream(seed, index).initial_seed() == int(state) >> 1
    with pytest.raises(ValueError, match="seed and class index are whole numbers >= 0; got seed -1"):
        gan_sampling.class_stream(-1, 0)
    G = build_generator("dcgan", 28, 1, latent=8, width=8, n_classes=2)
    with pytest.raises(ValueError, match="class-conditional .*Fix: pass a class index or name"):
        gan_sampling.sample_class(G, 2, seed=1)


def test_a_stylegan2_training_step_does_not_depend_on_the_global_seed():
    from searchlab.gan.train import GANSteps, RealImages, build_pair
    from searchlab.tasks.generate_config import GenerateTrialConfig

    spec = GenerateTrialConfig.model_validate({"gan": {"family": "stylegan2", "latent": 8, "g_width": 8,
                                                       "d_width": 8}, "train": {"batch_size": 4}})
    real = RealImages(torch.rand(10, 1, 8, 8) * 2 - 1, torch.zeros(10, dtype=torch.long), 1)
    losses = []
    for global_seed in (0, 4321):
        torch.manual_seed(0)
        G, D = build_pair(spec, 8, 1, 1)
        with torch.no_grad():
            for layer in G.layers:   # visible noise
                layer.noise_strength.fill_(0.5)
        steps = GANSteps(spec, real, G.train(), D, torch.Generator().manual_seed(7))
        torch.manual_seed(global_seed)   # what else the process drew
        losses.append(float(steps.generator()))
    assert losses[0] == losses[1]
