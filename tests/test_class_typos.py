"""A misspelt label (`nromal` in a few rows beside 300 `normal`) trained as a class of its own without a word:
now said when a run starts, and named in the refusals a class too small to split gets."""
from __future__ import annotations

import pytest

from searchlab.config.schema import CsvData, FolderData
from searchlab.data.class_typos import likely_typos
from searchlab.data.loading import data_advice
from searchlab.errors import DataError
from test_csv_data import write_csv
from test_data import _fresh_cache, png  # noqa: F401  (_fresh_cache: autouse fixture)


@pytest.mark.parametrize("counts, typos", [
    ({"normal": 300, "benign": 80, "nromal": 6}, {"nromal": "normal"}),        # two letters swapped
    ({"normal": 300, "normall": 2, "norml": 1}, {"normall": "normal", "norml": "normal"}),
    ({"malignant": 50, "malignnat": 5, "benign": 60}, {"malignnat": "malignant"}),
    ({"normal": 300, "nromal": 40}, {}),                                       # not a few rows: a real class
    ({"grade1": 300, "grade2": 10}, {}),                                       # numbered classes
    ({"T1": 300, "T2": 3}, {}),                                                # short names
    ({"benign": 300, "malignant": 3, "normal": 200}, {}),                      # far apart
    ({"effusion": 300, "infusion": 3}, {}),                                    # two letters apart: words
    ({"malignant": 202, "Malignant": 4}, {"Malignant": "malignant"}),           # one class written two ways
    ({"OK": 300, "ok": 3}, {"ok": "OK"}),                                      # short, but only the case differs
])
def test_likely_typos(counts, typos):
    assert likely_typos(counts) == typos


def _csv_set(tmp_path, labels: list[str], patients: list[str] | None = None):
    rows = [[png(tmp_path / "img" / f"{i}.png").relative_to(tmp_path).as_posix(), label,
             *([patients[i]] if patients else [])] for i, label in enumerate(labels)]
    header = ["path", "label", *(["patient"] if patients else [])]
    return CsvData(source="csv", path=write_csv(tmp_path / "labels.csv", header, rows), image_size=8,
                   val_fraction=0.2, test_fraction=0.2, **({"group_column": "patient"} if patients else {}))


def test_a_run_start_warns_of_a_misspelt_class_in_a_sheet(tmp_path):
    cfg = _csv_set(tmp_path, ["normal"] * 60 + ["benign"] * 20 + ["nromal"] * 5)
    said = [text for text in data_advice(cfg) if "misspelling" in text]
    assert said == [f"data: {tmp_path / 'labels.csv'}: 'nromal' (5 images) looks like a misspelling of 'normal' "
                    f"(60 images), and is trained as a class of its own. Fix: correct those rows' 'label' in "
                    f"{tmp_path / 'labels.csv'}; if they are different classes, nothing to do"]
    right = _csv_set(tmp_path / "right", ["normal"] * 65 + ["benign"] * 20)
    assert not [text for text in data_advice(right) if "misspelling" in text]


def test_a_class_folder_with_a_misspelt_name_is_warned_about(tmp_path):
    for i in range(40):
        png(tmp_path / "set" / "normal" / f"{i}.png")
    for i in range(20):
        png(tmp_path / "set" / "benign" / f"{i}.png")
    for i in range(3):
        png(tmp_path / "set" / "nromal" / f"{i}.png")
    said = [text for text in data_advice(FolderData(source="folder", path=tmp_path / "set", image_size=8))
            if "misspelling" in text]
    assert len(said) == 1 and "'nromal' (3 images) looks like a misspelling of 'normal' (40 images)" in said[0]
    assert "move its images into the folder of the class they belong to" in said[0]


def test_a_misspelt_class_too_small_to_split_is_named_as_a_likely_typo(tmp_path):
    from searchlab.data import load_dataset

    with pytest.raises(DataError) as info:   # one row: too few images for three splits
        load_dataset(_csv_set(tmp_path, ["normal"] * 60 + ["benign"] * 20 + ["nromal"]))
    assert "class 'nromal' has 1 image(s)" in str(info.value)
    assert str(info.value).endswith("('nromal' looks like a misspelling of 'normal': if so, correct its labels)")
    patients = [f"p{i // 2}" for i in range(80)] + ["p0"]   # the typo row's patient also has normal images
    with pytest.raises(DataError) as info:
        load_dataset(_csv_set(tmp_path / "grouped", ["normal"] * 60 + ["benign"] * 20 + ["nromal"], patients))
    assert "'nromal' looks like a misspelling of 'normal'" in str(info.value)
