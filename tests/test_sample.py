"""`searchlab sample`: a generator export's images as PNG files, marked synthetic, drawn again by their seed."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from searchlab.cli import main
from searchlab.export.sample import RECORD
from searchlab.models.gan import build_generator
from searchlab.models.gan_sampling import load_generator, sample_images

# gan_export (tests/conftest.py): a class-conditional DCGAN trained and exported, once per session


def _sample(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["sample", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_conditional_generator_writes_each_class_to_its_folder_recorded_as_synthetic(gan_export, tmp_path, capsys):
    export, out = gan_export / "gan_export", tmp_path / "drawn"
    code, said, _ = _sample(capsys, export, "--out", out, "--n", 5, "--seed", 7)
    assert code == 0 and said.startswith(f"wrote 10 synthetic images (5 a, 5 b) to {out}, seed 7")
    for cls in ("a", "b"):
        files = sorted((out / cls).iterdir())
        assert [f.name for f in files] == [f"synthetic_s7_{i:05d}.png" for i in range(5)]
        with Image.open(files[0]) as img:
            assert img.mode == "L" and img.size == (28, 28)
    # the files are the export's own sample_images output for that class
    generator, _ = load_generator(export)
    first_b = np.array(Image.open(out / "b" / "synthetic_s7_00000.png"))
    assert any(np.array_equal(first_b, image[0].numpy()) for image in _class_images(generator, 1, 7))
    record = json.loads((out / RECORD).read_text())
    assert record["synthetic"] is True and "not acquired from patients" in record["note"]
    [draw] = record["draws"]
    assert draw["seed"] == 7 and draw["images"] == {"a": 5, "b": 5} and draw["family"] == "dcgan"
    assert draw["weights_sha256"] == json.loads((export / "config.json").read_text())["weights_sha256"]


def _class_images(generator: torch.nn.Module, index: int, seed: int) -> torch.Tensor:
    """Images the way `sample` draws a class: its own stream of the seed, labels all `index`."""
    from searchlab.export.sample import _class_stream
    from searchlab.models.gan_sampling import as_uint8

    return as_uint8(generator.sample(5, torch.full((5,), index), generator=_class_stream(seed, index)))


def test_the_same_seed_draws_the_same_images_and_never_over_earlier_ones(gan_export, tmp_path, capsys):
    export = gan_export / "gan_export"
    _sample(capsys, export, "--out", tmp_path / "one", "--n", 3, "--seed", 1, "--class", "b")
    _sample(capsys, export, "--out", tmp_path / "two", "--n", 3, "--seed", 1, "--class", "1", "--class", "a")
    for i in range(3):   # class b alone, or with a: the same images (one stream per seed and class)
        name = f"b/synthetic_s1_{i:05d}.png"
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert not (tmp_path / "one" / "a").exists()
    before = (tmp_path / "one" / "b" / "synthetic_s1_00000.png").read_bytes()
    code, _, err = _sample(capsys, export, "--out", tmp_path / "one", "--n", 3, "--seed", 1)
    assert code == 2 and "already holds 3 of the files this draw would write" in err and "another --seed" in err
    assert not (tmp_path / "one" / "a").exists()   # nothing written: not class a either
    assert (tmp_path / "one" / "b" / "synthetic_s1_00000.png").read_bytes() == before
    _sample(capsys, export, "--out", tmp_path / "one", "--n", 2, "--seed", 2, "--class", "b")   # another seed
    assert [d["seed"] for d in json.loads((tmp_path / "one" / RECORD).read_text())["draws"]] == [1, 2]
    differ = (tmp_path / "one" / "b" / "synthetic_s2_00000.png").read_bytes() != before
    assert differ and len(list((tmp_path / "one" / "b").iterdir())) == 5


def test_a_random_seed_is_printed_and_draws_the_same_again(gan_export, tmp_path, capsys):
    export = gan_export / "gan_export"
    _, said, _ = _sample(capsys, export, "--out", tmp_path / "one", "--n", 2, "--class", "a")
    seed = json.loads((tmp_path / "one" / RECORD).read_text())["draws"][0]["seed"]
    assert f"seed {seed} (--seed {seed} draws the same images again)" in said
    _sample(capsys, export, "--out", tmp_path / "two", "--n", 2, "--class", "a", "--seed", seed)
    assert (tmp_path / "one" / "a" / f"synthetic_s{seed}_00001.png").read_bytes() == \
        (tmp_path / "two" / "a" / f"synthetic_s{seed}_00001.png").read_bytes()


def _hand_export(folder: Path, n_classes: int, class_names: list[str] | None = None, channels: int = 1) -> Path:
    """An export folder as the generator exporter writes its loadable part (a fresh, untrained network)."""
    spec = {"family": "dcgan", "image_size": 16, "channels": channels,
            "args": {"latent": 8, "width": 8, "n_classes": n_classes}, "class_names": class_names}
    folder.mkdir(parents=True)
    save_file(build_generator("dcgan", 16, channels, **spec["args"]).state_dict(), str(folder / "weights.safetensors"))
    (folder / "config.json").write_text(json.dumps({"generator": spec, "suspect": "ignores its labels"}))
    return folder


def test_an_unconditional_colour_generator_writes_to_the_folder_and_its_doubts_are_said(tmp_path, capsys):
    export = _hand_export(tmp_path / "plain", 0, channels=3)
    code, said, err = _sample(capsys, export, "--out", tmp_path / "out", "--n", 3, "--seed", 0)
    assert code == 0 and said.startswith(f"wrote 3 synthetic images to {tmp_path / 'out'}, seed 0")
    with Image.open(tmp_path / "out" / "synthetic_s0_00002.png") as img:
        assert img.mode == "RGB" and img.size == (16, 16)
    assert "warning: this generator's trial was marked suspect: ignores its labels" in err
    generator, _ = load_generator(export)
    assert sample_images(generator, 2, seed=0).dtype == torch.uint8   # sample_images still as exported
    code, _, err = _sample(capsys, export, "--out", tmp_path / "x", "--class", "a")
    assert code == 2 and "is unconditional, so it cannot be asked for a class" in err and "--set space.gan.conditional" in err


@pytest.mark.parametrize("wanted, rule", [("c", "--class 'c' is not a class of the generator"),
                                          ("2", "--class '2' is not a class of the generator")])
def test_a_class_the_generator_does_not_make_is_named_with_its_classes(tmp_path, capsys, wanted, rule):
    export = _hand_export(tmp_path / "cond", 2, ["benign", "malignant"])
    code, _, err = _sample(capsys, export, "--out", tmp_path / "out", "--class", wanted)
    assert code == 2 and rule in err and "Fix: one of ['benign', 'malignant'] (or its index 0..1)" in err
    assert not (tmp_path / "out").exists()


def test_a_classifier_export_a_run_folder_and_a_damaged_record_are_said(tmp_path, capsys):
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "config.json").write_text(json.dumps({"model": {}, "class_names": ["a", "b"]}))
    code, _, err = _sample(capsys, tmp_path / "cls", "--out", tmp_path / "out")
    assert code == 2 and "holds a classifier, which generates no images" in err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "searchlab.json").write_text("{}")
    code, _, err = _sample(capsys, tmp_path / "run", "--out", tmp_path / "out")
    assert code == 2 and "is a run folder" in err and f"searchlab sample {tmp_path / 'run' / 'best'} --out DIR" in err
    export = _hand_export(tmp_path / "gen", 2, ["benign", "malignant"])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / RECORD).write_text("not json")
    code, _, err = _sample(capsys, export, "--out", tmp_path / "out", "--n", 1)
    assert code == 2 and f"{tmp_path / 'out' / RECORD} is not a record searchlab sample wrote" in err
    assert list((tmp_path / "out").iterdir()) == [tmp_path / "out" / RECORD]   # nothing written


def test_class_names_that_make_one_folder_name_are_refused(tmp_path, capsys):
    export = _hand_export(tmp_path / "gen", 2, ["a/b", "a b"])
    code, _, err = _sample(capsys, export, "--out", tmp_path / "out", "--n", 1)
    assert code == 2 and f"the classes 'a/b' and 'a b' would both be written to {tmp_path / 'out' / 'a_b'}" in err
    assert not (tmp_path / "out").exists()
    code, said, _ = _sample(capsys, export, "--out", tmp_path / "out", "--n", 1, "--class", "a/b", "--seed", 3)
    assert code == 0 and (tmp_path / "out" / "a_b" / "synthetic_s3_00000.png").is_file()


def test_exporting_a_suspect_generator_says_why_it_was_marked(gan_export, tmp_path, capsys):
    import json
    import shutil
    import sqlite3

    import optuna

    run = shutil.copytree(gan_export / "gan_run", tmp_path / "gan_run")   # marked in a copy: others share the run
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{run / 'study.db'}")
    [trial] = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE][:1]
    reason = trial.user_attrs.get("suspect")
    if not reason:   # the fixture's GAN passes its checks: mark it as the GAN task would (Optuna's API refuses a
        reason = "collapses: 64% of its samples are near-duplicates of another sample"   # finished trial's attrs)
        with sqlite3.connect(run / "study.db") as db:
            db.execute("INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES (?, 'suspect', ?)",
                       (trial._trial_id, json.dumps(reason)))
    code = main(["export", str(run), "--trial", str(trial.number), "--out", str(tmp_path / "g")])
    assert code == 0 and f"warning: this generator's trial was marked suspect: {reason}" in capsys.readouterr().err
