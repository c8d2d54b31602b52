"""A bool is an int in Python: model.sample_class(G, n, True) drew class 1's images. A class is a name or an index,
so a bool is refused with its own error (the argument, the value, the classes, the fix), in an exported generator's
model.py (without searchlab) as in searchlab's own gan_sampling."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from searchlab.models.gan import build_generator
from searchlab.models.gan_sampling import class_named, sample_class
from test_generator_export_notes import hand_gan_export

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ARGS = {"latent": 8, "width": 8, "n_classes": 2}
SAMPLE_TRUE_WITHOUT_SEARCHLAB = r"""
import sys
sys.modules["searchlab"] = None
sys.path.insert(0, sys.argv[1])
import model
G, config = model.load_generator(sys.argv[1])
try:
    model.sample_class(G, 2, True, seed=3)
    print("drawn")
except ValueError as e:
    print(e)
"""


def _generator() -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_generator("dcgan", 28, 1, **ARGS)
    net.class_names = ("benign", "malignant")
    return net.eval()


@pytest.mark.parametrize("value", [True, False, torch.tensor(True)])
def test_sample_class_refuses_a_bool_naming_the_argument_value_classes_and_fix(value):
    with pytest.raises(ValueError) as caught:
        sample_class(_generator(), 2, value, seed=3)
    message = str(caught.value)
    assert "sample_class's class_index" in message and "is a bool" in message
    assert "['benign', 'malignant']" in message and "Fix: pass one of" in message


def test_class_named_still_takes_an_int_index_and_a_name():
    assert class_named(1, ("benign", "malignant"), "--class", "g") == 1
    assert class_named("Benign", ("benign", "malignant"), "--class", "g") == 0


def test_an_exported_model_py_refuses_a_bool_class(tmp_path, breastmnist_root):
    spec = {"family": "dcgan", "image_size": 28, "channels": 1, "args": ARGS, "class_names": ["a", "b"]}
    export = hand_gan_export(tmp_path, spec, _generator().state_dict(), breastmnist_root)
    out = subprocess.run([sys.executable, "-c", SAMPLE_TRUE_WITHOUT_SEARCHLAB, str(export)], capture_output=True,
                         text=True, cwd=tmp_path, check=True)
    assert "drawn" not in out.stdout
    assert "sample_class's class_index True is a bool" in out.stdout and "['a', 'b']" in out.stdout
