"""An export's weights.safetensors replaced by another file of the same shapes (another trial's or export's) while
config.json stays: config.json's test metrics, thresholds and provenance then describe other weights. searchlab's
loaders refuse it, the export's model.py (plain PyTorch) warns and loads, model.save re-saves the weights with
their own digest, and a study starting from such an export (or its weights file) is told its recorded lineage is
not theirs."""
from __future__ import annotations

import hashlib
import json
import shutil
import warnings

import pytest
import torch
from safetensors.torch import load_file

from searchlab.cli import main
from searchlab.export.publish import describe_export
from searchlab.export.weights_origin import replaced_since_warnings
from searchlab.models import standalone
from test_model_save_guards import module_of
from test_weights_lineage import image_set, run_and_export

NOT_ITS_WEIGHTS = "is not the weights file its config.json was exported with"


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """a_best and x_best: exports of two runs of one data set (other seeds: other weights, the same shapes)."""
    tmp = tmp_path_factory.mktemp("exportswap")
    image_set(tmp / "first", 0)
    run_and_export(tmp, "a", tmp / "first", 0)
    run_and_export(tmp, "x", tmp / "first", 1)
    return tmp


@pytest.fixture()
def swapped(exports, tmp_path):
    """A copy of a_best whose weights.safetensors is x_best's, its config.json left as a_best's."""
    folder = tmp_path / "swapped"
    shutil.copytree(exports / "a_best", folder)
    shutil.copy(exports / "x_best" / "weights.safetensors", folder / "weights.safetensors")
    return folder


def test_model_py_warns_that_config_json_describes_other_weights_and_loads_them(exports, swapped):
    """It refused with a ValueError whose fix (re-export) a user holding only the folder could not apply."""
    model = module_of(swapped / "model.py", "model_swap_warn")
    with pytest.warns(UserWarning, match=NOT_ITS_WEIGHTS) as said:
        net, config = model.load(swapped)
    text = str(said[0].message)
    assert str(swapped / "weights.safetensors") in text and "\n" not in text
    assert "test metrics, thresholds and provenance in config.json are not its" in text
    assert "Fix: export the run again" in text and "model.save(net, config, NEW_FOLDER)" in text
    theirs = load_file(exports / "x_best" / "weights.safetensors")
    assert all(torch.equal(tensor, theirs[name]) for name, tensor in net.state_dict().items())


def test_searchlab_refuses_them_in_one_line_with_the_fix(exports, swapped, capsys):
    with pytest.raises(standalone.WeightsNotDescribed, match=NOT_ITS_WEIGHTS):
        standalone.load(swapped)
    capsys.readouterr()
    assert main(["predict", str(swapped), str(exports / "first" / "a")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {swapped / 'weights.safetensors'} {NOT_ITS_WEIGHTS}") and err.count("\n") == 1
    assert "model.save(net, config, NEW_FOLDER)" in err and "cannot be loaded" not in err
    assert "but its weights.safetensors is not the file its config.json records" in describe_export(swapped)
    assert "is not the file" not in describe_export(exports / "a_best")


def test_model_save_keeps_them_with_their_own_digest_and_not_the_exports_lineage(exports, swapped, tmp_path, capsys):
    """A re-save after the warning records the new weights' sha256 (loaded without a word by all loaders) and
    copies no trained_on.json: that of a_best lists the images other weights learned."""
    model = module_of(swapped / "model.py", "model_swap_save")
    with pytest.warns(UserWarning, match=NOT_ITS_WEIGHTS):
        net, config = model.load(swapped)
    kept = model.save(net, config, tmp_path / "kept")
    saved = json.loads((kept / "config.json").read_text())
    assert saved["weights_sha256"] == sha256(kept / "weights.safetensors") != saved["fine_tuned_from"]
    theirs = load_file(exports / "x_best" / "weights.safetensors")
    assert all(torch.equal(tensor, theirs[name]) for name, tensor in load_file(kept / "weights.safetensors").items())
    assert not (kept / "trained_on.json").exists() and saved["fine_tuned_on"].startswith("not recorded")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module_of(kept / "model.py", "model_swap_kept").load(kept)
        standalone.load(kept)
    assert main(["predict", str(kept), str(exports / "first" / "a")]) == 0
    assert "error" not in capsys.readouterr().err


def test_a_fine_tuned_resave_and_an_export_from_before_the_digest_load_without_complaint(exports, tmp_path):
    model = module_of(exports / "a_best" / "model.py", "model_swap_tune")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net, config = model.load(exports / "a_best")
        with torch.no_grad():
            net.head[3].bias += 0.5   # "fine-tuned"
        tuned = model.save(net, config, tmp_path / "tuned")
        model.load(tuned), standalone.load(tuned)
        assert (tuned / "trained_on.json").read_bytes() == (exports / "a_best" / "trained_on.json").read_bytes()
        older = tmp_path / "older"   # an export written before config.json recorded weights_sha256
        shutil.copytree(exports / "a_best", older)
        config = json.loads((older / "config.json").read_text())
        del config["weights_sha256"]
        (older / "config.json").write_text(json.dumps(config))
        shutil.copy(exports / "x_best" / "weights.safetensors", older / "weights.safetensors")
        module_of(older / "model.py", "model_swap_older").load(older), standalone.load(older)
        assert describe_export(older) == describe_export(exports / "a_best")


def test_a_study_starting_from_such_an_export_or_its_weights_file_is_told(exports, swapped, tmp_path, capsys):
    """It started from the swapped weights and checked its splits against a_best's trained_on.json, saying
    nothing; its export listed a_best's images as what its weights' ancestor learned."""
    for name, weights in (("t", swapped), ("u", swapped / "weights.safetensors")):
        capsys.readouterr()
        config = run_and_export(tmp_path, name, exports / "first", 2, weights=weights)
        err = " ".join(capsys.readouterr().err.split())
        assert (f"({'config.json weights_sha256'}: weights.safetensors is not the file its config.json records"
                in err), err
        assert "trained_on.json's images are not its; to fix: export the run again" in err
        [seen] = config["test_images_seen_by_weights"]   # not counted by a_best's trained_on.json: unknown
        assert seen["weights"] == str(swapped) and seen["test_images"] is None
        assert seen["unchecked"].endswith("by its config.json (its weights.safetensors is the file they used: the "
                                          "two do not match)")


def test_a_resumed_study_is_told_when_the_export_its_trials_used_now_holds_other_weights(exports, tmp_path):
    """The export's config.json was taken for the weights there: a file swapped in after the trials read the
    export went unnoticed by resume."""
    folder = tmp_path / "used"
    shutil.copytree(exports / "a_best", folder)
    used = [{"weights_from": {"export": str(folder), "sha256": sha256(folder / "weights.safetensors")}}]
    assert replaced_since_warnings(used) == []
    shutil.copy(exports / "x_best" / "weights.safetensors", folder / "weights.safetensors")
    [said] = replaced_since_warnings(used)
    assert said.startswith(f"{folder}, which earlier trials of this study learned from: the export there now holds "
                           f"other weights (sha256 {sha256(folder / 'weights.safetensors')[:16]}...)")
