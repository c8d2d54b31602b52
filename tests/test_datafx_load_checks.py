"""Settings refused when the study loads instead of ignored or found late: a split fraction the data's own splits
make unused, export.dir naming a file, a storage path given for a URL, points in a space that searches nothing;
and a CSV set's data.path naming a folder. Tiny folder and CSV sets made here; nothing is trained or decoded."""
from __future__ import annotations

from pathlib import Path

import pytest

from searchlab.config.load import load_study
from searchlab.config.schema import CsvData
from searchlab.data.csv_source import plan_csv
from searchlab.errors import ConfigError, DataError, StorageError

SPACE = "space:\n  optim: {lr: {float: [1.0e-4, 1.0e-2], log: true}}\n"


def _study(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(f"name: s\n{text}run_dir: '{tmp_path / 'run'}'\n")
    return path


def _refusal(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_study(_study(tmp_path, text))
    return info.value


def _folders(root: Path, *splits: str) -> None:
    """Split folders (empty class folders: load reads no image)."""
    for split in splits:
        for name in ("a", "b"):
            (root / split / name).mkdir(parents=True)


def _sheet(tmp_path: Path, splits: list[str]) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text("path,label,split\n" + "".join(f"{i}.png,{i % 2},{s}\n" for i, s in enumerate(splits)))
    return path


def test_a_val_fraction_beside_a_val_folder_is_refused_at_its_line(tmp_path):
    _folders(tmp_path / "split", "train", "val", "test")
    err = _refusal(tmp_path, f"data: {{source: folder, path: split,\n  val_fraction: 0.3}}\n{SPACE}")
    assert err.key == "data.val_fraction" and err.line == 3 and err.got == 0.3
    assert f"{tmp_path / 'split' / 'val'}/ is the data's own val split" in str(err)
    assert "Fix: remove val_fraction, or move the images of val/ into train/" in str(err)


def test_both_fractions_beside_val_and_test_folders_are_named_in_one_refusal(tmp_path):
    _folders(tmp_path / "split", "train", "val", "test")
    err = _refusal(tmp_path, f"data: {{source: folder, path: split, val_fraction: 0.3, test_fraction: 0.2}}\n{SPACE}")
    assert err.key == "data.val_fraction" and "(nor is test_fraction)" in str(err)
    assert "Fix: remove val_fraction and test_fraction" in str(err)
    only_test = _refusal(tmp_path, f"data: {{source: folder, path: split, test_fraction: 0.2}}\n{SPACE}")
    assert only_test.key == "data.test_fraction" and "own test split" in str(only_test)


def test_fractions_that_carve_a_missing_split_still_load(tmp_path):
    """The README's carve-outs: val out of train/ without val/, test only when written and there is no test/."""
    _folders(tmp_path / "train_only", "train")
    _folders(tmp_path / "no_test", "train", "val")
    load_study(_study(tmp_path, f"data: {{source: folder, path: train_only, val_fraction: 0.3, test_fraction: 0.2}}\n"
                                f"{SPACE}"))
    load_study(_study(tmp_path, f"data: {{source: folder, path: no_test, test_fraction: 0.2}}\n{SPACE}"))
    load_study(_study(tmp_path, f"data: {{source: folder, path: no_folder_yet, val_fraction: 0.3}}\n{SPACE}"))


def test_a_val_fraction_beside_val_rows_of_the_split_column_is_refused(tmp_path):
    _sheet(tmp_path, ["train", "train", "VAL ", "test"])
    err = _refusal(tmp_path, f"data: {{source: csv, path: labels.csv, split_column: split, val_fraction: 0.4}}\n"
                             f"{SPACE}")
    assert err.key == "data.val_fraction" and "column 'split'" in str(err) and "marks 1 row(s) val" in str(err)
    assert "Fix: remove val_fraction, or mark those rows train" in str(err)
    _sheet(tmp_path, ["train", "train", "test", "test"])   # no val rows: val_fraction carves val out of train
    load_study(_study(tmp_path, f"data: {{source: csv, path: labels.csv, split_column: split, val_fraction: 0.4}}\n"
                                f"{SPACE}"))


def test_an_export_folder_that_is_a_file_is_refused_at_load_naming_export_dir(tmp_path):
    (tmp_path / "taken").write_text("")
    err = _refusal(tmp_path, f"data: {{source: folder, path: x}}\n{SPACE}export: {{after_run: true,\n"
                             f"  dir: '{tmp_path / 'taken'}'}}\n")
    assert err.key == "export.dir" and err.line == 6 and "the export folder is a file" in str(err)
    assert "--out" not in str(err) and "Fix: name a folder" in str(err)
    under = _refusal(tmp_path, f"data: {{source: folder, path: x}}\n{SPACE}"
                               f"export: {{dir: '{tmp_path / 'taken' / 'best'}'}}\n")
    assert under.key == "export.dir" and f"inside {tmp_path / 'taken'}, which is a file" in str(under)


@pytest.mark.parametrize("value, url", [
    ("/tmp/x.db", "sqlite:////tmp/x.db"),
    ("runs/x.db", "sqlite:///runs/x.db"),
    ("~/x.db", "sqlite:///~/x.db"),
    ("/data/study.log", "journal:///data/study.log"),
    ("me@db.example/studies", "postgresql://me@db.example/studies"),
])
def test_a_storage_path_without_a_scheme_is_told_the_url_that_names_it(tmp_path, value, url):
    err = _refusal(tmp_path, f"data: {{source: folder, path: x}}\n{SPACE}storage: '{value}'\n")
    assert err.key == "storage" and err.line == 5 and "has no scheme" in str(err)
    assert f"write {url} " in str(err) + " ", str(err)


def test_a_storage_path_is_told_the_url_when_opened_too(tmp_path):
    from searchlab.engine.storage import open_storage

    with pytest.raises(StorageError, match=r"Fix: for this SQLite file write sqlite:////"):
        open_storage(str(tmp_path / "x.db"))


def test_a_point_in_a_space_that_searches_nothing_says_so(tmp_path):
    err = _refusal(tmp_path, "data: {source: folder, path: x}\nspace:\n  optim: {lr: 0.01}\nbudget: {n_trials: 1}\n"
                             "strategy: {points_to_evaluate: [{lr: 0.001}]}\n")
    assert err.key == "strategy.points_to_evaluate[0].lr" and "the space searches nothing" in str(err)
    assert "one of: " not in str(err) and "remove strategy.points_to_evaluate" in str(err)
    assert "search optim.lr in the space" in str(err)


def test_a_csv_path_naming_a_folder_says_it_is_a_folder_and_names_the_sheet_in_it(tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "labels.csv").write_text("path,label\n")
    with pytest.raises(DataError) as info:
        plan_csv(CsvData(source="csv", path=tmp_path / "set"))
    said = str(info.value)
    assert "is a folder, not a CSV file" in said and "not found" not in said
    assert f"path: {tmp_path / 'set' / 'labels.csv'}" in said and "source: folder" in said


@pytest.mark.parametrize("value, shown", [
    ("postgresql:/me:S3cr3t@db.example/studies", "write :// after postgresql, e.g. postgresql://me:***@db.example/"),
    ("me:S3cr3t@db.example/studies", "write postgresql://me:***@db.example/studies"),
])
def test_a_server_url_missing_its_slashes_is_told_the_url_with_the_password_hidden(tmp_path, value, shown):
    err = _refusal(tmp_path, f"data: {{source: folder, path: x}}\n{SPACE}storage: '{value}'\n")
    assert shown in str(err) and "S3cr3t" not in str(err)



@pytest.mark.parametrize("drawn, refused", [(["test"], False), (["val", "test"], True)])
def test_a_fraction_removed_since_that_drew_nothing_does_not_block_the_resume(drawn, refused):
    """A study run with val_fraction 0.3 beside its own val/ folder is now refused at load; with the key removed,
    the resume compared the recorded 0.3 with the default 0.15 and refused again, though it drew nothing. A
    fraction that drew its split (no val/ folder) still counts."""
    from types import SimpleNamespace

    from searchlab.engine.resume import _check_same_record

    study = SimpleNamespace(config=SimpleNamespace(name="s", data=None, seed=0), storage_url="sqlite:///s.db",
                            file="study.yaml", base_dir=None)
    record = {"objectives": [["auc", "maximize"]], "task": "classify", "seed": 0, "decoder": 99,
              "data_files": {"version": 1, "drawn": drawn}}
    old = {**record, "data": {"source": "folder", "path": "d", "val_fraction": 0.3}}
    new = {**record, "data": {"source": "folder", "path": "d", "val_fraction": 0.15}}
    if refused:
        with pytest.raises(ConfigError, match="data"):
            _check_same_record(study, old, new, [])
    else:
        _check_same_record(study, old, new, [])
