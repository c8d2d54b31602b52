"""Data loaders: MedMNIST (real BreastMNIST file), image folders and CSVs (small generated PNGs)."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import medmnist
import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from searchlab.config.schema import FolderData, MedMNISTData
from searchlab.data import clear_cache, load_dataset
from searchlab.data.fingerprint import describe_plan
from searchlab.data.folder_source import plan_folder
from searchlab.errors import ConfigError, DataError


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test sees the files as they are now, not a data set cached by an earlier test."""
    clear_cache()
    yield
    clear_cache()


def breast(root: Path | None, **kw) -> MedMNISTData:
    return MedMNISTData(name="breastmnist", root=root, **kw)


# ---------------------------------------------------------------- medmnist
def test_breastmnist_train_val_shapes_counts_and_names(breastmnist_root):
    ds = load_dataset(breast(breastmnist_root, download=False))
    assert set(ds.splits) == {"train", "val"}
    train, val = ds.splits["train"], ds.splits["val"]
    assert train.images.shape == (546, 1, 28, 28) and train.images.dtype == torch.uint8
    assert val.images.shape == (78, 1, 28, 28)
    assert train.labels.shape == (546,) and train.labels.dtype == torch.int64
    assert torch.bincount(train.labels).tolist() == [147, 399]
    assert len(val) == 78
    assert ds.kind == "binary"
    assert ds.class_names == ("malignant", "normal, benign")
    assert ds.class_names == tuple(medmnist.INFO["breastmnist"]["label"][k] for k in ("0", "1"))
    assert ds.channels == 1 and ds.image_size == (28, 28)
    assert str(breastmnist_root / "breastmnist.npz") in ds.description


def test_test_split_is_never_read_unless_requested(breastmnist_root, monkeypatch):
    npz_cls = type(np.load(breastmnist_root / "breastmnist.npz"))
    read: list[str] = []
    original = npz_cls.__getitem__

    def spy(self, key):
        read.append(key)
        return original(self, key)

    monkeypatch.setattr(npz_cls, "__getitem__", spy)
    ds = load_dataset(breast(breastmnist_root, download=False), splits=("train", "val"))
    assert set(ds.splits) == {"train", "val"}
    assert "train_images" in read and not any(k.startswith("test_") for k in read)

    ds = load_dataset(breast(breastmnist_root, download=False), splits=("test",))
    assert set(ds.splits) == {"test"} and len(ds.splits["test"]) == 156
    assert "test_images" in read


