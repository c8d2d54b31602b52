"""Patient sub-folders under several class folders and a rare class: a split of fraction 0 stays empty, names
repeated across class folders are said, and a small class of one file format is said to differ (small
generated PNG/JPEG folders)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from searchlab.config.schema import CsvData, FolderData
from searchlab.data.csv_source import plan_csv
from searchlab.data.folder_source import plan_folder
from searchlab.data.grouping import spanning_split
from test_csv_data import write_csv
from test_data import _fresh_cache  # noqa: F401  (_fresh_cache: autouse fixture)

CLASSES = ("benign", "cyst", "malignant")


def _image(path: Path, mode: str = "L", suffix: str = "png", value: int = 0) -> Path:
    path = path.with_suffix(f".{suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3) if mode == "RGB" else (8, 8), value, np.uint8), mode).save(path)
    return path


def _patients(root: Path, per_class: dict[str, list[str]], images: int = 2) -> Path:
    """root/<class>/<patient>/<i>.png for each class's patients."""
    for cls, patients in per_class.items():
        for patient in patients:
            for i in range(images):
                _image(root / cls / patient / str(i), value=i)
    return root


def _imbalanced_patients() -> dict[str, list[str]]:
    """3 classes, the rarest (malignant) with 3 patients; patient `shared` has folders in benign and cyst."""
    return {"benign": [f"b{i}" for i in range(8)] + ["shared"], "cyst": [f"c{i}" for i in range(6)] + ["shared"],
            "malignant": ["m0", "m1", "m2"]}


def test_test_fraction_0_gives_no_test_split_when_a_patient_spans_classes(tmp_path):
    """With test_fraction 0, a patient with folders in two classes sent the split through the spanning dealer,
    which gave every split, the unasked test split too, one patient per class: one of 3 malignant patients
    was held back from training and validation, unsaid. The same for a CSV's group_column."""
    root = _patients(tmp_path / "set", _imbalanced_patients())
    for seed in range(4):
        plan = plan_folder(FolderData(source="folder", path=root, image_size=8, test_fraction=0), seed)
        assert len(plan.files["test"]) == 0, seed
        assert sum(len(files) for files in plan.files.values()) == 2 * 19
        assert {p.relative_to(root).parts[0] for p in plan.files["val"]} == set(CLASSES)
    rows = [[p.relative_to(tmp_path).as_posix(), p.relative_to(root).parts[0], p.parent.name]
            for p in sorted(root.rglob("*.png"))]
    cfg = CsvData(source="csv", path=write_csv(tmp_path / "t.csv", ["path", "label", "patient"], rows),
                  group_column="patient", image_size=8, test_fraction=0)
    assert len(plan_csv(cfg).files["test"]) == 0
    labels = np.asarray([0, 0, 1, 1, 2, 2] * 4 + [0, 1])   # a val of fraction 0 (not a study's) gets none either
    parts = spanning_split(labels, {"val": 0.0, "test": 0.2}, 0, "sheet", CLASSES,
                           [f"p{i // 2}" for i in range(24)] + ["both", "both"])
    assert list(parts) == ["train", "val", "test"] and len(parts["val"]) == 0 and len(parts["test"]) > 0


def test_test_fraction_0_gives_no_test_split_of_multi_label_rows():
    """Multi-label rows (alone, or whole patients) dealt by iterative stratification with test_fraction 0: the
    test split of fraction 0 took the rows its fuller neighbours had no room for, 1-3 of 60."""
    from searchlab.data.common import label_stratified_split

    for seed in range(6):
        labels = (np.random.default_rng(seed).random((60, 3)) < [0.5, 0.2, 0.05]).astype(np.float32)
        for parts in (label_stratified_split(labels, {"val": 0.2, "test": 0.0}, seed, "sheet"),
                      spanning_split(labels, {"val": 0.2, "test": 0.0}, seed, "sheet", None,
                                     [f"p{i // 3}" for i in range(60)])):
            assert list(parts) == ["train", "val", "test"] and len(parts["test"]) == 0, seed
            assert sum(len(rows) for rows in parts.values()) == 60


