"""What searchlab says about a multi-label CSV with patients: re-sorted rows (same files, dealt into other
splits), a label missing from the test split, a label too rare to split or cross-validate, and
multilabel_split: random beside a group_column."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from searchlab.config.schema import CsvData
from searchlab.data import data_advice, data_fingerprint
from searchlab.data.fingerprint import moved_members
from searchlab.data.loading import class_missing_from_test
from searchlab.data.types import ImageDataset, ImageSplit, SplitPlan
from searchlab.errors import ConfigError, DataError
from searchlab.metrics import compute_metrics
from searchlab.tasks.data_checks import check_folds_within_classes, check_objectives_defined_on_val
from test_csv_data import write_csv
from test_data import _fresh_cache, png  # noqa: F401  (_fresh_cache: autouse fixture)

LABELS = ("x", "y", "z")


def patient_rows(tmp_path, n_patients: int = 30) -> list[list[object]]:
    """Patients of 1-3 images, each image a few labels on."""
    rng = np.random.default_rng(3)
    rows = []
    for p in range(n_patients):
        for _ in range(rng.integers(1, 4)):
            i = len(rows)
            name = png(tmp_path / "img" / f"{i}.png", (i % 250,) * 3, size=(8, 8)).relative_to(tmp_path)
            rows.append([name.as_posix(), *(int(v) for v in rng.random(3) < [0.5, 0.3, 0.2]), f"P{p:02d}"])
    return rows


def patients_csv(tmp_path, rows: list[list[object]], **extra: object) -> CsvData:
    return CsvData(source="csv", path=write_csv(tmp_path / "t.csv", ["path", *LABELS, "patient"], rows),
                   label_columns=LABELS, group_column="patient", image_size=8, val_fraction=0.2,
                   test_fraction=0.2, **extra)


def test_re_sorted_csv_rows_are_said_to_deal_the_same_files_otherwise_not_to_change_them(tmp_path):
    """The split follows the CSV's row order: re-sorted rows moved patients between splits, and resume and
    export said "train: 89 files then, 89 now (Atelectasis 24 -> 23, ...)" with the fix "restore the files"."""
    rows = patient_rows(tmp_path)
    cfg = patients_csv(tmp_path, rows)
    before = data_fingerprint(cfg, 0)
    patients_csv(tmp_path, rows[::-1])
    said = moved_members(before, data_fingerprint(cfg, 0))
    assert said is not None and said.startswith(f"the same number of files per class, {len(rows)} in all, are dealt "
                                                "into other splits: train "), said
    assert "because the CSV's rows were reordered" in said
    assert "files then" not in said
    # a run recorded before all_members: the counts moved, the totals kept: most likely the same
    older = {key: value for key, value in before.items() if key != "all_members"}
    assert "rows were reordered" in moved_members(older, data_fingerprint(cfg, 0))
    # two rows' labels swapped keep every total, but not the members: said as changed files, as before
    swapped = [list(r) for r in rows]
    first, last = next(i for i, r in enumerate(rows) if r[1:4] != rows[-1][1:4]), len(rows) - 1
    swapped[first][1:4], swapped[last][1:4] = rows[last][1:4], rows[first][1:4]
    patients_csv(tmp_path, swapped)
    said = moved_members(before, data_fingerprint(cfg, 0))
    assert said is not None and "reordered" not in said, said


def test_a_resume_on_re_sorted_rows_is_refused_with_the_fix_that_works(tmp_path, write_study):
    """Its refusal said "trials scored on other files than data.path holds now ... Fix: restore the files"."""
    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study

    rows = patient_rows(tmp_path)
    cfg = patients_csv(tmp_path, rows)
    study = write_study(f"""
