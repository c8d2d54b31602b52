"""Data changes said by file: splits searchlab draws are said over their pool (the file added, removed or
relabelled, then how many others moved), not as dozens of per-split removals; files replaced in place are named
by the resume refusal and the export; a changed own test split is kept in config.json; the advice for a moved
data set follows only errors of missing files."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from searchlab.config.load import load_study
from searchlab.config.schema import CsvData, FolderData
from searchlab.data import clear_cache
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError, DataError, ExportError
from test_data import class_folder, png
from test_splits_fixed import fingerprinted, said, searched, split_folders


def drawn_folder(root: Path) -> FolderData:
    class_folder(root, {"a": 10, "b": 10})
    return FolderData(source="folder", path=root, image_size=8, val_fraction=0.2, test_fraction=0.2)


def test_a_file_added_to_drawn_splits_is_named_once_and_the_files_it_moved_counted(tmp_path):
    cfg = drawn_folder(tmp_path / "imgs")
    before = fingerprinted(cfg)
    shutil.copy(tmp_path / "imgs" / "a" / "001.png", tmp_path / "imgs" / "a" / "zzz_new.png")
    clear_cache()
    text = said(before, cfg)
    named = text.split(". By file: ")[1]
    assert named.startswith("train, val and test together (drawn from one pool): added a/zzz_new.png"), text
    assert "removed" not in named and "train:" not in named, text


def test_a_relabelled_row_of_a_drawn_csv_is_named_and_the_moves_counted(tmp_path):
    rows = [[f"i/{n:02d}.png", "ab"[n % 2]] for n in range(30)]
    for row in rows:
        png(tmp_path / row[0], color=(int(row[0][2:4]),) * 3)

    def write() -> None:
        with (tmp_path / "m.csv").open("w", newline="") as fh:
            csv.writer(fh).writerows([["path", "label"], *rows])

    write()
    cfg = CsvData(source="csv", path=tmp_path / "m.csv", label_columns=("label",), val_fraction=0.2,
                  test_fraction=0.2)
    before = fingerprinted(cfg)
    rows[4][1] = "b"
    write()
    clear_cache()
    named = said(before, cfg).split(". By file: ")[1]
    assert named.startswith("train, val and test together (drawn from one pool): relabelled i/04.png (a -> b)"), named
    assert "removed" not in named and "added" not in named, named


def test_own_split_folders_keep_naming_split_by_split(tmp_path):
    folder = split_folders(tmp_path / "imgs")
    cfg = FolderData(source="folder", path=folder, image_size=8)
    before = fingerprinted(cfg)
    (folder / "train" / "a" / "000.png").rename(folder / "train" / "a" / "aaa.png")
    clear_cache()
    assert said(before, cfg).endswith("By file: train: removed train/a/000.png, added train/a/aaa.png")


def test_a_changed_own_test_split_is_kept_in_the_exports_config(write_study, tmp_path):
    from searchlab.export.exporter import export_run

    folder = split_folders(tmp_path / "imgs")
    searched(write_study, folder)
    png(folder / "test" / "b" / "new.png", color=(9, 9, 9))
    clear_cache()
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=10)
    said_then = "test: 6 files then, 7 now (b 3 -> 4). By file: test: added test/b/new.png"
    assert config["test_split_changed_since_search"] == said_then
    assert json.loads((tmp_path / "best" / "config.json").read_text())["test_split_changed_since_search"] == said_then


def test_images_replaced_in_place_are_named_by_the_export_and_the_resume_refusal(write_study, tmp_path):
    from searchlab.export.exporter import export_run

    folder = split_folders(tmp_path / "imgs")
    study, _ = searched(write_study, folder)
    png(folder / "test" / "a" / "001.png", color=(1, 2, 3))   # same name, other pixels
    clear_cache()
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=10)
    assert config["data_replaced_since_search"] == "test: 1 of 6 images replaced in place (test/a/001.png)"
    assert "test_split_changed_since_search" not in config
    png(folder / "train" / "b" / "002.png", color=(3, 2, 1))
    clear_cache()
    with pytest.raises(ConfigError) as info:
        run_study(load_study(study, {"budget.n_trials": 2, "budget.epochs": 1}), progress=False)
    assert "(train: 1 of 12 images replaced in place (train/b/002.png))" in str(info.value)


def test_moved_data_advice_follows_only_missing_files(write_study, tmp_path):
    from searchlab.export.exporter import export_run

    folder = split_folders(tmp_path / "imgs")
    searched(write_study, folder)
    for i in range(2):   # a class the training split lacks: no moved data set
        png(folder / "test" / "other" / f"{i}.png", color=(7, 7, i))
    clear_cache()
    with pytest.raises(DataError) as info:
        export_run(tmp_path / "run", tmp_path / "best", bootstrap=10)
    assert "If the data set moved" not in str(info.value)
    shutil.rmtree(folder / "test" / "other")
    folder.rename(tmp_path / "moved")
    clear_cache()
    with pytest.raises(ExportError, match="If the data set moved: edit data.path"):
        export_run(tmp_path / "run", tmp_path / "best", bootstrap=10)
