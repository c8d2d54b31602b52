"""`searchlab run` and export on folder data sets that change: refused with what changed, a moved copy
accepted, broken test images found before any trial, the run's own account of its data."""
from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError, DataError
from test_run import TINY_CLASSIFY, callable_study, states


def test_resuming_on_a_changed_image_folder_is_refused_saying_what_changed_but_a_moved_copy_resumes(
        write_study, tmp_path):
    """The splits are drawn from the file list: added or relabelled files move images between splits."""
    from test_data import class_folder, png

    first = class_folder(tmp_path / "imgs", {"a": 8, "b": 8})
    path = callable_study(write_study, n=2, extra=f"data: {{source: folder, path: '{first}', image_size: 8}}\n")
    run_study(load_study(path), progress=False)
    moved = tmp_path / "renamed"
    shutil.move(first, moved)                                       # the same files elsewhere: the same data
    resumed = run_study(load_study(path, {"budget.n_trials": 3, "data.path": str(moved)}), progress=False).study
    assert states(resumed) == {"COMPLETE": 3}
    png(moved / "a" / "new.png")                                    # one image more: the splits move
    with pytest.raises(ConfigError) as info:
        run_study(load_study(path, {"budget.n_trials": 4, "data.path": str(moved)}), progress=False)
    message = str(info.value)
    assert info.value.key == "data.path" and "train: 12 files then, 13 now (a 6 -> 7); val: as many files per class, but other files or labels" in message
    assert "test split would hold images that trials trained on" in message and "new name" in message
    (moved / "a" / "new.png").unlink()
    (moved / "a" / "000.png").rename(moved / "b" / "000.png")         # relabelled: as many files, other classes
    with pytest.raises(ConfigError, match=r"train: 12 files then, \d+ now \(a 6 -> 5"):
        run_study(load_study(path, {"budget.n_trials": 4, "data.path": str(moved)}), progress=False)
    assert states(optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")) == \
        {"COMPLETE": 3}                                             # refused before any trial ran


def test_export_refuses_a_data_set_whose_files_changed_since_the_search(write_study, tmp_path):
    from searchlab.errors import ExportError
    from searchlab.export.exporter import export_run
    from test_data import class_folder, png

    folder = class_folder(tmp_path / "imgs", {"a": 8, "b": 8})
    study = write_study(TINY_CLASSIFY + f"data: {{source: folder, path: '{folder}', image_size: 8, channels: 3}}\n")
    run_study(load_study(study, {"budget.n_trials": 1, "budget.epochs": 1}), progress=False)
    png(folder / "b" / "extra.png")
    with pytest.raises(ExportError, match=r"other files than when the trials ran \(.*files then.*the test split "
                                          r"would hold images that trials trained on"):
        export_run(tmp_path / "run", tmp_path / "best", bootstrap=10)
    (folder / "b" / "extra.png").unlink()
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=10)
    assert config["test_size"] == 2 and "data_replaced_since_search" not in config
    # A test image replaced in place (a broken one fixed): the splits did not move, export goes on and says so
    from searchlab.config.schema import FolderData
    from searchlab.data import clear_cache, load_dataset

    files = load_dataset(FolderData(source="folder", path=folder, image_size=8, channels=3),
                         splits=("train", "test")).extra["files"]
    png(Path(files["test"][0]), color=(1, 2, 3), size=(40, 31))
    clear_cache()
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=10)
    assert config["data_replaced_since_search"] == "test: 1 of 2 images replaced in place (a/004.png)"
    run_study(load_study(study, {"budget.n_trials": 2, "budget.epochs": 1}), progress=False)   # resume: allowed
    png(Path(files["train"][0]), color=(1, 2, 3), size=(40, 31))                              # a training image
    with pytest.raises(ConfigError, match=r"trials scored on other images than data.path holds now \(train: 1 of "
                                          r"\d+ images replaced in place \(a/"):
        run_study(load_study(study, {"budget.n_trials": 3, "budget.epochs": 1}), progress=False)


