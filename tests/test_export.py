"""Export: spec + safetensors + model.py that a torch-only process loads and reproduces exactly."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import optuna
import pytest
import torch

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ExportError, SearchlabError
from searchlab.export.exporter import export_run
from tiny_runs import run_on_breastmnist
from torch_only import predict_without_searchlab

STUDY = """
name: exp
task: classify
space:
  model: {kind: cnn, depth: 2, width: 8, dropout: 0.1, input_scale: 2}
  optim: {lr: {float: [1.0e-3, 3.0e-3], log: true}}
  train: {batch_size: 64}
strategy: random
pruner: none
budget: {n_trials: 2, epochs: 2}
"""


def build_exported(tmp, breastmnist_root):
    """STUDY run on BreastMNIST in `tmp` and its best trial exported to tmp/best: the session fixture `exported`
    (tests/conftest.py), which this module and test_cli_streams.py read; nothing writes into run/ or best/."""
    config = export_run(run_on_breastmnist(tmp, STUDY, breastmnist_root), tmp / "best", bootstrap=200)
    return tmp, config


def test_export_writes_spec_weights_and_model_py(exported):
    tmp, config = exported
    files = {p.name for p in (tmp / "best").iterdir()}
    assert files == {"config.json", "weights.safetensors", "model.py", "test_predictions.json"}
    on_disk = json.loads((tmp / "best" / "config.json").read_text())
    assert on_disk["model"]["architecture"] == "plain_cnn" and on_disk["model"]["args"]["input_scale"] == 2
    assert on_disk["class_names"] == ["malignant", "normal, benign"]
    assert on_disk["task"] == "binary" and on_disk["threshold"] == 0.5 and on_disk["test_size"] == 156
    low, high = on_disk["test_metrics_ci95"]["auc"]
    assert low <= on_disk["test_metrics"]["auc"] <= high and high - low > 0
    assert on_disk["validation_metrics"]["auc"] == pytest.approx(max(
        t.value for t in __import__("optuna").load_study(study_name="exp",
                                                         storage=f"sqlite:///{tmp / 'run' / 'study.db'}").trials))
    assert "test" not in json.dumps(on_disk["validation_metrics"])
    # BreastMNIST's published test split holds one copy of a training image, labelled otherwise there
    assert on_disk["test_images_seen_in_search"] == {"images": 1, "labelled_otherwise": 1, "test_rows": [76]}
    umask = os.umask(0)
    os.umask(umask)   # an export is for sharing: the modes any folder and file made here would have
    assert (tmp / "best").stat().st_mode & 0o777 == 0o777 & ~umask
    assert {p.stat().st_mode & 0o777 for p in (tmp / "best").iterdir()} == {0o666 & ~umask}


def test_torch_only_process_reproduces_the_recorded_test_predictions(exported, breastmnist_root):
    tmp, _ = exported
    fresh = predict_without_searchlab(tmp / "best", breastmnist_root / "breastmnist.npz")
    recorded = np.array(json.loads((tmp / "best" / "test_predictions.json").read_text())["probabilities"])
    assert fresh.shape == (156,) and np.array_equal(fresh, recorded)


def test_model_py_reads_safetensors_like_the_library(exported):
    from safetensors.torch import load_file

    from searchlab.models.standalone import read_safetensors

    tmp, _ = exported
    ours, theirs = read_safetensors(tmp / "best" / "weights.safetensors"), load_file(tmp / "best" / "weights.safetensors")
    assert ours.keys() == theirs.keys() and all((ours[k] == theirs[k]).all() for k in ours)


def test_an_export_records_its_making_and_its_weights_and_loads_only_its_own_weights(exported, breastmnist_root,
                                                                                     tmp_path):
    import hashlib
    import shutil

    from searchlab.models import standalone

    tmp, config = exported
    weights = (tmp / "best" / "weights.safetensors").read_bytes()
    assert config["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    assert {"exported_at_utc", "searchlab", "torch", "python", "optuna", "numpy", "scikit-learn"} <= set(
        config["made_with"])
    assert config["test_metrics_ci95_resampling"] == {"resamples": 200, "seed": 0, "of": "images"}
    splits = config["data_splits"]   # BreastMNIST's published splits, by class
    assert {s: v["images"] for s, v in splits.items()} == {"train": 546, "val": 78, "test": 156}
    assert splits["test"]["per_class"] == {"malignant": 42, "normal, benign": 114}
    assert config["threshold_choice"]["rule"] == "fixed"
    search = config["search"]   # the setup a methods section needs, as the run had it
    assert search["space_searched"] == {"optim.lr": "a float in [0.001, 0.003] (log scale)"}
    assert search["space_fixed"]["model.width"] == 8 and search["strategy"] == {"name": "random"}
    assert search["budget"]["n_trials"] == 2 and search["pruner"]["kind"] == "none" and search["seed"] == 0
    assert search["software"]["torch"] == torch.__version__ and "optuna" in search["software"]   # the search's
    assert config["positive_class"].startswith("'normal, benign' (class_names[1]): sensitivity and average_prec")
    record = optuna.load_study(study_name="exp", storage=f"sqlite:///{tmp / 'run' / 'study.db'}").user_attrs
    assert record["searchlab"]["study_file_text"] == (tmp / "study.yaml").read_text()   # as the run read it
    assert config["test_metrics_per_class"] == {"malignant": {"f1": config["test_metrics"]["f1_class_0"]},
                                                "normal, benign": {"f1": config["test_metrics"]["f1_class_1"]}}
    whole = (breastmnist_root / "breastmnist.npz").read_bytes()
    assert config["data_file"]["md5"] == hashlib.md5(whole).hexdigest()   # comparable with MedMNIST's own
    assert config["data_file"]["sha256"] == hashlib.sha256(whole).hexdigest() and "digest_is" in config["data_file"]
    swapped = tmp_path / "swapped"
    shutil.copytree(tmp / "best", swapped)
    state = standalone.read_safetensors(swapped / "weights.safetensors")
    from safetensors.torch import save_file

    save_file({k: v * 1.01 if v.is_floating_point() else v for k, v in state.items()},
              str(swapped / "weights.safetensors"))
    with pytest.raises(ValueError, match="is not the weights file its config.json was exported with"):
        standalone.load(swapped)


def test_predict_proba_in_a_training_loop_keeps_the_mode_and_answers_plain_mistakes(exported, breastmnist_root):
    """Users fine-tune exports in their own loops: scoring between steps must not switch dropout and batch-norm
    statistics off for the rest of the epoch; numpy input, an empty batch and a run folder get plain answers."""
    import torch

    from searchlab.models import standalone

    tmp, _ = exported
    net, config = standalone.load(tmp / "best")
    images = torch.from_numpy(np.load(breastmnist_root / "breastmnist.npz")["val_images"][:4, None].copy())
    net.train()
    standalone.predict_proba(net, config, images)
    assert net.training
    net.eval()
    assert standalone.predict_proba(net, config, images[:0]).shape == (0,) and not net.training
    with pytest.raises(TypeError, match="must be a torch.Tensor, got numpy.ndarray; for a numpy array pass "
                                        r"torch.from_numpy\(array\)"):
        standalone.predict_proba(net, config, images.numpy())
    with pytest.raises(FileNotFoundError, match="is not a searchlab export: it has no config.json \\(that is a "
                                                "run folder: give the folder `searchlab export` wrote"):
        standalone.load(tmp / "run")


def test_export_of_a_missing_or_unfinished_trial(exported):
    tmp, _ = exported
    with pytest.raises(ExportError, match="does not exist"):
        export_run(tmp / "run", tmp / "x", trial_number=99)


def test_export_of_a_directory_without_a_run(tmp_path):
    (tmp_path / "something.txt").write_text("x")
    with pytest.raises(SearchlabError, match="holds no searchlab run.*something.txt"):
        export_run(tmp_path, tmp_path / "out")


def test_export_cli(exported):
    tmp, _ = exported
    proc = subprocess.run([sys.executable, "-m", "searchlab.cli", "export", str(tmp / "run"), "--trial", "0",
                           "--out", str(tmp / "cli"), "--bootstrap", "100"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "exported trial 0" in proc.stdout and "auc" in proc.stdout
    assert "note: 1 of the 156 test images are pixel-for-pixel copies of training or validation images (1 of " \
        "them labelled otherwise there)" in proc.stderr
    assert (tmp / "cli" / "weights.safetensors").is_file()


def test_test_images_seen_in_search_are_counted_by_pixels_with_their_rows():
    import torch

    from searchlab.data.types import ImageSplit
    from searchlab.export.overlap import seen_in_search

    images = torch.randint(0, 256, (6, 1, 4, 4), dtype=torch.uint8)
    train = ImageSplit(images[:3], torch.tensor([0, 1, 0]))
    val = ImageSplit(images[3:4], torch.tensor([1]))
    test = ImageSplit(torch.stack([images[4], images[1], images[3], images[5]]), torch.tensor([0, 1, 0, 1]))
    assert seen_in_search(test, [train, val]) == {"images": 2, "labelled_otherwise": 1, "test_rows": [1, 2]}
    assert seen_in_search(ImageSplit(images[4:], torch.tensor([0, 1])), [train, val]) is None


def test_input_scale_upsamples_inside_the_network():
    import torch

    from searchlab.models.standalone import PlainCNN

    net = PlainCNN(1, 2, depth=2, width=4, input_scale=2).eval()
    x = torch.rand(3, 1, 28, 28)
    up = torch.nn.functional.interpolate(x, size=(56, 56), mode="bilinear", align_corners=False)
    assert net.features(up).shape[-2:] == (28, 28)   # one pooling: 56 -> 28
    assert torch.allclose(net(x), net.head(net.features(up))) and torch.allclose(net(x), net.classify(net.embed(x)))


FILES_SCRIPT = r"""
import json, sys
sys.modules["searchlab"] = None
sys.path.insert(0, sys.argv[1])
import model
net, config = model.load(sys.argv[1])
images = model.load_images(json.loads(sys.argv[2]), config)
print(json.dumps({"images": images.tolist(), "probs": model.predict_proba(net, config, images).tolist()}))
"""


def test_an_export_reads_image_files_as_the_search_did(write_study, tmp_path, capsys):
    """model.load_images decodes, converts and fits files exactly as training read them (here 12-bit values in
    16-bit PNGs of 48x32, padded to 16x16), so a deployed model's inputs match: the export's own test
    predictions come back."""
    from PIL import Image

    from searchlab.config.schema import FolderData
    from searchlab.data import load_dataset

    rng = np.random.default_rng(0)
    for cls, bright in (("a", slice(0, 24)), ("b", slice(24, 48))):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(30):
            pixels = rng.integers(0, 1200, size=(32, 48)).astype(np.uint16)
            pixels[:, bright] += 2800                                        # at most 3999: 12 bits
            Image.fromarray(pixels).save(tmp_path / "imgs" / cls / f"{i}.png")
    data = f"data: {{source: folder, path: '{tmp_path / 'imgs'}', image_size: 16, fit: pad, bit_depth: 12}}\n"
    study = ("name: files\nspace:\n  model: {kind: cnn, depth: 1, width: 4}\n  train: {batch_size: 16}\n"
             "strategy: random\npruner: none\nbudget: {n_trials: 1, epochs: 1}\n" + data)
    run_study(load_study(write_study(study)), progress=False)
    export_run(tmp_path / "run", tmp_path / "best", bootstrap=100)
    spec = json.loads((tmp_path / "best" / "config.json").read_text())["input"]
    assert spec["fit"] == "pad" and spec["bit_depth"] == 12 and spec["decoder"] == 2   # how it read the files
    ds = load_dataset(FolderData(source="folder", path=tmp_path / "imgs", image_size=16, fit="pad", bit_depth=12),
                      splits=("test",))
    assert ds.splits["test"].images.max() > 200                          # the 12 bits span black to white
    files = [str(f) for f in ds.extra["files"]["test"]]
    out = subprocess.run([sys.executable, "-c", FILES_SCRIPT, str(tmp_path / "best"), json.dumps(files)],
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    got = json.loads(out.stdout)
    assert np.array_equal(np.array(got["images"], dtype=np.uint8), ds.splits["test"].images.numpy())
    bands = ds.splits["test"].images[:, :, [0, 1, 13, 14, 15]]           # 48x32 at 1/3 is 16x11: 2 + 3 rows
    assert (bands == 0).all() and (ds.splits["test"].images[:, :, 2:13] > 0).any()
    expected = json.loads((tmp_path / "best" / "test_predictions.json").read_text())["probabilities"]
    assert np.allclose(got["probs"], expected, atol=1e-6)
    _searchlab_predict_gives_the_same(tmp_path, files, expected, capsys)


def walked_through(folder):
    return sorted(str(folder / p.name) for p in folder.glob("*.png"))


def _searchlab_predict_gives_the_same(tmp_path, files, expected, capsys):
    """`searchlab predict` on those files: a CSV row each, the same probabilities, labels at the threshold."""
    import csv

    from searchlab.cli import main

    config = json.loads((tmp_path / "best" / "config.json").read_text())
    assert main(["predict", str(tmp_path / "best"), *files, "--out", str(tmp_path / "p.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert [r["path"] for r in rows] == files
    assert np.allclose([float(r["p(b)"]) for r in rows], expected, atol=1e-5)
    assert np.allclose([float(r["p(a)"]) + float(r["p(b)"]) for r in rows], 1.0, atol=1e-5)
    assert [r["predicted"] for r in rows] == ["b" if p >= config["threshold"] else "a" for p in expected]
    folder = str(tmp_path / "imgs" / "a")
    assert main(["predict", str(tmp_path / "best"), folder, "--out", str(tmp_path / "a.csv")]) == 0
    assert main(["predict", str(tmp_path / "best"), folder, "--out", str(tmp_path / "new" / "a.csv")]) == 0
    assert (tmp_path / "new" / "a.csv").read_text() == (tmp_path / "a.csv").read_text()   # its folder made
    walked = [r["path"] for r in csv.DictReader((tmp_path / "a.csv").open())]
    assert walked == sorted(str(p) for p in (tmp_path / "imgs" / "a").glob("*.png")) and len(walked) == 30
    odd = tmp_path / "odd"   # a Latin-1 file name (UnicodeEncodeError) and a patient folder linked in (skipped)
    odd.mkdir()
    shutil.copy(files[0], odd / os.fsdecode(b"caf\xe9.png"))
    (odd / "patient").symlink_to(tmp_path / "imgs" / "a", target_is_directory=True)
    (odd / "patient" / "again").symlink_to(odd, target_is_directory=True)   # a loop: each real folder once
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "best"), str(odd), "--out", str(tmp_path / "odd.csv")]) == 0
    assert "warning: 1 file name(s) are not UTF-8 (e.g. " in capsys.readouterr().err   # pandas' reader stops there
    read = pd.read_csv(tmp_path / "odd.csv", encoding_errors="surrogateescape", dtype={"path": object})   # as said
    assert read["path"][0] == str(odd / os.fsdecode(b"caf\xe9.png"))
    with (tmp_path / "odd.csv").open(encoding="utf-8", errors="surrogateescape", newline="") as fh:
        paths = [r["path"] for r in csv.DictReader(fh)]
    (tmp_path / "imgs" / "a" / "again").unlink()
    assert paths == [str(odd / os.fsdecode(b"caf\xe9.png")), *walked_through(odd / "patient")] and len(paths) == 31
    (tmp_path / "imgs" / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "imgs" / "a" / ".DS_Store").write_bytes(b"\0")
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "best"), folder, "--out", str(tmp_path / "b.csv")]) == 0
    assert f"{folder}: left out 1 file(s) that are not images (.txt 1)" in capsys.readouterr().err
    (tmp_path / "imgs" / "a" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "imgs" / "a" / "empty.png").write_bytes(b"")
    assert main(["predict", str(tmp_path / "best"), folder, "--out", str(tmp_path / "x.csv")]) == 2
    err = capsys.readouterr().err   # every unreadable file at once, not the first of them
    assert "2 of 32 image files cannot be read:" in err and "broken.png: cannot read" in err
    assert "empty.png: cannot read image (empty file (0 bytes))" in err   # as a data set says it
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.csv.partial").exists()
    assert main(["predict", str(tmp_path / "best"), folder]) == 2   # to the terminal: not a header alone
    assert capsys.readouterr().out == ""
    _predict_prints_whole_or_nothing_and_names_a_damaged_export(tmp_path, folder, capsys)


def _predict_prints_whole_or_nothing_and_names_a_damaged_export(tmp_path, folder, capsys):
    import shutil

    from searchlab.cli import main
    from searchlab.export import predict

    chunk, predict.CHUNK = predict.CHUNK, 4   # the unreadable files come after 7 chunks of readable ones
    try:
        assert main(["predict", str(tmp_path / "best"), folder]) == 2
    finally:
        predict.CHUNK = chunk
    out, err = capsys.readouterr()
    assert out == "" and "no predictions were written" in err   # it printed the rows read before them
    assert main(["predict", str(tmp_path / "best"), str(tmp_path / "imgs" / "b"), "--out", str(tmp_path)]) == 2
    assert f"--out {tmp_path} is a folder. Fix: name the CSV file" in capsys.readouterr().err
    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "best", damaged)
    weights = damaged / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    (damaged / "config.json").write_text((damaged / "config.json").read_text().replace('"weights_sha256"', '"x"'))
    assert main(["predict", str(damaged), str(tmp_path / "imgs" / "b")]) == 2   # cut short: no digest to tell
    err = capsys.readouterr().err
    assert f"error: {damaged} cannot be loaded (" in err and "Traceback" not in err and "Fix: export the run" in err
    (damaged / "config.json").write_text("{not json")
    assert main(["predict", str(damaged), str(tmp_path / "imgs" / "b")]) == 2
    assert f"{damaged} cannot be loaded (JSONDecodeError: " in capsys.readouterr().err
    edited = json.loads((tmp_path / "best" / "config.json").read_text())
    del edited["preprocessing"], edited["threshold"]
    (damaged / "config.json").write_text(json.dumps(edited))   # a hand edit: a KeyError after the first chunk
    shutil.copy(tmp_path / "best" / "weights.safetensors", weights)
    assert main(["predict", str(damaged), str(tmp_path / "imgs" / "b")]) == 2
    err = capsys.readouterr().err
    assert f"{damaged}/config.json has no 'preprocessing', 'threshold', which predicting needs" in err, err


def test_predict_rows_name_every_class_and_the_labels_on():
    import torch

    from searchlab.export.predict import _label_text, _per_class

    assert list(_per_class(torch.tensor(0.25), "binary")) == ["0.750000", "0.250000"]
    assert list(_per_class(torch.tensor([0.9, 0.2, 0.6]), "multilabel")) == ["0.900000", "0.200000", "0.600000"]
    assert _label_text(torch.tensor([1, 0, 1]), ["effusion", "mass", "nodule"], "multilabel") == "effusion;nodule"
    assert _label_text(torch.tensor(2), ["a", "b", "c"], "multiclass") == "c"


def test_predict_applies_the_threshold_as_the_test_metrics_did_in_float64():
    """A threshold chosen between two validation scores is a float64 that float32 may round onto a probability:
    predict must call that image what the export's test metrics called it (metrics.predictions)."""
    from searchlab.metrics import predictions
    from searchlab.models.standalone import predict, predict_proba

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(1, 2))
    with torch.no_grad():   # logits (0, 15) for any image: a saturated class-1 probability
        net[1].weight.zero_(), net[1].bias.copy_(torch.tensor([0.0, 15.0]))
    config = {"task": "binary", "threshold": 0.5, "preprocessing": {"mean": [0.0], "std": [1.0]}}
    images = torch.zeros(1, 1, 1, 1, dtype=torch.uint8)
    prob = predict_proba(net, config, images)
    q = float(prob[0])
    config["threshold"] = q + (float(np.nextafter(np.float32(q), np.float32(2))) - q) / 4   # float32 rounds it to q
    assert float(np.float32(config["threshold"])) == q < config["threshold"]
    assert predictions(prob.double().numpy(), "binary", config["threshold"]).tolist() == [0]
    assert predict(net, config, images).tolist() == [0]


