"""Images `searchlab sample` drew, found in a data set (its folder, the folder searchlab splits, a CSV): refused
with their count per split and the way to add them to training (augment.synthetic). They were read as acquired
images, and a split dealt them to validation and test (the audit: 23 of a 180-image test split)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from searchlab.config.schema import CsvData, FolderData
from searchlab.data.csv_source import plan_csv
from searchlab.data.folder_source import plan_folder
from searchlab.data.synthetic_files import RECORD, synthetic_among
from searchlab.errors import DataError
from test_sample import _hand_export, _sample


def _real_folder(root: Path, per_class: int = 6) -> Path:
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(root / name / f"scan_{i}.png")
    return root


@pytest.fixture
def drawn(tmp_path, capsys) -> tuple[Path, Path]:
    export = _hand_export(tmp_path / "gen", 2, ["a", "b"])
    code, _, _ = _sample(capsys, export, "--out", tmp_path / "drawn", "--n", 4, "--seed", 3)
    assert code == 0
    return export, tmp_path / "drawn"


def _folder(path: Path, **kw) -> FolderData:
    return FolderData(source="folder", path=str(path), image_size=16, **kw)


def test_a_sampled_folder_given_as_the_data_set_is_refused_naming_its_export(drawn):
    export, folder = drawn
    with pytest.raises(DataError) as err:
        plan_folder(_folder(folder, val_fraction=0.25, test_fraction=0.25))
    said = str(err.value)
    assert f"{folder}: 8 image(s) (" in said and "were made by a generative model" in said
    assert f"augment.synthetic: {export.resolve()}" in said and "Fix: move them out of data.path" in said


def test_sampled_images_mixed_into_real_class_folders_are_refused_even_without_their_record(drawn, tmp_path):
    _, folder = drawn
    data = _real_folder(tmp_path / "data")
    for name in ("a", "b"):
        for path in (folder / name).iterdir():
            shutil.copy(path, data / name / path.name)   # copied without synthetic.json: known by name
    with pytest.raises(DataError, match=r"8 image\(s\) \(.*in test.*\) were made by a generative model"):
        plan_folder(_folder(data, val_fraction=0.25, test_fraction=0.25))
    for path in data.rglob("synthetic_*"):
        path.unlink()
    assert sum(map(len, plan_folder(_folder(data, val_fraction=0.25, test_fraction=0.25)).files.values())) == 12


def test_a_sampled_folder_copied_into_train_with_its_record_is_refused(drawn, tmp_path):
    _, folder = drawn
    data = tmp_path / "splits"
    _real_folder(data / "val")
    shutil.copytree(folder, data / "train")   # synthetic.json above the class folders, as sample writes it
    for path in (data / "train").rglob("synthetic_*.png"):
        path.rename(path.with_name(f"img_{path.name[-9:]}"))   # renamed: the record still says what they are
    with pytest.raises(DataError, match=r"8 image\(s\) \(8 in train\) were made by a generative model"):
        plan_folder(_folder(data))


def test_a_csv_listing_sampled_images_is_refused_and_real_names_like_them_are_not(drawn, tmp_path):
    _, folder = drawn
    data = _real_folder(tmp_path / "data")
    (data / "a" / "synthetic_scan.png").write_bytes((data / "a" / "scan_0.png").read_bytes())   # a real name
    rows = [f"{p.relative_to(tmp_path)},{p.parent.name}" for p in sorted(data.rglob("*.png"))]
    (tmp_path / "real.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    csv = CsvData(source="csv", path=str(tmp_path / "real.csv"), image_size=16, val_fraction=0.25)
    assert sum(map(len, plan_csv(csv).files.values())) == 13
    fake = f"{(folder / 'b' / 'synthetic_s3_00000.png').relative_to(tmp_path)},b"
    (tmp_path / "mixed.csv").write_text("path,label\n" + "\n".join(rows + [fake]) + "\n")
    with pytest.raises(DataError, match=r"1 image\(s\) .* Fix: drop their rows from the CSV"):
        plan_csv(csv.model_copy(update={"path": str(tmp_path / "mixed.csv")}))


def test_only_a_record_in_the_images_folder_or_the_one_above_counts(tmp_path):
    deep = tmp_path / "top" / "mid" / "class"
    deep.mkdir(parents=True)
    image = deep / "x.png"
    (tmp_path / "top" / RECORD).write_text("{}")   # two folders up: another data set's neighbour, not this
    assert synthetic_among([image]) == []
    (tmp_path / "top" / "mid" / RECORD).write_text("{}")
    assert synthetic_among([image]) == [image]


def test_a_suspect_generator_in_augment_synthetic_is_warned_of_and_its_trials_record_it(tmp_path, capsys):
    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study

    _real_folder(tmp_path / "data", per_class=8)
    _hand_export(tmp_path / "gen", 2, ["a", "b"])   # its config.json: suspect "ignores its labels"
    study = tmp_path / "study.yaml"
    study.write_text(f"""name: cls
