"""What a GAN study says about settings and feature networks that would make its verdicts mean nothing.

The audit's cases: a 1-epoch classifier export as `task.features` (52% on real validation images, two classes)
got a trial marked `suspect: ignores its labels` at 50%, blaming the generator for its judge. And GAN trials
train where `executor.device` says, as classify trials do.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from PIL import Image

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError
from searchlab.export.exporter import export_run
from searchlab.gan.metrics import SampleStats
from searchlab.tasks.generate import judge_at_chance_warning, suspicions
from test_synthetic_leak import FEATURES, PER_CLASS, write
from test_synthetic_leak import GAN as LEAK_GAN

GAN = LEAK_GAN.replace("iterations: 40", "iterations: 20")   # the leak tests' tiny studies, half the steps


def same_noise_folder(root: Path) -> Path:
    """Two classes of the same grey noise: no classifier can tell them apart, so one is at chance on them."""
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        for i in range(PER_CLASS):
            path = root / cls / f"{i:02d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.clip(120 + rng.normal(0, 30, (28, 28)), 0, 255).astype(np.uint8), "L").save(path)
    return root


def stats(label_agreement: float) -> SampleStats:
    return SampleStats(medfid=0.02, kid=0.0, precision=1.0, recall=1.0, copying=0.0, duplicates=0.0,
                       label_agreement=label_agreement)


def floors(label_agreement_floor: float) -> dict[str, float]:
    return {"copying_floor": 0.0, "duplicates_floor": 0.0, "label_agreement_floor": label_agreement_floor}


def test_a_generator_is_not_blamed_for_ignoring_its_labels_when_the_judge_is_at_chance_on_real_images():
    assert suspicions(stats(0.50), floors(0.52), n_classes=2) == ""   # the audit's trial: the judge is blind
    assert suspicions(stats(0.50), floors(0.88), n_classes=2).startswith("ignores its labels")   # a judge that sees
    assert judge_at_chance_warning(floors(0.88), 2, "cls") == ""
    assert judge_at_chance_warning({"copying_floor": 0.0}, 2, "cls") == ""   # no head for this data's classes
    said = judge_at_chance_warning(floors(0.52), 2, "cls_t0")
    assert "task.features (cls_t0)" in said and "52%" in said and "no more than 5 points above chance (50%)" in said
    assert "Fix: train the classifier exported as task.features longer" in said
    assert judge_at_chance_warning(floors(0.0), 2, "cls")   # always wrong: it would fail a generator that obeys
    assert "Fix: name as task.features" in judge_at_chance_warning(floors(0.3), 3, None)   # the purpose-trained one


def test_a_gan_run_whose_feature_network_is_at_chance_says_so_at_start_and_marks_no_trial_deaf(tmp_path, capsys):
    folder = tmp_path
    same_noise_folder(folder / "images")
    run_study(load_study(write(folder, "features", FEATURES)), progress=False)
    export_run(folder / "features_run", folder / "features", bootstrap=10)
    capsys.readouterr()
    run_study(load_study(write(folder, "gan", GAN)), progress=False)
    err = capsys.readouterr().err
    trial = optuna.load_study(study_name="gan", storage=f"sqlite:///{folder / 'gan_run' / 'study.db'}").trials[0]
    floor = trial.user_attrs["metrics"]["label_agreement_floor"]
    agreement = trial.user_attrs["metrics"]["label_agreement"]
    assert floor <= 0.55 and agreement <= 0.55, (floor, agreement)   # the audit's case (else this proves nothing)
    assert err.count("warning: the MedFID feature network, task.features (features), puts only") == 1
    assert "ignores its labels" not in err and "ignores its labels" not in trial.user_attrs.get("suspect", "")
    assert trial.user_attrs["device"] == "cpu"   # where it trained (executor.device auto, no GPU here)
    if not torch.cuda.is_available():   # device cuda on this machine: refused before any network is trained
        cuda = {"executor.device": "cuda", "run_dir": str(folder / "cuda_run")}
        with pytest.raises(ConfigError, match="this machine's torch sees no CUDA GPU"):
            run_study(load_study(folder / "gan.yaml", overrides=cuda), progress=False)
        assert not (folder / "cuda_run").exists()


def test_a_gan_study_takes_executor_device_and_a_gpu_share_as_a_classify_study_does(tmp_path):
    """GAN trials trained on the CPU, and `executor.device: cuda` and a Ray GPU share were refused in a GAN study."""
    same_noise_folder(tmp_path / "images")
    path = write(tmp_path, "gan", GAN)
    for device in ("cuda", "cpu", "auto"):
        assert load_study(path, overrides={"executor.device": device}).config.executor.device == device
    gpu = load_study(path, overrides={"executor.kind": "ray", "executor.resources_per_trial.gpu": 0.5})
    assert gpu.config.executor.resources_per_trial.gpu == 0.5
