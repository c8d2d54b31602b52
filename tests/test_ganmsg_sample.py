"""A GAN run's own medfid_features/ folder was said to "hold a classifier" (sample) and to be "a classifier
export" (augment.synthetic); and a draw into an earlier draw's class folder wrote benign images under
malignant/, recorded only in a nested synthetic.json."""
from __future__ import annotations

import json
from pathlib import Path

from searchlab.augment.synthetic import generator_mismatch
from searchlab.export.sample import RECORD
from test_sample import _hand_export, _sample

# as gan/features.py caches it: a classifier's config.json and weights, without an export's parts
FEATURES = {"format": "searchlab-medfid-features/1", "model": {"architecture": "plain_cnn"},
            "task": "binary", "class_names": ["a", "b"]}


def _gan_run(folder: Path, with_export: bool) -> Path:
    (folder / "medfid_features").mkdir(parents=True)
    (folder / "searchlab.json").write_text("{}")
    (folder / "medfid_features" / "config.json").write_text(json.dumps(FEATURES))
    (folder / "medfid_features" / "weights.safetensors").write_bytes(b"")
    if with_export:
        _hand_export(folder / "best", 2, ["a", "b"])
    return folder


def test_sample_of_a_runs_medfid_features_says_what_it_is_and_names_the_generator_export(tmp_path, capsys):
    run = _gan_run(tmp_path / "run_gan", with_export=True)
    code, _, err = _sample(capsys, run / "medfid_features", "--out", tmp_path / "out", "--n", 1)
    assert code == 2 and "holds a classifier" not in err, err
    assert (f"{run / 'medfid_features'} is the MedFID feature network of a GAN run; usable as task.features only "
            f"(it generates no images). Fix: name the GAN run's generator export instead: {run / 'best'}") in err
    assert not (tmp_path / "out").exists()


def test_synthetic_of_a_runs_medfid_features_says_what_it_is_and_how_to_export_the_generator(tmp_path):
    run = _gan_run(tmp_path / "run_gan", with_export=False)
    rule, fix = generator_mismatch(run / "medfid_features", (1, 16, 16), ("a", "b"))
    assert rule == f"{run / 'medfid_features'} is the MedFID feature network of a GAN run; usable as task.features only"
    assert fix == f"name the GAN run's generator export instead: the folder `searchlab export {run} --out DIR` writes"
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "config.json").write_text(json.dumps({"model": {"kind": "cnn"}, "input": {}}))
    assert generator_mismatch(tmp_path / "cls", (1, 16, 16), ("a", "b"))[0].endswith("is a classifier export, "
                                                                                       "not a generator's")


def test_out_in_a_class_folder_of_an_earlier_draw_is_refused_naming_its_record(tmp_path, capsys):
    export = _hand_export(tmp_path / "gen", 2, ["malignant", "normal, benign"])
    syn = tmp_path / "syn1"
    assert _sample(capsys, export, "--out", syn, "--n", 1, "--seed", 0)[0] == 0
    before = sorted(syn.rglob("*"))
    for out, where in ((syn / "malignant", "is"), (syn / "normal_benign" / "more", "is inside")):
        code, _, err = _sample(capsys, export, "--out", out, "--n", 1, "--seed", 1)
        top = syn / out.relative_to(syn).parts[0]
        assert code == 2 and f"--out {out} {where} {top}, a class folder of the draws {syn / RECORD} records" in err
        assert f"nothing was written. Fix: --out {syn} (a draw there adds to each class's folder and to its " \
            "record), or a new folder" in err, err
        assert sorted(syn.rglob("*")) == before
    assert _sample(capsys, export, "--out", syn, "--n", 1, "--seed", 1)[0] == 0   # the fix works
    assert _sample(capsys, export, "--out", tmp_path / "syn2", "--n", 1, "--seed", 1)[0] == 0


def test_predict_with_a_runs_medfid_features_says_what_it_is_not_an_older_export(tmp_path, capsys):
    """It said "has no 'input' ...: an export by an older searchlab. Fix: export the run again"."""
    from searchlab.cli import main

    run = _gan_run(tmp_path / "run_gan", with_export=False)
    (tmp_path / "images").mkdir()
    assert main(["predict", str(run / "medfid_features"), str(tmp_path / "images")]) == 2
    err = capsys.readouterr().err
    assert "older searchlab" not in err and "is the MedFID feature network of a GAN run; usable as task.features " \
        "only, not a classifier export. Fix: to classify images, give the export of a classify study's run" in err, err
