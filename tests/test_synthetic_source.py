"""The generator export `augment.synthetic` names, as a GAN-to-classifier audit found it handled: a damaged
config.json stopped `run` with a raw traceback, damaged weights failed every trial that drew them one by one,
and a config.json named instead of its folder was called "no config.json"."""
from __future__ import annotations

import hashlib
import json

from searchlab.augment.synthetic import generator_mismatch
from test_sample import _hand_export

SHAPE, CLASSES = (1, 16, 16), ("a", "b")


def test_a_usable_generator_passes_with_its_recorded_digest(tmp_path):
    export = _hand_export(tmp_path / "gen", 2, list(CLASSES))
    config = json.loads((export / "config.json").read_text())
    config["weights_sha256"] = hashlib.sha256((export / "weights.safetensors").read_bytes()).hexdigest()
    (export / "config.json").write_text(json.dumps(config))
    assert generator_mismatch(export, SHAPE, CLASSES) is None


def test_damaged_weights_are_found_before_any_trial(tmp_path):
    export = _hand_export(tmp_path / "gen", 2, list(CLASSES))
    config = json.loads((export / "config.json").read_text())
    config["weights_sha256"] = "0" * 64
    (export / "config.json").write_text(json.dumps(config))
    rule, fix = generator_mismatch(export, SHAPE, CLASSES)
    assert "weights.safetensors is not the weights file its config.json was exported with" in rule
    assert "searchlab export RUN --out DIR" in fix
    (export / "weights.safetensors").unlink()
    rule, _ = generator_mismatch(export, SHAPE, CLASSES)
    assert "has no weights.safetensors beside its config.json" in rule


def test_a_damaged_config_is_said_not_raised(tmp_path):
    export = _hand_export(tmp_path / "gen", 2, list(CLASSES))
    (export / "config.json").write_text('{"generator": {"family": "dcgan"')
    rule, fix = generator_mismatch(export, SHAPE, CLASSES)
    assert "config.json cannot be read as a generator export's (JSONDecodeError" in rule and "export" in fix
    (export / "config.json").write_text(json.dumps({"generator": {"family": "dcgan", "image_size": 16}}))
    rule, _ = generator_mismatch(export, SHAPE, CLASSES)
    assert "cannot be read as a generator export's (KeyError: 'channels')" in rule


def test_a_config_file_named_instead_of_its_folder_is_said(tmp_path):
    export = _hand_export(tmp_path / "gen", 2, list(CLASSES))
    rule, fix = generator_mismatch(export / "config.json", SHAPE, CLASSES)
    assert "is a file; augment.synthetic names a generator export's folder" in rule and fix == f"name the folder: {export}"


def test_a_generator_of_another_size_says_which_data_keys_would_match_it(tmp_path):
    export = _hand_export(tmp_path / "gen", 2, list(CLASSES))
    _, fix = generator_mismatch(export, (1, 28, 28), CLASSES)
    assert "data.image_size: 16 and data.channels: 1" in fix
