"""Audit of `searchlab sample --out`: a draw went into a folder inside a data set's class folder (read as a
patient of that class) and through a symlink into a new class folder of a data set, an empty --out (an unset
$OUT) drew into the current folder, and a class named '..' wrote its images beside --out instead of in it."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from searchlab.export.sample import RECORD
from test_sample import _hand_export, _sample
from test_synthetic_data import _real_folder


def _tree(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*"))


def _refused(capsys, export: Path, out: Path | str, data: Path, *rules: str) -> None:
    before = _tree(data)
    code, _, err = _sample(capsys, export, "--out", out, "--n", 1)
    assert code == 2 and err.count("\n") == 1 and "nothing was written" in err and f"--out {out}" in err, err
    assert "Fix: name a folder of its own for the images" in err
    for rule in rules:
        assert rule in err, err
    assert _tree(data) == before


# 1. --out inside a data set's class folder, or led into one by a symlink

@pytest.mark.parametrize("inside", ["a/gen", "a/gen/deeper", "train/a/gen", "train/new"])
def test_out_inside_a_class_folder_of_a_data_set_is_refused(tmp_path, capsys, inside):
    export = _hand_export(tmp_path / "gen", 2, ["a", "b"])
    data = _real_folder(tmp_path / "fd" / "train") if inside.startswith("train/") else _real_folder(tmp_path / "fd")
    root = tmp_path / "fd"
    class_folder = root / "/".join(inside.split("/")[:2 if inside.startswith("train/") else 1])
    said = "is" if class_folder == root / inside else f"is inside {class_folder},"   # train/new: a new class
    _refused(capsys, export, root / inside, root, f"{said} a class folder of a data set: {data} holds the class "
             "folders a, b of images that no `searchlab sample` draw wrote")


def test_out_led_by_a_symlink_into_a_data_set_is_refused(tmp_path, capsys):
    export = _hand_export(tmp_path / "gen", 2, ["a", "b"])
    data = _real_folder(tmp_path / "fd")
    (tmp_path / "out_link").symlink_to(data / "newclass", target_is_directory=True)
    _refused(capsys, export, tmp_path / "out_link", data, f"leads through a symlink to {data / 'newclass'}, which "
             f"is a class folder of a data set: {data} holds the class folders a, b")
    (tmp_path / "up_link").symlink_to(data / "a", target_is_directory=True)   # and into a class folder's patient
    _refused(capsys, export, tmp_path / "up_link" / "gen", data, f"is inside {data / 'a'}, a class folder")
    assert not (data / "newclass").exists()


def test_a_data_set_of_patient_sub_folders_is_known_by_them(tmp_path, capsys):
    """benign/p1/*.png, malignant/p2/*.png: the loader reads each class's sub-folders as its patients, but a new
    class beside them was drawn into, its images joining the set as a class of their own."""
    export = _hand_export(tmp_path / "gen", 2, ["a", "b"])
    data = tmp_path / "us"
    for name, patient in (("benign", "p1"), ("malignant", "p2")):
        (data / name / patient).mkdir(parents=True)
        Image.new("L", (8, 8)).save(data / name / patient / "scan.png")
    _refused(capsys, export, data / "new_class", data, f"is a class folder of a data set: {data} holds the class "
             "folders benign, malignant")


def test_a_project_folder_of_scans_and_a_csv_sets_images_is_drawn_into(tmp_path, capsys):
    """proj/scans/*.png beside proj/mydata/images/*.png (a CSV data set's image folder) was refused as a data set
    of two classes, one of them by patient sub-folders: one folder of each kind is no data set."""
    export = _hand_export(tmp_path / "gen", 2, ["a", "b"])
    for folder in ("proj/scans", "proj/mydata/images"):
        (tmp_path / folder).mkdir(parents=True)
        Image.new("L", (8, 8)).save(tmp_path / folder / "scan.png")
    code, _, err = _sample(capsys, export, "--out", tmp_path / "proj" / "synthetic", "--n", 1, "--seed", 5)
    assert code == 0, err


def test_ordinary_places_beside_data_sets_and_image_folders_are_still_drawn_into(tmp_path, capsys, monkeypatch):
    export = _hand_export(tmp_path / "gen", 2, ["a", "b"])
    project = tmp_path / "project"
    _real_folder(project / "data")
    (project / "runs").mkdir()
    _real_folder(tmp_path / "scratch")   # /tmp-like: two folders of images beside scratch files' folder
    (tmp_path / "scratch" / "work").mkdir()
    monkeypatch.chdir(project)
    for out in ("synthetic", project / "runs_beside", project / "fresh" / "deep", tmp_path / "scratch" / "work" / "x"):
        code, _, err = _sample(capsys, export, "--out", out, "--n", 1, "--seed", 5)
        assert code == 0, err
        assert (Path(out) / "a" / "synthetic_s5_00000.png").is_file()


# 2. an empty --out

@pytest.mark.parametrize("empty", ["", " "])
def test_an_empty_out_is_refused_and_nothing_is_written_in_the_current_folder(tmp_path, capsys, monkeypatch, empty):
    export = _hand_export(tmp_path / "gen", 2, ["a", "b"])
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    code, _, err = _sample(capsys, export, "--out", empty, "--n", 1)
    assert code == 2 and err.count("\n") == 1, err
    assert f"--out is empty ({empty!r})" in err and "would write into the current folder" in err
    assert "nothing was written" in err and "Fix: name a folder of its own, e.g. --out synthetic/" in err
    assert list((tmp_path / "here").iterdir()) == []


# 3. class names as folder names

def test_class_names_of_dots_are_written_inside_out_under_their_index(tmp_path, capsys):
    export = _hand_export(tmp_path / "gen", 4, ["..", ".", ".hidden", "b"])
    base = tmp_path / "base"
    base.mkdir()
    code, said, err = _sample(capsys, export, "--out", base / "out", "--n", 1, "--seed", 2)
    assert code == 0, err
    assert "(1 .., 1 ., 1 .hidden, 1 b)" in said
    assert [p.name for p in base.iterdir()] == ["out"]   # nothing beside --out
    assert {p.name for p in (base / "out").iterdir()} == {RECORD, "_hidden", "b", "class_0", "class_1"}
    [draw] = json.loads((base / "out" / RECORD).read_text())["draws"]
    assert "class_0/synthetic_s2_00000.png" in draw["files"] and draw["images"][".."] == 1


def test_a_class_named_as_another_ones_folder_is_refused(tmp_path, capsys):
    export = _hand_export(tmp_path / "gen", 2, ["..", "class_0"])
    code, _, err = _sample(capsys, export, "--out", tmp_path / "out", "--n", 1)
    assert code == 2 and f"the classes '..' and 'class_0' would both be written to {tmp_path / 'out' / 'class_0'}" \
        in err
    assert not (tmp_path / "out").exists()


def test_a_file_where_a_class_folder_goes_is_said_so(tmp_path, capsys):
    """It was a bare "fc/a: File exists. Fix: check that the path exists"."""
    export = _hand_export(tmp_path / "gen", 2, ["a", "b"])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a").write_text("notes")
    code, _, err = _sample(capsys, export, "--out", tmp_path / "out", "--n", 1)
    assert code == 2 and f"{tmp_path / 'out' / 'a'} is a file, where the images of class 'a' go" in err, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a"]