def test_a_split_folder_without_test_exports_as_it_ran(write_study, tmp_path):
    """train/ and val/ but no test/: no test split is carved unless test_fraction is written. The run's record
    used to write the default test_fraction out, so export carved one and refused the 'changed' data."""
    from test_data import class_folder

    from searchlab.export.ensemble import as_written

    for split, n in (("train", 12), ("val", 4)):
        class_folder(tmp_path / "set" / split, {"a": n, "b": n})
    study = ("name: splits\nspace:\n  model: {kind: cnn, depth: 1, width: 4}\n  train: {batch_size: 8}\n"
             "strategy: random\npruner: none\nbudget: {n_trials: 1, epochs: 1}\n"
             f"data: {{source: folder, path: '{tmp_path / 'set'}', image_size: 8}}\n")
    path = write_study(study)
    ostudy = run_study(load_study(path), progress=False).study
    record = ostudy.user_attrs["searchlab"]
    assert "test_fraction" in record["data_defaults"]
    export_run(tmp_path / "run", tmp_path / "best", bootstrap=10)
    export_run(path, tmp_path / "best2", bootstrap=10)   # through the study file, as written there
    assert "has no test split" in json.loads((tmp_path / "best" / "config.json").read_text())["test_note"]
    old = {k: v for k, v in record.items() if k != "data_defaults"}   # recorded before data_defaults
    assert "test_fraction" not in as_written(old)
    assert as_written({**old, "data": {**old["data"], "test_fraction": 0.0}})["test_fraction"] == 0.0


