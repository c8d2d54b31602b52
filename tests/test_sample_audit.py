"""Audit of `searchlab sample` and `augment.synthetic`: a failed or killed draw leaves no unrecorded synthetic
images, the record names the weights' digest, a sampled folder named as a generator is said, and a trial that
added no synthetic image does not record a generator as its source."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from searchlab.augment.spec import AugmentSpec
from searchlab.augment.synthetic import generator_mismatch, with_synthetic
from searchlab.data.types import ImageSplit
from searchlab.export import sample
from searchlab.export.sample import RECORD
from searchlab.tasks.train import Batches
from test_sample import _hand_export, _sample


def _pngs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.png"))


def test_a_failed_draw_takes_back_its_images_and_its_record_entry(tmp_path, capsys):
    export, out = _hand_export(tmp_path / "gen", 2, ["a", "b"]), tmp_path / "out"
    code, _, _ = _sample(capsys, export, "--out", out, "--n", 2, "--seed", 1)
    assert code == 0
    (out / "b").rename(out / "b_moved")
    (out / "b").write_text("in the way")   # class b's folder cannot be made: the draw fails after class a
    code, _, err = _sample(capsys, export, "--out", out, "--n", 3, "--seed", 2)
    assert code != 0 and "error:" in err
    assert _pngs(out / "a") == [f"synthetic_s1_{i:05d}.png" for i in range(2)]   # seed 2's class-a images gone
    assert [d["seed"] for d in json.loads((out / RECORD).read_text())["draws"]] == [1]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "b").write_text("in the way")
    code, _, _ = _sample(capsys, export, "--out", fresh, "--n", 2, "--seed", 3)
    assert code != 0 and sorted(p.name for p in fresh.iterdir()) == ["b"]   # no images, no folder a, no record


def test_a_draw_is_on_record_before_its_images_are_written(tmp_path, monkeypatch):
    """A draw killed mid-way (SIGTERM, SIGKILL: no clean-up runs) still has its images on record."""
    export, out = _hand_export(tmp_path / "gen", 2, ["a", "b"]), tmp_path / "out"
    seen = []
    real = sample._write_class

    def write(*args):
        seen.append(json.loads((out / RECORD).read_text())["draws"][-1])
        real(*args)

    monkeypatch.setattr(sample, "_write_class", write)
    sample.write_samples(export, out, 2, seed=4)
    assert seen and all(d["seed"] == 4 and d["complete"] is False for d in seen)
    [draw] = json.loads((out / RECORD).read_text())["draws"]
    assert draw["complete"] is True and draw["images"] == {"a": 2, "b": 2}


def test_the_record_names_the_weights_digest_when_the_exports_config_does_not(tmp_path, capsys):
    export = _hand_export(tmp_path / "gen", 0)   # a config.json without weights_sha256
    code, _, _ = _sample(capsys, export, "--out", tmp_path / "out", "--n", 1, "--seed", 0)
    [draw] = json.loads((tmp_path / "out" / RECORD).read_text())["draws"]
    assert code == 0 and draw["weights_sha256"] == hashlib.sha256(
        (export / "weights.safetensors").read_bytes()).hexdigest()


def test_out_naming_a_file_is_said(tmp_path, capsys):
    export = _hand_export(tmp_path / "gen", 2, ["a", "b"])
    (tmp_path / "file").write_text("x")
    code, _, err = _sample(capsys, export, "--out", tmp_path / "file", "--n", 1)
    assert code == 2 and f"--out {tmp_path / 'file'} is a file, not a folder; nothing was written" in err
    code, _, err = _sample(capsys, export, "--out", tmp_path / "file" / "drawn", "--n", 1)   # exited 1, as unwritable
    assert code == 2 and f"{tmp_path / 'file'} is a file, not a folder, so nothing can be written under it" in err


def test_a_sampled_folder_named_as_augment_synthetic_names_the_export_it_was_drawn_from(tmp_path, capsys):
    export = _hand_export(tmp_path / "gen", 2, ["a", "b"])
    _sample(capsys, export, "--out", tmp_path / "drawn", "--n", 1, "--seed", 0)
    rule, fix = generator_mismatch(tmp_path / "drawn", (1, 16, 16), ("a", "b"))
    assert "holds images drawn by `searchlab sample`" in rule and str(export.resolve()) in fix


def _batches(labels: list[int]) -> Batches:
    split = ImageSplit(torch.zeros(len(labels), 1, 16, 16, dtype=torch.uint8), torch.tensor(labels))
    return Batches(train=split, val=split, kind="binary", n_classes=2, preprocessing={}, class_names=("a", "b"))


def test_a_trial_adding_no_synthetic_image_records_no_generator(tmp_path):
    export = _hand_export(tmp_path / "gen", 2, ["a", "b"])
    spec = AugmentSpec(synthetic=str(export), synthetic_per_class=3)   # synthetic_classes: minority
    told = []
    balanced = _batches([0, 0, 1, 1])   # no minority class: nothing is added
    assert with_synthetic(balanced, spec, tmp_path, 0, told.append) is balanced and told == []
    grown = with_synthetic(_batches([0, 1, 1]), spec, tmp_path, 0, told.append)
    assert len(grown.train.labels) == 6 and grown.train.labels[3:].tolist() == [0, 0, 0]
    assert [t["export"] for t in told] == [str(export.resolve())]


def test_an_export_folder_that_does_not_exist_is_said_so(tmp_path, capsys):
    code, _, err = _sample(capsys, tmp_path / "nowhere", "--out", tmp_path / "out")
    assert code == 2 and f"{tmp_path / 'nowhere'} does not exist. Fix: give the folder" in err
    assert not (tmp_path / "out").exists()
