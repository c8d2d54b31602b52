"""A folder set changed while a run ran: its trials train only on the splits the run recorded (each process
that runs trials lists data.path itself), and the start line says what the record holds (small PNGs)."""
from __future__ import annotations

import numpy as np
import optuna
import pytest
from PIL import Image

from searchlab.config.schema import CsvData, FolderData
from searchlab.data.fingerprint import fingerprint
from searchlab.data.loading import plan_files
from searchlab.data.recorded_split import members_digest
from searchlab.errors import DataChanged
from test_data import _fresh_cache  # noqa: F401  (autouse fixture)


def _pngs(folder, label: str, first: int, count: int) -> None:
    (folder / label).mkdir(parents=True, exist_ok=True)
    for i in range(first, first + count):
        Image.fromarray(np.full((8, 8), 7 * i % 250 + (3 if label == "b" else 0), np.uint8)).save(
            folder / label / f"{i}.png")


def _study(tmp_path):
    from searchlab.config.load import load_study

    for label in ("a", "b"):
        _pngs(tmp_path / "imgs", label, 0, 10)
    (tmp_path / "study.yaml").write_text(f"""
name: live
data: {{source: folder, path: imgs, image_size: 8, val_fraction: 0.2, test_fraction: 0.2}}
space: {{model: {{kind: cnn, depth: 1, width: 4}}}}
objective: accuracy
budget: {{n_trials: 1, epochs: 1}}
export: {{after_run: false}}
run_dir: '{tmp_path / 'run'}'
""")
    return load_study(tmp_path / "study.yaml")


def _trials(study):
    return optuna.load_study(study_name=study.config.name, storage=study.storage_url).trials


def test_a_trial_whose_splits_differ_from_the_recorded_ones_fails_saying_what_changed(tmp_path, monkeypatch):
    """Files added after the run's data was read for its trials and before it was recorded: the trial read
    12/4/4 images of a class where the record holds 20/6/6 (the auditor's race, made certain here); it trained on
    them and the export then scored a test split holding images it trained on."""
    import searchlab.engine.run as run_module

    study = _study(tmp_path)
    record = run_module.create_or_load

    def after_new_files(s):
        for label in ("a", "b"):
            _pngs(tmp_path / "imgs", label, 10, 6)
        return record(s)

    monkeypatch.setattr(run_module, "create_or_load", after_new_files)
    with pytest.raises(DataChanged):   # and the run stops: every later trial would read the same files
        run_module.run_study(study, progress=False)
    trial = _trials(study)[0]
    assert trial.state.name == "FAIL"
    error = trial.user_attrs["error"]
    assert "the run recorded when it started" in error, error
    assert "train: " in error and "added " in error and "Fix: restore the files" in error


def test_the_start_line_and_the_record_are_one_listing(tmp_path, capsys):
    """Files added after the start line: it said 12 training images and the record held 20; the record now
    holds what the line said, and the trial, which read the files as they are now, is refused."""
    from searchlab.engine.run import run_study
    from searchlab.summary import print_run_header

    study = _study(tmp_path)
    print_run_header(study)
    said = capsys.readouterr().out
    for label in ("a", "b"):
        _pngs(tmp_path / "imgs", label, 10, 6)
    with pytest.raises(DataChanged):
        run_study(study, progress=False)
    ostudy = optuna.load_study(study_name=study.config.name, storage=study.storage_url)
    train = ostudy.user_attrs["searchlab"]["data_files"]["splits"]["train"]["files"]
    assert f"train {train} " in said, (said, train)
    assert ostudy.trials[0].state.name == "FAIL"


def test_the_members_digest_is_the_fingerprints(tmp_path):
    """Oracle: the digest a trial compares is the record's own (data/fingerprint.py), folder and CSV."""
    for label in ("a", "b"):
        _pngs(tmp_path / "imgs", label, 0, 10)
    rows = ["path,x,y"] + [f"imgs/{lab}/{i}.png,{int(lab == 'a')},{i % 2}" for lab in "ab" for i in range(10)]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    for cfg in (FolderData(source="folder", path=tmp_path / "imgs", image_size=8, test_fraction=0.2),
                CsvData(source="csv", path=tmp_path / "list.csv", image_size=8, label_columns=["x"]),
                CsvData(source="csv", path=tmp_path / "list.csv", image_size=8, label_columns=["x", "y"])):
        plan = plan_files(cfg, 3)
        recorded = fingerprint(plan)["splits"]
        assert {s: members_digest(plan, s) for s in recorded} == {s: v["members"] for s, v in recorded.items()}