def test_a_broken_test_image_stops_the_run_before_any_trial_not_the_export_after_it(write_study, tmp_path):
    from searchlab.config.schema import FolderData
    from searchlab.data import load_dataset
    from searchlab.errors import DataError
    from test_data import class_folder

    folder = class_folder(tmp_path / "imgs", {"a": 8, "b": 8})
    test_file = Path(load_dataset(FolderData(source="folder", path=folder), splits=("test",)).extra["files"]["test"][0])
    test_file.write_bytes(test_file.read_bytes()[:40])               # truncated: the search itself never reads it
    study = write_study(TINY_CLASSIFY + f"data: {{source: folder, path: '{folder}', image_size: 8}}\n")
    with pytest.raises(DataError, match=rf"(?s)1 of 2 test image files \(read only at export\) cannot be read:\n  "
                                        rf"{test_file}: cannot read image .*Fix: replace or remove them before"):
        run_study(load_study(study), progress=False)
    assert not (tmp_path / "run" / "study.db").exists()


def test_broken_training_and_test_images_are_named_in_one_message(write_study, tmp_path):
    from searchlab.config.schema import FolderData
    from searchlab.data import load_dataset
    from searchlab.errors import DataError
    from test_data import class_folder

    folder = class_folder(tmp_path / "imgs", {"a": 8, "b": 8})
    files = load_dataset(FolderData(source="folder", path=folder), splits=("train", "test")).extra["files"]
    broken = [Path(files["train"][0]), Path(files["test"][0])]
    for path in broken:
        path.write_bytes(path.read_bytes()[:40])
    study = write_study(TINY_CLASSIFY + f"data: {{source: folder, path: '{folder}', image_size: 8}}\n")
    with pytest.raises(DataError, match=r"2 of 16 image files \(train, val and test\) cannot be read") as info:
        run_study(load_study(study), progress=False)
    assert all(str(path) in str(info.value) for path in broken)


def test_export_through_the_study_file_reads_a_moved_data_folder_from_its_edited_path(write_study, tmp_path):
    from searchlab.errors import ExportError
    from searchlab.export.exporter import export_run
    from test_data import class_folder

    folder = class_folder(tmp_path / "imgs", {"a": 8, "b": 8})
    study = write_study(TINY_CLASSIFY + f"data: {{source: folder, path: '{folder}', image_size: 8}}\n")
    run_study(load_study(study, {"budget.n_trials": 1, "budget.epochs": 1}), progress=False)
    shutil.move(folder, tmp_path / "moved")
    with pytest.raises(ExportError, match=r"data folder not found .*If the data set moved: edit data.path in the "
                                          r"study file and give the study file"):
        export_run(tmp_path / "run", tmp_path / "best", bootstrap=10)
    text = study.read_text()
    study.write_text(text.replace(str(folder), str(tmp_path / "moved")))
    assert export_run(study, tmp_path / "best", bootstrap=10)["test_size"] == 2
    study.write_text(text.replace(str(folder), str(tmp_path / "moved")).replace("image_size: 8", "image_size: 16"))
    with pytest.raises(DataError, match="data folder not found"):   # other data than the trials': not read
        export_run(study, tmp_path / "best2", bootstrap=10)