def test_a_run_that_found_medmnist_through_the_environment_exports_without_it(write_study, breastmnist_root,
                                                                               tmp_path, monkeypatch):
    """SEARCHLAB_DATA set for `run`, unset in the shell of a later `export` or `report`: the file is read
    where the run read it, not looked for in ~/.medmnist."""
    monkeypatch.setenv("SEARCHLAB_DATA", str(breastmnist_root))
    study = write_study(STUDY.replace("n_trials: 2", "n_trials: 1") + "data: {source: medmnist, name: "
                        "breastmnist, download: false}\n")
    run_study(load_study(study), progress=False)
    monkeypatch.delenv("SEARCHLAB_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))   # no ~/.medmnist to fall back on
    config = export_run(tmp_path / "run", tmp_path / "best", bootstrap=10)
    assert config["test_size"] == 156


def test_greyscale_files_for_a_colour_model_are_warned_about_and_colour_ones_for_a_grey_model_are_not(tmp_path):
    from PIL import Image

    from searchlab.export.input_range import grey_into_colour_warning

    files = []
    for i, mode in enumerate(["RGB", "RGB", "L", "I;16", "P"]):
        path = tmp_path / f"{i}.png"
        Image.new(mode, (8, 8)).save(path)
        files.append(path)
    warning = grey_into_colour_warning(files, channels=3)
    assert warning.startswith(f"2 of 5 image files (sampled) are greyscale ({files[2]}, {files[3]}), but this model "
                              "was trained on colour images")
    assert grey_into_colour_warning(files, channels=1) is None and grey_into_colour_warning(files[:2], 3) is None
    # what an export records of its training files, so that a model trained on grey files read as RGB
    # (data.channels: 3) is not told its grey files are unlike its training images
    from searchlab.export.input_range import files_were

    assert (files_were(files[2:4]), files_were(files[:2]), files_were(files)) == ("greyscale", "colour", "mixed")
    assert files_were([tmp_path / "gone.png"]) is None


def test_a_trial_number_the_study_does_not_have_says_what_to_pick():
    from searchlab.export.picking import pick_trial

    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.8))
    with pytest.raises(ExportError, match=r"^trial 99 does not exist \(the study has trials 0..0\)\. Fix: pick a "
                                          r"completed trial .* or leave out --trial for the best$"):
        pick_trial(study, 99)
    assert pick_trial(study, 0).value == 0.8