name: sorted
data: {{source: csv, path: '{cfg.path}', label_columns: [x, y, z], group_column: patient, image_size: 8}}
space: {{model: {{kind: cnn, depth: 1, width: {{choice: [4, 8]}}}}}}
budget: {{n_trials: 1, epochs: 1}}
export: {{after_run: false}}
""")
    run_study(load_study(study), progress=False)
    patients_csv(tmp_path, rows[::-1])
    with pytest.raises(ConfigError) as info:
        run_study(load_study(study, {"budget.n_trials": 2}), progress=False)
    said = str(info.value)
    assert "has trials scored on other splits of the same files: the same number of files per class" in said
    assert said.endswith("Fix: restore the CSV's row order to resume, or give the study a new name (or run_dir) for "
                         "a search on the new splits"), said


def test_a_label_missing_from_the_test_split_is_said_with_the_metrics_it_really_leaves_undefined(tmp_path):
    """The warning said the averages over labels (auc, balanced accuracy, macro f1) would leave the label out:
    the test auc and average_precision are undefined, balanced accuracy leaves it out, its F1 is 0 if predicted."""
    test = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=np.float32)
    plan = SplitPlan(source=tmp_path / "t.csv", root=tmp_path, classes=LABELS, kind="multilabel",
                     files={"train": [tmp_path / "a.png"], "test": [tmp_path / f"{i}.png" for i in range(4)]},
                     labels={"train": np.ones((1, 3), dtype=np.float32), "test": test})
    said = class_missing_from_test(plan)
    assert said.startswith("the test split has no image of label 'z' (1 of 3): the test auc and average_precision "
                           "(means over all labels) will be undefined (null), so there is no test AUC, and so will "
                           "auc_class_2, recall_class_2; balanced accuracy averages over the labels with test "
                           "images both on and off, leaving it out (it has no sensitivity); accuracy and hamming_loss "
                           "still count it"), said
    assert "f1_class_2 is 0 if the model predicts it for any test image" in said and "leave it out" not in said
    # what compute_metrics does, as said: z flagged on one image
    metrics = compute_metrics(test, np.where(np.eye(4, 3, k=-1) > 0, 0.9, 0.1) + 0 * test, "multilabel", 3)
    assert np.isnan(metrics["auc"]) and np.isnan(metrics["average_precision"]) and metrics["f1_class_2"] == 0.0
    assert np.isfinite(metrics["balanced_accuracy"]) and np.isnan(metrics["recall_class_2"])


def multilabel_data(train: list[list[int]], val: list[list[int]]) -> ImageDataset:
    def split(labels: list[list[int]]) -> ImageSplit:
        return ImageSplit(images=torch.zeros((len(labels), 1, 8, 8), dtype=torch.uint8),
                          labels=torch.tensor(labels, dtype=torch.float32))
    return ImageDataset(splits={"train": split(train), "val": split(val)}, class_names=LABELS, kind="multilabel")


def test_a_label_on_in_one_image_of_train_and_val_is_not_told_to_cross_validate(tmp_path):
    """Its validation split lacked it, and the fix offered was cross-validation, which then refused cv_folds 2
    with "use cv_folds 1 or fewer (2 at least)": no fix worked but more images of it, or dropping it."""
    data = multilabel_data([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 1, 0]], [[1, 0, 0], [0, 1, 0], [1, 1, 0]])
    study = SimpleNamespace(objectives=[("auc", "maximize")], base_dir=tmp_path,
                            config=SimpleNamespace(data=patients_csv(tmp_path, patient_rows(tmp_path, 2))))
    with pytest.raises(DataError) as refused:
        check_objectives_defined_on_val(study, data, cross_validated=False)
    said = str(refused.value)
    assert "but here: z (never on). label 'z' is on in 1 image of train+val, fewer than the 2" in said, said
    assert said.endswith("Fix: add images with that label to the data, or drop it from data.label_columns")
    assert "cv_folds)" not in said
    with pytest.raises(ConfigError) as refused_cv:
        check_folds_within_classes(data, [2])
    assert refused_cv.value.fix == "add images with that label to the data, or drop it from data.label_columns"
    assert "cv_folds 1" not in str(refused_cv.value)


def test_multilabel_split_random_beside_a_group_column_is_said_to_be_set_aside(tmp_path):
    """Patients with several rows are dealt whole, stratified per label, whatever multilabel_split says: random
    was silently ignored (the splits are those of stratified)."""
    rows = patient_rows(tmp_path)
    randomly, stratified = patients_csv(tmp_path, rows, multilabel_split="random"), patients_csv(tmp_path, rows)
    assert data_fingerprint(randomly, 0)["splits"] == data_fingerprint(stratified, 0)["splits"]
    said = [text for text in data_advice(randomly) if "random is not used" in text]
    assert len(said) == 1 and "data.multilabel_split: random is not used with data.group_column 'patient'" in said[0]
    assert not [text for text in data_advice(stratified) if "random is not used" in text]


def test_multilabel_split_random_on_a_one_label_csv_is_said_to_have_no_effect(tmp_path):
    """A CSV of one label column is split stratified per class: multilabel_split: random there was silently
    ignored. Said only where written."""
    rows = [[png(tmp_path / "img" / f"{i}.png", (i * 9,) * 3, size=(8, 8)).relative_to(tmp_path).as_posix(), i % 2]
            for i in range(20)]
    path = write_csv(tmp_path / "one.csv", ["path", "label"], rows)
    written = CsvData(source="csv", path=path, image_size=8, multilabel_split="random")
    said = [text for text in data_advice(written) if "multilabel_split: random is for multi-label" in text]
    assert len(said) == 1 and "'label'" in said[0] and "Fix: remove multilabel_split" in said[0]
    assert not [text for text in data_advice(CsvData(source="csv", path=path, image_size=8))
                if "multilabel_split" in text]
