"""Patient sub-folders of a folder set: each patient's images kept in one split and one fold, the splits this
makes warned of when far from their shares, and layouts read as one patient named with their fixes (small
generated PNGs)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from searchlab.config.schema import FolderData
from searchlab.data import load_dataset
from searchlab.data.folder_source import plan_folder
from test_data import COLORS, _fresh_cache, png  # noqa: F401  (_fresh_cache: autouse fixture)
from test_image_files import _mkdir


def test_images_in_patient_sub_folders_are_read_and_each_patient_stays_in_one_split(tmp_path):
    """Class folders holding one sub-folder per patient (the usual clinical export): every image is read, and
    a patient's images never sit in both training and test (that would leak the patient)."""
    for cls in ("a", "b"):
        for patient in range(7):
            for i in range(3):
                png(tmp_path / "set" / cls / f"p{patient}" / f"{i}.png", COLORS[cls])
        png(tmp_path / "set" / cls / "loose.png", COLORS[cls])
    cfg = FolderData(source="folder", path=tmp_path / "set", image_size=8, channels=3, val_fraction=0.15,
                     test_fraction=0.15)
    files = load_dataset(cfg, splits=("train", "val", "test")).extra["files"]
    assert sum(len(f) for f in files.values()) == 2 * (7 * 3 + 1)
    where = {}
    for split, paths in files.items():
        for path in paths:
            patient = Path(path).parent if Path(path).parent.name.startswith("p") else Path(path)
            where.setdefault(patient, set()).add(split)
    assert all(len(splits) == 1 for splits in where.values())
    for split, paths in files.items():                                   # every split has both classes
        assert {Path(p).relative_to(tmp_path / "set").parts[0] for p in paths} == {"a", "b"}, split
    from searchlab.data.common import stratified_split

    labels = [0] * 12 + [1] * 9                                          # one image per group: the split as before
    plain = stratified_split(labels, {"val": 0.2, "test": 0.2}, 3, "x")
    grouped = stratified_split(labels, {"val": 0.2, "test": 0.2}, 3, "x", groups=[str(i) for i in range(21)])
    assert all(np.array_equal(plain[k], grouped[k]) for k in plain)


def test_a_patient_sub_folder_under_two_class_folders_is_one_patient(tmp_path):
    """benign/p3 and malignant/p3: one patient with a lesion of each class, kept in one split and one fold."""
    from searchlab.tasks.crossval import pool_train_val

    for cls in ("a", "b"):
        for patient in range(8):
            for i in range(3):
                png(tmp_path / "set" / cls / f"p{patient}" / f"{i}.png", COLORS[cls])
        png(tmp_path / "set" / cls / "only" / "0.png", COLORS[cls]) if cls == "a" else None   # one class only
    cfg = FolderData(source="folder", path=tmp_path / "set", image_size=8, val_fraction=0.2, test_fraction=0.2)
    data = load_dataset(cfg, splits=("train", "val", "test"))
    where: dict[str, set[str]] = {}
    for split, paths in data.extra["files"].items():
        for path in paths:
            where.setdefault(Path(path).parent.name, set()).add(split)
    assert len(where) == 9 and all(len(splits) == 1 for splits in where.values()), where
    assert len(set(pool_train_val(data).groups)) == sum(1 for splits in where.values() if splits != {"test"})
    # a moved copy of the folder has the same patients (their folders are named relative to it), not other ones
    from searchlab.data import data_fingerprint
    from searchlab.data.fingerprint import moved_members

    shutil.copytree(tmp_path / "set", tmp_path / "moved")
    before = data_fingerprint(cfg)
    assert "grouping" in before and moved_members(before, data_fingerprint(cfg.model_copy(
        update={"path": tmp_path / "moved"}))) is None
    shutil.move(tmp_path / "moved" / "b" / "p1", tmp_path / "moved" / "b" / "p2" / "p1")   # p1's b images: p2's
    assert "patient groups changed" in moved_members(before, data_fingerprint(cfg.model_copy(
        update={"path": tmp_path / "moved"})))
    # one more image of a patient is a changed count, not a regrouping (which it was said to be)
    shutil.copytree(tmp_path / "set", tmp_path / "grown")
    png(tmp_path / "grown" / "b" / "p1" / "extra.png", COLORS["b"])
    said = moved_members(before, data_fingerprint(cfg.model_copy(update={"path": tmp_path / "grown"})))
    assert "files then" in said and "patient groups" not in said, said