def test_run_says_where_it_stores_whether_it_resumes_and_what_the_folder_holds(write_study, tmp_path, capsys):
    from searchlab.cli import main
    from test_data import class_folder

    folder = class_folder(tmp_path / "imgs", {"a": 12, "b": 7})
    (folder / "a" / "scan.dcm").write_bytes(b"DICM")
    path = callable_study(write_study, n=1, extra=f"data: {{source: folder, path: '{folder}', image_size: 8}}\n")
    assert main(["run", str(path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"run:  {tmp_path / 'run'} (new)\n" in out
    assert (f"data: image folder {folder}: train 13 (a 8, b 5); val 3 (a 2, b 1); test 3 (a 2, b 1); left out 1 "
            "file(s) without a listed image extension (.dcm 1; read are .bmp") in out
    assert "e.g. scan -> scan.png); DICOM is not read: convert it" in out
    assert main(["run", str(path), "--no-progress", "--set", "budget.n_trials=2"]) == 0
    out = capsys.readouterr().out
    assert f"run:  {tmp_path / 'run'} (resuming the trials stored there)\n" in out and "nothing ran" not in out
    assert main(["run", str(path), "--no-progress", "--set", "budget.n_trials=2"]) == 0
    assert "nothing ran: the 2 stored trials already reach budget.n_trials=2. To search on, raise it above 2 " \
           "(e.g. --set budget.n_trials=4)" in capsys.readouterr().out
    assert main(["run", str(path), "--no-progress", "--set", "budget.n_trials=1"]) == 0   # below what is stored
    assert "raise it above 2 (e.g. --set budget.n_trials=3)" in capsys.readouterr().out


def test_a_data_error_is_not_printed_under_a_run_line_that_never_starts(write_study, tmp_path, capsys):
    from searchlab.cli import main

    path = callable_study(write_study, n=1, extra=f"data: {{source: folder, path: '{tmp_path / 'nowhere'}'}}\n")
    assert main(["run", str(path), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert "data folder not found" in captured.err and "run:" not in captured.out
    assert not (tmp_path / "run").exists()


def test_a_data_setting_refused_when_the_run_starts_names_its_line_or_its_set_option(write_study, tmp_path):
    """positive_class can only be checked against the classes found in the data, after the study loaded."""
    from test_data import class_folder

    folder = class_folder(tmp_path / "imgs", {"a": 8, "b": 8})
    path = write_study(TINY_CLASSIFY + f"data: {{source: folder, path: '{folder}', image_size: 8,\n"
                                       "       positive_class: cancer}\n")
    with pytest.raises(ConfigError) as info:
        run_study(load_study(path), progress=False)
    line = path.read_text().splitlines().index("       positive_class: cancer}") + 1
    assert str(info.value).startswith(f"{path}:{line}: data.positive_class: not a class of this data set")
    with pytest.raises(ConfigError) as info:
        run_study(load_study(path, {"data.positive_class": "tumour"}), progress=False)
    assert str(info.value).startswith(f"{path} (--set data.positive_class): data.positive_class: not a class")


def test_a_fixed_setting_beyond_the_tasks_limit_gets_the_limit_as_its_fix(write_study):
    path = write_study(TINY_CLASSIFY.replace("train: {batch_size: 128}", "train: {batch_size: 128, cv_folds: 12}"))
    with pytest.raises(ConfigError) as info:
        load_study(path)
    assert "space.train.cv_folds: not a valid classify config: Input should be less than or equal to 10 (got 12). " \
        "Fix: give a value <= 10" in str(info.value)


def test_a_misspelt_medmnist_name_gets_its_line_and_the_close_names(write_study, breastmnist_root):
    path = write_study(TINY_CLASSIFY + "data:\n  source: medmnist\n  name: breastmnsit\n"
                       f"  root: '{breastmnist_root}'\n")
    with pytest.raises(ConfigError) as info:
        run_study(load_study(path), progress=False)
    line = path.read_text().splitlines().index("  name: breastmnsit") + 1
    assert str(info.value).startswith(f"{path}:{line}: data.name: not a 2D MedMNIST data set; did you mean "
                                      "breastmnist, ")   # the closest first
    assert "(got 'breastmnsit'). Fix: name one of bloodmnist, breastmnist, chestmnist," in str(info.value)


def test_a_medmnist_file_changed_since_the_search_is_refused_on_resume_and_said_at_export(write_study, tmp_path,
                                                                                          breastmnist_root):
    """A copy of BreastMNIST with other test labels: the search never reads them, but resuming would rank
    trials across two files and the export's test metrics would be of another file, without a word."""
    import numpy as np

    from searchlab.export.exporter import export_run

    root = tmp_path / "data"
    root.mkdir()
    shutil.copy(breastmnist_root / "breastmnist.npz", root / "breastmnist.npz")
    path = write_study(TINY_CLASSIFY.replace("n_trials: 2", "n_trials: 1") +
                       f"data: {{source: medmnist, name: breastmnist, root: '{root}', download: false}}\n")
    run_study(load_study(path), progress=False)
    with np.load(root / "breastmnist.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["val_labels"] = 1 - arrays["val_labels"]
    np.savez_compressed(root / "breastmnist.npz", **arrays)
    with pytest.raises(ConfigError, match=r"has trials scored on another data file: breastmnist.npz is not the "
                                          r"file the trials read \(") as info:
        run_study(load_study(path, {"budget.n_trials": 2}), progress=False)
    assert info.value.key == "data.root"
    from searchlab.data import clear_cache

    clear_cache()   # this process read the file before it changed
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=20)
    assert config["data_replaced_since_search"].startswith("breastmnist.npz is not the file the trials read")
    assert config["data_file"]["file"] == "breastmnist.npz" and len(config["data_file"]["digest"]) == 40


def test_a_class_missing_from_your_own_val_folder_gets_the_fix_of_adding_its_images_there(write_study, tmp_path):
    """A val/ folder of one's own without class b (an empty val/b is refused when the folder is read): AUC is
    undefined there, and the fix is images in val/b, not data.val_fraction, a CSV's split column or label
    columns, which draw no split here."""
    from test_data import class_folder

    folder = tmp_path / "imgs"
    class_folder(folder / "train", {"a": 6, "b": 6})
    class_folder(folder / "val", {"a": 3})
    class_folder(folder / "test", {"a": 2, "b": 2})
    study = write_study(TINY_CLASSIFY + "objective: auc\ndata: {source: folder, path: imgs, image_size: 8}\n")
    with pytest.raises(DataError, match=r"objective auc is undefined on the validation split \(3 images\): .*but "
                                        r"here: b \(no image\)\. Fix: add images of that class to (.*) \(the "
                                        r"validation split is your val/ folder\), or select by cross-validation "
                                        r"\(train.cv_folds\)$") as info:
        run_study(load_study(study), progress=False)
    said = str(info.value)
    assert f"to {folder / 'val' / 'b'}/ (the" in said
    assert "val_fraction" not in said and "split column" not in said and "label_columns" not in said


def test_colour_images_read_as_grey_are_warned_of_and_grey_ones_saved_as_rgb_are_not(tmp_path):
    """Dermoscopy or histology folders read with the default channels: 1 lost their colour without a word."""
    import numpy as np
    from PIL import Image

    from searchlab.config.schema import FolderData
    from searchlab.data import data_advice

    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (tmp_path / "colour" / cls).mkdir(parents=True)
        (tmp_path / "grey" / cls).mkdir(parents=True)
        for i in range(8):
            tint = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
            Image.fromarray(tint).save(tmp_path / "colour" / cls / f"{i}.png")
            grey = np.repeat(tint[..., :1], 3, axis=2)   # an X-ray exported as RGB: three equal channels
            Image.fromarray(grey).save(tmp_path / "grey" / cls / f"{i}.png")

    def said(folder: str, channels: int) -> list[str]:
        cfg = FolderData(source="folder", path=tmp_path / folder, channels=channels, val_fraction=0.25)
        return [text for text in data_advice(cfg) if "in colour" in text]

    [warning] = said("colour", 1)
    assert warning.startswith("data: ") and "are in colour (their channels differ" in warning
    assert "data.channels is 1, so they are read as grey" in warning and "Fix: data.channels: 3" in warning
    assert said("colour", 3) == [] and said("grey", 1) == []