data: {{source: folder, path: '{tmp_path / "data"}', image_size: 16, val_fraction: 0.25}}
task: classify
space:
  model: {{kind: cnn, depth: 1, width: 4}}
  augment: {{synthetic: gen, synthetic_per_class: 3}}
strategy: random
pruner: none
budget: {{n_trials: 1, epochs: 1}}
run_dir: '{tmp_path / "run"}'
""")
    capsys.readouterr()
    result = run_study(load_study(study), progress=False)
    err = capsys.readouterr().err
    assert (f"warning: augment.synthetic: the generator in {tmp_path / 'gen'} was marked suspect by its GAN study "
            "(ignores its labels)") in err
    [trial] = result.study.trials
    # a balanced split: synthetic_classes minority adds none, so no generator is recorded as its source
    assert "synthetic_from" not in trial.user_attrs
    text = study.read_text().replace("synthetic_per_class: 3}", "synthetic_per_class: 3, synthetic_classes: all}")
    study.write_text(text.replace("name: cls", "name: cls2").replace("/run'", "/run2'"))
    [trial] = run_study(load_study(study), progress=False).study.trials
    assert trial.user_attrs["synthetic_from"]["suspect"] == "ignores its labels"
    assert trial.user_attrs["synthetic_from"]["images"] == {"a": 3, "b": 3}


def test_a_generator_named_without_images_per_class_is_said_to_have_no_effect(tmp_path):
    """augment.synthetic alone (synthetic_per_class 0, the default) added nothing without a word."""
    from searchlab.space.unused import describe, unused_settings
    from searchlab.tasks.classify_usage import classify_setting_used, setting_default
    from test_space import compile_text

    alone = compile_text("space:\n  augment: {synthetic: gen}\n")
    [unused] = unused_settings(alone, classify_setting_used, 0)
    assert "space.augment.synthetic ('gen') has no effect in any trial" in describe(unused, setting_default)
    assert "given augment.synthetic_per_class: 0 (default)" in describe(unused, setting_default)
    searched = compile_text("space:\n  augment: {synthetic: gen, synthetic_per_class: {choice: [0, 50]}}\n")
    assert unused_settings(searched, classify_setting_used, 0) == []


def test_predict_notes_generated_images_among_its_files(drawn, tmp_path, capsys):
    from searchlab.export.predict import _say_what_the_files_are, image_files

    _, folder = drawn
    real = _real_folder(tmp_path / "data")
    capsys.readouterr()
    _say_what_the_files_are(image_files([real]), {"input": {"channels": 1, "files_were": "grey"}})
    assert "generative model" not in capsys.readouterr().err
    _say_what_the_files_are(image_files([real, folder]), {"input": {"channels": 1, "files_were": "grey"}})
    assert "note: 8 of the 20 images were made by a generative model" in capsys.readouterr().err


def test_sample_refuses_an_export_or_run_folder_as_out_and_a_huge_n(drawn, tmp_path, capsys):
    export, _ = drawn
    for folder, holds in ((export, "config.json"), (tmp_path / "run", "searchlab.json")):
        folder.mkdir(exist_ok=True)
        (folder / holds).touch(exist_ok=True)
        before = sorted(folder.rglob("*"))
        code, _, err = _sample(capsys, export, "--out", folder, "--n", 1)
        assert code == 2 and f"(it holds {holds}); nothing was written" in err and sorted(folder.rglob("*")) == before
    with pytest.raises(SystemExit) as stopped:   # argparse's own refusal
        _sample(capsys, export, "--out", tmp_path / "many", "--n", 100_001)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "must be an integer from 1 to 100000" in err and not (tmp_path / "many").exists()
