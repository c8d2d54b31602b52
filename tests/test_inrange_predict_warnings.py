"""`searchlab predict` says, once, when the files given are far from the sizes of the files the model was trained
on (a 1x1 image, a 2000x2 strip), and when colour files are given to a model trained on greyscale files (RGB
files with equal channels, as X-ray PNGs are often saved, are grey and not warned). A real tiny export of a
folder of greyscale 4:3 PNGs, 40x30 to 48x36, trained once for the module."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from searchlab.cli import main
from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.export.exporter import export_run
from searchlab.export.input_range import colour_into_grey_warning, size_warning

SIZES = ((40, 30), (44, 33), (48, 36))   # width x height: aspect 4:3


def png(path, width, height, mode="L", value=(128, 128, 128)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (width, height), value[0] if mode == "L" else value).save(path)
    return path


@pytest.fixture(scope="module")
def grey_export(tmp_path_factory, one_torch_thread):
    tmp = tmp_path_factory.mktemp("inrange")
    for cls, level in (("a", 60), ("b", 190)):
        for i in range(12):
            width, height = SIZES[i % 3]
            png(tmp / "imgs" / cls / f"{i:02d}.png", width, height, value=(level + i,))
    (tmp / "study.yaml").write_text(
        "name: inrange\nspace:\n  model: {kind: cnn, depth: 1, width: 4}\n  train: {batch_size: 8}\n"
        "strategy: random\npruner: none\nbudget: {n_trials: 1, epochs: 1}\n"
        f"data: {{source: folder, path: '{tmp / 'imgs'}', image_size: 8}}\nrun_dir: '{tmp / 'run'}'\n")
    run_study(load_study(tmp / "study.yaml"), progress=False)
    export_run(tmp / "run", tmp / "best", bootstrap=10)
    return tmp / "best"


def predicted_warnings(export, inputs, tmp_path, capsys):
    capsys.readouterr()
    assert main(["predict", str(export), *map(str, inputs), "--out", str(tmp_path / "p.csv")]) == 0
    return capsys.readouterr().err


def test_an_export_records_the_range_of_its_training_files_sizes(grey_export):
    spec = json.loads((grey_export / "config.json").read_text())["input"]
    assert spec["files_were"] == "greyscale"
    sized = spec["files_sized"]
    assert (sized["width"], sized["height"], sized["aspect"]) == ([40, 48], [30, 36], [1.3333, 1.3333])
    assert 10 <= sized["sampled"] <= 24   # the training split's files, not val's or test's too


def test_files_far_from_the_training_sizes_are_warned_once_with_the_range_and_the_fix(grey_export, tmp_path,
                                                                                      capsys):
    folder = tmp_path / "given"
    tiny, strip = png(folder / "a_tiny.png", 1, 1), png(folder / "b_strip.png", 2000, 2)
    for name, (width, height) in {"c_like.png": (44, 33), "d_bigger.png": (150, 110), "e_half.png": (20, 15),
                                  "f_wider.png": (58, 30)}.items():   # under 4x, half, 1.5x the aspect: not far
        png(folder / name, width, height)
    err = predicted_warnings(grey_export, [folder], tmp_path, capsys)
    assert err.count("far from the size") == 1, err
    assert (f"warning: 2 of 6 image files (sampled) are far from the size of the images this model was trained on "
            f"({tiny} (1x1), {strip} (2000x2); width x height in px): its training files (") in err
    assert "were 40 to 48 px wide and 30 to 36 px high, of aspect ratio (width/height) 1.33; far is" in err
    assert "resized to the model's input of 8x8 with fit=stretch, so predictions on them may mean little. Fix: " \
           "check that they are the kind of images the model was trained on, and crop or resize them" in err
    assert predicted_warnings(grey_export, [folder / "c_like.png", folder / "d_bigger.png"], tmp_path, capsys) == ""


def test_normal_variation_in_a_set_of_larger_images_is_not_warned(tmp_path):
    """Ultrasound frames of 500x400 to 600x450: a 550x420 one is one of them; a thumbnail or a strip is not."""
    config = {"input": {"height": 64, "width": 64, "fit": "pad", "decoder": 2, "files_sized": {
        "width": [500, 600], "height": [400, 450], "aspect": [1.25, 1.3333], "sampled": 200}}}
    assert size_warning([png(tmp_path / "frame.png", 550, 420), png(tmp_path / "tall.png", 400, 450)], config) is None
    thumb = png(tmp_path / "thumb.png", 120, 90)
    assert size_warning([thumb], config).startswith(f"1 of 1 image files (sampled) are far from the size of the "
                                                    f"images this model was trained on ({thumb} (120x90);")


def test_without_a_recorded_range_only_extreme_sizes_are_warned(grey_export, tmp_path, capsys):
    """An npz-trained (MedMNIST) or older export: larger scans are what MedMNIST was made from, so only a side
    under 8 px or an aspect ratio over 4:1 is said."""
    config = {"input": {"height": 28, "width": 28, "fit": "stretch"}}
    fair = [png(tmp_path / f"{w}x{h}.png", w, h) for w, h in ((1024, 1024), (120, 40), (8, 8), (30, 100))]
    assert size_warning(fair, config) is None
    far = [png(tmp_path / f"{w}x{h}.png", w, h) for w, h in ((1, 1), (200, 40), (7, 300))]
    said = size_warning(fair + far, config)
    assert said.startswith("3 of 7 image files (sampled) are far from the size") and "(200x40)" in said
    assert "this export records no sizes of training files (trained on arrays of its input's size" in said
    older = tmp_path / "older"   # the real export, as one made before files_sized was recorded
    shutil.copytree(grey_export, older)
    config = json.loads((older / "config.json").read_text())
    del config["input"]["files_sized"]
    (older / "config.json").write_text(json.dumps(config))
    err = predicted_warnings(older, [far[0], fair[0]], tmp_path, capsys)
    assert "warning: 1 of 2 image files (sampled) are far from the size" in err and "no sizes of training" in err


def test_colour_files_for_a_greyscale_model_are_warned_and_grey_saved_as_rgb_is_not(grey_export, tmp_path, capsys):
    folder = tmp_path / "given"
    grey_rgb = png(folder / "a_xray_rgb.png", 44, 33, "RGB", (90, 90, 90))   # three equal channels: grey in effect
    png(folder / "b_grey.png", 44, 33)
    rgb_jpeg = folder / "c_xray.jpg"   # an RGB JPEG of a grey image: its decoding differs by a level or so
    Image.fromarray(np.tile(np.arange(0, 220, 5, dtype=np.uint8), (33, 1))).convert("RGB").save(rgb_jpeg)
    assert predicted_warnings(grey_export, [folder], tmp_path, capsys) == ""
    photo = png(folder / "d_photo.png", 44, 33, "RGB", (200, 60, 40))
    palette = folder / "e_palette.png"
    Image.new("RGB", (44, 33), (20, 180, 60)).convert("P").save(palette)
    err = predicted_warnings(grey_export, [folder], tmp_path, capsys)
    assert err.count("are in colour") == 1, err
    assert (f"warning: 2 of 4 RGB or palette image files decoded (4 among 5 files sampled) are in colour, their red, "
            f"green and blue differing ({photo}, {palette}), but this model was trained on greyscale image files: "
            "each is converted to grey (L = 0.299R + 0.587G + 0.114B) and scored as grey, so predictions on them may "
            "mean little") in err
    assert str(grey_rgb) not in err and "Fix: check that they are the kind of images the model was trained on" in err
    colour_trained = {"input": {"channels": 3, "files_were": "colour"}}   # the other way is grey_into_colour's
    assert colour_into_grey_warning([photo], colour_trained) is None
    grey_read_as_rgb = {"input": {"channels": 3, "files_were": "greyscale"}}   # data.channels: 3 on grey files
    assert "they are scored in colour, which it never saw" in colour_into_grey_warning([photo], grey_read_as_rgb)
