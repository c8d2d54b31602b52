"""Image files as data: 12-bit values in 16-bit files, colour modes and sizes by class, EXIF orientation, symlinked
folders, unreadable files named with what to do (small generated PNGs); patient sub-folders are in
test_patient_folders.py, the cache in test_image_cache.py."""
from __future__ import annotations

import os
import sys
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
    from searchlab.models.image_files import read_image_file

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

    from searchlab.models.image_files import _sixteen_bit_png, _to_8bit

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

    from searchlab.models.image_files import read_image_file

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
    from searchlab.models.image_files import DECODER, read_input_file

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


def test_a_palette_png_with_transparency_is_read_as_pillow_reads_it_without_its_warning(tmp_path):
    """Many tools save palette PNGs with a transparency table: converting one to L or RGB, Pillow printed
    "PIL/Image.py:1134: UserWarning: Palette images with Transparency ..." from inside itself at every run."""
    import warnings

    from searchlab.models.image_files import read_image_file

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


def test_a_large_scan_decodes_without_pillows_anonymous_bomb_warning(tmp_path):
    """An image over Pillow's warning limit (89 million pixels: whole-slide and stitched scans) printed
    "PIL/Image.py:...: DecompressionBombWarning: ... could be decompression bomb DOS attack" once per run,
    naming no file; the user chose the files and each is downscaled at once. (A subprocess: pytest resets the
    warning filters a module sets.)"""
    import subprocess

    Image.fromarray(np.full((40, 40), 90, np.uint8)).save(tmp_path / "big.png")   # over the limit set below
    code = ("import sys; from pathlib import Path; from PIL import Image; Image.MAX_IMAGE_PIXELS = 1000\n"
            "from searchlab.data.common import read_image; from searchlab.data.types import Decoding\n"
            f"print(read_image(Path({str(tmp_path / 'big.png')!r}), Decoding(size=8, channels=1)).shape)")
    done = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "(1, 8, 8)", done.stderr
    assert "DecompressionBombWarning" not in done.stderr, done.stderr