def test_predict_given_a_run_folder_names_its_export_or_the_export_command(tmp_path, capsys):
    """`searchlab predict runs/X imgs/` with runs/X a run (searchlab.json): said to be a run folder, with the
    export in it to give instead (best/ first), or the export command when it holds none."""
    from searchlab.cli import main

    run = tmp_path / "runs" / "X"
    run.mkdir(parents=True)
    (run / "searchlab.json").write_text("{}")
    (tmp_path / "img.png").write_bytes(b"")
    assert main(["predict", str(run), str(tmp_path / "img.png")]) == 2
    err = capsys.readouterr().err
    assert f"{run} is a run folder (it holds searchlab.json), not an export, and holds no export. Fix: export it " \
        f"first, searchlab export {run} --out {run / 'best'}, then searchlab predict {run / 'best'} IMAGES..." in err
    for name in ("best", "another"):
        (run / name).mkdir()
        (run / name / "config.json").write_text("{}")
    assert main(["predict", str(run), str(tmp_path / "img.png")]) == 2
    err = capsys.readouterr().err
    assert f"{run} is a run folder (it holds searchlab.json), not an export. Fix: give its export, searchlab " \
        f"predict {run / 'best'} IMAGES... (exports in it: best, another)" in err


def test_predict_runs_the_network_once_per_image(exported, tmp_path, monkeypatch, capsys):
    """`searchlab predict` took the probabilities and then the labels, each a pass through the network: every
    image went through it twice (1,002 for 501 files)."""
    import io

    from PIL import Image

    from searchlab.export import predict as predict_module

    tmp, _ = exported
    for i in range(5):
        Image.fromarray(np.full((28, 28), 40 * i, dtype=np.uint8)).save(tmp_path / f"scan{i}.png")
    through: list[int] = []
    built = predict_module._model

    def counted(export_dir, config):
        net = built(export_dir, config)
        net.register_forward_hook(lambda module, inputs, output: through.append(len(inputs[0])))
        return net

    monkeypatch.setattr(predict_module, "_model", counted)
    monkeypatch.setattr(predict_module, "CHUNK", 2)
    monkeypatch.setattr(predict_module.DecodeProgress, "FIRST", 0.0)   # a line as soon as a chunk is done
    out = io.StringIO()
    assert predict_module.predict_files(tmp / "best", [tmp_path], out) == 5
    assert sum(through) == 5 and len(out.getvalue().splitlines()) == 6
    assert "predict: read and scored 2 of 5 images in 0 s" in capsys.readouterr().err   # 3,000 files: 15 min


def test_predict_with_an_export_that_lost_its_model_py_warns_that_it_no_longer_loads_with_torch_alone(
        exported, tmp_path, capsys):
    import io
    import shutil

    from PIL import Image

    from searchlab.export.predict import predict_files

    tmp, _ = exported
    copy = tmp_path / "copy"
    shutil.copytree(tmp / "best", copy)
    (copy / "model.py").unlink()
    Image.fromarray(np.full((28, 28), 90, dtype=np.uint8)).save(tmp_path / "scan.png")
    assert predict_files(copy, [tmp_path / "scan.png"], io.StringIO()) == 1   # searchlab's own copy of the code
    assert f"warning: {copy} has no model.py, so it no longer loads with torch alone" in capsys.readouterr().err