def test_patient_names_repeated_across_class_folders_are_said_with_the_fix(tmp_path):
    """Patients numbered per class (benign/p000, malignant/p000, ...) were fused into one patient per name
    without a word: 160 sub-folders became 89 patients, every malignant one fused with patients of five other
    classes. Many such names are said with their count; a few, each with its classes; none, nothing."""
    from searchlab.data.folder_source import patient_names_in_several_classes

    def warning(name: str, per_class: dict[str, list[str]]) -> str | None:
        root = _patients(tmp_path / name, per_class)
        return patient_names_in_several_classes(plan_folder(FolderData(source="folder", path=root, image_size=8)))

    numbered = warning("numbered", {cls: [f"p{i:03d}" for i in range(n)]
                                    for cls, n in zip(("a", "b", "c", "d", "e", "f"), (9, 8, 7, 6, 5, 3))})
    assert "8 of 9 patient sub-folder names are under more than one class folder (p000 is in 6 classes, p001 is in " \
           "6 classes, p002 is in 6 classes, and 5 more)" in numbered
    assert "38 sub-folders read as 9 patients" in numbered
    assert "Fix: if these are different patients (numbered per class), prefix the folder names with the class " \
           "(a/a_p000, b/b_p000) or name them by real patient ids; if they are the same patients, nothing to do" \
           in numbered
    few = warning("few", _imbalanced_patients())
    assert "1 patient sub-folder name(s) under more than one class folder, each read as ONE patient kept in one " \
           "split: shared (benign, cyst). If each is one patient with findings of several classes, nothing to do. " \
           "Fix: if they are different patients, prefix the folder names with the class (benign/benign_shared, " \
           "cyst/cyst_shared) or name them by real patient ids" in few
    assert warning("apart", {"benign": ["b0", "b1", "b2"], "malignant": ["m0", "m1", "m2"]}) is None
    rows = [[p.relative_to(tmp_path).as_posix(), p.parts[-3], p.parent.name] for p in sorted(tmp_path.rglob("*.png"))]
    cfg = CsvData(source="csv", path=write_csv(tmp_path / "t.csv", ["path", "label", "patient"], rows),
                  group_column="patient", image_size=8)
    assert patient_names_in_several_classes(plan_csv(cfg)) is None   # a CSV's patients span classes by design
    own = _patients(tmp_path / "own" / "train", {"benign": ["p0", "p1", "p2"], "malignant": ["p0", "m1", "m2"]})
    _patients(tmp_path / "own" / "val", {"benign": ["v0"], "malignant": ["v1"]})
    said = patient_names_in_several_classes(plan_folder(FolderData(source="folder", path=own.parent, image_size=8)))
    assert ": train/p0 (benign, malignant). If each is one patient" in said


def test_a_small_class_all_of_one_rare_format_is_said_to_differ_and_named(tmp_path):
    """All 9 malignant images RGB JPEG, the others grey PNG: a class under 10 images was listed but never
    compared, so no `differ by class` was said, where the rarest class sits; and from 10 images on the flag
    did not name the class that differs."""
    from searchlab.data.formats import mixed_formats_warning

    for cls, n in (("benign", 20), ("normal", 30)):
        for i in range(n):
            _image(tmp_path / "set" / cls / str(i), value=i)
    _image(tmp_path / "set" / "normal" / "rgb", "RGB")   # one odd file among the others
    for i in range(9):
        _image(tmp_path / "set" / "malignant" / str(i), "RGB", "jpg", value=i)
    warning = mixed_formats_warning(plan_folder(FolderData(source="folder", path=tmp_path / "set", image_size=8)))
    assert "The colour modes and file types differ by class, so the model can learn the file format instead of the " \
           "finding (malignant: RGB 9 of 9, the other classes 1 of 51; malignant: JPEG 9 of 9, the other classes 0 " \
           "of 51). Fix:" in warning
    for i in range(9, 12):   # from 10 files on the class was compared, but the flag did not name it
        _image(tmp_path / "set" / "malignant" / str(i), "RGB", "jpg", value=i)
    said = mixed_formats_warning(plan_folder(FolderData(source="folder", path=tmp_path / "set", image_size=8)))
    assert "(malignant: RGB 12 of 12, the other classes 1 of 51; malignant: JPEG 12 of 12, the other classes 0 of " \
           "51)" in said
    for i in range(3, 12):   # 3 of 9 malignant files RGB JPEG, 6 grey PNG: no one format, under 10, not said
        (tmp_path / "set" / "malignant" / f"{i}.jpg").unlink()
        if i < 9:
            _image(tmp_path / "set" / "malignant" / str(i), value=i)
    assert "differ by class" not in mixed_formats_warning(
        plan_folder(FolderData(source="folder", path=tmp_path / "set", image_size=8)))