def test_a_patient_sub_folder_name_in_two_of_your_split_folders_is_warned_of(tmp_path):
    from searchlab.data import data_advice

    for split, patients in {"train": ("p1", "p2", "p3"), "val": ("p4", "p9"), "test": ("p2", "p5", "p9")}.items():
        for cls in ("a", "b"):
            for patient in patients:
                png(tmp_path / "set" / split / cls / f"{patient}{cls}" / "0.png", COLORS[cls])
    png(tmp_path / "set" / "test" / "b" / "p1a" / "0.png", COLORS["b"])   # p1a: train/a and test/b
    cfg = FolderData(source="folder", path=tmp_path / "set", image_size=8)
    [warning] = [text for text in data_advice(cfg) if "patient sub-folder name" in text]   # (and copies: one colour)
    assert warning.startswith(f"{tmp_path / 'set'}: 5 patient sub-folder name(s) in more than one split folder: "
                              "p1a (train/test), p2a (train/test), p2b (train/test), p9a (val/test), p9b (val/test). "
                              "If a name is one patient")
    shutil.rmtree(tmp_path / "set" / "test")
    assert not [text for text in data_advice(cfg) if "patient sub-folder name" in text]


def test_cross_validation_folds_keep_each_patient_in_one_fold(tmp_path):
    """Folds over train+val deal whole patients: a patient trained on and held out in one fold would leak (a
    user found a 70-image patient spread over three 45-image folds). Too few patients of a class are named."""
    from searchlab.tasks.crossval import fold_indices, pool_train_val, units_per_class

    sizes = {"a": [9, 7, 5, 4, 3, 2, 1, 1], "b": [6, 2, 2, 1, 1]}
    for cls, patients in sizes.items():
        for patient, n in enumerate(patients):
            for i in range(n):
                png(tmp_path / "set" / cls / f"p{cls}{patient}" / f"{i}.png", COLORS[cls])   # one class each
        png(tmp_path / "set" / cls / "loose.png", COLORS[cls])
    cfg = FolderData(source="folder", path=tmp_path / "set", image_size=8, val_fraction=0.2, test_fraction=0.1)
    data = load_dataset(cfg, splits=("train", "val"))
    pool = pool_train_val(data)
    files = data.extra["files"]["train"] + data.extra["files"]["val"]
    patient = [str(Path(f).parent) if Path(f).parent.name.startswith("p") else f for f in files]
    assert pool.groups is not None and len(set(pool.groups)) == len(set(patient))
    for seed in range(5):
        folds = fold_indices(pool.labels, 3, seed, data.class_names, pool.groups)
        assert sorted(np.concatenate(folds).tolist()) == list(range(len(pool)))
        fold_of = {}
        for f, idx in enumerate(folds):
            for i in idx:
                assert fold_of.setdefault(patient[i], f) == f, f"patient {patient[i]} in two folds"
        assert all(set(pool.labels[idx].tolist()) == {0, 1} for idx in folds)
    counts = units_per_class(pool, 2)
    assert counts.tolist() == [len({patient[i] for i in np.flatnonzero(pool.labels.numpy() == c)}) for c in (0, 1)]
    with pytest.raises(Exception, match=rf"cv_folds=9: class 'b' has only {counts[1]} group\(s\) of images "
                                        r"\(patients: sub-folders or data.group_column, and loose images\)"):
        fold_indices(pool.labels, 9, 0, data.class_names, pool.groups)


def test_a_drawn_split_far_from_its_share_because_patients_stay_whole_is_warned_about(tmp_path):
    from searchlab.data import data_advice, plan_files

    rng = np.random.default_rng(1)
    for patient in range(3):   # every benign patient is a third of the class: no val share of 15% fits
        for i in range(20):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(
                _mkdir(tmp_path / "set" / "train" / "benign" / f"pt{patient}") / f"{i}.png")
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(
            _mkdir(tmp_path / "set" / "train" / "malignant") / f"{i}.png")
    cfg = FolderData(source="folder", path=tmp_path / "set", image_size=8, val_fraction=0.15)
    plan = plan_files(cfg)
    val = len(plan.files["val"])
    [warning] = data_advice(cfg)
    assert warning.startswith("data: patients are kept whole (sub-folders, or data.group_column), so the drawn "
                              "splits missed their shares: "
                              f"val {val} of 72 images ({val / 72:.0%}, val_fraction 0.15)")
    assert data_advice(cfg.model_copy(update={"val_fraction": val / 72})) == []


