"""What a GAN study says about settings and feature networks that would make its verdicts mean nothing.

The audit's cases: a 1-epoch classifier export as `task.features` (52% on real validation images, two classes)
got a trial marked `suspect: ignores its labels` at 50%, blaming the generator for its judge; and
`executor.device: cuda` in a GAN study trained on the CPU without a word, while budget.epochs is refused.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest
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


@pytest.mark.parametrize("how", ["file", "--set"])
def test_executor_device_cuda_in_a_gan_study_is_refused_as_budget_epochs_is(tmp_path, how):
    folder = tmp_path
    same_noise_folder(folder / "images")
    cuda = "executor: {device: cuda}\n" if how == "file" else ""
    path = write(folder, "gan", GAN + cuda)
    with pytest.raises(ConfigError) as exc:
        load_study(path, overrides={"executor.device": "cuda"} if how == "--set" else None)
    said = str(exc.value)
    assert "executor.device" in said and "GAN (generate) trials train on the CPU" in said and "cuda" in said
    assert "Fix: remove executor.device" in said
    for fine in ("cpu", "auto"):   # where a GAN trains anyway, and the default
        assert load_study(path if how == "--set" else write(folder, "gan", GAN),
                          overrides={"executor.device": fine}).config.executor.device == fine


def test_a_gpu_share_in_a_gan_study_is_refused_and_an_idle_gpu_said(tmp_path, monkeypatch):
    """A Ray GPU share was held idle by every GAN trial, and a GPU machine's GAN run said nothing of training
    on the CPU."""
    from searchlab.tasks.generate import idle_gpu_warning

    same_noise_folder(tmp_path / "images")
    path = write(tmp_path, "gan", GAN)
    with pytest.raises(ConfigError) as exc:
        load_study(path, overrides={"executor.resources_per_trial.gpu": 0.5})
    said = str(exc.value)
    assert "executor.resources_per_trial.gpu" in said and "held idle" in said and "0.5" in said
    assert "Fix: remove resources_per_trial.gpu" in said
    study = load_study(path)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert "GAN (generate) trials train on the CPU" in idle_gpu_warning(study)
    assert idle_gpu_warning(load_study(path, overrides={"executor.device": "cpu"})) is None
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert idle_gpu_warning(study) is None
