"""Image files as data: the decoded-image cache and its limit, 12-bit values in 16-bit files, patient
sub-folders kept in one split (small generated PNGs)."""
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
from searchlab.data.image_cache import TMP_PREFIX
from searchlab.errors import DataError
from test_data import COLORS, _fresh_cache, class_folder, png  # noqa: F401  (_fresh_cache: autouse fixture)


# ---------------------------------------------------------------- the decoded-image cache
def _cached_folder(tmp_path):
    root = class_folder(tmp_path / "imgs", {"a": 6, "b": 6})
    return root, FolderData(source="folder", path=root, image_size=8, channels=3, val_fraction=0.25,
                            test_fraction=0.25)


def _no_decoding(monkeypatch):
    import searchlab.data.common as common

    def refuse(*args):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(common, "read_image", refuse)


def test_a_folder_is_decoded_once_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCHLAB_CACHE", str(tmp_path / "cache"))
    root, cfg = _cached_folder(tmp_path)
    first = load_dataset(cfg, splits=("train", "val"))
    assert len(list((tmp_path / "cache" / "images").glob("*.npy"))) == 2          # one per split read
    clear_cache()
    with monkeypatch.context() as patch:
        _no_decoding(patch)
        again = load_dataset(cfg, splits=("train", "val"))
    for split in ("train", "val"):
        assert torch.equal(first.splits[split].images, again.splits[split].images)
        assert torch.equal(first.splits[split].labels, again.splits[split].labels)