def test_a_drawn_split_far_from_a_class_share_because_of_a_dominant_patient_is_warned_about(tmp_path):
    from searchlab.data import data_advice, plan_files

    rng = np.random.default_rng(1)
    for i in range(100):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(
            _mkdir(tmp_path / "set" / "benign") / f"{i}.png")
    for patient in range(3):   # each malignant patient is a third of the class: no split of 15% fits
        for i in range(14):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(
                _mkdir(tmp_path / "set" / "malignant" / f"pt{patient}") / f"{i}.png")
    cfg = FolderData(source="folder", path=tmp_path / "set", image_size=8, val_fraction=0.15, test_fraction=0.15)
    plan = plan_files(cfg)
    [warning] = data_advice(cfg)
    for split in ("val", "test"):
        held = int((plan.labels[split] == 1).sum())
        assert held == 14   # every split needs a malignant patient
        assert f"{split} of class 'malignant' 14 of 42 images (33%, {split}_fraction 0.15)" in warning
    assert "class 'benign'" not in warning   # loose images: dealt to their share


def test_one_generic_sub_folder_in_each_class_folder_is_named_as_the_one_patient_with_folder_fixes(tmp_path):
    """`benign/images/*.png`, `malignant/images/*.png` (a common export layout): each sub-folder is read as a
    patient, so a class is one patient and no split can be drawn. The refusal names the sub-folder and the
    fixes a folder has (move the images up, or split folders), not a CSV's keys, nor lower fractions that
    cannot help one patient."""
    from searchlab.errors import DataError

    def layout(root: Path, subs: dict[str, str]) -> FolderData:
        for cls, sub in subs.items():
            for i in range(8):
                png(root / cls / sub / f"{i}.png", COLORS[cls], size=(8, 8))
        return FolderData(source="folder", path=root, image_size=8, val_fraction=0.2, test_fraction=0.2)

    with pytest.raises(DataError) as same:
        plan_folder(layout(tmp_path / "same", {"a": "images", "b": "images"}))
    said = str(same.value)
    assert said.startswith(f"{tmp_path / 'same'}: the sub-folder 'images' of each class folder (a/images, b/images) "
                           "was taken as ONE patient holding all its 16 images")
    assert "cannot give the val, test split(s) any of the 1 patient(s)" in said
    assert said.endswith("Fix: if it is not a patient, move the images up into the class folders (a/*.png, ...); "
                         "or give the splits yourself in train/, val/, test/ folders")
    assert "data.group_column" not in said and "data.split_column" not in said
    with pytest.raises(DataError) as other:
        plan_folder(layout(tmp_path / "other", {"a": "images", "b": "scans"}))
    said = str(other.value)
    assert said.startswith(f"{tmp_path / 'other'}: class 'a' has all its images in one sub-folder, a/images, taken "
                           "as ONE patient holding all of them")
    assert said.endswith("Fix: if it is not a patient, move its images up into a/ (they are then split image by "
                         "image); or give the splits yourself in train/, val/, test/ folders")
    assert "lower the fractions" not in said and "data.group_column" not in said
    # split folders with no val/: val is carved out of train/, and the fix is a val/ folder of one's own
    split = layout(tmp_path / "split" / "train", {"a": "images", "b": "images"})
    png(tmp_path / "split" / "test" / "a" / "0.png", COLORS["a"], size=(8, 8))
    png(tmp_path / "split" / "test" / "b" / "0.png", COLORS["b"], size=(8, 8))
    with pytest.raises(DataError, match=r"cannot give the val split\(s\) any of the 1 patient\(s\)\. .*; or give "
                                        r"the val images yourself in val/ beside train/$"):
        plan_folder(split.model_copy(update={"path": tmp_path / "split"}))
