"""What the data messages say of a folder: colour modes by class in a handful of files, patient sub-folders
beside loose images, split folders named in capitals (small generated PNGs)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from searchlab.config.schema import FolderData
from searchlab.data.fingerprint import describe_plan
from searchlab.data.folder_source import plan_folder
from searchlab.errors import DataError
from test_data import COLORS, _fresh_cache, class_folder, png  # noqa: F401  (_fresh_cache: autouse fixture)


def _save(path: Path, mode: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3) if mode == "RGB" else (8, 8), np.uint8), mode).save(path)


def test_a_handful_of_files_of_another_colour_mode_is_listed_but_not_said_to_differ_by_class(tmp_path):
    """A class of 3 images (L 2, RGB 1) beside one of L 3 is no evidence of a format by class: one odd file
    made a share gap over 0.2. From MIN_COMPARED files in each class a real skew is still said."""
    from searchlab.data.formats import mixed_formats_warning

    for cls, modes in (("a", ["L", "L", "RGB"]), ("b", ["L"] * 3)):
        for i, mode in enumerate(modes):
            _save(tmp_path / "few" / cls / f"{i}.png", mode)
    few = mixed_formats_warning(plan_folder(FolderData(source="folder", path=tmp_path / "few", image_size=8)))
    assert few.startswith("data: image files come in 2 colour modes (a: L 2, RGB 1; b: L 3)")
    assert "differ by class" not in few
    for cls, modes in (("a", ["L"] * 6 + ["RGB"] * 4), ("b", ["L"] * 10)):   # 10 each: 40% vs 0% RGB
        for i, mode in enumerate(modes):
            _save(tmp_path / "ten" / cls / f"{i}.png", mode)
    ten = mixed_formats_warning(plan_folder(FolderData(source="folder", path=tmp_path / "ten", image_size=8)))
    assert "The colour modes differ by class" in ten


def test_patient_sub_folders_beside_loose_images_are_counted_apart_not_as_patients(tmp_path):
    """Loose images directly in a class folder are each kept alone: 2 patient sub-folders and 120 loose
    images were said to be `images in 122 groups (patients)`."""
    for cls in ("a", "b"):
        for i in range(60):
            png(tmp_path / "set" / cls / f"{i}.png", COLORS[cls], size=(8, 8))
        for i in range(3):
            png(tmp_path / "set" / cls / f"p_{cls}" / f"{i}.png", COLORS[cls], size=(8, 8))
    said = describe_plan(plan_folder(FolderData(source="folder", path=tmp_path / "set", image_size=8)))
    assert said.endswith("; 2 patient sub-folder(s), each kept in one split and one fold, and 120 loose image(s) "
                         "directly in the class folders"), said
    assert "groups (patients)" not in said


@pytest.mark.parametrize("names, read_as", [
    (("Train", "Val"), "they would be read as class folders, classes 'Train', 'Val'"),
    (("Train", "val"), "beside val/ no split would read them"),
])
def test_split_folders_named_in_capitals_are_refused_with_the_lower_case_names(tmp_path, names, read_as):
    """Train/, Val/ were read as two classes named Train and Val (their class folders as patients), or,
    beside a val/, as a missing train folder; the refusal says split folders are lower-case."""
    for name in names:
        class_folder(tmp_path / name, {"a": 10, "b": 10})
    with pytest.raises(DataError) as err:
        plan_folder(FolderData(source="folder", path=tmp_path, image_size=8))
    said = str(err.value)
    assert said.startswith(f"{tmp_path}: has Train/{', Val/' if 'Val' in names else ''} folder(s), but split "
                           "folders are found only under lower-case names, train/, val/, test/"), said
    assert read_as in said and said.endswith(f"Fix: rename them to train/{', val/' if 'Val' in names else ''}")
