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
    assert "is a file; augment.synthetic names a generator export's folder" in rule
    assert fix == f"name the folder: {export}"


def test_a_generator_of_another_size_says_which_data_keys_would_match_it(tmp_path):
    export = _hand_export(tmp_path / "gen", 2, list(CLASSES))
    _, fix = generator_mismatch(export, (1, 28, 28), CLASSES)
    assert "data.image_size: 16 and data.channels: 1" in fix


def test_an_export_replaced_since_its_trials_ran_is_told_apart_by_their_recorded_digest(tmp_path):
    from searchlab.export.weights_origin import changed_since, origins_of, recorded_digests

    export = _hand_export(tmp_path / "gen", 2, list(CLASSES))
    used = hashlib.sha256((export / "weights.safetensors").read_bytes()).hexdigest()
    trials = [{"synthetic_from": {"export": str(export), "sha256": used, "images": {"a": 4}}},
              {"weights_from": {"file": "/w.pt", "sha256": "f" * 64}},
              {"weights_from": {"run": "/runs/pre", "trial": 3}}]   # a run's best trial: read each time, no digest
    recorded = recorded_digests(origins_of(trials))
    assert recorded == {str(export): {used}, "/w.pt": {"f" * 64}}
    assert changed_since(export, recorded[str(export)]) is None
    config = json.loads((export / "config.json").read_text())
    (export / "config.json").write_text(json.dumps({**config, "weights_sha256": "e" * 64}))   # another export
    assert changed_since(export, {used}).startswith("the export there now holds other weights (sha256 eeeeeeee")


def test_a_resume_after_the_generator_was_replaced_at_its_path_is_warned(tmp_path):
    """Trials of the earlier run recorded the generator's digest; another export written at the same path gave
    the new trials other images, ranked beside the old ones without a word."""
    from searchlab.export.weights_origin import replaced_since_warnings

    export = _hand_export(tmp_path / "gen", 2, list(CLASSES))
    used = hashlib.sha256((export / "weights.safetensors").read_bytes()).hexdigest()
    earlier = [{"synthetic_from": {"export": str(export), "sha256": used}}]
    assert replaced_since_warnings(earlier) == []
    (export / "config.json").write_text(json.dumps({**json.loads((export / "config.json").read_text()),
                                                    "weights_sha256": "e" * 64}))
    [said] = replaced_since_warnings(earlier)
    assert said.startswith(f"{export}, which earlier trials of this study learned from: the export there now holds "
                           "other weights") and "put the earlier weights back" in said
    (export / "config.json").unlink()
    (export / "weights.safetensors").unlink()
    assert replaced_since_warnings(earlier) == []   # gone: refused when a run still names it


def test_a_generator_of_images_framed_or_scaled_otherwise_is_refused(tmp_path):
    """A GAN trained on padded images (fit: pad) draws the bars on the classes it adds images of only."""
    export = _hand_export(tmp_path / "gen", 2, list(CLASSES))
    config = json.loads((export / "config.json").read_text())
    stretched = {"fit": "stretch", "bit_depth": None}
    assert generator_mismatch(export, SHAPE, CLASSES, stretched) is None   # an export from before `input`
    (export / "config.json").write_text(json.dumps({**config, "input": {"fit": "pad"}}))
    rule, fix = generator_mismatch(export, SHAPE, CLASSES, stretched)
    assert "learned images read with data.fit: pad; this data is read with fit: stretch" in rule
    assert fix.startswith("data.fit: pad here")
    assert generator_mismatch(export, SHAPE, CLASSES, {"fit": "pad", "bit_depth": None}) is None
    rule, _ = generator_mismatch(export, SHAPE, CLASSES, {"fit": "pad", "bit_depth": 12})
    assert "learned images read with data.bit_depth: None; this data is read with bit_depth: 12" in rule


def test_a_resume_after_a_weights_file_was_replaced_at_its_path_is_warned(tmp_path):
    """A weights file overwritten in place (other weights, same name) was used by the new trials and ranked beside
    the earlier ones without a word, where an export replaced so was warned of."""
    from searchlab.export.weights_origin import replaced_since_warnings

    weights = tmp_path / "resnet18.safetensors"
    weights.write_bytes(b"first weights")
    earlier = [{"weights_from": {"file": str(weights), "sha256": hashlib.sha256(b"first weights").hexdigest()}}]
    assert replaced_since_warnings(earlier) == []
    weights.write_bytes(b"other weights")
    [said] = replaced_since_warnings(earlier)
    assert said.startswith(f"{weights}, which earlier trials of this study learned from: the file now holds other "
                           "weights (sha256 ")
