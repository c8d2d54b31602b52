"""The decoded-image cache of folder and CSV sets: read once, decoded again when a file or setting changes, held
under its limit, `searchlab cache` (small generated PNGs)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

from searchlab.config.schema import FolderData
from searchlab.data import clear_cache, load_dataset
from searchlab.data.image_cache import TMP_PREFIX
from searchlab.errors import DataError
from test_data import _fresh_cache, class_folder  # noqa: F401  (_fresh_cache: autouse fixture)


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


def test_another_seeds_splits_take_the_rows_cached_for_the_first_and_decode_only_files_never_read(tmp_path,
                                                                                                 monkeypatch):
    """Each split's entry is keyed by its own file list: a new seed (or fraction) draws other splits from the
    same files and decoded the whole set again (25 s for 200 2k-px X-rays, minutes for thousands)."""
    import searchlab.data.common as common
    from searchlab.data.image_cache import clear_image_cache

    cache = tmp_path / "cache"
    monkeypatch.setenv("SEARCHLAB_CACHE", str(cache))
    root, cfg = _cached_folder(tmp_path)
    first = load_dataset(cfg, splits=("train", "val"), seed=0)
    seen = {str(p) for split in ("train", "val") for p in first.extra["files"][split]}
    decoded: list[str] = []
    read_image = common.read_image
    monkeypatch.setattr(common, "read_image", lambda path, decoding: (decoded.append(str(path)),
                                                                      read_image(path, decoding))[1])
    clear_cache()
    again = load_dataset(cfg, splits=("train", "val"), seed=1)
    now = {str(p) for split in ("train", "val") for p in again.extra["files"][split]}
    assert now != seen and decoded and set(decoded) == now - seen   # only the files the first draw left unread
    monkeypatch.setenv("SEARCHLAB_CACHE", "off")
    clear_cache()
    fresh = load_dataset(cfg, splits=("train", "val"), seed=1)
    for split in ("train", "val"):   # the rows taken from other entries are the files' own
        assert torch.equal(again.splits[split].images, fresh.splits[split].images)
    monkeypatch.setenv("SEARCHLAB_CACHE", str(cache))
    assert len(list((cache / "images").glob("*.files.json"))) == 4   # an index beside each entry
    clear_image_cache()
    assert list((cache / "images").iterdir()) == []
