"""Export of top-k ensembles and test-time augmentation (TTA), checked against independent computations."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from sklearn.metrics import roc_auc_score

from searchlab.cli import main
from searchlab.config.load import load_study
from searchlab.data import ImageDataset, ImageSplit
from searchlab.engine.run import run_study
from searchlab.errors import ExportError
from searchlab.export import ensemble as ensemble_module
from searchlab.export.exporter import export_run
from searchlab.imbalance import ImbalanceSpec, choose_threshold
from searchlab.models import standalone
from torch_only import predict_without_searchlab

STUDY = """
name: ens
task: classify
space:
  model: {kind: cnn, depth: 2, width: 8, dropout: 0.1}
  optim: {lr: {float: [1.0e-3, 5.0e-3], log: true}}
  train: {batch_size: 64}
  imbalance: {threshold: youden}
strategy: random
pruner: none
budget: {n_trials: 3, epochs: 2}
"""

def _data(root, tmp, text=STUDY, name="study.yaml"):
    path = tmp / name
    path.write_text(text + f"data: {{source: medmnist, name: breastmnist, root: '{root}', download: false}}\n"
                    f"run_dir: '{tmp / name.removesuffix('.yaml')}'\n")
    return path


def _predictions(folder):
    return np.array(json.loads((folder / "test_predictions.json").read_text())["probabilities"])


def _images(root, split="test"):
    return torch.from_numpy(np.load(root / "breastmnist.npz")[f"{split}_images"][:, None].copy())


@pytest.fixture(scope="module")
def exported(tmp_path_factory, breastmnist_root):
    tmp = tmp_path_factory.mktemp("ensemble")
    run_study(load_study(_data(breastmnist_root, tmp)), progress=False)
    run = tmp / "study"
    ensemble = export_run(run, tmp / "ens", top_k=2, bootstrap=200)
    members = {t["number"]: export_run(run, tmp / f"trial{t['number']}", trial_number=t["number"], bootstrap=20)
               for t in ensemble["trials"]}
    flip = export_run(run, tmp / "flip", tta="flip", bootstrap=20)
    return tmp, run, ensemble, members, flip


def test_ensemble_config_names_the_top_trials_and_stores_members_in_one_file(exported):
    tmp, run, config, _, _ = exported
    study = optuna.load_study(study_name="ens", storage=f"sqlite:///{run / 'study.db'}")
    ranked = sorted(study.trials, key=lambda t: (-t.value, t.number))
    assert [t["number"] for t in config["trials"]] == [t.number for t in ranked[:2]]
    assert [t["value"] for t in config["trials"]] == [t.value for t in ranked[:2]]
    assert all(t["validation_metrics"]["auc"] == t["value"] for t in config["trials"])
    on_disk = json.loads((tmp / "ens" / "config.json").read_text())
    assert on_disk["model"]["architecture"] == "ensemble" and len(on_disk["model"]["members"]) == 2
    assert on_disk["preprocessing"] == [ranked[0].user_attrs["preprocessing"], ranked[1].user_attrs["preprocessing"]]
    assert on_disk["threshold_choice"] == {"rule": "youden", "as_trial": ranked[0].number, "split": "val",
                                           "val_size": 78}
    low, high = on_disk["test_metrics_ci95"]["auc"]
    assert low <= on_disk["test_metrics"]["auc"] <= high and "auc" in on_disk["validation_metrics"]
    weights = standalone.read_safetensors(tmp / "ens" / "weights.safetensors")
    assert {k.split(".")[1] for k in weights} == {"0", "1"} and all(k.startswith("members.") for k in weights)


def test_torch_only_process_reproduces_the_ensemble_predictions(exported, breastmnist_root):
    tmp = exported[0]
    npz = str(breastmnist_root / "breastmnist.npz")
    fresh = predict_without_searchlab(tmp / "ens", Path(npz))
    assert fresh.shape == (156,) and np.array_equal(fresh, _predictions(tmp / "ens"))


def test_ensemble_averages_its_members_and_rechooses_the_threshold_on_validation(exported, breastmnist_root):
    tmp, _, config, members, _ = exported
    numbers = [t["number"] for t in config["trials"]]
    mean = np.mean([_predictions(tmp / f"trial{n}") for n in numbers], axis=0)
    assert np.allclose(_predictions(tmp / "ens"), mean, rtol=0, atol=1e-6)
    # validation: the members' own exports, averaged, and youden's rule give the ensemble's threshold
    val = _images(breastmnist_root, "val")
    val_probs = np.mean([standalone.predict_proba(*standalone.load(tmp / f"trial{n}"), val).numpy() for n in numbers],
                        axis=0)
    labels = np.load(breastmnist_root / "breastmnist.npz")["val_labels"].reshape(-1)
    expected = choose_threshold(ImbalanceSpec(threshold="youden"), "binary", labels, val_probs)
    assert config["threshold"] == pytest.approx(expected, abs=1e-6)
    assert members[numbers[0]]["tta"] == "none"   # a member exported alone keeps its trial's own threshold
    assert members[numbers[0]]["threshold_choice"] == {"rule": "youden", "split": "val",
                                                       "chosen_by": f"trial {numbers[0]}, on its val predictions"}


def test_greedy_select_scores_refit_trials_on_the_validation_split(exported, breastmnist_root, capsys):
    tmp, run, _, _, _ = exported
    study = optuna.load_study(study_name="ens", storage=f"sqlite:///{run / 'study.db'}")
    ranked = sorted(study.trials, key=lambda t: (-t.value, t.number))
    config = export_run(run, tmp / "greedy", top_k=3, select="greedy", bootstrap=20)
    selection = config["selection"]
    assert selection["split"] == "val" and selection["held_out_size"] == 78 and selection["metric"] == "auc"
    assert selection["candidates"] == [t.number for t in ranked]
    # no TTA: the best trial alone scores what the study stored for it, and each addition raises the AUC
    assert selection["steps"][0] == {"added": ranked[0].number, "auc": pytest.approx(ranked[0].value, abs=1e-9)}
    scores = [step["auc"] for step in selection["steps"]]
    assert all(later > earlier for earlier, later in zip(scores, scores[1:]))
    kept = [step["added"] for step in selection["steps"]]
    assert kept == ([t["number"] for t in config["trials"]] if len(kept) > 1 else [config["trial"]["number"]])
    val_labels = np.load(breastmnist_root / "breastmnist.npz")["val_labels"].reshape(-1)
    exported_val = standalone.predict_proba(*standalone.load(tmp / "greedy"), _images(breastmnist_root, "val"))
    assert roc_auc_score(val_labels, exported_val.numpy()) == pytest.approx(scores[-1], abs=1e-9)
    with pytest.raises(ExportError, match="--select greedy chooses ensemble members among the --top-k K"):
        export_run(run, tmp / "greedy-one", select="greedy")
    assert main(["export", str(run), "--top-k", "3", "--select", "greedy", "--out", str(tmp / "greedy-cli"),
                 "--bootstrap", "100"]) == 0
    assert f"(greedy pick of 3) to {tmp / 'greedy-cli'}" in capsys.readouterr().out
    assert json.loads((tmp / "greedy-cli" / "config.json").read_text())["selection"] == selection


def test_tta_flip_averages_the_image_and_its_mirror(exported, breastmnist_root):
    tmp, _, _, _, flip = exported
    config = json.loads((tmp / "flip" / "config.json").read_text())
    assert config["tta"] == "flip" and config["threshold_choice"]["rule"] == "youden"
    assert "threshold" in config["trial"] and "auc" in config["trial"]["validation_metrics"]
    net = standalone.build_model(config["model"])
    net.load_state_dict(standalone.read_safetensors(tmp / "flip" / "weights.safetensors"))
    net.eval()
    mean = torch.tensor(config["preprocessing"]["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(config["preprocessing"]["std"]).view(1, -1, 1, 1)
    x = _images(breastmnist_root).float() / 255
    with torch.no_grad():
        p = [torch.softmax(net((v - mean) / std), dim=1)[:, 1] for v in (x, torch.flip(x, dims=[3]))]
    assert np.allclose(_predictions(tmp / "flip"), ((p[0] + p[1]) / 2).numpy(), rtol=0, atol=1e-6)


def test_dihedral_is_rotation_invariant_and_refuses_non_square_images(exported, breastmnist_root, monkeypatch):
    tmp, run = exported[0], exported[1]
    net, config = standalone.load(tmp / "ens")
    config = {**config, "tta": "dihedral"}
    images = _images(breastmnist_root)[:32]
    turned = standalone.predict_proba(net, config, torch.rot90(images, 1, dims=(2, 3)))
    assert torch.allclose(turned, standalone.predict_proba(net, config, images), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="must be N x 1 x 28 x 28 as in training"):
        standalone.predict_proba(net, config, images[..., :20])
    with pytest.raises(ValueError, match="must be uint8"):   # [0, 1] floats would be scored as near-black
        standalone.predict_proba(net, config, images.float() / 255)
    unchecked = {k: v for k, v in config.items() if k != "input"}
    with pytest.raises(ValueError, match="square"):
        standalone.predict_proba(net, unchecked, images[..., :20])
    real = ensemble_module.load_dataset

    def cropped(*args, **kwargs):   # the same data set with 28x20 images
        data = real(*args, **kwargs)
        splits = {k: ImageSplit(s.images[..., :20].contiguous(), s.labels) for k, s in data.splits.items()}
        return ImageDataset(splits, data.class_names, data.kind)

    monkeypatch.setattr(ensemble_module, "load_dataset", cropped)
    with pytest.raises(ExportError, match="square images.*28x20.*--tta flip"):
        export_run(run, tmp / "dihedral", tta="dihedral", bootstrap=20)
    assert not (tmp / "dihedral").exists()


def test_multi_objective_study_has_no_top_k(breastmnist_root, tmp_path):
    text = STUDY.replace("n_trials: 3, epochs: 2", "n_trials: 1, epochs: 1") + "objective: [auc, params]\n"
    run_study(load_study(_data(breastmnist_root, tmp_path, text, "multi.yaml")), progress=False)
    with pytest.raises(ExportError, match="2 objectives.*--trial N"):
        export_run(tmp_path / "multi", tmp_path / "out", top_k=2)


def test_a_dominated_trial_and_a_replaced_export_are_said(exported, capsys):
    from optuna.trial import create_trial

    from searchlab.export.export_notes import warn_about_export
    from searchlab.export.picking import dominated_by_front as _dominated

    study = optuna.create_study(directions=["maximize", "minimize"])
    for values in ([0.90, 100.0], [0.80, 200.0], [0.85, 50.0]):   # the second is worse in both than the first
        study.add_trial(create_trial(values=values))
    trials = study.get_trials()
    assert _dominated(study, trials[1]) == [0, 2] and _dominated(study, trials[0]) == []
    warn_about_export({"task": "binary", "class_names": ["a", "b"], "trial": {"number": 1},
                       "dominated_by_front": [0, 2]})
    assert capsys.readouterr().err.startswith("warning: trial 1 is not on the Pareto front (trials 0, 2)")

    tmp, run, ensemble = exported[0], exported[1], exported[2]
    assert main(["export", str(run), "--out", str(tmp / "again"), "--bootstrap", "100"]) == 0
    assert "replaced" not in capsys.readouterr().err
    assert main(["export", str(run), "--out", str(tmp / "again"), "--top-k", "2", "--bootstrap", "100"]) == 0
    best = ensemble["trials"][0]["number"]
    err = capsys.readouterr().err
    assert f"note: replaced the earlier export in {tmp / 'again'} (trial {best} of study 'ens')" in err
    # every export scored the test split, and the study counts them: picking the best of them is selection
    scored = json.loads((tmp / "again" / "config.json").read_text())["test_split_scored"]
    assert scored["times"] >= 3 and scored["times"] == len(scored["earlier_exports"]) + 1
    assert f"has now been scored by {scored['times']} exports" in err
    assert scored["earlier_exports"][-1]["out"] == str((tmp / "again").resolve())
    assert "test_metrics" not in scored["earlier_exports"][-1]   # test scores stay out of the study
    assert main(["status", str(run)]) == 0
    assert f"the test split was scored by {scored['times']} export(s)" in capsys.readouterr().out



def test_one_model_scored_again_is_no_selection_on_the_test_split():
    """A resume that kept the best trial exports it again: the note said that reporting the best of the two
    exports' (equal) scores selected on the test split."""
    from searchlab.export.scorings import scorings_note

    same = {"trials": [3], "tta": "none"}
    earlier = [{**same, "at_utc": "2026-12-06T10:00:00+00:00", "out": "/r/best"}]
    assert scorings_note({"times": 2, "earlier_exports": earlier, "this": same}) is None
    other = {"trials": [3], "tta": "flip"}
    assert "has now been scored by 2 exports" in scorings_note({"times": 2, "earlier_exports": earlier,
                                                                 "this": other})


