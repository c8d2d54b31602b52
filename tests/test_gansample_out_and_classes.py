"""Audit of the GAN journey: `sample --out` refused ordinary places as "a class folder of a data set" (below two
project folders holding one saved figure each; beside two folder data sets, where the README says to put it),
`--class` refused the folder name a draw writes (normal_benign) and a name in another case, and augment.synthetic
naming a GAN run folder said "not a generator export" without the command `sample` gives."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from searchlab.augment.synthetic import generator_mismatch
from test_sample import _hand_export, _sample
from test_sample_out_guards import _refused
from test_synthetic_data import _real_folder

CLASSES = ["malignant", "normal, benign"]   # BreastMNIST's, as a GAN of it names them


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (8, 8)).save(path)
    return path


# 1. --out in ordinary places

def test_out_below_project_folders_holding_a_figure_each_is_drawn_into(tmp_path, capsys, monkeypatch):
    export = _hand_export(tmp_path / "gexp", 2, CLASSES)
    _png(tmp_path / "p" / "projA" / "loss_curve.png")
    _png(tmp_path / "p" / "projB" / "roc.png")
    monkeypatch.chdir(tmp_path / "p" / "projA")
    for out in ("synthetic", tmp_path / "p" / "synthetic"):
        code, _, err = _sample(capsys, export, "--out", out, "--n", 2, "--seed", 1)
        assert code == 0, err
        assert (Path(out) / "normal_benign" / "synthetic_s1_00001.png").is_file()


def test_out_beside_two_folder_data_sets_is_drawn_into(tmp_path, capsys):
    export = _hand_export(tmp_path / "gexp", 2, CLASSES)
    for data in ("fdata", "fdata2"):
        for name in ("benign", "malignant"):
            _png(tmp_path / data / name / "scan.png")
    _png(tmp_path / "p" / "projA" / "loss_curve.png")
    code, _, err = _sample(capsys, export, "--out", tmp_path / "s_X", "--n", 1, "--seed", 1)
    assert code == 0, err
    # unconditional generator (no class names): the same class folders under each set still tell data sets apart
    plain = _hand_export(tmp_path / "plain", 0)
    code, _, err = _sample(capsys, plain, "--out", tmp_path / "s_Y", "--n", 1, "--seed", 1)
    assert code == 0, err


def test_a_data_set_is_still_refused_naming_its_images_and_a_place_outside_it(tmp_path, capsys):
    export = _hand_export(tmp_path / "gexp", 2, ["a", "b"])
    data = _real_folder(tmp_path / "proj" / "fd")
    _refused(capsys, export, data / "a" / "gen", data, f"is inside {data / 'a'}, a class folder of a data set: {data} "
             "holds the class folders a, b of images that no `searchlab sample` draw wrote (a/scan_0.png, "
             f"b/scan_0.png)", f"Fix: name a folder of its own for the images, outside {data} (e.g. --out "
             f"{tmp_path / 'proj' / 'synthetic'})")
    _refused(capsys, export, data / "new", data,
             f"is a class folder of a data set: {data} holds the class folders a, b")
    # class folders named as the generator's classes are known by one image each
    small = tmp_path / "small"
    for name in ("malignant", "normal_benign"):
        _png(small / name / "scan.png")
    _refused(capsys, _hand_export(tmp_path / "g2", 2, CLASSES), small / "new", small,
             f"{small} holds the class folders malignant, normal_benign")


def test_a_new_split_beside_split_folders_is_still_refused(tmp_path, capsys):
    export = _hand_export(tmp_path / "gexp", 2, ["a", "b"])
    data = tmp_path / "fd"
    for split in ("train", "val"):
        _real_folder(data / split)
    _refused(capsys, export, data / "test", data, f"is a class folder of a data set: {data} holds the class "
             "folders train, val")
    _refused(capsys, export, data / "train" / "new", data, f"{data / 'train'} holds the class folders a, b",
             f"outside {data} (e.g. --out {tmp_path / 'synthetic'})")   # the data set, not its split folder


# 2. --class by the folder a draw writes

@pytest.mark.parametrize("value", ["normal_benign", "Malignant", "NORMAL, BENIGN", "1"])
def test_class_by_its_folder_name_or_in_another_case(tmp_path, capsys, value):
    export = _hand_export(tmp_path / "gexp", 2, CLASSES)
    code, said, err = _sample(capsys, export, "--out", tmp_path / "out", "--n", 1, "--seed", 0, "--class", value)
    assert code == 0, err
    wanted = "malignant" if value.lower() == "malignant" else "normal, benign"
    assert f"(1 {wanted})" in said


def test_a_class_value_that_names_two_classes_is_said(tmp_path, capsys):
    export = _hand_export(tmp_path / "gexp", 2, ["Benign", "benign"])
    code, _, err = _sample(capsys, export, "--out", tmp_path / "out", "--n", 1, "--class", "BENIGN")
    assert code == 2 and "--class 'BENIGN' names more than one class of the generator" in err, err
    assert "(['Benign', 'benign']). Fix: give the class's exact name or its index" in err
    code, _, err = _sample(capsys, export, "--out", tmp_path / "out", "--n", 1, "--class", "c")
    assert code == 2 and "Fix: one of ['Benign', 'benign'] (or its index 0..1)" in err
    code, _, err = _sample(capsys, _hand_export(tmp_path / "g2", 2, CLASSES), "--out", tmp_path / "out", "--class", "c")
    assert "(or its index 0..1, or its folder name, one of ['malignant', 'normal_benign'])" in err
    assert not (tmp_path / "out").exists()


# 3. augment.synthetic naming a GAN run folder

def _run(folder: Path) -> Path:
    folder.mkdir()
    (folder / "searchlab.json").write_text("{}")
    return folder


def test_synthetic_naming_a_run_folder_says_so_with_the_export_or_the_commands(tmp_path, capsys):
    run = _run(tmp_path / "run_gan")
    rule, fix = generator_mismatch(run, (1, 16, 16), ("a", "b"))
    assert rule == f"{run} is a run folder (it holds searchlab.json), not an export, and holds no export"
    assert fix == (f"export it first, searchlab export {run} --out {run / 'best'}, then augment.synthetic: "
                   f"{run / 'best'}")
    _hand_export(run / "best", 2, ["a", "b"])
    rule, fix = generator_mismatch(run, (1, 16, 16), ("a", "b"))
    assert rule == f"{run} is a run folder (it holds searchlab.json), not an export"
    assert fix == f"give its export, augment.synthetic: {run / 'best'}"
    code, _, err = _sample(capsys, run, "--out", tmp_path / "out")   # sample says the same of it
    assert code == 2 and f"{rule}. Fix: give its export, searchlab sample {run / 'best'} --out DIR" in err
    plain = tmp_path / "plain"
    plain.mkdir()
    rule, _ = generator_mismatch(plain, (1, 16, 16), ("a", "b"))
    assert rule == f"{plain} is not a generator export (no config.json)"
    (run / "best" / "config.json").write_text(json.dumps({"model": {}}))   # a classifier run's export
    assert "a classifier" in generator_mismatch(run, (1, 16, 16), ("a", "b"))[0]
