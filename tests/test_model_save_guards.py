"""model.save (an export's model.py) and the folders around it: the fine-tuned weights keep what the exported
ones trained on (trained_on.json), an export never replaces them, save() never overwrites a user's own files,
and a generator export loaded from a classifier's model.py is met with advice that works."""
from __future__ import annotations

import importlib.util
import json
import shutil

import pytest
import torch

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ExportError
from searchlab.export.exporter import export_run

STUDY = ("name: {name}\nspace:\n  model: {{kind: cnn, depth: 1, width: 4{weights}}}\n"
         "  optim: {{lr: {{choice: [0.001, 0.002]}}}}\nstrategy: random\n"
         "pruner: none\nbudget: {{n_trials: 1, epochs: 1}}\nseed: {seed}\nrun_dir: '{run}'\n"
         "export: {{after_run: true, bootstrap: 100}}\n"
         "data: {{source: folder, path: '{data}', image_size: 8, val_fraction: 0.2, test_fraction: 0.2}}\n")


def module_of(model_py, name):
    """An export's model.py imported under a name of its own (not cached as `model`)."""
    spec = importlib.util.spec_from_file_location(name, model_py)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_source(tmp):
    """In `tmp`, a run of a small image folder (seed 0) and its after-run export, run/best, with its
    trained_on.json: the session fixture `source` (tests/conftest.py), which this module and four others read.
    A test that writes into the run or its export works on a copy of it (shutil.copytree into tmp_path)."""
    from test_data import COLORS, png

    for cls in ("a", "b"):
        for i in range(15):
            png(tmp / "set" / cls / f"{i}.png", tuple(min(255, c + i) for c in COLORS[cls]))
    study = tmp / "a.yaml"
    study.write_text(STUDY.format(name="a", weights="", seed=0, run=tmp / "run", data=tmp / "set"))
    from searchlab.cli import main

    assert main(["run", str(study), "--no-progress"]) == 0
    assert (tmp / "run" / "best" / "trained_on.json").is_file()
    return tmp


def test_fine_tuned_weights_are_checked_against_what_the_exported_ones_trained_on(source, tmp_path, capsys):
    """A study starting from weights model.save wrote was not warned that they had trained on its test images,
    and its export recorded test_images_seen_by_weights None; from the export itself it got both."""
    best = source / "run" / "best"
    notebook = tmp_path / "notebook"   # model.py copied beside a notebook: load() says where the weights were
    notebook.mkdir()
    shutil.copy(best / "model.py", notebook / "model.py")
    model = module_of(notebook / "model.py", "model_carry")
    net, config = model.load(best)
    with torch.no_grad():
        net.head[3].bias += 0.5
    tuned = model.save(net, config, tmp_path / "tuned")
    assert (tuned / "trained_on.json").read_bytes() == (best / "trained_on.json").read_bytes()
    said = model.load(tuned)[1]["fine_tuned_on"]
    assert said.startswith("not recorded: save() is not told which images") and str(best.resolve()) in said
    capsys.readouterr()
    text = STUDY.format(name="b", weights=f", transfer: full, weights: '{tuned}'", seed=1, run=tmp_path / "b",
                        data=source / "set")
    (tmp_path / "b.yaml").write_text(text)
    run_study(load_study(tmp_path / "b.yaml"), progress=False)
    assert f"space.model.weights '{tuned}' were trained or selected on " in capsys.readouterr().err
    [seen] = export_run(tmp_path / "b", tmp_path / "b_best", bootstrap=100)["test_images_seen_by_weights"]
    assert seen["weights"] == str(tuned) and seen["test_images"] >= 1
    config_alone = json.loads((best / "config.json").read_text())   # not from load(): where they were is unknown
    shutil.copy(best / "model.py", tmp_path / "other.py")
    module_of(tmp_path / "other.py", "model_unknown").save(net, config_alone, tmp_path / "unknown")
    assert not (tmp_path / "unknown" / "trained_on.json").exists()
    assert "nor was the folder of the weights they started from" in json.loads(
        (tmp_path / "unknown" / "config.json").read_text())["fine_tuned_on"]


def test_an_export_does_not_replace_fine_tuned_weights(source, tmp_path, capsys):
    """`searchlab export RUN --out DIR` replaced a folder model.save wrote without a word, and so did the
    after-run export once save(..., replace_export=True) had put fine-tuned weights in runs/X/best."""
    run = tmp_path / "run"
    shutil.copytree(source / "run", run)
    best = run / "best"
    model = module_of(best / "model.py", "model_replace")
    net, config = model.load(best)
    model.save(net, config, tmp_path / "tuned")
    with pytest.raises(ExportError, match=f"--out {tmp_path / 'tuned'} holds fine-tuned weights that model.save "
                                          "wrote .*Fix: move them out first \\(mv .*\\), or name another --out"):
        export_run(run, tmp_path / "tuned", bootstrap=100)
    assert "fine_tuned_from" in json.loads((tmp_path / "tuned" / "config.json").read_text())
    model.save(net, config, best, replace_export=True)   # on purpose, in the run's own export folder
    weights = (best / "weights.safetensors").read_bytes()
    study = tmp_path / "a.yaml"
    study.write_text(STUDY.format(name="a", weights="", seed=0, run=run, data=source / "set"))
    from searchlab.cli import main

    capsys.readouterr()
    assert main(["run", str(study), "--no-progress", "--set", "budget.n_trials=2"]) == 1   # one more trial
    err = capsys.readouterr().err
    assert f"export skipped: --out {best} holds fine-tuned weights that model.save wrote" in err
    assert f"(after moving {best} aside, or with another --out)" in err   # the command alone is refused again
    assert (best / "weights.safetensors").read_bytes() == weights
    # nothing to run: the folder was said to hold this study's export, which "stands"; nothing failed either
    assert main(["run", str(study), "--no-progress", "--set", "budget.n_trials=2"]) == 0
    err = capsys.readouterr().err
    assert f"export: nothing ran, but {best} holds weights that model.save fine-tuned" in err and "stands" not in err
    assert (best / "weights.safetensors").read_bytes() == weights