def test_argument_errors(exported, capsys):
    tmp, run = exported[0], exported[1]
    with pytest.raises(ExportError, match="--trial 0 exports one trial and --top-k 2"):
        export_run(run, tmp / "x", trial_number=0, top_k=2)
    with pytest.raises(ExportError, match="--top-k 5 needs 5 completed trials.*has 3"):
        export_run(run, tmp / "x", top_k=5)
    with pytest.raises(ExportError, match="unknown --tta"):
        export_run(run, tmp / "x", tta="rotate")
    with pytest.raises(ExportError, match="--bootstrap must be at least 1 \\(got 0\\)"):
        export_run(run, tmp / "x", bootstrap=0)
    assert main(["export", str(run), "--out", str(tmp / "x"), "--trial", "0", "--top-k", "2"]) == 2
    assert "error: --trial 0 exports one trial" in capsys.readouterr().err
    assert not (tmp / "x").exists()


def test_export_cli_round_trip(exported, breastmnist_root):
    tmp, run, ensemble = exported[0], exported[1], exported[2]
    proc = subprocess.run([sys.executable, "-m", "searchlab.cli", "export", str(run), "--top-k", "2", "--tta", "flip",
                           "--out", str(tmp / "cli"), "--bootstrap", "100"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    numbers = ", ".join(str(t["number"]) for t in ensemble["trials"])
    assert f"exported ensemble of trials {numbers} with tta flip to" in proc.stdout and "auc" in proc.stdout
    net, config = standalone.load(tmp / "cli")
    assert config["tta"] == "flip" and isinstance(net, standalone.Ensemble)
    assert np.array_equal(standalone.predict_proba(net, config, _images(breastmnist_root)).numpy(),
                          _predictions(tmp / "cli"))


def test_study_export_settings_apply_after_run_and_shrink_to_the_completed_trials(breastmnist_root, tmp_path, capsys):
    text = STUDY.replace("n_trials: 3", "n_trials: 2") + "export: {after_run: true, top_k: 3, tta: flip, bootstrap: 100}\n"
    path = _data(breastmnist_root, tmp_path, text)
    assert main(["run", str(path), "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert "2 completed trial(s), fewer than export.top_k=3; exporting the 2 best" in captured.err
    net, config = standalone.load(tmp_path / "study" / "best")
    assert isinstance(net, standalone.Ensemble) and len(config["trials"]) == 2 and config["tta"] == "flip"
    auc, (low, high) = config["test_metrics"]["auc"], config["test_metrics_ci95"]["auc"]
    assert f"exported:  {tmp_path / 'study' / 'best'}" in captured.out   # the summary says what it scored
    assert f"test auc {auc:.3f} [{low:.3f}, {high:.3f}], accuracy" in captured.out


class _TopLeftCorner(torch.nn.Module):
    """Class 1's logit is the brightness of the top-left quadrant: right for upright images only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        corner = x[:, 0, :14, :14].mean(dim=(1, 2)) * 10
        return torch.stack([torch.zeros_like(corner), corner], dim=1)


def test_tta_that_lowers_the_validation_objective_is_recorded_and_flip_that_does_not_is_not(exported,
                                                                                             monkeypatch):
    """Views the trials never trained on can make TTA worse than none: a network that reads the top-left corner
    scores upright images perfectly, and averaged over the 8 dihedral views it sees every corner alike."""
    from searchlab.engine.rundir import open_run
    from searchlab.export.selection import weaker_with_tta

    _, run_dir, _, _, _ = exported
    labels = torch.tensor([0, 1] * 20)
    images = torch.zeros((40, 1, 28, 28), dtype=torch.uint8)
    images[labels == 1, :, :14] = 200   # class 1: bright top half, class 0: bright bottom half; a mirror
    images[labels == 0, :, 14:] = 200   # keeps them apart, the 8 views put every half in the corner alike
    monkeypatch.setattr(ensemble_module, "load_dataset", lambda *a, **k: ImageDataset(
        splits={"val": ImageSplit(images, labels)}, class_names=("a", "b"), kind="binary"))
    run = open_run(run_dir)
    trials = [run.study.best_trial]
    config = {"task": "binary", "class_names": ["a", "b"], "preprocessing": {"mean": [0.0], "std": [1.0]}}
    worse = weaker_with_tta(run, _TopLeftCorner(), {**config, "tta": "dihedral"}, trials)
    assert worse is not None and worse["metric"] == "auc" and worse["tta"] == "dihedral"
    assert worse["without_tta"] == 1.0 and worse["with_tta"] < 1.0
    assert weaker_with_tta(run, _TopLeftCorner(), {**config, "tta": "flip"}, trials) is None
    assert weaker_with_tta(run, _TopLeftCorner(), {**config, "tta": "none"}, trials) is None


def test_a_rechosen_fixed_threshold_claims_no_tuning_and_rescored_metrics_say_what_they_are():
    from searchlab.export.provenance import rechosen

    fixed = rechosen("fixed", 3, "val", 78, "binary")
    assert fixed["threshold_choice"] == {"rule": "fixed", "note": "0.5 (imbalance.threshold: fixed), not tuned on "
                                                                  "any data"}
    assert "on the val split (78 images)" in fixed["validation_metrics_are"]
    tuned = rechosen("youden", 3, "out-of-fold train+val", 624, "binary")
    assert tuned["threshold_choice"] == {"rule": "youden", "as_trial": 3, "split": "out-of-fold train+val",
                                         "val_size": 624}
    assert "out-of-fold predictions over train+val (624 images" in tuned["validation_metrics_are"]
    assert "optimistic: test_metrics are the unbiased ones" in tuned["validation_metrics_are"]
