"""Audit of `searchlab sample`'s marks and --out: a drawn image renamed (gen_00001.png) went into validation and
test unnoticed, `--out` inside a data folder made all 784 real images "synthetic" and `--out` inside an export or
run folder was written, and a run folder given to sample or predict was answered with its MedFID network or an
export of the wrong kind."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from searchlab.cli import main
from searchlab.config.schema import CsvData
from searchlab.data import synthetic_files
from searchlab.data.csv_source import plan_csv
from searchlab.data.folder_source import plan_folder
from searchlab.data.loading import clear_cache, load_dataset
from searchlab.data.synthetic_files import RECORD, synthetic_among
from searchlab.errors import DataError
from searchlab.export.provenance import file_digest
from test_sample import _sample
from test_synthetic_data import _folder, _real_folder, drawn  # noqa: F401  (drawn: a fixture)


def _renamed_copies(drawn_folder: Path, data: Path) -> list[Path]:
    """The drawn images copied into the data's class folders as gen_<i>.png, without their record."""
    copies = []
    for i, path in enumerate(sorted(drawn_folder.rglob("synthetic_*.png"))):
        copies.append(data / path.parent.name / f"gen_{i:05d}.png")
        shutil.copy(path, copies[-1])
    return copies


# 1. the mark

def test_each_drawn_image_carries_a_mark_naming_its_export_and_weights(drawn):
    export, folder = drawn
    with Image.open(folder / "a" / "synthetic_s3_00000.png") as img:
        mark = json.loads(img.info[synthetic_files.MARK_KEY])   # a text chunk before the pixels: PIL reads it lazily
    assert mark["export"] == str(export.resolve()) and mark["seed"] == 3
    assert mark["weights_sha256"] == file_digest(export / "weights.safetensors")


def test_renamed_drawn_images_in_a_data_folder_are_refused_by_their_mark_naming_them(drawn, tmp_path):
    export, folder = drawn
    data = _real_folder(tmp_path / "data")
    copies = _renamed_copies(folder, data)
    with pytest.raises(DataError) as err:
        plan_folder(_folder(data, val_fraction=0.25, test_fraction=0.25))
    said = str(err.value)
    assert "8 image(s) (" in said and "were made by a generative model" in said
    assert "recognised by the 'searchlab-synthetic' text chunk `searchlab sample` writes in each PNG" in said
    assert "(8 files)" in said and str(copies[0]) in said
    assert f"augment.synthetic: {export.resolve()}" in said   # named by the mark: no record beside the copies
    for path in copies:
        path.unlink()
    assert sum(map(len, plan_folder(_folder(data, val_fraction=0.25, test_fraction=0.25)).files.values())) == 12


