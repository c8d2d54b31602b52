"""A CSV split_column with several unknown values: every value named with its rows and the split it likely means."""
from __future__ import annotations

import csv

import pytest

from searchlab.config.schema import CsvData
from searchlab.data import load_dataset
from searchlab.errors import DataError
from test_data import _fresh_cache, png  # noqa: F401  (_fresh_cache: autouse fixture)


def test_every_unknown_split_value_is_named_with_its_rows_and_validation_is_taken_for_val(tmp_path):
    splits = ["train", "Val ", " test", "train", "validation", "train", "validation", "train", "holdout", "train"]
    with (tmp_path / "s.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "label", "split"])
        for i, split in enumerate(splits):
            writer.writerow([png(tmp_path / f"{i}.png").name, i % 2, split])
    with pytest.raises(DataError) as err:
        load_dataset(CsvData(source="csv", path=tmp_path / "s.csv", split_column="split"))
    said = str(err.value)
    assert str(tmp_path / "s.csv") in said and "column 'split'" in said and "3 row(s)" in said
    assert "'validation' in rows 6, 8 (did you mean val?)" in said   # spreadsheet rows: the header is row 1
    assert "'holdout' in row 10 (did you mean test?)" in said
    assert "Fix: mark each row one of train, val, test" in said
