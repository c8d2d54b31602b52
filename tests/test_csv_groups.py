"""A CSV's group_column (a patient id per row): a patient's rows stay in one split and one cross-validation
fold, also when the patient has images of several classes or labels."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
from pydantic import ValidationError

from searchlab.config.schema import CsvData
from searchlab.data import load_dataset
from searchlab.data.csv_source import plan_csv
from searchlab.data.fingerprint import describe_plan
from searchlab.data.grouping import spanning_split
from searchlab.errors import DataError
from searchlab.tasks.crossval import fold_indices, pool_train_val
from test_csv_data import write_csv
from test_data import COLORS, _fresh_cache, png  # noqa: F401  (_fresh_cache: autouse fixture)


def patients(n: int, seed: int = 0, multilabel: bool = False) -> tuple[np.ndarray, list[str]]:
    """Patients of 1-6 images; a quarter of the images positive, often beside negatives of the same patient."""
    rng = np.random.default_rng(seed)
    groups = [f"P{p:03d}" for p in range(n) for _ in range(rng.integers(1, 7))]
    if multilabel:
        return (rng.random((len(groups), 3)) < [0.5, 0.25, 0.1]).astype(np.float32), groups
    return (rng.random(len(groups)) < 0.25).astype(np.int64), groups


def where_each_group(parts: dict[str, np.ndarray] | list[np.ndarray], groups: list[str]) -> dict[str, set]:
    named = parts.items() if isinstance(parts, dict) else enumerate(parts)
    seen: dict[str, set] = {}
    for part, idx in named:
        for i in idx:
            seen.setdefault(groups[i], set()).add(part)
    return seen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_drawn_split_keeps_patients_whole_and_every_class_near_its_share(seed):
    labels, groups = patients(120, seed)
    assert any(len(set(labels[[i for i, g in enumerate(groups) if g == p]])) == 2 for p in set(groups))
    parts = spanning_split(labels, {"val": 0.15, "test": 0.2}, seed, "t.csv", ("neg", "pos"), groups)
    assert sorted(np.concatenate(list(parts.values()))) == list(range(len(labels)))
    assert all(len(splits) == 1 for splits in where_each_group(parts, groups).values())
    for c in (0, 1):
        total = (labels == c).sum()
        for split, share in (("val", 0.15), ("test", 0.2)):
            assert abs((labels[parts[split]] == c).sum() / total - share) < 0.04, (split, c)


def test_cross_validation_folds_keep_patients_whole_and_classes_even():
    labels, groups = patients(150, 3)
    folds = fold_indices(labels, 5, 0, ("neg", "pos"), tuple(groups))
    assert sorted(np.concatenate(folds)) == list(range(len(labels)))
    assert all(len(folds_of) == 1 for folds_of in where_each_group(folds, groups).values())
    for c in (0, 1):
        per_fold = [(labels[f] == c).sum() for f in folds]
        assert max(per_fold) - min(per_fold) <= 6, per_fold   # a patient has at most 6 images
    again = fold_indices(labels, 5, 0, ("neg", "pos"), tuple(groups))   # seeded
    assert all(np.array_equal(a, b) for a, b in zip(folds, again))


def test_multilabel_patients_stay_whole_in_splits_and_folds():
    labels, groups = patients(100, 4, multilabel=True)
    parts = spanning_split(labels, {"val": 0.2}, 0, "m.csv", ("x", "y", "z"), groups)
    assert all(len(s) == 1 for s in where_each_group(parts, groups).values())
    assert abs(len(parts["val"]) / len(labels) - 0.2) < 0.04
    folds = fold_indices(labels, 4, 0, ("x", "y", "z"), tuple(groups))
    assert all(len(s) == 1 for s in where_each_group(folds, groups).values())
    for column in range(3):   # each label's positives spread over the folds too
        per_fold = [labels[f, column].sum() for f in folds]
        assert max(per_fold) - min(per_fold) <= 6, (column, per_fold)


def test_held_out_splits_of_multilabel_patients_get_their_share_of_each_labels_positives():
    """Patients dealt biggest first by a greedy on all counts left val and test ~20% short of the common labels'
    positives (and over on images): their prevalence there was lower than in train."""
    fractions = {"val": 0.15, "test": 0.15}
    gaps = []
    for seed in range(10):   # two images a patient, four labels on independently
        labels = (np.random.default_rng(seed).random((400, 4)) < [0.45, 0.3, 0.27, 0.06]).astype(np.float32)
        groups = [f"P{i // 2}" for i in range(400)]
        parts = spanning_split(labels, fractions, seed, "m.csv", ("w", "x", "y", "z"), groups)
        assert all(len(s) == 1 for s in where_each_group(parts, groups).values())
        for split, f in fractions.items():
            wanted = np.r_[len(labels), labels.sum(0)] * f
            gaps.append((np.r_[len(parts[split]), labels[parts[split]].sum(0)] - wanted) / wanted)
    mean_gap = np.mean(gaps, axis=0)   # images, then each label's positives: no bias either way
    assert np.abs(mean_gap).max() < 0.05, mean_gap


def test_too_few_patients_of_a_class_are_refused_naming_it():
    labels = np.array([0, 0, 1, 0, 0, 0, 0, 0])
    groups = ["a", "a", "a", "b", "b", "c", "c", "d"]   # class 'pos' only in patient a
    with pytest.raises(DataError, match=r"cannot give the (train|val|test) split an image of class 'pos': it is in 1 "
                                        r"of the 4 groups"):
        spanning_split(labels, {"val": 0.2, "test": 0.2}, 0, "t.csv", ("neg", "pos"), groups)
    with pytest.raises(Exception, match=r"cv_folds=3: class 'pos' has only 1 group\(s\) of images"):
        fold_indices(labels, 3, 0, ("neg", "pos"), tuple(groups))


def csv_of_patients(tmp_path, n: int = 40, split: bool = False) -> tuple[CsvData, list[str]]:
    labels, groups = patients(n, 5)
    rows = []
    for i, (label, group) in enumerate(zip(labels, groups)):
        name = png(tmp_path / "img" / f"{i}.png", COLORS["ab"[label]], size=(8 + i % 7, 8)).relative_to(tmp_path)
        rows.append([name.as_posix(), "ab"[label], group] + (["test" if group < "P010" else "train"] if split else []))
    header = ["path", "label", "patient"] + (["split"] if split else [])
    cfg = CsvData(source="csv", path=write_csv(tmp_path / "t.csv", header, rows), group_column="patient",
                  image_size=8, val_fraction=0.2, **({"split_column": "split"} if split else {"test_fraction": 0.2}))
    return cfg, groups


def test_a_csv_group_column_keeps_patients_in_one_split_and_one_fold(tmp_path):
    cfg, groups = csv_of_patients(tmp_path)
    plan = plan_csv(cfg, seed=1)
    by_file = {str(tmp_path / "img" / f"{i}.png"): g for i, g in enumerate(groups)}
    assert all(len(splits) == 1 for splits in where_each_group(
        {s: [str(f) for f in files] for s, files in plan.files.items()}, by_file).values())
    assert plan.carved == {"val": 0.2, "test": 0.2}
    assert f"; images in {len(set(groups))} groups (patients), each group kept in one split" in describe_plan(plan)
    data = load_dataset(cfg, splits=("train", "val"), seed=1)
    pool = pool_train_val(data)
    assert pool.groups is not None and len(pool.groups) == len(pool)
    folds = fold_indices(pool.labels, 3, 0, data.class_names, pool.groups)
    assert all(len(f) == 1 for f in where_each_group(folds, list(pool.groups)).values())


def test_a_split_column_and_group_column_must_agree(tmp_path):
    cfg, _ = csv_of_patients(tmp_path, split=True)
    plan = plan_csv(cfg)   # whole patients marked test; val carved out of train by patient
    assert plan.carved == {"val": 0.2}
    files = {s: {p.name for p in fs} for s, fs in plan.files.items()}
    assert not (files["train"] & files["val"])
    rows = (tmp_path / "t.csv").read_text().splitlines()
    rows[1] = rows[1].rsplit(",", 1)[0] + (",train" if rows[1].endswith("test") else ",test")
    patient = rows[1].split(",")[2]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=rf"1 group\(s\) of column 'patient' have rows in more than one split of "
                                        rf"column 'split'.*\n  '{patient}': row 2 \((train|test)\)"):
        plan_csv(cfg)


def test_group_column_errors(tmp_path):
    cfg, _ = csv_of_patients(tmp_path)
    with pytest.raises(DataError, match=r"column\(s\) \['subject'\] not found.*data.group_column"):
        plan_csv(cfg.model_copy(update={"group_column": "subject"}))
    with pytest.raises(ValidationError, match="'label' is also the image, a label or the split column"):
        CsvData(source="csv", path=cfg.path, group_column="label")
    rows = (tmp_path / "t.csv").read_text().splitlines()
    rows[3] = rows[3].rsplit(",", 1)[0] + ","
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"1 empty cell\(s\):\n  row 4, column 'patient'"):
        plan_csv(cfg)


@pytest.mark.parametrize("seed", range(5))
def test_a_rare_class_in_as_few_patients_as_splits_gets_one_in_each(seed):
    """3 patients of a rare class for train/val/test: dealing by share sent all three to train (its share is
    the largest), then refused a split it could fill."""
    labels, groups = patients(200, seed)
    rare = {"R1": 4, "R2": 2, "R3": 2}
    groups += [g for g, n in rare.items() for _ in range(n)]
    labels = np.concatenate([labels, np.full(sum(rare.values()), 2)])
    parts = spanning_split(labels, {"val": 0.15, "test": 0.2}, seed, "t.csv", ("neg", "pos", "rare"), groups)
    assert all((labels[idx] == 2).any() for idx in parts.values())
    assert all(len(s) == 1 for s in where_each_group(parts, groups).values())


def test_multilabel_folds_need_each_labels_positives_in_as_many_patients(write_study, tmp_path):
    """A label in 2 patients with cv_folds 3: every trial failed with an undefined AUC naming nothing."""
    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study
    from searchlab.errors import ConfigError

    labels, groups = patients(40, 6, multilabel=True)
    labels[:, 2] = [g in ("P000", "P001") for g in groups]   # 'cyst' only in two patients
    rows = [[png(tmp_path / "img" / f"{i}.png", COLORS["ab"[i % 2]]).relative_to(tmp_path).as_posix(),
             *map(int, label), group] for i, (label, group) in enumerate(zip(labels, groups))]
    path = write_csv(tmp_path / "m.csv", ["path", "mass", "effusion", "cyst", "patient"], rows)
    study = write_study("name: ml\nspace:\n  model: {kind: cnn, depth: 1, width: 4}\n  train: {cv_folds: 3}\n"
                        "strategy: random\npruner: none\nbudget: {n_trials: 1, epochs: 1}\n"
                        f"data: {{source: csv, path: '{path}', label_columns: [mass, effusion, cyst], "
                        "group_column: patient, image_size: 8, test_fraction: 0.1}\n")
    with pytest.raises(ConfigError, match=r"3-fold cross-validation needs at least 3 groups of images \(patients: "
                                          r".*\) of every label in train\+val \(positives\), and label 'cyst' has "
                                          r"[012]") as info:
        run_study(load_study(study), progress=False)
    assert info.value.key == "space.train.cv_folds"


def test_edited_patient_ids_are_seen_by_the_fingerprint(tmp_path):
    """Resuming after patient ids were edited ranked trials scored on other folds with the old ones."""
    from searchlab.data import data_fingerprint
    from searchlab.data.fingerprint import moved_members

    cfg, _ = csv_of_patients(tmp_path, split=True)
    before = data_fingerprint(cfg)
    rows = (tmp_path / "t.csv").read_text().splitlines()
    edited = [rows[0]] + [r.replace(",P0", ",Q0") if i % 2 else r for i, r in enumerate(rows[1:])]
    (tmp_path / "t.csv").write_text("\n".join(edited) + "\n")
    assert "patient groups changed (the patient sub-folders, or the ids of data.group_column)" in moved_members(
        before, data_fingerprint(cfg))


def test_an_export_of_patients_resamples_whole_patients_for_its_intervals(write_study, tmp_path):
    import json

    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study
    from searchlab.export.exporter import export_run

    cfg, groups = csv_of_patients(tmp_path)
    study = write_study("name: p\nspace:\n  model: {kind: cnn, depth: 1, width: 4}\n  train: {batch_size: 32}\n"
                        "strategy: random\npruner: none\nbudget: {n_trials: 1, epochs: 1}\n"
                        f"data: {{source: csv, path: '{cfg.path}', group_column: patient, image_size: 8, "
                        "val_fraction: 0.2, test_fraction: 0.2}\n")
    run_study(load_study(study), progress=False)
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=50)
    test_files = json.loads((tmp_path / "best" / "test_predictions.json").read_text())
    assert config["test_patients"] < config["test_size"] == len(test_files["probabilities"])
    assert config["test_metrics_ci95_method"]["auc"].startswith(
        f"percentile bootstrap over {config['test_patients']} patients (whole patients resampled)")
    per_class = config["test_patients_per_class"]   # each class's test patients, beside the few-images warning
    assert set(per_class) == set(config["class_names"])
    assert max(per_class.values()) <= config["test_patients"] <= sum(per_class.values())
    assert all(re.search(r"\(\d+\.\d\) of \d+ images in \d+ patients$", config["test_metrics_ci95_method"][k])
               for k in ("accuracy", "sensitivity") if config["test_metrics"][k] is not None
               and math.isfinite(config["test_metrics"][k]))   # the effective size used, in the method
