"""An export's model.py used from a notebook: saving fine-tuned weights, the dtype advice of predict_proba, its
arguments in another order, a second export imported in the same process, and load_images given one path, no
paths or a folder."""
from __future__ import annotations

import importlib.util
import io
import json
import re
import shutil
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from searchlab.export.exporter import export_run
from searchlab.export.predict import predict_files
from tiny_runs import run_on_breastmnist

STUDY = """
name: notebook
task: classify
space:
  model: {kind: cnn, depth: 2, width: 8}
  optim: {lr: 1.0e-3}
  train: {batch_size: 64}
strategy: random
pruner: none
budget: {n_trials: 1, epochs: 1}
"""


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, breastmnist_root):
    tmp = tmp_path_factory.mktemp("notebook")
    export_run(run_on_breastmnist(tmp, STUDY, breastmnist_root), tmp / "best", bootstrap=100)
    return tmp / "best"


@pytest.fixture(scope="module")
def images(breastmnist_root):
    return torch.from_numpy(np.load(breastmnist_root / "breastmnist.npz")["test_images"][:6, None].copy())


def module_of(model_py, name):
    """An export's model.py imported under a name of its own (not cached as `model`)."""
    spec = importlib.util.spec_from_file_location(name, model_py)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_pngs(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"img{i:03d}.png" for i in range(len(images))]
    for path, image in zip(paths, images):
        Image.fromarray(image[0].numpy()).save(path)
    return paths


def test_save_writes_a_folder_that_load_and_predict_take(export_dir, images, tmp_path):
    """The README's fine-tuning recipe (safetensors.torch.save_file beside a copy of config.json) left a folder
    that model.load and `searchlab predict` refused for its weights_sha256, with a fix that could not apply."""
    model = module_of(export_dir / "model.py", "model_save")
    net, config = model.load(export_dir)
    with torch.no_grad():   # one "fine-tuning step"
        net.head[3].bias += 0.5
    tuned = model.save(net, config, tmp_path / "tuned")
    again, saved = model.load(tuned)
    assert torch.equal(model.predict_proba(again, saved, images), model.predict_proba(net, config, images))
    old = json.loads((export_dir / "config.json").read_text())
    assert saved["fine_tuned_from"] == old["weights_sha256"] != saved["weights_sha256"]
    assert not any(key.startswith(("test_metrics", "validation_metrics", "test_confusion")) for key in saved)
    assert saved["before_fine_tuning"]["test_metrics"] == old["test_metrics"]
    assert saved["before_fine_tuning"]["weights_sha256"] == old["weights_sha256"]
    assert (tuned / "model.py").read_bytes() == (export_dir / "model.py").read_bytes()
    from safetensors.torch import load_file   # the library reads the file save() wrote

    assert all(torch.equal(load_file(tuned / "weights.safetensors")[k], v) for k, v in net.state_dict().items())
    out = io.StringIO()
    assert predict_files(tuned, write_pngs(tmp_path / "pngs", images[:2]), out) == 2
    model.save(again, saved, tuned)   # a second epoch into the same folder
    assert model.load(tuned)[1]["fine_tuned_from"] == saved["weights_sha256"]


def test_save_refuses_to_overwrite_an_export(export_dir, tmp_path):
    """Nothing kept a fine-tuning loop from writing its weights over the export's, whose test metrics then
    described weights that were gone."""
    model = module_of(export_dir / "model.py", "model_refuse")
    net, config = model.load(export_dir)
    before = (export_dir / "weights.safetensors").read_bytes()
    with pytest.raises(ValueError, match="holds an export .*Fix: save into a new folder"):
        model.save(net, config, export_dir)
    assert (export_dir / "weights.safetensors").read_bytes() == before
    copy = tmp_path / "copy"
    shutil.copytree(export_dir, copy)
    model.save(net, config, copy, replace_export=True)   # on purpose
    assert "fine_tuned_from" in model.load(copy)[1] and not (copy / "test_predictions.json").exists()


def advised(error, x):
    """The tensor the error's `pass ...` advice makes of x."""
    snippet = re.search(r"pass (\S.*?\.to\(torch\.uint8\))", str(error)).group(1)
    return eval(snippet, {"torch": torch, "x": x})


@pytest.mark.parametrize("as_wrong_type", [lambda x: x.long(), lambda x: x.float(), lambda x: x.float() / 255,
                                           lambda x: x.to(torch.float64) / 255])