def test_save_never_overwrites_files_it_did_not_write(source, tmp_path):
    """Saving into a notebook's folder replaced its own model.py, and a config.json that is not a JSON object
    was overwritten too (replace_export or not)."""
    best = source / "run" / "best"
    model = module_of(best / "model.py", "model_own")
    net, config = model.load(best)
    notebook = tmp_path / "notebook"
    notebook.mkdir()
    (notebook / "model.py").write_text("print('my own model')\n")
    with pytest.raises(ValueError, match=f"{notebook / 'model.py'} was not written by save\\(\\) .*Fix: save into "
                                         "a new folder"):
        model.save(net, config, notebook)
    assert (notebook / "model.py").read_text() == "print('my own model')\n"
    assert not (notebook / "weights.safetensors").exists()
    model.save(net, config, notebook / "tuned")   # the fix the error gives
    listed = tmp_path / "listed"
    listed.mkdir()
    (listed / "config.json").write_text("[1, 2]\n")
    for replace in (False, True):
        with pytest.raises(ValueError, match="config.json is not the config.json of a searchlab export or of save"):
            model.save(net, config, listed, replace_export=replace)
    assert (listed / "config.json").read_text() == "[1, 2]\n" and not (listed / "weights.safetensors").exists()
    run_copy = tmp_path / "run_copy"   # a run folder would then read as an export of these weights
    shutil.copytree(source / "run", run_copy)
    with pytest.raises(ValueError, match="is a run folder \\(it holds searchlab.json\\)"):
        model.save(net, config, run_copy)
    assert not (run_copy / "config.json").exists()
    copied = tmp_path / "copied"   # this very model.py, copied beside a notebook: nothing of the user's to lose
    copied.mkdir()
    shutil.copy(best / "model.py", copied / "model.py")
    model.save(net, config, copied)


def test_a_generator_export_loaded_by_a_classifiers_model_py_gets_advice_that_works(source, tmp_path):
    """model.load(GAN export) from a classifier export's module advised model.load_generator(dir), which that
    module has not: an AttributeError."""
    from searchlab.models import generator_source
    from searchlab.models.fine_tuning import safetensors_bytes
    from searchlab.models.gan import build_generator

    gan = tmp_path / "gan"
    gan.mkdir()
    spec = {"family": "dcgan", "image_size": 16, "channels": 1, "args": {"latent": 8, "width": 8, "n_classes": 0}}
    state = build_generator("dcgan", 16, 1, **spec["args"]).state_dict()
    (gan / "weights.safetensors").write_bytes(safetensors_bytes({k: v.contiguous() for k, v in state.items()}))
    (gan / "config.json").write_text(json.dumps({"format": "searchlab-generator/1", "generator": spec}))
    (gan / "model.py").write_text(generator_source())
    model = module_of(source / "run" / "best" / "model.py", "model_classifier")
    with pytest.raises(ValueError, match="Fix: load each export with its own module: ") as error:
        model.load(gan)
    scope: dict = {}
    exec(str(error.value).split("its own module: ", 1)[1], scope)   # the fix, as the error gives it
    assert scope["m"].sample_images(scope["G"], 2).shape == (2, 1, 16, 16)


def test_a_fine_tuned_folder_keeps_the_threshold_but_says_it_was_chosen_for_other_weights():
    """A youden threshold 'chosen on val by trial 0' stayed at the top of a fine-tuned folder's config.json,
    as if chosen for the new weights, beside the export's test split size."""
    from searchlab.models.fine_tuning import BEFORE_FINE_TUNING, KEPT_THRESHOLD, fine_tuned_config

    exported = {"task": "binary", "threshold": 0.4029, "weights_sha256": "a" * 64, "test_size": 26,
                "threshold_choice": {"rule": "youden", "split": "val"}, "test_metrics": {"auc": 0.9}}
    tuned = fine_tuned_config(exported, "b" * 64)
    assert tuned["threshold"] == 0.4029 and tuned["threshold_choice"] == KEPT_THRESHOLD
    assert tuned[BEFORE_FINE_TUNING]["threshold_choice"] == {"rule": "youden", "split": "val"}
    assert tuned[BEFORE_FINE_TUNING]["test_size"] == 26 and "test_size" not in tuned
    again = fine_tuned_config(tuned, "c" * 64)   # a second fine-tuning keeps what the export was
    assert again[BEFORE_FINE_TUNING] == tuned[BEFORE_FINE_TUNING] and again["threshold_choice"] == KEPT_THRESHOLD