def test_a_changed_file_or_setting_is_decoded_again(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCHLAB_CACHE", str(tmp_path / "cache"))
    root, cfg = _cached_folder(tmp_path)
    before = load_dataset(cfg, splits=("train",)).splits["train"]
    changed = before.images[0, 0, 0, 0].item() != 7
    target = load_dataset(cfg, splits=("train",)).extra["files"]["train"][0]
    Image.new("RGB", (40, 30), (7, 7, 7)).save(target)
    os.utime(target, ns=(1, 1))   # a new size and modification time, whatever the clock's resolution
    clear_cache()
    after = load_dataset(cfg, splits=("train",)).splits["train"]
    assert changed and after.images[0, 0, 0, 0].item() == 7 and torch.equal(after.images[1:], before.images[1:])
    clear_cache()
    padded = load_dataset(cfg.model_copy(update={"fit": "pad"}), splits=("train",)).splits["train"]
    assert (padded.images[:, :, 0] == 0).all()                                     # 40x30 padded: black top row


def test_a_file_replaced_with_its_size_and_modification_time_kept_is_decoded_again(tmp_path, monkeypatch):
    """cp -p and rsync -t keep a file's modification time; the same size is likely for same-shape images."""
    monkeypatch.setenv("SEARCHLAB_CACHE", str(tmp_path / "cache"))
    root, cfg = _cached_folder(tmp_path)
    target = load_dataset(cfg, splits=("train",)).extra["files"]["train"][0]
    Image.new("L", (12, 12), 40).save(target, format="PNG", compress_level=0)   # stored: size set by the shape
    kept = os.stat(target)
    clear_cache()
    assert load_dataset(cfg, splits=("train",)).splits["train"].images[0].float().mean().item() == 40
    Image.new("L", (12, 12), 200).save(target, format="PNG", compress_level=0)
    os.utime(target, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    assert os.stat(target).st_size == kept.st_size and os.stat(target).st_mtime_ns == kept.st_mtime_ns
    clear_cache()
    assert load_dataset(cfg, splits=("train",)).splits["train"].images[0].float().mean().item() == 200


def test_a_broken_or_unwritable_cache_only_costs_decoding(tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCHLAB_CACHE", str(tmp_path / "cache"))
    root, cfg = _cached_folder(tmp_path)
    good = load_dataset(cfg, splits=("train",)).splits["train"].images
    for entry in (tmp_path / "cache" / "images").glob("*.npy"):
        entry.write_bytes(b"not an array")
    clear_cache()
    assert torch.equal(load_dataset(cfg, splits=("train",)).splits["train"].images, good)
    clear_cache()
    with monkeypatch.context() as patch:   # and the broken entry was replaced by a good one
        _no_decoding(patch)
        assert torch.equal(load_dataset(cfg, splits=("train",)).splits["train"].images, good)
    (tmp_path / "file").write_text("x")
    for setting in (str(tmp_path / "file"), "off"):   # a cache folder that cannot exist; caching off
        monkeypatch.setenv("SEARCHLAB_CACHE", setting)
        clear_cache()
        assert torch.equal(load_dataset(cfg, splits=("train",)).splits["train"].images, good)
    assert not (tmp_path / "off").exists()


def _entries(cache: Path) -> set[str]:
    return {path.name for path in (cache / "images").glob("*.npy")}


def test_the_cache_is_held_under_its_limit_least_recently_used_first(tmp_path, monkeypatch):
    """Editing a data set leaves its old entries behind: without a limit the folder only grows."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("SEARCHLAB_CACHE", str(cache))
    configs = []
    for name, counts in (("one", {"a": 4, "b": 4}), ("two", {"a": 5, "b": 4}), ("three", {"a": 4, "b": 5})):
        root = class_folder(tmp_path / name, counts)
        configs.append(FolderData(source="folder", path=root, image_size=8, channels=3, val_fraction=0.25))
    one, two, three = configs
    read = {}
    for name, cfg in (("one", one), ("two", two)):
        clear_cache()
        before = _entries(cache)
        load_dataset(cfg, splits=("train",))
        (read[name],) = _entries(cache) - before
    for offset, name in enumerate(("one", "two")):   # one written first, then two: clear-cut, whatever the clock
        os.utime(cache / "images" / read[name], ns=(10**9 * (1 + offset),) * 2)
    sizes = {name: (cache / "images" / entry).stat().st_size for name, entry in read.items()}
    monkeypatch.setenv("SEARCHLAB_CACHE_LIMIT", f"{sizes['one'] + sizes['two'] + 10}B")   # two fit, not three
    clear_cache()
    load_dataset(one, splits=("train",))           # a read: `one` becomes the most recently used
    clear_cache()
    load_dataset(three, splits=("train",))         # a third entry: the least recently used (two) goes
    assert read["one"] in _entries(cache) and read["two"] not in _entries(cache) and len(_entries(cache)) == 2
    clear_cache()
    with monkeypatch.context() as patch:           # and `one` is still read from the cache
        _no_decoding(patch)
        load_dataset(one, splits=("train",))


def test_clearing_the_cache_deletes_its_own_entries_only(tmp_path, monkeypatch):
    """`searchlab cache --clear` (and eviction) deleted any .npy or old .tmp file found in the folder."""
    from searchlab.data.image_cache import clear_image_cache

    cache = tmp_path / "cache"
    monkeypatch.setenv("SEARCHLAB_CACHE", str(cache))
    _, cfg = _cached_folder(tmp_path)
    load_dataset(cfg, splits=("train",))
    mine = [cache / "images" / "my_masks.npy", cache / "images" / "notes.tmp"]
    for path in mine:
        path.write_bytes(b"user data")
        os.utime(path, ns=(10**9,) * 2)   # old enough to pass for a killed writer's leftover
    assert "removed 1 entries" in clear_image_cache()
    assert _entries(cache) == {"my_masks.npy"} and all(path.read_bytes() == b"user data" for path in mine)


def test_a_split_bigger_than_the_limit_is_not_stored_and_a_bad_limit_is_named(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("SEARCHLAB_CACHE", str(cache))
    root, cfg = _cached_folder(tmp_path)
    monkeypatch.setenv("SEARCHLAB_CACHE_LIMIT", "100B")
    images = load_dataset(cfg, splits=("train",)).splits["train"].images
    assert 100 < images.numel() < 1536 and _entries(cache) == set()   # stored, it would fit in 1.5KiB
    (cache / "images").mkdir(parents=True, exist_ok=True)
    leftover = cache / "images" / f"{TMP_PREFIX}killed-writer.tmp"
    leftover.write_bytes(b"x")
    os.utime(leftover, ns=(1, 1))
    monkeypatch.setenv("SEARCHLAB_CACHE_LIMIT", "1.5KiB")
    clear_cache()
    load_dataset(cfg, splits=("train",))
    assert len(_entries(cache)) == 1 and not leftover.exists()
    for bad in ("20 gigs", "-1GB", "GB"):
        monkeypatch.setenv("SEARCHLAB_CACHE_LIMIT", bad)
        clear_cache()
        with pytest.raises(DataError, match=rf"SEARCHLAB_CACHE_LIMIT: must be a size .*got '{bad}'.*Fix: "):
            load_dataset(cfg, splits=("train",))


def test_searchlab_cache_shows_and_clears_the_cache(tmp_path, monkeypatch, capsys):
    from searchlab.cli import main

    cache = tmp_path / "cache"
    monkeypatch.setenv("SEARCHLAB_CACHE", str(cache))
    monkeypatch.setenv("SEARCHLAB_CACHE_LIMIT", "2GB")
    root, cfg = _cached_folder(tmp_path)
    load_dataset(cfg, splits=("train", "val"))
    size = sum(path.stat().st_size for path in (cache / "images").glob("*.npy"))
    assert main(["cache"]) == 0
    assert capsys.readouterr().out == (f"image cache: {cache / 'images'}\n2 entries, {size / 1000:.1f} KB of the "
                                       "2.0 GB limit (SEARCHLAB_CACHE_LIMIT; default 20GB)\n")
    assert main(["cache", "--clear"]) == 0
    assert capsys.readouterr().out == f"image cache: {cache / 'images'}\nremoved 2 entries, {size / 1000:.1f} KB\n"
    assert _entries(cache) == set()
    monkeypatch.setenv("SEARCHLAB_CACHE", "off")
    assert main(["cache", "--clear"]) == 0 and "off" in capsys.readouterr().out


def test_searchlab_cache_answers_without_importing_torch(tmp_path):
    """It only lists files: importing torch and every loader first made it take ~5 s."""
    import subprocess
    import sys

    probe = "import sys; from searchlab.cli import main; main(['cache']); print('torch' in sys.modules)"
    env = dict(os.environ, SEARCHLAB_CACHE=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[-1] == "False", out


def test_run_refuses_a_bad_cache_limit_before_any_trial(write_study, tmp_path, monkeypatch, capsys):
    from searchlab.cli import main

    study = write_study("name: tiny\nspace: {model: {kind: cnn, depth: 1, width: {choice: [4, 8]}}}\n"
                        "budget: {n_trials: 1, epochs: 1}\n")
    monkeypatch.setenv("SEARCHLAB_CACHE_LIMIT", "lots")
    assert main(["run", str(study), "--no-progress"]) == 2
    assert "SEARCHLAB_CACHE_LIMIT: must be a size" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


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
