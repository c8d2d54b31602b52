"""Class labels and the data line: a whole-number positive_class where classes are named by numbers, patient
names in several of your own split folders, image files under JPEG's other extensions, and the balanced
sampler's share of a batch with three classes (small generated PNGs, nothing trained)."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from searchlab.config.schema import CsvData, FolderData
from searchlab.data import load_dataset, with_positive_class
from searchlab.data.fingerprint import describe_plan
from searchlab.data.folder_source import patients_in_two_split_folders, plan_folder
from searchlab.data.types import ImageDataset, ImageSplit
from searchlab.errors import ConfigError
from searchlab.tasks.selection_advice import untrainable_class_warning
from test_data import COLORS, _fresh_cache, png  # noqa: F401  (_fresh_cache: autouse fixture)


def _two_classes(names: tuple[str, str]) -> ImageDataset:
    split = ImageSplit(images=torch.zeros(4, 1, 4, 4, dtype=torch.uint8), labels=torch.tensor([0, 0, 0, 1]))
    return ImageDataset(splits={"train": split}, class_names=names, kind="binary")


def test_a_whole_number_that_is_also_another_class_name_is_refused_naming_both_readings():
    """Labels 1 (malignant) and 2 (benign): positive_class 1 was read as index 1, class '2', without a word."""
    with pytest.raises(ConfigError) as caught:
        with_positive_class(_two_classes(("1", "2")), 1)
    said = str(caught.value)
    assert said.startswith("data.positive_class: 1 reads two ways here: the class at index 1 (named '2') or the "
                           "class named '1' (at index 0)"), said
    assert "Fix: for the class named '1' write positive_class: \"1\"" in said and "or its index 0" in said
    assert "for the class at index 1 write positive_class: \"2\"" in said


def test_the_two_unambiguous_spellings_choose_their_class():
    data = _two_classes(("1", "2"))
    by_name = with_positive_class(data, "1")
    assert by_name.class_names == ("2", "1") and by_name.splits["train"].labels.tolist() == [1, 1, 1, 0]
    assert with_positive_class(data, 0).class_names == ("2", "1")    # 0 names no class: an index
    assert with_positive_class(data, "2") is data
    assert with_positive_class(_two_classes(("0", "1")), 1).class_names == ("0", "1")   # index 1 is named 1


def test_a_whole_number_past_the_indices_that_names_a_class_is_told_to_be_quoted():
    with pytest.raises(ConfigError, match=r"not a class of this data set.*\(got 2\)\. Fix: write positive_class: "
                                          r"\"2\" \(quoted: a whole number is an index\) for the class named '2'"):
        with_positive_class(_two_classes(("1", "2")), 2)


def test_a_csv_labelled_1_and_2_refuses_positive_class_1_when_loading(tmp_path):
    rows = [f"{i}.png,{1 if i < 6 else 2}" for i in range(20)]
    for i in range(20):
        png(tmp_path / f"{i}.png", size=(8, 8))
    (tmp_path / "set.csv").write_text("file,diagnosis\n" + "\n".join(rows) + "\n")
    cfg = dict(source="csv", path=tmp_path / "set.csv", image_column="file", label_columns=["diagnosis"],
               image_size=8, val_fraction=0.2, test_fraction=0.2)
    with pytest.raises(ConfigError, match="reads two ways"):
        load_dataset(CsvData(**cfg, positive_class=1))
    assert load_dataset(CsvData(**cfg, positive_class="1")).class_names == ("2", "1")


def _own_splits_with_shared_patient_names(root: Path) -> Path:
    for split in ("train", "val", "test"):
        for cls in ("a", "b"):
            for patient in ("p0", "p1"):
                for i in range(2):
                    png(root / split / cls / f"{cls}{patient}" / f"{i}.png", COLORS[cls], size=(8, 8))
            png(root / split / cls / "own" / "0.png", COLORS[cls], size=(8, 8))
            png(root / split / cls / "own" / "1.png", COLORS[cls], size=(8, 8))
    return root


def test_own_split_folders_sharing_patient_names_are_not_said_to_keep_each_in_one_split(tmp_path):
    """The data line said 'each kept in one split' beside the warning naming patients in train, val and test."""
    plan = plan_folder(FolderData(source="folder", path=_own_splits_with_shared_patient_names(tmp_path / "s"),
                                  image_size=8))
    assert patients_in_two_split_folders(plan)   # the warning the line must not contradict
    said = describe_plan(plan)
    assert "each kept in one split" not in said, said
    assert said.endswith("; 15 patient sub-folder(s), counted per split folder, each kept in one fold; but 5 of "
                         "their 5 names are in more than one split folder (see the warning)"), said


def test_own_split_folders_with_patients_in_one_split_each_still_say_so(tmp_path):
    for split in ("train", "val", "test"):
        for cls in ("a", "b"):
            for i in range(2):
                png(tmp_path / "s" / split / cls / f"{split}{cls}" / f"{i}.png", COLORS[cls], size=(8, 8))
    said = describe_plan(plan_folder(FolderData(source="folder", path=tmp_path / "s", image_size=8)))
    assert said.endswith("; 6 patient sub-folder(s), each kept in one split and one fold"), said


def test_jfif_and_jpe_files_are_read_as_jpeg_and_other_files_are_named_with_the_extensions_read(tmp_path):
    for cls in ("a", "b"):
        for i in range(8):
            png(tmp_path / "set" / cls / f"{i}.png", COLORS[cls], size=(8, 8))
    Image.new("RGB", (8, 8), COLORS["a"]).save(tmp_path / "set" / "a" / "web.jfif", "JPEG")
    Image.new("RGB", (8, 8), COLORS["b"]).save(tmp_path / "set" / "b" / "old.jpe", "JPEG")
    Image.new("RGB", (8, 8), COLORS["b"]).save(tmp_path / "set" / "b" / "noext", "PNG")
    cfg = FolderData(source="folder", path=tmp_path / "set", image_size=8, val_fraction=0.2, test_fraction=0.2)
    plan = plan_folder(cfg)
    assert sum(len(files) for files in plan.files.values()) == 18 and plan.skipped == {"(none)": 1}
    said = describe_plan(plan)
    assert ("; left out 1 file(s) without a listed image extension ((none) 1; read are .bmp, .gif, .jfif, .jpe, "
            ".jpeg, .jpg, .png, .tif, .tiff, .webp; an image file without one is read once renamed") in said, said
    assert "not images" not in said
    assert len(load_dataset(cfg, splits=("train", "val", "test")).splits["train"].labels) > 0   # decoded


def _three_classes(train_labels: list[int]) -> ImageDataset:
    def split(labels):
        return ImageSplit(images=torch.zeros(len(labels), 1, 4, 4, dtype=torch.uint8), labels=torch.tensor(labels))

    return ImageDataset(splits={"train": split(train_labels), "val": split([0, 1, 2] * 5)},
                        class_names=("a", "b", "c"), kind="multiclass")


def test_a_single_image_class_of_three_is_said_to_be_a_third_of_a_balanced_batch():
    """It said 'about half of every batch with two classes' of a three-class set."""
    said = untrainable_class_warning(_three_classes([0] * 20 + [1] * 20 + [2]), cross_validated=False)
    assert said and "about 1 in 3 images of every batch" in said and "half" not in said, said
    two = untrainable_class_warning(_three_classes([0] * 20 + [2]), cross_validated=False)   # 'b' has none
    assert two and "about half of every batch" in two, two