def test_searchlab_data_env_var_is_honoured(breastmnist_root, tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCHLAB_DATA", str(breastmnist_root))
    assert len(load_dataset(breast(None, download=False)).splits["train"]) == 546
    monkeypatch.setenv("SEARCHLAB_DATA", str(tmp_path))          # the cache must not hide the change
    with pytest.raises(DataError, match="SEARCHLAB_DATA") as err:
        load_dataset(breast(None, download=False))
    assert str(tmp_path / "breastmnist.npz") in str(err.value)


def test_relative_root_resolves_against_base_dir(breastmnist_root):
    cfg = breast(Path(breastmnist_root.name), download=False)
    ds = load_dataset(cfg, base_dir=breastmnist_root.parent)
    assert len(ds.splits["val"]) == 78


def test_loading_is_cached(breastmnist_root):
    cfg = breast(breastmnist_root, download=False)
    assert load_dataset(cfg) is load_dataset(cfg)


@pytest.mark.parametrize("size,name", [(28, "breastmnist.npz"), (64, "breastmnist_64.npz")])
def test_missing_file_without_download_names_expected_path(tmp_path, size, name):
    with pytest.raises(DataError) as err:
        load_dataset(breast(tmp_path, size=size, download=False))
    msg = str(err.value)
    assert str(tmp_path / name) in msg and "data.root" in msg and "SEARCHLAB_DATA" in msg


def test_failed_download_explains_where_why_and_fix(tmp_path, monkeypatch):
    def no_network(self):
        raise RuntimeError("Name or service not known\n(offline)")

    monkeypatch.setattr(medmnist.BreastMNIST, "download", no_network)
    root = tmp_path / "typo" / "new_root"   # absent: created for medmnist's downloader, then removed again
    with pytest.raises(DataError) as err:
        load_dataset(breast(root, download=True))
    msg = str(err.value)
    assert str(root / "breastmnist.npz") in msg
    assert "download failed" in msg and "Name or service not known (offline)" in msg
    assert "put breastmnist.npz in" in msg and "SEARCHLAB_DATA" in msg
    assert list(tmp_path.iterdir()) == []   # no empty folders left by a mistyped data.root


def small_breast_npz(root: Path, n_train: int = 5, n_train_labels: int | None = None) -> Path:
    """A tiny file under the breastmnist name (never touch the shared copy in tests that could delete)."""
    imgs = np.zeros((n_train, 28, 28), np.uint8)
    labels = np.zeros((n_train if n_train_labels is None else n_train_labels, 1), np.uint8)
    np.savez(root / "breastmnist.npz", train_images=imgs, train_labels=labels,
             val_images=imgs[:2], val_labels=np.zeros((2, 1), np.uint8))
    return root / "breastmnist.npz"


def test_partial_download_is_removed(tmp_path, monkeypatch):
    def half_then_fail(self):
        (tmp_path / "breastmnist.npz").write_bytes(b"PK partial")
        raise RuntimeError("connection reset")

    monkeypatch.setattr(medmnist.BreastMNIST, "download", half_then_fail)
    with pytest.raises(DataError, match="connection reset"):
        load_dataset(breast(tmp_path, download=True))
    assert not (tmp_path / "breastmnist.npz").exists()


def test_existing_file_is_not_downloaded_again(tmp_path, monkeypatch):
    def boom(self):
        raise AssertionError("download must not be called when the file exists")

    monkeypatch.setattr(medmnist.BreastMNIST, "download", boom)
    path = small_breast_npz(tmp_path)
    assert len(load_dataset(breast(tmp_path, download=True)).splits["train"]) == 5
    assert path.is_file()


def test_corrupt_npz_gives_data_error(tmp_path):
    (tmp_path / "breastmnist.npz").write_bytes(b"this is not a zip file" * 10)
    with pytest.raises(DataError, match="breastmnist.npz: cannot read"):
        load_dataset(breast(tmp_path, download=False))


def test_npz_missing_keys_gives_data_error(tmp_path):
    np.savez(tmp_path / "breastmnist.npz", val_images=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match="train_images"):
        load_dataset(breast(tmp_path, download=False))


def test_label_count_mismatch_gives_data_error(tmp_path):
    small_breast_npz(tmp_path, n_train=5, n_train_labels=4)
    with pytest.raises(DataError) as err:
        load_dataset(breast(tmp_path, download=False))
    msg = str(err.value)
    assert str(tmp_path / "breastmnist.npz") in msg and "'train'" in msg and "5 images" in msg and "4 labels" in msg


def test_unknown_flag_lists_valid_2d_flags():
    with pytest.raises(ConfigError) as err:
        load_dataset(MedMNISTData(name="brestmnist", download=False))
    msg = str(err.value)
    assert "'brestmnist'" in msg and "breastmnist" in msg and "pathmnist" in msg and "3d" not in msg


def test_a_positive_class_by_name_becomes_class_1_with_its_labels(breastmnist_root):
    """BreastMNIST's class 1 is "normal, benign": a malignancy study names malignant as its positive class."""
    plain = load_dataset(breast(breastmnist_root, download=False))
    flipped = load_dataset(breast(breastmnist_root, download=False, positive_class="malignant"))
    assert plain.class_names == ("malignant", "normal, benign") == tuple(reversed(flipped.class_names))
    assert flipped.extra["source_class_names"] == plain.class_names and "source_class_names" not in plain.extra
    for split in ("train", "val"):
        assert torch.equal(flipped.splits[split].labels, 1 - plain.splits[split].labels)
        assert torch.equal(flipped.splits[split].images, plain.splits[split].images)
    same = load_dataset(breast(breastmnist_root, download=False, positive_class=1))
    assert same.class_names == plain.class_names and torch.equal(same.splits["val"].labels, plain.splits["val"].labels)
    with pytest.raises(ConfigError, match=r"data.positive_class: not a class of this data set, whose classes are "
                                          r"\['malignant', 'normal, benign'\] .*\(got 'cancer'\)"):
        load_dataset(breast(breastmnist_root, download=False, positive_class="cancer"))


def test_a_positive_class_is_refused_for_more_than_two_classes(tmp_path):
    root = class_folder(tmp_path / "three", {"a": 5, "b": 5, "c": 5})
    with pytest.raises(ConfigError, match=r"only two-class sets have a positive class; this one is multiclass"):
        load_dataset(FolderData(source="folder", path=root, positive_class="a", val_fraction=0.2, test_fraction=0.2))


def test_multilabel_medmnist_labels_are_float(tmp_path):
    imgs = np.zeros((3, 28, 28, 3), np.uint8)
    lab = np.array([[0, 1] * 7, [1, 0] * 7, [1, 1] * 7], np.uint8)
    np.savez(tmp_path / "chestmnist.npz", train_images=imgs[:, :, :, 0], train_labels=lab)
    ds = load_dataset(MedMNISTData(name="chestmnist", root=tmp_path, download=False), splits=("train",))
    assert ds.kind == "multilabel" and ds.splits["train"].labels.dtype == torch.float32
    assert ds.splits["train"].labels.shape == (3, 14) and len(ds.class_names) == 14


# ---------------------------------------------------------------- helpers for folder / csv
COLORS = {"a": (250, 0, 0), "b": (0, 0, 250), "c": (0, 250, 0)}


def png(path: Path, color=(128, 128, 128), size=(40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def class_folder(root: Path, counts: dict[str, int]) -> Path:
    for cls, n in counts.items():
        for i in range(n):
            png(root / cls / f"{i:03d}.png", COLORS[cls])
    return root


def red_is_label_a(split) -> None:
    """Class 'a' images are red, class 'b' blue: proves each image kept its own label.

    Channel 0 is 250 vs 0 in RGB and 75 vs 28 in grayscale (L = .299 R + .587 G + .114 B).
    """
    first = split.images[:, 0].float().mean(dim=(1, 2))
    assert torch.equal(first > 50, split.labels == 0)


# ---------------------------------------------------------------- folder
def test_folder_class_layout_is_stratified_deterministic_and_resized(tmp_path):
    root = class_folder(tmp_path / "imgs", {"a": 20, "b": 10})
    cfg = FolderData(source="folder", path=root, image_size=16, channels=3)
    ds = load_dataset(cfg, splits=("train", "val", "test"), seed=1)
    assert ds.class_names == ("a", "b") and ds.kind == "binary"
    counts = {s: torch.bincount(sp.labels, minlength=2).tolist() for s, sp in ds.splits.items()}
    assert counts == {"train": [14, 6], "val": [3, 2], "test": [3, 2]}
    files = ds.extra["files"]
    assert len(set(files["train"]) | set(files["val"]) | set(files["test"])) == 30
    for split in ds.splits.values():
        assert split.images.shape[1:] == (3, 16, 16) and split.images.dtype == torch.uint8
        red_is_label_a(split)

    clear_cache()
    again = load_dataset(cfg, splits=("train", "val", "test"), seed=1)
    assert again.extra["files"] == files
    other = load_dataset(cfg, splits=("train", "val", "test"), seed=2)
    assert other.extra["files"]["val"] != files["val"]


def test_folder_grayscale_channel(tmp_path):
    root = class_folder(tmp_path, {"a": 4, "b": 4})
    ds = load_dataset(FolderData(source="folder", path=root, image_size=8, channels=1,
                                 val_fraction=0.25, test_fraction=0.25))
    assert ds.splits["train"].images.shape == (4, 1, 8, 8)
    assert set(ds.splits["val"].images.unique().tolist()) == {28, 75}    # L of pure blue / red


def test_folder_split_layout_uses_given_splits_and_skips_test(tmp_path):
    for split, n in (("train", 6), ("val", 3)):
        class_folder(tmp_path / split, {"a": n, "b": n, "c": n})
    (tmp_path / "test" / "a").mkdir(parents=True)
    (tmp_path / "test" / "a" / "x.png").write_bytes(b"junk")         # read only if test is requested
    cfg = FolderData(source="folder", path=Path(tmp_path.name), image_size=12)
    ds = load_dataset(cfg, base_dir=tmp_path.parent)
    assert ds.kind == "multiclass" and ds.class_names == ("a", "b", "c") and ds.extra["layout"] == "splits"
    assert torch.bincount(ds.splits["train"].labels).tolist() == [6, 6, 6]
    assert torch.bincount(ds.splits["val"].labels).tolist() == [3, 3, 3]
    with pytest.raises(DataError, match="x.png"):
        load_dataset(cfg, splits=("test",), base_dir=tmp_path.parent)


def test_folder_split_layout_without_val_carves_it_from_train(tmp_path):
    class_folder(tmp_path / "train", {"a": 20, "b": 10})
    ds = load_dataset(FolderData(source="folder", path=tmp_path, val_fraction=0.2), seed=3)
    assert torch.bincount(ds.splits["val"].labels).tolist() == [4, 2]
    assert torch.bincount(ds.splits["train"].labels).tolist() == [16, 8]
    red_is_label_a(ds.splits["val"])


def test_folder_split_layout_draws_test_from_train_only_when_test_fraction_is_written(tmp_path):
    class_folder(tmp_path / "train", {"a": 20, "b": 10})
    assert "test" not in plan_folder(FolderData(source="folder", path=tmp_path)).files   # the default: no test
    plan = plan_folder(FolderData(source="folder", path=tmp_path, val_fraction=0.2, test_fraction=0.2), seed=3)
    assert [len(plan.files[s]) for s in ("train", "val", "test")] == [18, 6, 6]


def test_class_folders_beside_split_folders_are_refused_and_loose_images_counted(tmp_path):
    class_folder(tmp_path / "train", {"a": 6, "b": 6})
    class_folder(tmp_path / "val", {"a": 3, "b": 3})
    class_folder(tmp_path, {"c": 4})                     # a third class, left where the split layout never reads
    _folder_error(tmp_path, "has train/val split folder.*and also c beside them, which no split would read")
    shutil.rmtree(tmp_path / "c")
    png(tmp_path / "stray.png")
    png(tmp_path / "train" / "stray.png")   # beside the class folders of a split: in no class either
    png(tmp_path / "val" / "stray.png")
    assert "left out 3 image(s) beside the class folders" in describe_plan(plan_folder(
        FolderData(source="folder", path=tmp_path)))


def test_fractions_that_leave_nothing_to_train_on_are_refused():
    with pytest.raises(ValidationError, match=r"val_fraction \(0.5\) \+ test_fraction \(0.6\) leave no images"):
        FolderData(source="folder", path=Path("x"), val_fraction=0.5, test_fraction=0.6)


def _folder_error(path: Path, match: str) -> None:
    with pytest.raises(DataError, match=match) as err:
        load_dataset(FolderData(source="folder", path=path))
    assert str(path) in str(err.value)


def test_folder_errors(tmp_path):
    _folder_error(tmp_path / "nope", "not found")
    (tmp_path / "empty").mkdir()
    _folder_error(tmp_path / "empty", "no class folders")
    _folder_error(png(tmp_path / "one.png"), r"is a file, not a folder \(data.path of source: folder\)")
    _folder_error(class_folder(tmp_path / "one", {"a": 5}), "only one class")
    no_imgs = class_folder(tmp_path / "noimg", {"a": 5})
    (no_imgs / "b").mkdir()
    (no_imgs / "b" / "notes.txt").write_text("x")
    _folder_error(no_imgs, "holds no images")
    bad = class_folder(tmp_path / "bad", {"a": 10, "b": 10})
    (bad / "b" / "zz_broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="zz_broken.png: cannot read image"):
        load_dataset(FolderData(source="folder", path=bad, val_fraction=0.5, test_fraction=0.4), seed=0,
                     splits=("train", "val", "test"))
    truncated = (bad / "a" / "000.png").read_bytes()[:60]
    for i in range(12):                                 # several broken files: all named at once, not one per run
        (bad / "a" / f"broken{i:02d}.png").write_bytes(truncated)
    clear_cache()
    with pytest.raises(DataError) as info:
        load_dataset(FolderData(source="folder", path=bad, val_fraction=0.1, test_fraction=0.1), seed=0)
    message = str(info.value)
    assert message.startswith("12 of ") and "image files cannot be read:\n  " in message
    assert message.count(": cannot read image (") == 10 and "... and 2 more" in message
    assert message.endswith("Fix: replace or remove these files")
    _folder_error(class_folder(tmp_path / "few", {"a": 10, "b": 2}), "class 'b' has 2 image")
    class_folder(tmp_path / "novtrain" / "val", {"a": 2, "b": 2})
    _folder_error(tmp_path / "novtrain", "no train folder")


def _half_black_half_white(path: Path, size=(40, 20)) -> Path:
    image = Image.new("L", size, 0)
    image.paste(255, (size[0] // 2, 0, size[0], size[1]))
    image.save(path)
    return path


@pytest.mark.parametrize("fit", ["stretch", "pad", "crop"])
def test_a_wide_image_is_stretched_padded_or_cropped(tmp_path, fit):
    from searchlab.data.common import read_image
    from searchlab.data.types import Decoding

    path = _half_black_half_white(tmp_path / "wide.png")
    got = read_image(path, Decoding(20, 1, fit))[0].astype(int)
    if fit == "stretch":   # the whole 40x20 squeezed into 20x20: what searchlab always did
        expected = np.asarray(Image.open(path).resize((20, 20), Image.Resampling.BILINEAR), dtype=int)
        assert np.array_equal(got, expected)
    elif fit == "pad":     # 20x10 in the middle, black bands above and below
        assert (got[:5] == 0).all() and (got[15:] == 0).all()
        assert (got[5:15, :9] == 0).all() and (got[5:15, 11:] == 255).all()
    else:                  # height fits at scale 1: the middle 20 columns, 10 black then 10 white
        assert (got[:, :10] == 0).all() and (got[:, 10:] == 255).all()


def test_an_unknown_fit_is_refused_naming_the_choices(tmp_path):
    with pytest.raises(ValidationError, match="'stretch', 'pad' or 'crop'"):
        FolderData(source="folder", path=tmp_path, fit="letterbox")


def test_a_medmnist_root_naming_the_file_itself_is_refused_with_its_folder(breastmnist_root):
    from searchlab.data.medmnist_source import default_root

    with pytest.raises(ConfigError, match=r"data.root is the folder that holds the .npz file, not the file .*Fix: "
                                          r"data.root: " + re.escape(str(breastmnist_root))):
        default_root(None, breastmnist_root / "breastmnist.npz")
    assert default_root(None, breastmnist_root) == breastmnist_root


def test_a_study_of_ones_own_folder_leaves_the_home_folder_alone(tmp_path):
    """Importing medmnist makes ~/.medmnist: every run of a folder study made it (and a read-only home turned
    that into a warning on each run)."""
    import os
    import subprocess
    import sys

    for label in ("a", "b"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(np.full((8, 8), 15 * i + (100 if label == "b" else 0), np.uint8)).save(
                tmp_path / "imgs" / label / f"{i}.png")
    (tmp_path / "study.yaml").write_text(f"""
name: own_folder
data: {{source: folder, path: '{tmp_path / "imgs"}', image_size: 8, test_fraction: 0.25}}
space: {{model: {{kind: cnn, depth: 1, width: 4}}}}
budget: {{n_trials: 1, epochs: 1}}
export: {{after_run: true}}
run_dir: '{tmp_path / "run"}'
""")
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    env.pop("SEARCHLAB_DATA", None)
    done = subprocess.run([sys.executable, "-m", "searchlab.cli", "run", str(tmp_path / "study.yaml")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "run" / "best" / "model.py").is_file()
    assert not (home / ".medmnist").exists()


def test_a_second_run_in_one_process_reads_image_files_that_changed_since_the_first(tmp_path):
    """A notebook's second run, after images were moved into a new class folder, trained on the first run's
    decoded copy (2 classes) while its header counted the new files (3 classes)."""
    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study

    for label in ("a", "b"):
        (tmp_path / "imgs" / label).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(np.full((8, 8), 10 * i + (100 if label == "b" else 0), np.uint8)).save(
                tmp_path / "imgs" / label / f"{i}.png")
    text = f"""
name: changing
data: {{source: folder, path: '{tmp_path / "imgs"}', image_size: 8}}
space: {{model: {{kind: cnn, depth: 1, width: 4}}}}
objective: accuracy
budget: {{n_trials: 1, epochs: 1}}
export: {{after_run: false}}
"""
    (tmp_path / "first.yaml").write_text(text + f"run_dir: '{tmp_path / 'first'}'\n")
    (tmp_path / "second.yaml").write_text(text + f"run_dir: '{tmp_path / 'second'}'\n")
    first = run_study(load_study(tmp_path / "first.yaml"), progress=False).study.trials[0]
    (tmp_path / "imgs" / "c").mkdir()
    for i in range(6):
        shutil.move(tmp_path / "imgs" / "a" / f"{i}.png", tmp_path / "imgs" / "c" / f"{i}.png")
    second = run_study(load_study(tmp_path / "second.yaml"), progress=False).study.trials[0]
    assert first.user_attrs["class_names"] == ["a", "b"]
    assert second.user_attrs["class_names"] == ["a", "b", "c"]


def test_a_class_missing_from_ones_own_test_folder_is_said_when_the_run_starts(tmp_path):
    """It was said only by the export, after the search; test metrics averaged over classes left it out."""
    from searchlab.data import data_advice

    for split, counts in (("train", {"a": 6, "b": 6, "c": 4}), ("val", {"a": 2, "b": 2, "c": 2}),
                          ("test", {"a": 3, "b": 3})):
        class_folder(tmp_path / "imgs" / split, counts)
    said = [text for text in data_advice(FolderData(source="folder", path=tmp_path / "imgs")) if "test split" in text]
    assert said == [f"the test split has no image of class 'c' (1 of 3): the test auc (macro over all classes) will "
                    f"be undefined (null), and so will auc_class_2, recall_class_2; balanced accuracy and recall "
                    f"average over the classes present, leaving it out; f1_class_2 is 0 if the model predicts it "
                    f"for any test image (then counted in the macro f1 and precision), else undefined and left out "
                    f"of them. Fix: put some of its images (whole patients) in the test split of {tmp_path / 'imgs'}"]
