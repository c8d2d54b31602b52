"""The export's model.sample_class took a class only as spelt in class_names, while `searchlab sample --class` takes
any case and the folder names a draw writes (normal_benign); its error for an unknown class was sample_images'
("labels are 1 class indices ..."). Both now resolve a class by one rule, gan_sampling.class_named, which the
export's model.py holds with torch alone."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from searchlab.data.synthetic_files import RECORD
from searchlab.export import sample as sample_module
from searchlab.models import gan_sampling
from searchlab.models.gan import build_generator
from test_ganseed_sampling import _written
from test_generator_export_notes import hand_gan_export
from test_sample import _hand_export, _sample

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CLASSES = ["malignant", "normal, benign"]   # BreastMNIST's, as a GAN of it names them; a folder: normal_benign
VALUES = {"malignant": 0, "MALIGNANT": 0, "normal_benign": 1, "Normal, Benign": 1, "NORMAL_BENIGN": 1, "1": 1}

# run with `python -I -S` (no site, no PYTHONPATH, not the current folder) and searchlab made unimportable
SAMPLE_CLASS_WITHOUT_SEARCHLAB = r"""
import json, sys
sys.modules["searchlab"] = None
sys.path.insert(0, sys.argv[1])
sys.path.extend(json.loads(sys.argv[5]))   # the folder torch is in (-S leaves site-packages out)
import model, torch
torch.set_num_threads(1)
G, config = model.load_generator(sys.argv[1])
try:
    print(json.dumps(model.sample_class(G, int(sys.argv[2]), sys.argv[3], seed=int(sys.argv[4])).tolist()))
except ValueError as exc:
    print(json.dumps(str(exc)))
"""


def _generator(n_classes: int = 2, names: list[str] | None = None) -> torch.nn.Module:
    torch.manual_seed(0)
    G = build_generator("dcgan", 16, 1, latent=8, width=8, n_classes=n_classes).eval()
    G.class_names = tuple(CLASSES if names is None else names)
    return G


def _export(folder: Path, breastmnist_root: Path) -> Path:
    spec = {"family": "dcgan", "image_size": 28, "channels": 1, "args": {"latent": 8, "width": 8, "n_classes": 2},
            "class_names": CLASSES}
    torch.manual_seed(0)
    return hand_gan_export(folder, spec, build_generator("dcgan", 28, 1, **spec["args"]).state_dict(),
                           breastmnist_root)


def _model_py_says(export: Path, n: int, value: str, seed: int, cwd: Path):
    torch_folder = str(Path(torch.__file__).resolve().parents[1])
    args = [str(export), str(n), value, str(seed), json.dumps([torch_folder])]
    out = subprocess.run([sys.executable, "-I", "-S", "-c", SAMPLE_CLASS_WITHOUT_SEARCHLAB, *args],
                         capture_output=True, text=True, cwd=cwd, check=True)
    return json.loads(out.stdout)


def test_model_py_takes_the_class_names_sample_takes_and_draws_its_pixels(tmp_path, breastmnist_root, capsys):
    export = _export(tmp_path, breastmnist_root)
    code, _, err = _sample(capsys, export, "--out", tmp_path / "drawn", "--n", 2, "--seed", 5)
    assert code == 0, err
    for value, folder in [("NORMAL_BENIGN", "normal_benign"), ("Malignant", "malignant")]:
        redrawn = np.array(_model_py_says(export, 2, value, 5, tmp_path), dtype=np.uint8)
        assert np.array_equal(redrawn, _written(tmp_path / "drawn" / folder, 5, 2))
    said = _model_py_says(export, 2, "benign", 5, tmp_path)
    assert said == ("sample_class's class_index 'benign' is not a class of this generator (config.json's "
                    "generator.class_names). Fix: one of ['malignant', 'normal, benign'] (or its index 0..1, or its "
                    "folder name, one of ['malignant', 'normal_benign']), e.g. sample_class(G, 16, 'malignant', "
                    "seed=3)")


@pytest.mark.parametrize("value, index", VALUES.items())
def test_sample_class_and_the_cli_resolve_a_class_value_alike(tmp_path, value, index):
    G = _generator()
    assert gan_sampling._one_class(G, value) == index
    assert sample_module._wanted_classes(G, [value], tmp_path) == {CLASSES[index]: index}
    assert torch.equal(gan_sampling.sample_class(G, 2, value, seed=1), gan_sampling.sample_class(G, 2, index, seed=1))


def test_the_cli_resolves_by_the_function_model_py_holds(tmp_path, monkeypatch):
    """One rule: the CLI calls gan_sampling's (a second copy in export/sample.py could drift from model.py's)."""
    monkeypatch.setattr(gan_sampling, "class_named", lambda value, names, arg, owner: 1)
    assert sample_module._wanted_classes(_generator(), ["anything"], tmp_path) == {"normal, benign": 1}


@pytest.mark.parametrize("value", ["c", 2, -1, 1.5, "2", "²"])
def test_an_unknown_class_is_refused_in_sample_class_words_with_the_classes_and_the_fix(value):
    with pytest.raises(ValueError) as caught:
        gan_sampling.sample_class(_generator(), 2, value, seed=0)
    assert str(caught.value) == (
        f"sample_class's class_index {value!r} is not a class of this generator (config.json's "
        "generator.class_names). Fix: one of ['malignant', 'normal, benign'] (or its index 0..1, or its folder "
        "name, one of ['malignant', 'normal_benign']), e.g. sample_class(G, 16, 'malignant', seed=3)")


def test_a_value_naming_two_classes_and_a_class_of_an_unconditional_generator_are_refused():
    with pytest.raises(ValueError, match=r"^sample_class's class_index 'BENIGN' names more than one class of this "
                                         r"generator .*\(\['Benign', 'benign'\]\)\. Fix: give the class's exact name"):
        gan_sampling.sample_class(_generator(names=["Benign", "benign"]), 1, "BENIGN")
    with pytest.raises(ValueError, match=r"^sample_class's class_index 'a': this generator is unconditional .*Fix: "
                                         r"leave class_index out, e.g. sample_class\(G, 16, seed=3\)"):
        gan_sampling.sample_class(_generator(0, []), 1, "a")
    unnamed = _generator(names=[])   # a conditional generator exported without class names: its indices name it
    assert gan_sampling._one_class(unnamed, "1") == 1


def test_a_superscript_digit_is_said_to_name_no_class_on_the_command_line(tmp_path, capsys):
    """str.isdigit() takes "²", which int() refuses: `sample --class ²` ended in a ValueError traceback."""
    export = _hand_export(tmp_path / "g", 2, CLASSES)
    code, _, err = _sample(capsys, export, "--out", tmp_path / "out", "--class", "²")
    assert code == 2 and "--class '²' is not a class of the generator in" in err, err


def test_no_class_folder_is_named_as_the_draw_record_searchlab_writes():
    """model.py spells the record's name itself (it imports no searchlab): the two must not drift apart."""
    assert gan_sampling.class_folder_name(RECORD.upper(), 3) == "class_3"