def test_a_csv_listing_a_renamed_drawn_image_is_refused(drawn, tmp_path):
    _, folder = drawn
    data = _real_folder(tmp_path / "data")
    [copy, *_] = _renamed_copies(folder, data)
    rows = [f"{p.relative_to(tmp_path)},{p.parent.name}" for p in sorted(data.rglob("scan_*.png")) + [copy]]
    (tmp_path / "list.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    csv = CsvData(source="csv", path=str(tmp_path / "list.csv"), image_size=16, val_fraction=0.25)
    with pytest.raises(DataError, match=r"1 image\(s\) .*'searchlab-synthetic' text chunk .*gen_00000\.png"):
        plan_csv(csv)


def test_a_renamed_drawn_image_is_refused_even_when_its_decoded_pixels_are_cached(drawn, tmp_path, monkeypatch):
    """Files decoded by an earlier run are read from the image cache, not opened again: the mark is checked
    while the splits are planned, which every load does, so a cached file is still recognised."""
    _, folder = drawn
    data = _real_folder(tmp_path / "data")
    _renamed_copies(folder, data)
    monkeypatch.setenv("SEARCHLAB_CACHE", str(tmp_path / "cache"))
    cfg = _folder(data, val_fraction=0.25, test_fraction=0.25)
    with monkeypatch.context() as before_marks:   # a run before the mark was checked: loads, and fills the cache
        before_marks.setattr(synthetic_files, "synthetic_mark", lambda path: None, raising=False)
        clear_cache()
        assert len(load_dataset(cfg, ("train", "val", "test")).splits["test"].labels) > 0
    assert list((tmp_path / "cache" / "images").glob("*.npy"))
    clear_cache()
    with pytest.raises(DataError, match=r"8 image\(s\) .*'searchlab-synthetic' text chunk"):
        load_dataset(cfg, ("train", "val", "test"))
    clear_cache()


# 2. --out

def _nothing_written(capsys, export: Path, out: Path, *rules: str) -> None:
    before = sorted(out.parent.rglob("*")) if out.parent.exists() else []
    code, _, err = _sample(capsys, export, "--out", out, "--n", 1)
    assert code == 2 and "nothing was written" in err and f"--out {out}" in err, err
    assert "Fix: name a folder of its own for the images" in err
    for rule in rules:
        assert rule in err, err
    assert (sorted(out.parent.rglob("*")) if out.parent.exists() else []) == before


def test_out_in_a_real_data_folder_is_refused(drawn, tmp_path, capsys):
    export, _ = drawn
    data = _real_folder(tmp_path / "data")
    _nothing_written(capsys, export, data, "already holds image files that no `searchlab sample` draw wrote",
                     str(data / "a" / "scan_0.png"))
    _nothing_written(capsys, export, data / "a", "already holds image files that no `searchlab sample` draw wrote")
    _nothing_written(capsys, export, data / "synthetic", f"is a class folder of a data set: {data} holds the "
                     "class folders a, b of images that no `searchlab sample` draw wrote")
    assert not (data / RECORD).exists()
    assert sum(map(len, plan_folder(_folder(data, val_fraction=0.25, test_fraction=0.25)).files.values())) == 12


def test_out_inside_an_export_or_a_run_folder_at_any_depth_is_refused(drawn, tmp_path, capsys):
    export, _ = drawn
    run = tmp_path / "runs" / "gan"
    run.mkdir(parents=True)
    (run / "searchlab.json").write_text("{}")
    _nothing_written(capsys, export, export / "imgs", f"is inside {export.resolve()}, an export (it holds "
                     "config.json and weights.safetensors)")
    _nothing_written(capsys, export, run / "samples" / "deeper", f"is inside {run.resolve()}, a run folder (it "
                     "holds searchlab.json)")


def test_out_of_earlier_draws_is_still_drawn_into_beside_the_data_folder(drawn, tmp_path, capsys):
    export, folder = drawn
    _real_folder(tmp_path / "data")
    code, _, err = _sample(capsys, export, "--out", folder, "--n", 1, "--seed", 9)   # beside data/, not in it
    assert code == 0, err
    assert [d["seed"] for d in json.loads((folder / RECORD).read_text())["draws"]] == [3, 9]


def test_the_record_lists_its_files_and_marks_those_alone(drawn, tmp_path):
    _, folder = drawn
    first = json.loads((folder / RECORD).read_text())["draws"][0]
    assert first["files"][:2] == ["a/synthetic_s3_00000.png", "a/synthetic_s3_00001.png"] and len(first["files"]) == 8
    real = _real_folder(tmp_path / "data")
    stranger = folder / "a" / "scan_0.png"
    shutil.copy(real / "a" / "scan_0.png", stranger)   # a real image put beside the draw's own
    drawn_file = folder / "a" / "synthetic_s3_00000.png"
    assert synthetic_among([stranger, drawn_file]) == [drawn_file]
    record = json.loads((folder / RECORD).read_text())
    for draw in record["draws"]:
        del draw["files"]   # a record written before the files were listed: every image beside it, as then
    (folder / RECORD).write_text(json.dumps(record))
    assert synthetic_among([stranger]) == [stranger]


# 3. a run folder given for an export

def _run(folder: Path, **exports: dict) -> Path:
    folder.mkdir(parents=True)
    (folder / "searchlab.json").write_text("{}")
    for name, config in exports.items():
        (folder / name).mkdir()
        (folder / name / "config.json").write_text(json.dumps(config))
        (folder / name / "weights.safetensors").write_bytes(b"")
    return folder


GENERATOR = {"generator": {"family": "dcgan"}}
CLASSIFIER = {"model": {"kind": "cnn"}, "class_names": ["a", "b"]}
FEATURES = {"model": {"kind": "cnn"}, "fingerprint": {}, "seed": 0}   # a GAN run's MedFID network


def test_sample_of_a_gan_run_skips_its_medfid_network_and_names_its_generator_export(tmp_path, capsys):
    run = _run(tmp_path / "runs" / "gan", medfid_features=FEATURES)
    code, _, err = _sample(capsys, run, "--out", tmp_path / "out")
    assert code == 2 and "medfid_features" not in err, err
    assert f"{run} is a run folder (it holds searchlab.json), not an export, and holds no export. Fix: " \
        f"export it first, searchlab export {run} --out {run / 'best'}, then searchlab sample {run / 'best'} " \
        "--out DIR" in err
    (run / "gan_best").mkdir()
    (run / "gan_best" / "config.json").write_text(json.dumps(GENERATOR))
    code, _, err = _sample(capsys, run, "--out", tmp_path / "out")
    assert code == 2 and f"Fix: give its export, searchlab sample {run / 'gan_best'} --out DIR" in err, err


def test_predict_of_a_gan_run_says_it_is_a_gan_studys_run(tmp_path, capsys):
    run = _run(tmp_path / "runs" / "gan", medfid_features=FEATURES)
    (tmp_path / "img.png").write_bytes(b"")
    assert main(["predict", str(run), str(tmp_path / "img.png")]) == 2
    err = capsys.readouterr().err
    assert "medfid_features" not in err and f"{run} is a run folder (it holds searchlab.json), not an export, and " \
        "a generate (GAN) study's run: searchlab predict classifies with a classifier export. Fix: export a " \
        "classifier study's run (searchlab export RUN --out DIR) and give that folder" in err, err


def test_sample_of_a_classifier_run_says_it_is_a_classifier_studys_run(tmp_path, capsys):
    run = _run(tmp_path / "runs" / "cls", best=CLASSIFIER)
    code, _, err = _sample(capsys, run, "--out", tmp_path / "out")
    assert code == 2 and f"searchlab sample {run / 'best'}" not in err, err
    assert f"{run} is a run folder (it holds searchlab.json), not an export, and a classifier study's run: " \
        "searchlab sample draws images from a generator export. Fix: export a generate (GAN) study's run " \
        f"(searchlab export RUN --out DIR) and give that folder; {run}'s own export, {run / 'best'}, is a " \
        "classifier" in err
    assert main(["predict", str(run), str(tmp_path / "out")]) == 2   # predict takes that export, as before
    assert f"Fix: give its export, searchlab predict {run / 'best'} IMAGES..." in capsys.readouterr().err


def test_sample_of_a_classifier_run_without_exports_reads_its_kind_from_the_study(tmp_path, breastmnist_root, capsys):
    """No export to tell by: the task the run recorded (classify) says it, not `export it first, then sample`."""
    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study

    study = tmp_path / "study.yaml"
    study.write_text("name: cls\ntask: classify\nspace:\n  model: {kind: cnn, depth: 1, width: 4}\nstrategy: random\n"
                     "pruner: none\nbudget: {n_trials: 1, epochs: 1}\ndata: {source: medmnist, name: breastmnist, "
                     f"root: '{breastmnist_root}', download: false}}\nrun_dir: '{tmp_path / 'runs' / 'cls'}'\n")
    run_study(load_study(study), progress=False)
    capsys.readouterr()
    run = tmp_path / "runs" / "cls"
    assert not [p for p in run.iterdir() if (p / "config.json").is_file()]   # no export in it
    code, _, err = _sample(capsys, run, "--out", tmp_path / "out")
    assert code == 2 and "export it first" not in err, err
    assert f"{run} is a run folder (it holds searchlab.json), not an export, and a classifier study's run: " \
        "searchlab sample draws images from a generator export" in err