def test_dtype_advice_gives_back_the_images(export_dir, images, as_wrong_type):
    """For an int64 or float32 tensor of 0-255 values the advice was (x * 255).round().to(torch.uint8), which wraps
    around in uint8 and scored other images without complaint."""
    model = module_of(export_dir / "model.py", "model_dtype")
    net, config = model.load(export_dir)
    x = as_wrong_type(images)
    with pytest.raises(ValueError, match="must be uint8") as error:
        model.predict_proba(net, config, x)
    assert torch.equal(advised(error.value, x), images)


@pytest.mark.parametrize("order", [(0, 2, 1), (1, 0, 2), (2, 1, 0)])
def test_arguments_in_another_order_are_said_with_the_order_to_use(export_dir, images, order):
    """predict_proba(net, images, config) failed with "'Tensor' object has no attribute 'get'" from deep inside."""
    model = module_of(export_dir / "model.py", "model_order")
    net, config = model.load(export_dir)
    arguments = [(net, config, images)[i] for i in order]
    for call in (model.predict_proba, model.predict):
        with pytest.raises(TypeError, match=r"take \(net, config, images\), got .*Fix: pass the network and config"):
            call(*arguments)


def test_dtype_advice_for_deeper_data_scales_as_the_export_reads_files(export_dir, tmp_path):
    """12-bit data in an int32 tensor was also told to multiply by 255, though the export reads such files scaled
    down (by its bit_depth, else 16 bits)."""
    model = module_of(export_dir / "model.py", "model_deep")
    net, config = model.load(export_dir)
    twelve_bit = torch.tensor([[[[0, 1000], [2048, 4095]]]], dtype=torch.int32)
    spec = {**config["input"], "height": 2, "width": 2}
    for bit_depth, top in ((12, 4095), (None, 65535)):
        with pytest.raises(ValueError, match="more than 8 bits") as error:
            model._check_images(twelve_bit, {**spec, "bit_depth": bit_depth})
        path = tmp_path / f"deep{bit_depth}.png"   # the same values as a 16-bit file, read as load_images reads it
        Image.fromarray(twelve_bit[0, 0].numpy().astype(np.uint16)).save(path)
        read = model.read_image_file(path, 2, 2, 1, bit_depth=bit_depth)
        assert torch.equal(advised(error.value, twelve_bit)[0], read), (top, str(error.value))


def test_a_second_export_imported_as_model_is_refused_with_the_fix(export_dir, images, tmp_path):
    """`sys.path.insert(0, DIR); import model` for a second export returned the first export's cached module,
    which built the second export with its own (other) code, or failed on an architecture it did not know."""
    other, same = tmp_path / "other", tmp_path / "same"
    shutil.copytree(export_dir, other)
    shutil.copytree(export_dir, same)
    with (other / "model.py").open("a") as fh:
        fh.write("\n# another searchlab version's code\n")
    sys.path.insert(0, str(export_dir))
    sys.modules.pop("model", None)
    try:
        import model

        model.load(export_dir)
        model.load(same)   # the very same code: nothing to say
        with pytest.raises(ValueError, match="is not the model.py this code was imported from") as error:
            model.load(other)
    finally:
        sys.path.remove(str(export_dir))
        sys.modules.pop("model", None)
    lines = model.own_module(other)
    assert "; ".join(lines) in str(error.value)
    scope: dict = {}
    exec("\n".join(lines), scope)   # the fix, as the error gives it
    assert scope["m"].__file__ == str(other / "model.py") and scope["config"]["weights_sha256"]
    assert scope["m"].predict_proba(scope["net"], scope["config"], images).shape == (6,)


def test_load_images_takes_one_path_no_paths_and_refuses_a_folder(export_dir, images, tmp_path):
    """A single path was read letter by letter (FileNotFoundError for 'p'), an empty list raised torch's "stack
    expects a non-empty TensorList", and a folder raised a bare IsADirectoryError from Pillow."""
    model = module_of(export_dir / "model.py", "model_files")
    net, config = model.load(export_dir)
    paths = write_pngs(tmp_path / "pngs", images[:2])
    assert torch.equal(model.load_images(str(paths[0]), config), images[:1])
    assert torch.equal(model.load_images(paths[1], config), images[1:2])
    none = model.load_images([], config)
    assert none.shape == (0, 1, 28, 28) and none.dtype == torch.uint8
    assert model.predict_proba(net, config, none).shape == (0,)
    with pytest.raises(IsADirectoryError, match="is a folder.*Fix: list its files"):
        model.load_images(tmp_path / "pngs", config)
