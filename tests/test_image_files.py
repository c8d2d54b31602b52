"""Image files as data: 12-bit values in 16-bit files, patient sub-folders kept in one split, colour modes and
sizes by class, EXIF orientation, symlinked folders (small generated PNGs); the cache is in test_image_cache.py."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from searchlab.config.schema import FolderData
from searchlab.data import clear_cache, load_dataset
from searchlab.data.folder_source import plan_folder
from test_data import COLORS, _fresh_cache, png  # noqa: F401  (_fresh_cache: autouse fixture)


# ---------------------------------------------------------------- image files
def test_twelve_bit_values_in_16_bit_files_span_the_range_with_bit_depth_and_are_warned_of_without(tmp_path):
    """X-ray/CT exports often hold 12-bit values in 16-bit PNGs: scaled from 65535 they come out nearly black."""
    from searchlab.data import data_advice

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        for i in range(6):
            pixels = rng.integers(160, 4096, size=(12, 12)).astype(np.uint16)
            (tmp_path / "x" / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(tmp_path / "x" / cls / f"{i}.png")
    cfg = FolderData(source="folder", path=tmp_path / "x", image_size=12, val_fraction=0.2, test_fraction=0.2)
    assert load_dataset(cfg).splits["train"].images.max() <= 16
    [advice] = data_advice(cfg)
    assert advice.startswith("8 of 8 sampled images are 16-bit files whose values stay below 4096") and \
        advice.endswith("Fix: set data.bit_depth to the bits the values use (12 for most X-ray/CT exports)")
    clear_cache()
    twelve = cfg.model_copy(update={"bit_depth": 12})
    bright = load_dataset(twelve).splits["train"].images
    assert bright.max() >= 250 and bright.min() <= 12 and data_advice(twelve) == []
    assert data_advice(cfg.model_copy(update={"bit_depth": 10}))[0].startswith("values up to 409")   # clipping
    [dark] = data_advice(cfg.model_copy(update={"bit_depth": 20}))   # more bits than the files hold: near black
    assert dark.startswith("the sampled files' values reach only 409") and "every image decodes almost black" in dark
    assert "Fix: set data.bit_depth to the bits the values use (12 for values up to 409" in dark \
        and dark.endswith("or remove it for 16-bit data (0..65535)")
    # one class's files full-range, the other's 12-bit: no longer hidden by the full-range files' maximum
    for i in range(6):
        Image.fromarray(rng.integers(0, 65536, size=(12, 12)).astype(np.uint16)).save(tmp_path / "x" / "b" / f"{i}.png")
    [mixed] = data_advice(cfg)
    assert mixed.startswith("4 of 8 sampled 16-bit files have values below 4096") and "others reach" in mixed
    assert "a model can learn which kind of file an image is" in mixed



def _rgb16_png(path: Path, pixels: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG, written by hand: Pillow cannot write one (nor hold one: it reads 8 bits)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width, _ = pixels.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_16_bit_colour_files_that_bit_depth_cannot_scale_are_warned_of(tmp_path):
    """Pillow reads a 16-bit RGB PNG as 8-bit RGB, each value's top 8 bits: 12-bit values decoded almost black,
    with data.bit_depth: 12 as without it, and nothing said."""
    from searchlab.data import data_advice

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        for i in range(5):
            _rgb16_png(tmp_path / "x" / cls / f"{i}.png", rng.integers(160, 4096, size=(12, 12, 3)))
    cfg = FolderData(source="folder", path=tmp_path / "x", image_size=12, channels=3, val_fraction=0.2,
                     test_fraction=0.2)
    assert load_dataset(cfg).splits["train"].images.max() <= 16   # the files are read as the warning says
    [dark] = data_advice(cfg)
    assert dark.startswith("6 of 6 sampled images are 16-bit colour files") and "6 of them have values below 4096 " \
        "(12 bits) and decode almost black" in dark and "to 8-bit colour with the values scaled to 0..255" in dark
    [ignored] = data_advice(cfg.model_copy(update={"bit_depth": 12}))
    assert "data.bit_depth 12 applies to single-channel files only" in ignored
    for cls in ("a", "b"):   # full-range values: the top 8 bits are the 8-bit image, nothing to say
        for i in range(5):
            _rgb16_png(tmp_path / "x" / cls / f"{i}.png", rng.integers(0, 65536, size=(12, 12, 3)))
    assert data_advice(cfg) == []


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


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_sizes_or_colour_modes_that_differ_by_class_are_warned_about(tmp_path):
    """Positives from one scanner, negatives from another: the format is a shortcut the model can learn."""
    from searchlab.data.formats import mixed_formats_warning

    rng = np.random.default_rng(2)

    def save(path: Path, size: int, mode: str) -> None:
        pixels = rng.integers(0, 256, (size, size) + ((3,) if mode == "RGB" else ()), dtype=np.uint8)
        Image.fromarray(pixels, mode).save(_mkdir(path.parent) / path.name)

    for i in range(10):
        save(tmp_path / "skew" / "benign" / f"{i}.png", 16, "L")
        save(tmp_path / "skew" / "malignant" / f"{i}.png", 32 if i < 6 else 16, "RGB" if i < 6 else "L")
        save(tmp_path / "even" / "benign" / f"{i}.png", 32 if i % 2 else 16, "L")
        save(tmp_path / "even" / "malignant" / f"{i}.png", 32 if i % 2 else 16, "L")
        save(tmp_path / "same" / "benign" / f"{i}.png", 16, "L")
        save(tmp_path / "same" / "malignant" / f"{i}.png", 16, "L")
    plans = {name: plan_folder(FolderData(source="folder", path=tmp_path / name, image_size=16))
             for name in ("skew", "even", "same")}
    skew = mixed_formats_warning(plans["skew"])
    assert skew.startswith("data: image files come in 2 sizes (benign: 16x16 10; malignant: 32x32 6, 16x16 4); "
                           "2 colour modes (benign: L 10; malignant: RGB 6, L 4) (sampled headers, per class)")
    assert "The sizes and colour modes differ by class, so the model can learn the file format instead" in skew
    even = mixed_formats_warning(plans["even"])
    assert even.startswith("data: image files come in 2 sizes") and "differ by class" not in even
    assert mixed_formats_warning(plans["same"]) is None


def test_a_colour_mode_or_file_type_of_one_class_shows_through_sizes_that_all_differ(tmp_path):
    """Microscopy: every file its own size; one class's files RGBA PNG, the others' RGB JPEG."""
    from searchlab.data.formats import mixed_formats_warning

    rng = np.random.default_rng(3)
    for i in range(12):
        for name, mode, suffix in (("benign", "RGB", "jpg"), ("carcinoma", "RGBA", "png")):
            pixels = rng.integers(0, 256, (40 + 3 * i + (name == "carcinoma"), 50 + 2 * i, len(mode)), dtype=np.uint8)
            Image.fromarray(pixels, mode).save(_mkdir(tmp_path / "set" / name) / f"{i}.{suffix}")
    warning = mixed_formats_warning(plan_folder(FolderData(source="folder", path=tmp_path / "set", image_size=16)))
    assert warning.startswith("data: image files come in 24 sizes (benign: median 61x56.5; carcinoma: median "
                              "61x57.5); ")
    assert "colour modes (benign: RGB 12; carcinoma: RGBA 12)" in warning
    assert "file types (benign: JPEG 12; carcinoma: PNG 12)" in warning
    assert "The colour modes and file types differ by class" in warning   # the sizes: alike in each class


def test_copied_image_files_are_named_by_kind_and_look_alikes_are_not(tmp_path):
    """A file copied under another label, into another split, or twice into one split is warned about, each
    named with its split and label; BMPs that share their first and last 8 KB but differ in between (what
    the quick first pass compares) are not copies."""
    import shutil

    from searchlab.data import data_advice

    rng = np.random.default_rng(0)
    root = tmp_path / "x"
    for split, n in (("train", 6), ("val", 3), ("test", 3)):
        for cls in ("benign", "malignant"):
            for i in range(n):
                (root / split / cls).mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(root / split / cls / f"{i}.png")
    train = root / "train"
    shutil.copy(train / "benign" / "0.png", root / "test" / "benign" / "leaked.png")
    shutil.copy(train / "benign" / "1.png", train / "malignant" / "relabelled.png")
    shutil.copy(train / "malignant" / "2.png", train / "malignant" / "twice.png")
    border = np.zeros((200, 200), dtype=np.uint8)   # 40 KB of pixels; only rows 90-109 differ
    for name, value in (("look_a.bmp", 10), ("look_b.bmp", 20)):
        middle = border.copy()
        middle[90:110] = value
        Image.fromarray(middle).save(train / "benign" / name)
    cfg = FolderData(source="folder", path=root, image_size=16)

    [warning] = [text for text in data_advice(cfg) if "byte-for-byte" in text]   # (the BMPs' size is another)
    assert warning.startswith(f"data: 3 image file(s) are byte-for-byte copies of another file in {root}: ")
    assert "1 under different labels (train/benign/1.png (train, benign) = train/malignant/relabelled.png " \
        "(train, malignant))" in warning
    assert "1 in more than one split (train/benign/0.png (train, benign) = test/benign/leaked.png " \
        "(test, benign))" in warning
    assert "1 within one split (train/malignant/2.png (train, malignant) = train/malignant/twice.png" in warning
    assert "look_" not in warning and warning.endswith("files of one patient belong in one split")
    for copy in ("test/benign/leaked.png", "train/malignant/relabelled.png", "train/malignant/twice.png"):
        (root / copy).unlink()
    assert not [text for text in data_advice(cfg) if "byte-for-byte" in text]


def test_a_float_image_with_nan_or_inf_pixels_keeps_its_picture(tmp_path):
    """A float TIFF with one NaN (or inf) pixel decoded all black: its range came out NaN."""
    from searchlab.models.standalone import read_image_file

    ramp = np.tile(np.linspace(0.0, 1.0, 16, dtype=np.float32), (16, 1))
    for bad in (np.nan, np.inf, -np.inf):
        pixels = ramp.copy()
        pixels[3, 3] = bad
        Image.fromarray(pixels, mode="F").save(tmp_path / "scan.tif")
        decoded = read_image_file(tmp_path / "scan.tif", 16, 16, 1)[0].numpy()
        assert decoded[0, 0] == 0 and decoded[0, 15] == 255 and decoded[8, 8] == 136   # the ramp, whole (8/15 of 255)
        assert decoded[3, 3] == (255 if bad == np.inf else 0)


def test_a_16_bit_png_opened_in_mode_i_as_pillow_before_10_3_does_is_read_as_16_bit(tmp_path):
    """Old Pillow opens 16-bit PNGs as mode I, which was stretched by each image's range: a 12-bit image came
    out bright on one Pillow and dark on another, and the cache kept whichever decoded first."""
    from PIL import Image

    from searchlab.models.standalone import _sixteen_bit_png, _to_8bit

    values = np.full((4, 4), 4095, dtype=np.uint16)   # 12-bit white: 4095 / 65535 of the 16-bit range
    values[0, 0] = 0
    Image.fromarray(values).save(tmp_path / "x.png")
    with Image.open(tmp_path / "x.png") as new_pillow:
        assert new_pillow.mode == "I;16"
        expected = np.asarray(_to_8bit(new_pillow))
        old_pillow = new_pillow.convert("I")
    assert _sixteen_bit_png(old_pillow, tmp_path / "x.png")
    assert np.array_equal(np.asarray(_to_8bit(old_pillow, sixteen_bit=True)), expected)
    assert expected.max() == round(4095 / 65535 * 255)


def test_an_exif_orientation_is_applied_so_the_image_is_read_upright(tmp_path):
    """A JPEG stored sideways with EXIF orientation 6 was read sideways, unlike how every viewer shows it."""
    from PIL import Image

    from searchlab.models.standalone import read_image_file

    upright = np.zeros((16, 32), dtype=np.uint8)
    upright[:, :8] = 255   # a white band on the left of a wide image
    Image.fromarray(upright).save(tmp_path / "upright.png")
    exif = Image.Exif()
    exif[0x0112] = 6   # stored rotated: a viewer turns it 90 degrees clockwise
    Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90).save(tmp_path / "stored.jpg", exif=exif,
                                                                       quality=100)
    seen = read_image_file(tmp_path / "stored.jpg", 16, 32, 1)
    plain = read_image_file(tmp_path / "upright.png", 16, 32, 1)
    assert (seen.float() - plain.float()).abs().max() < 40   # JPEG's ringing only, not a band moved
    from searchlab.models.standalone import DECODER, read_input_file

    spec = {"height": 16, "width": 32, "channels": 1}   # an export made before the decoder said: as it was trained
    assert torch.equal(read_input_file(tmp_path / "stored.jpg", {"input": {**spec, "decoder": DECODER}}), seen)
    assert (read_input_file(tmp_path / "stored.jpg", {"input": spec}).float() - plain.float()).abs().max() > 200


def test_a_patient_folder_linked_in_and_a_latin_1_file_name_are_read(tmp_path):
    """A symlinked patient folder was skipped without a word (rglob) and a file name that is not UTF-8 ended the
    load in a UnicodeEncodeError (the data fingerprint)."""
    for cls in ("a", "b"):
        for i in range(6):
            png(tmp_path / "elsewhere" / cls / f"{i}.png", COLORS[cls])
            png(tmp_path / "set" / cls / f"own{i}.png", COLORS[cls])
        (tmp_path / "set" / cls / "patient").symlink_to(tmp_path / "elsewhere" / cls, target_is_directory=True)
    png(tmp_path / "set" / "a" / os.fsdecode(b"caf\xe9.png"), COLORS["a"])
    cfg = FolderData(source="folder", path=tmp_path / "set", image_size=8, channels=3, val_fraction=0.2,
                     test_fraction=0.2)
    files = load_dataset(cfg, splits=("train", "val", "test")).extra["files"]
    assert sum(len(f) for f in files.values()) == 2 * 12 + 1


def test_a_link_whose_image_is_gone_and_a_dicom_file_a_csv_lists_are_named_with_what_to_do(tmp_path):
    """A broken link was left out of the data set without a word (and of `predict`'s rows); a .dcm a CSV listed
    said only `UnidentifiedImageError`, where a folder's DICOM files get the advice to convert them."""
    from searchlab.config.schema import CsvData
    from searchlab.data.common import UnreadableImages

    for cls in ("a", "b"):
        for i in range(6):
            png(tmp_path / "set" / cls / f"{i}.png", COLORS[cls])
    (tmp_path / "set" / "a" / "moved.png").symlink_to(tmp_path / "archive" / "moved.png")
    cfg = FolderData(source="folder", path=tmp_path / "set", image_size=8, val_fraction=0.2, test_fraction=0.2)
    with pytest.raises(UnreadableImages) as info:
        load_dataset(cfg, splits=("train", "val", "test"))
    assert f"moved.png: cannot read image (a link to {tmp_path / 'archive' / 'moved.png'}, which does not " \
        "exist" in str(info.value)
    (tmp_path / "set" / "a" / "moved.png").unlink()
    (tmp_path / "set" / "a" / "scan.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)
    rows = "".join(f"set/{cls}/{i}.png,{cls}\n" for cls in ("a", "b") for i in range(6))
    (tmp_path / "l.csv").write_text("path,label\n" + rows + "set/a/scan.dcm,a\n")
    listed = CsvData(source="csv", path=tmp_path / "l.csv", label_columns=("label",), image_size=8,
                     val_fraction=0.2, test_fraction=0.2)
    with pytest.raises(UnreadableImages, match=r"scan.dcm: cannot read image \(DICOM is not read: convert it to "
                       r"16-bit PNG \(e.g. with pydicom\) and set data.bit_depth\)"):
        load_dataset(listed, splits=("train", "val", "test"))


def test_a_long_decode_says_how_far_it_got(tmp_path, monkeypatch, capsys):
    """3,000 X-rays at 2k px decode for about ten minutes on 2 cores, and a run said nothing after its `data:`
    line: users took it for hung."""
    from searchlab.data.common import DecodeProgress

    monkeypatch.setattr(DecodeProgress, "FIRST", 0.0)
    monkeypatch.setattr(DecodeProgress, "EVERY", 3600.0)
    for cls in ("a", "b"):
        for i in range(8):
            png(tmp_path / "set" / cls / f"{i}.png", COLORS[cls])
    cfg = FolderData(source="folder", path=tmp_path / "set", image_size=8, val_fraction=0.25, test_fraction=0.25)
    load_dataset(cfg, splits=("train",))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("data: decoded")]
    assert len(lines) == 1 and lines[0].startswith("data: decoded 1 of 8 images in 0 s, about 0 s to go")


def test_a_decompression_bomb_is_left_to_the_decode_to_name_not_raised_by_the_header_checks(tmp_path, monkeypatch):
    """An image over Pillow's pixel limit (a 13500 px scan) raises DecompressionBombError, no OSError, when
    opened: the 16-bit sampling `predict` and `run` do first and the format-by-class headers passed it on as
    a traceback; they leave it, like any unreadable file, to the decode, which names it as `cannot read`."""
    from searchlab.data import data_advice
    from searchlab.data.common import bit_depth_advice
    from searchlab.data.formats import mixed_formats_warning
    from searchlab.errors import DataError

    for cls in ("a", "b"):
        for i in range(5):
            Image.fromarray(np.full((12, 12), 3000 + i, np.uint16)).save(_mkdir(tmp_path / "set" / cls) / f"{i}.png")
    Image.fromarray(np.full((40, 40), 3000, np.uint16)).save(tmp_path / "set" / "a" / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)   # 40x40 is over twice the limit: a bomb; 12x12 not
    with pytest.raises(Image.DecompressionBombError):
        Image.open(tmp_path / "set" / "a" / "huge.png")
    cfg = FolderData(source="folder", path=tmp_path / "set", image_size=12, val_fraction=0.2, test_fraction=0.2)
    files = sorted((tmp_path / "set").rglob("*.png"))
    assert bit_depth_advice(files, None).startswith("10 of 11 sampled images are 16-bit files")   # the bomb skipped
    assert mixed_formats_warning(plan_folder(cfg)) is None
    assert "sampled images are 16-bit files" in data_advice(cfg)[0]   # a warning, not a traceback
    # the reason says what to do with such an image (it said only "could be decompression bomb DOS attack")
    with pytest.raises(DataError, match=r"huge\.png: cannot read image \(over Pillow's safety limit of 1,000 "
                       r"pixels: downscale it, e\.g\. to 4096 px, or cut it into tiles first\)"):
        load_dataset(cfg)


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


def test_a_palette_png_with_transparency_is_read_as_pillow_reads_it_without_its_warning(tmp_path):
    """Many tools save palette PNGs with a transparency table: converting one to L or RGB, Pillow printed
    "PIL/Image.py:1134: UserWarning: Palette images with Transparency ..." from inside itself at every run."""
    import warnings

    from searchlab.models.standalone import read_image_file

    pixels = np.random.default_rng(0).integers(0, 256, size=(16, 16)).astype(np.uint8)
    Image.fromarray(pixels).convert("P").save(tmp_path / "p.png", transparency=bytes(10))
    for channels, mode in ((1, "L"), (3, "RGB")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")   # any warning fails the test
            read = read_image_file(tmp_path / "p.png", 12, 12, channels).numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            direct = np.array(Image.open(tmp_path / "p.png").convert(mode).resize((12, 12), Image.Resampling.BILINEAR))
        assert np.array_equal(read, direct[None] if channels == 1 else direct.transpose(2, 0, 1))
