"""What weights learned is passed down a chain of transfers: an export whose trials started from weights lists
what those learned too (trained_on.json), and weights fine-tuned on images nobody recorded (model.save's
`fine_tuned_on`) are said at run start and in the export, as making any count of test images seen a lower bound."""
from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.export import trained_on
from searchlab.export.exporter import export_run

STUDY = ("name: {name}\nspace:\n  model: {{kind: cnn, depth: 1, width: 4{weights}}}\n"
         "  optim: {{lr: {{choice: [0.001, 0.002]}}}}\nstrategy: random\n"
         "pruner: none\nbudget: {{n_trials: 1, epochs: 1}}\nseed: {seed}\nrun_dir: '{run}'\n"
         "data: {{source: folder, path: '{data}', image_size: 8, val_fraction: 0.2, test_fraction: 0.2}}\n")


def image_set(root, shift):
    """30 distinct images in two classes; another `shift` (60 apart) gives other files (other content digests)."""
    from test_data import COLORS, png

    for cls in ("a", "b"):
        for i in range(15):
            png(root / cls / f"{i}.png", tuple(c or shift + 3 * i for c in COLORS[cls]))
    return root


def run_and_export(tmp, name, data, seed, weights=None):
    """A one-trial study of `data` (starting from `weights`) and its export; its config.json."""
    extra = f", transfer: full, weights: '{weights}'" if weights else ""
    (tmp / f"{name}.yaml").write_text(STUDY.format(name=name, weights=extra, seed=seed, run=tmp / name, data=data))
    run_study(load_study(tmp / f"{name}.yaml"), progress=False)
    return export_run(tmp / name, tmp / f"{name}_best", bootstrap=10)


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """a_best: an export of `first` (seed 0); tuned: its weights fine-tuned by model.save (on images not told);
    b_best: an export of a study of `second` (other images) that started from tuned."""
    tmp = tmp_path_factory.mktemp("lineage")
    image_set(tmp / "first", 0), image_set(tmp / "second", 60)
    run_and_export(tmp, "a", tmp / "first", 0)
    spec = importlib.util.spec_from_file_location("model_lineage", tmp / "a_best" / "model.py")
    model = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model)
    net, config = model.load(tmp / "a_best")
    with torch.no_grad():
        net.head[3].bias += 0.5   # "fine-tuned"
    model.save(net, config, tmp / "tuned")
    run_and_export(tmp, "b", tmp / "second", 0, weights=tmp / "tuned")
    return tmp


def test_an_export_lists_what_the_weights_its_trials_started_from_learned(chain, tmp_path, capsys):
    """b_best's trained_on.json listed b's own files only: a study of `first` starting from it was not warned
    that its test images were among those a_best (b's weights' ancestor) trained on, nor did its export say so."""
    capsys.readouterr()
    config = run_and_export(tmp_path, "c", chain / "first", 1, weights=chain / "b_best")
    err = capsys.readouterr().err
    assert f"space.model.weights '{chain / 'b_best'}' were trained or selected on " in err
    [seen] = config["test_images_seen_by_weights"]
    assert seen["weights"] == str(chain / "b_best") and seen["test_images"] >= 1
    # and that the chain passed through weights fine-tuned on images no record lists
    assert seen["not_recorded"] == [{"weights": str(chain / "tuned"), "key": "config.json fine_tuned_on",
                                     "why": "fine-tuned on images searchlab was not told of"}]
    record = json.loads((chain / "b_best" / "trained_on.json").read_text())
    assert record["inherited_from"] == [str(chain / "tuned")]
    first = trained_on.read(chain / "a_best")
    assert first["train"] <= set(record["train"]) and first["val"] <= set(record["val"])


def test_weights_fine_tuned_on_unrecorded_images_are_said_to_give_a_lower_bound(chain, tmp_path, capsys):
    """A study whose test images were the (unrecorded) fine-tuning images got no hint at all: here images none
    of the records list, so the count is 0 and only the hint can say it may be more."""
    capsys.readouterr()
    config = run_and_export(tmp_path, "d", image_set(tmp_path / "third", 120), 0, weights=chain / "tuned")
    err = capsys.readouterr().err
    assert (f"space.model.weights '{chain / 'tuned'}' learned from images searchlab was not told of: "
            f"{chain / 'tuned'} (config.json fine_tuned_on: fine-tuned on images searchlab was not told of). "
            "Any count of this study's test images") in err
    assert "is a lower bound" in err and "were trained or selected on" not in err   # the run went on
    [seen] = config["test_images_seen_by_weights"]
    assert seen["test_images"] == 0 and seen["not_recorded"][0]["weights"] == str(chain / "tuned")
    from searchlab.export.export_notes import warn_about_export

    capsys.readouterr()
    warn_about_export(config)
    said = capsys.readouterr().err
    assert f"({chain / 'tuned'}) learned from images searchlab was not told of" in said
    assert "so the 0 test images counted as seen by them is a lower bound" in said


def test_a_trained_on_json_of_before_the_lineage_keys_reads_as_before(tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "trained_on.json").write_text(json.dumps({"digest": trained_on.DIGEST, "train": ["a1"], "val": ["b2"]}))
    assert trained_on.read(folder) == {"train": {"a1"}, "val": {"b2"}}
    assert trained_on.not_recorded(folder) == []


def test_a_run_folder_as_weights_passes_on_what_its_trials_weights_learned(chain, tmp_path, capsys):
    """The run folder `b` (its best trial started from tuned) was read as b's own files only, like b_best."""
    capsys.readouterr()
    config = run_and_export(tmp_path, "e", chain / "first", 1, weights=chain / "b")
    err = capsys.readouterr().err
    assert f"space.model.weights '{chain / 'b'}' were trained or selected on " in err
    said = f"space.model.weights '{chain / 'b'}' learned from images searchlab was not told of: {chain / 'tuned'}"
    assert said in err
    [seen] = config["test_images_seen_by_weights"]
    assert seen["test_images"] >= 1 and seen["not_recorded"][0]["weights"] == str(chain / "tuned")