def test_the_exports_test_predictions_name_files_relative_to_the_data_folder(tmp_path):
    """They held each test image's absolute path (home folders, patient-named folders above the data), while
    config.json and trained_on.json name none; the run records names relative to the data's folder."""
    import json

    from searchlab.engine.run import run_study
    from searchlab.export.exporter import export_run

    run_study(_study(tmp_path), progress=False)
    export_run(tmp_path / "run", tmp_path / "best", bootstrap=20)
    saved = json.loads((tmp_path / "best" / "test_predictions.json").read_text())
    assert len(saved["files"]) == len(saved["labels"]) == 4 and str(tmp_path) not in json.dumps(saved)
    assert all((tmp_path / "imgs" / name).is_file() for name in saved["files"]), saved["files"]
    assert saved["files_are"].startswith("relative to the image folder")


def test_a_data_set_one_folder_too_deep_is_said_with_the_path_to_write(tmp_path):
    """wrap/dataset/<class folders> was read as one class, 'dataset', with a fix about GANs of one class."""
    import pytest

    from searchlab.data.folder_source import plan_folder
    from searchlab.errors import DataError

    for label in ("a", "b"):
        _pngs(tmp_path / "wrap" / "dataset", label, 0, 3)
    with pytest.raises(DataError) as raised:
        plan_folder(FolderData(source="folder", path=tmp_path / "wrap", image_size=8))
    said = str(raised.value)
    assert "holds no image itself but 2 folders of images ('a', 'b')" in said, said
    assert f"Fix: data.path: {(tmp_path / 'wrap' / 'dataset').as_posix()} " in said and "GAN" not in said
    _pngs(tmp_path / "one", "a", 0, 3)   # one class folder of images: the fix as before
    with pytest.raises(DataError, match="only one class folder .* a sub-folder per class"):
        plan_folder(FolderData(source="folder", path=tmp_path / "one", image_size=8))


def test_a_csv_row_naming_a_folder_is_said_to_name_a_folder(tmp_path):
    """It was 'image file(s) not found', for a path that is there."""
    import pytest

    from searchlab.errors import DataError

    for label in ("a", "b"):
        _pngs(tmp_path / "imgs", label, 0, 4)
    rows = ["path,x"] + [f"imgs/{lab}/{i}.png,{lab}" for lab in "ab" for i in range(4)] + ["imgs/a,a", "gone.png,b"]
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError) as raised:
        plan_files(CsvData(source="csv", path=tmp_path / "list.csv", image_size=8, label_columns=["x"]))
    said = str(raised.value)
    assert "1 row(s) name a folder, not an image file, and 1 image file(s) not found" in said, said
    assert "imgs/a (a folder, not an image file)" in said and "e.g. " in said


def test_with_few_patients_training_gets_its_share_as_nearly_as_whole_patients_allow():
    """A rare class of patients A (2 images), B (2), C (1) split 0.6/0.2/0.2 gave training C alone for some
    seeds (train 1, val 2, test 2): held-out splits were filled first, in random order, training got the rest."""
    from searchlab.data.common import stratified_split

    labels, groups = [0] * 30 + [1] * 5, [f"P{i // 3}" for i in range(30)] + ["A", "A", "B", "B", "C"]
    for seed in range(12):
        out = stratified_split(labels, {"val": 0.2, "test": 0.2}, seed, "x", groups=groups)
        rare = {split: sorted({groups[i] for i in idx if labels[i] == 1}) for split, idx in out.items()}
        assert sum(labels[i] for i in out["train"]) == 2 and all(rare.values()), (seed, rare)
        again = stratified_split(labels, {"val": 0.2, "test": 0.2}, seed, "x", groups=groups)
        assert all(np.array_equal(out[k], again[k]) for k in out)   # seeded: the same split every call
    drawn = {tuple(stratified_split(labels, {"val": 0.2, "test": 0.2}, s, "x", groups=groups)["train"]) for s in
             range(12)}
    assert len(drawn) > 1   # ties are drawn by the seed, not always the same patients
