"""CSV data sets (small generated PNGs listed in a sheet): labels, splits, fingerprints and every error."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from searchlab.config.schema import CsvData
from searchlab.data import load_dataset
from searchlab.errors import DataError
from test_data import COLORS, _fresh_cache, png, red_is_label_a  # noqa: F401  (_fresh_cache: autouse fixture)


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_csv_single_label_with_split_column(tmp_path):
    rows = []
    for i in range(12):
        label = [2, 10][i % 2]                                      # numeric sort: "2" before "10"
        png(tmp_path / "img" / f"{i}.png", COLORS["a" if label == 2 else "b"])
        rows.append([f"img/{i}.png", label, ["train", "train", "val", "test"][i % 4] if i < 8 else "train"])
    cfg = CsvData(source="csv", path=write_csv(tmp_path / "t.csv", ["path", "label", "split"], rows),
                  split_column="split", image_size=10, channels=3)
    ds = load_dataset(cfg)
    assert ds.class_names == ("2", "10") and ds.kind == "binary"
    assert len(ds.splits["train"]) == 8 and len(ds.splits["val"]) == 2 and "test" not in ds.splits
    assert ds.splits["train"].images.shape == (8, 3, 10, 10)
    red_is_label_a(ds.splits["train"])


def test_csv_single_label_random_stratified_split(tmp_path):
    rows = [[str(png(tmp_path / f"{i}.png", COLORS["a" if i < 10 else "b"]).name),
             "benign" if i < 10 else "malignant"] for i in range(20)]
    cfg = CsvData(source="csv", path=write_csv(tmp_path / "t.csv", ["path", "label"], rows),
                  val_fraction=0.2, test_fraction=0.2)
    ds = load_dataset(cfg, splits=("train", "val", "test"), seed=5)
    assert ds.class_names == ("benign", "malignant")
    assert {s: torch.bincount(sp.labels).tolist() for s, sp in ds.splits.items()} == \
        {"train": [6, 6], "val": [2, 2], "test": [2, 2]}
    red_is_label_a(ds.splits["test"])


def test_csv_multilabel(tmp_path):
    labels = [[1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1]] * 5
    rows = [[png(tmp_path / "i" / f"{n}.png").relative_to(tmp_path).as_posix(), *lab,
             "val" if n < 4 else "train"] for n, lab in enumerate(labels)]
    path = write_csv(tmp_path / "m.csv", ["path", "x", "y", "z", "split"], rows)
    ds = load_dataset(CsvData(source="csv", path=path, label_columns=("x", "y", "z"), split_column="split"))
    assert ds.kind == "multilabel" and ds.class_names == ("x", "y", "z")
    val = ds.splits["val"]
    assert val.labels.dtype == torch.float32 and val.labels.tolist() == labels[:4]
    rnd = load_dataset(CsvData(source="csv", path=path, label_columns=("x", "y", "z"), test_fraction=0.2),
                       splits=("train", "val", "test"))
    assert [len(s) for s in rnd.splits.values()] == [13, 3, 4]


def test_a_seeded_multilabel_split_gives_a_rare_label_to_every_split_where_a_random_one_does_not():
    import numpy as np

    from searchlab.data.common import label_stratified_split, random_split

    rng = np.random.default_rng(0)
    labels = np.stack([rng.random(300) < p for p in (0.4, 0.1, 0.02)], 1).astype(int)   # the rare label: 10 rows
    fractions = {"val": 0.1, "test": 0.2}
    random_misses = 0
    for seed in range(20):
        parts = label_stratified_split(labels, fractions, seed, "m.csv")
        assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(300))   # each row once
        assert {k: len(v) for k, v in parts.items()} == {"train": 210, "val": 30, "test": 60}
        positives = {k: labels[v].sum(0) for k, v in parts.items()}
        assert all(p.min() > 0 for p in positives.values()), (seed, positives)
        for split, f in fractions.items():   # each split its share of each label's positives
            assert np.abs(positives[split] - labels.sum(0) * f).max() <= 1, (seed, split, positives)
        again = label_stratified_split(labels, fractions, seed, "m.csv")
        assert all(np.array_equal(parts[k], again[k]) for k in parts)
        randomly = random_split(300, fractions, seed, "m.csv")
        random_misses += any(labels[v].sum(0).min() == 0 for v in randomly.values())
    assert random_misses > 0   # what the stratified split is for: a random one leaves some split without it
    labels[:, 2] = 0
    labels[[5, 50], 2] = 1   # on twice: too few for three splits, and train keeps both (or it cannot be learned)
    assert {5, 50} <= set(label_stratified_split(labels, fractions, 0, "m.csv")["train"].tolist())
    with pytest.raises(DataError, match="has 2 image"):
        label_stratified_split(labels[:2], {"val": 0.3, "test": 0.3}, 0, "m.csv")


def test_a_csv_multilabel_split_is_stratified_unless_random_is_asked_for(tmp_path):
    labels = [[1, 0]] * 3 + [[0, 1]] * 20 + [[0, 0]] * 17   # x: 3 rows, so a random 20% test split often lacks it
    rows = [[png(tmp_path / "i" / f"{n}.png").relative_to(tmp_path).as_posix(), *lab] for n, lab in enumerate(labels)]
    path = write_csv(tmp_path / "m.csv", ["path", "x", "y"], rows)
    random_lacks = 0
    for seed in range(8):
        for split_by in ("stratified", "random"):
            ds = load_dataset(CsvData(source="csv", path=path, label_columns=("x", "y"), val_fraction=0.2,
                                      test_fraction=0.2, multilabel_split=split_by),
                              splits=("train", "val", "test"), seed=seed)
            lacks = any(split.labels[:, 0].sum() == 0 for split in ds.splits.values())
            assert not lacks or split_by == "random"
            random_lacks += lacks
    assert random_lacks > 0


def test_a_csv_fingerprint_sees_edited_labels_and_replaced_images_but_not_a_moved_copy(tmp_path):
    import shutil
    import subprocess

    from searchlab.data import data_fingerprint
    from searchlab.data.fingerprint import moved_members, replaced_contents

    labels = [[1, 0], [0, 1], [1, 1], [0, 0]] * 3
    rows = [[png(tmp_path / "set" / "i" / f"{n}.png", color=(n, n, n)).relative_to(tmp_path / "set").as_posix(),
             *lab, "val" if n < 4 else "train"] for n, lab in enumerate(labels)]
    write_csv(tmp_path / "set" / "m.csv", ["path", "x", "y", "split"], rows)
    cfg = CsvData(source="csv", path=tmp_path / "set" / "m.csv", label_columns=("x", "y"), split_column="split")
    copy = cfg.model_copy(update={"path": tmp_path / "copy" / "m.csv"})
    before = data_fingerprint(cfg)
    val = before["splits"]["val"]
    assert val["files"] == 4 and val["per_class"] == {"x": 2, "y": 2} and len(val["members"]) == 32
    subprocess.run(["cp", "-r", str(tmp_path / "set"), str(tmp_path / "copy")], check=True)   # new mtimes
    assert moved_members(before, data_fingerprint(copy)) is None and replaced_contents(before, data_fingerprint(copy)) \
        is None
    rows[0][1:3] = [0, 1]                                           # one label edited in place
    write_csv(tmp_path / "set" / "m.csv", ["path", "x", "y", "split"], rows)
    assert moved_members(before, data_fingerprint(cfg)) == "val: 4 files then, 4 now (x 2 -> 1, y 2 -> 3)"
    shutil.copy(tmp_path / "copy" / "i" / "6.png", tmp_path / "copy" / "i" / "5.png")   # same size, other pixels
    assert (tmp_path / "copy" / "i" / "5.png").stat().st_size == (tmp_path / "set" / "i" / "5.png").stat().st_size
    now = data_fingerprint(copy)
    assert moved_members(before, now) is None
    assert replaced_contents(before, now) == "train: the same files, but some replaced in place (other contents)"
    assert replaced_contents(before, now, ("val", "test")) is None


def test_pixels_edited_inside_an_uncompressed_image_of_the_same_size_are_seen(tmp_path):
    """The contents digest read 8 KB at each end of a file: pixels blacked out inside uncompressed TIFFs (same
    size, same header and last rows) were resumed on, unsaid, and new trials ranked with old ones."""
    import numpy as np
    from PIL import Image

    from searchlab.data import data_fingerprint
    from searchlab.data.fingerprint import moved_members, replaced_contents

    (tmp_path / "i").mkdir()
    rows = []
    for n in range(12):
        pixels = np.full((256, 256), 20 * (n % 10), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "i" / f"{n}.tif")   # Pillow writes TIFFs uncompressed
        rows.append([f"i/{n}.tif", n % 2, "val" if n < 4 else "train"])
    cfg = CsvData(source="csv", path=write_csv(tmp_path / "m.csv", ["path", "y", "split"], rows),
                  label_columns=("y",), split_column="split")
    before = data_fingerprint(cfg)
    edited = np.full((256, 256), 20 * 5, dtype=np.uint8)
    edited[64:192] = 0   # the middle rows only: the file's first and last 8 KB are as they were
    Image.fromarray(edited).save(tmp_path / "i" / "5.tif")
    now = data_fingerprint(cfg)
    assert replaced_contents(before, now) == "train: the same files, but some replaced in place (other contents)"
    # a run recorded before whole-file digests: its members still compared, its contents digested otherwise
    older = {**before, "version": 2, "splits": {split: {**entry, "contents": entry["sampled"]}
                                                 for split, entry in before["splits"].items()}}
    assert replaced_contents(older, now) is None and moved_members(older, now) is None
    rows[0][1] = 1
    write_csv(tmp_path / "m.csv", ["path", "y", "split"], rows)
    assert moved_members(older, data_fingerprint(cfg)) == "val: 4 files then, 4 now (0 2 -> 1, 1 2 -> 3)"


def _csv_error(cfg: CsvData, *parts: str) -> None:
    with pytest.raises(DataError) as err:
        load_dataset(cfg)
    for part in (str(cfg.path), *parts):
        assert part in str(err.value)


def test_csv_errors(tmp_path):
    _csv_error(CsvData(source="csv", path=tmp_path / "none.csv"), "not found")
    for name in ("ok.png", "b.png", "c.png"):
        png(tmp_path / name)
    cols = write_csv(tmp_path / "cols.csv", ["file", "diagnosis"], [["ok.png", 1]])
    _csv_error(CsvData(source="csv", path=cols), "['path', 'label']", "['file', 'diagnosis']")
    typo = CsvData(source="csv", path=cols, image_column="file", label_columns=["diagnosys", "grade,stage"])
    _csv_error(typo, "'diagnosys': did you mean diagnosis?", "--set 'data.label_columns=[a, b]'")
    gone = write_csv(tmp_path / "gone.csv", ["path", "label"], [["ok.png", 0], ["missing.png", 1], ["also.png", 0]])
    _csv_error(CsvData(source="csv", path=gone), "2 image file(s) not found", f"row 3: {tmp_path / 'missing.png'}",
               f"row 4: {tmp_path / 'also.png'}")                       # every missing file at once
    (tmp_path / "sub").mkdir()
    png(tmp_path / "sub" / "d.png")
    windows = write_csv(tmp_path / "win.csv", ["path", "label"], [["ok.png", 0], ["sub\\d.png", 1]])
    _csv_error(CsvData(source="csv", path=windows), "1 image file(s) not found", "Fix: write the paths with /")
    cased = write_csv(tmp_path / "cased.csv", ["path", "label"], [["ok.png", "benign"], ["b.png", "Benign "],
                                                                   ["c.png", "malignant"]])
    _csv_error(CsvData(source="csv", path=cased), "writes 1 label(s) in several ways ('Benign' vs 'benign')")
    ml = write_csv(tmp_path / "ml.csv", ["path", "x", "y"], [["ok.png", 0, 1], ["b.png", 2, 1], ["c.png", 1, "yes"]])
    _csv_error(CsvData(source="csv", path=ml, label_columns=("x", "y")), "2 cell(s) do not",
               "row 3, column 'x': '2'", "row 4, column 'y': 'yes'")   # every bad cell at once
    blank = write_csv(tmp_path / "blank.csv", ["path", "label"], [["ok.png", ""], ["", 1], ["c.png", " "]])
    _csv_error(CsvData(source="csv", path=blank), "3 empty cell(s)", "row 2, column 'label'", "row 3, column 'path'",
               "row 4, column 'label'", "Fix: fill them in or drop the rows")
    sp = write_csv(tmp_path / "sp.csv", ["path", "label", "s"], [["ok.png", 0, "train"], ["b.png", 1, "dev"]])
    _csv_error(CsvData(source="csv", path=sp, split_column="s"), "row 3", "'s'", "'dev'")


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_a_semicolon_or_tab_separated_sheet_with_a_bom_is_read_like_a_csv(tmp_path, delimiter):
    rows = [[png(tmp_path / f"{i}.png", COLORS["a" if i < 6 else "b"]).name, "a" if i < 6 else "b", "0,5"]
            for i in range(12)]                                    # a decimal comma stays inside its cell
    text = delimiter.join(["path", "label", "score"]) + "\n" + "".join(delimiter.join(r) + "\n" for r in rows)
    (tmp_path / "t.csv").write_text(text, encoding="utf-8-sig")
    ds = load_dataset(CsvData(source="csv", path=tmp_path / "t.csv", val_fraction=0.25, test_fraction=0.25,
                              channels=3), splits=("train", "val", "test"))
    assert ds.class_names == ("a", "b") and sum(len(s) for s in ds.splits.values()) == 12
    red_is_label_a(ds.splits["train"])


def test_a_csv_listing_an_image_twice_is_refused_naming_rows_and_splits(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        png(tmp_path / name)
    rows = [["a.png", 0, "train"], ["b.png", 1, "train"], ["./a.png", 0, "test"], ["c.png", 1, "val"]]
    leak = write_csv(tmp_path / "leak.csv", ["path", "label", "s"], rows)
    _csv_error(CsvData(source="csv", path=leak, split_column="s"), "1 image file(s) listed in more than one row; "
               "1 of them in more than one split", f"{tmp_path / 'a.png'}: rows 2 (train), 4 (test)", "list each "
               "image once")
    twice = write_csv(tmp_path / "twice.csv", ["path", "label"], [["a.png", 0], ["b.png", 1], ["b.png", 0]])
    _csv_error(CsvData(source="csv", path=twice), f"{tmp_path / 'b.png'}: rows 3, 4")


def test_a_column_the_study_reads_under_a_header_used_twice_is_refused_naming_both_columns(tmp_path):
    for name in ("a.png", "b.png"):
        png(tmp_path / name)
    rows = [["a.png", 1, 0, 0, "train"], ["b.png", 0, 1, 1, "val"]]   # the CSV reader kept the second 'red'

    sheet = write_csv(tmp_path / "dup.csv", ["path", "red", "red", "blue", "note"], rows)
    _csv_error(CsvData(source="csv", path=sheet, label_columns=("red", "blue")),
               "'red' is the header of columns 2, 3", "Fix: rename all but one of them")
    unread = write_csv(tmp_path / "unread.csv", ["path", "red", "blue", "s", "note", "note"],
                       [r[:2] + r[3:] + ["z", "z"] for r in rows])
    read = load_dataset(CsvData(source="csv", path=unread, label_columns=("red", "blue"), split_column="s"),
                        splits=("train", "val"))   # a header used twice that the study does not read: no matter
    assert [read.splits[s].labels.tolist() for s in ("train", "val")] == [[[1, 0]], [[0, 1]]]


@pytest.mark.parametrize("columns, message", [((), "empty"), (("x", "x"), "names 'x' more than once"),
                                              (("path",), "includes the image column 'path'"),
                                              (("red;left", "b"), "label 'red;left' holds ';'")])
def test_label_columns_must_be_distinct_label_columns(tmp_path, columns, message):
    with pytest.raises(ValidationError, match=message):
        CsvData(source="csv", path=tmp_path / "t.csv", label_columns=columns)


# ---------------------------------------------------------------- fitting non-square images


def test_a_whole_number_written_with_a_decimal_point_is_the_same_class(tmp_path):
    """A spreadsheet wrote some 1s as 1.0: they were a class of their own (six classes out of three)."""
    rows = [[png(tmp_path / f"{i}.png", COLORS["ab"[i % 2]]).name, ["0", "1.0", "2", "1", "0.0", "2.0"][i % 6]]
            for i in range(24)]
    cfg = CsvData(source="csv", path=write_csv(tmp_path / "t.csv", ["path", "label"], rows), test_fraction=0.2)
    ds = load_dataset(cfg, splits=("train", "val", "test"))
    assert ds.class_names == ("0", "1", "2") and ds.kind == "multiclass"


def test_sheets_in_other_encodings_are_named_and_blank_rows_skipped(tmp_path):
    """Excel's 'CSV' in a Windows code page and its 'Unicode Text' raised a raw UnicodeDecodeError; a sheet's
    trailing blank rows (;;;) were refused as empty cells."""
    rows = "".join(f"{png(tmp_path / f'{i}.png', COLORS['ab'[i % 2]]).name};{['bénin', 'malin'][i % 2]}\n"
                   for i in range(12))
    text = "path;label\n" + rows + ";\n;\n"
    (tmp_path / "utf8.csv").write_text(text, encoding="utf-8")
    ds = load_dataset(CsvData(source="csv", path=tmp_path / "utf8.csv", test_fraction=0.2), splits=("train", "val", "test"))
    assert sum(len(s) for s in ds.splits.values()) == 12 and ds.class_names == ("bénin", "malin")
    (tmp_path / "cp1252.csv").write_bytes(text.encode("cp1252"))
    _csv_error(CsvData(source="csv", path=tmp_path / "cp1252.csv"), "the file is not UTF-8 text (e.g. Excel's 'CSV' "
               "in a Windows code page): byte 0xe9", "save it as 'CSV UTF-8'")
    (tmp_path / "utf16.csv").write_bytes(text.replace(";", "\t").encode("utf-16"))
    _csv_error(CsvData(source="csv", path=tmp_path / "utf16.csv"), "the file is UTF-16 text (Excel's 'Unicode Text')")
