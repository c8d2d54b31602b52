"""Fixes from an audit of GAN users: compare across feature networks, GAN budgets, dominated exports, the
MedFID cache on a refused resume, sample's advice on a multi-objective run, the MedFID floor's sample size."""
from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError
from searchlab.gan import features as gan_features
from searchlab.gan.features import CACHE_DIR
from searchlab.models.standalone import load
from searchlab.tasks.generate import GenerateTask
from test_gan_scoring import STUDY

GAN = STUDY.replace("conditional: true", "conditional: false")


def _gan_run(folder: Path, trials: list[tuple[list[float], str]], objectives=(("medfid", "minimize"),)) -> Path:
    """A run folder as `searchlab run` leaves a GAN study: its record, and trials with the user attrs searchlab
    writes (values, the feature network's digest), without training anything."""
    folder.mkdir(parents=True)
    url = f"sqlite:///{folder / 'study.db'}"
    study = optuna.create_study(study_name="gan", storage=url, directions=[d for _, d in objectives])
    study.set_user_attr("searchlab", {"objectives": [list(o) for o in objectives], "seed": 0, "task": "generate",
                                      "data": {"source": "medmnist", "name": "breastmnist"}})
    for i, (values, digest) in enumerate(trials):
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.COMPLETE, values=values, params={"latent": 16 + i},
            distributions={"latent": optuna.distributions.CategoricalDistribution([16, 17, 18, 19])},
            user_attrs={"medfid_features": digest, "metrics": dict(zip([m for m, _ in objectives], values)),
                        "generator": {"family": "dcgan", "image_size": 28, "channels": 1, "args": {}}}))
    (folder / "searchlab.json").write_text(json.dumps({"study_name": "gan", "storage": url}))
    return folder


def test_compare_warns_when_gan_runs_were_scored_in_different_feature_networks(tmp_path, capsys):
    """Each run folder trains its own MedFID feature network: one generator scored 24.12 in one run and 5.04 in
    another, and compare drew the two runs' curves side by side without a word."""
    from searchlab.report.compare import compare_runs

    r2 = _gan_run(tmp_path / "r2", [([24.12], "da941466aaaaaaaa")])
    r3 = _gan_run(tmp_path / "r3", [([5.04], "26df7d18bbbbbbbb")])
    path, _, _ = compare_runs([r2, r3], tmp_path / "compare.html")
    err = capsys.readouterr().err
    assert f"warning: these runs' GAN trials were scored with different MedFID feature networks ({r2}: " \
           f"da941466aaaaaaaa; {r3}: 26df7d18bbbbbbbb)" in err
    assert "copy one run's medfid_features/ folder into the other" in err
    assert "different MedFID feature networks" in path.read_text()
    same = _gan_run(tmp_path / "r4", [([9.0], "da941466aaaaaaaa")])
    compare_runs([r2, same], tmp_path / "same.html")                     # one network: nothing said
    assert "feature network" not in capsys.readouterr().err


@pytest.mark.parametrize("key, value", [("max_params", 1000), ("max_flops", 1e6), ("max_depth", 3)])
def test_architecture_limits_in_a_gan_study_are_refused(write_study, key, value):
    """GAN trials are not costed: a trial under max_params 1000 completed with a 109,059-parameter generator,
    and the run's record said max_params 1000."""
    with pytest.raises(ConfigError) as info:
        load_study(write_study(GAN.replace("budget: {", f"budget: {{{key}: {value}, ")))
    assert (info.value.key, info.value.got) == (f"budget.{key}", value)
    assert "not costed" in str(info.value) and "train_seconds" in info.value.fix
    with pytest.raises(ConfigError, match=rf"\(--set budget.{key}\)"):
        load_study(write_study(GAN), {f"budget.{key}": value})
    load_study(write_study(GAN.replace("seed: 0", "seed: 0\nobjective: [medfid, train_seconds]")))   # the advice loads


@pytest.fixture(scope="module")
def gan_mo(tmp_path_factory, breastmnist_root, extractor_run) -> Path:
    """A two-objective GAN run of two trials (medfid, kid), trial 1 made dominated by trial 0 (its values set
    in the database, as a search may well end)."""
    import shutil
    import sqlite3

    folder = tmp_path_factory.mktemp("gan_mo")
    run = folder / "run"
    shutil.copytree(extractor_run / CACHE_DIR, run / CACHE_DIR)
    study_file = folder / "gan.yaml"
    data = f"{{source: medmnist, name: breastmnist, root: '{breastmnist_root}', download: false}}"
    study_file.write_text(GAN.replace("n_trials: 1", "n_trials: 2") + "objective: [medfid, kid]\n"
                          f"data: {data}\nrun_dir: '{run}'\n")
    run_study(load_study(study_file), progress=False)
    with sqlite3.connect(run / "study.db") as db:
        ids = [row[0] for row in db.execute("SELECT trial_id FROM trials ORDER BY number")]
        for trial_id, values in zip(ids, ([1.0, 0.1], [2.0, 0.2])):
            for objective, value in enumerate(values):
                db.execute("UPDATE trial_values SET value = ? WHERE trial_id = ? AND objective = ?",
                           (value, trial_id, objective))
    return run


def test_exporting_a_dominated_gan_trial_warns_and_records_the_front(gan_mo, tmp_path, capsys):
    """A classifier export of a trial off the Pareto front warns and records `dominated_by_front`; a
    generator's said nothing and recorded nothing."""
    from searchlab.cli import main

    assert main(["export", str(gan_mo), "--trial", "1", "--out", str(tmp_path / "g1")]) == 0
    err = capsys.readouterr().err
    assert "warning: trial 1 is not on the Pareto front (trials 0)" in err and "--trial N" in err
    assert json.loads((tmp_path / "g1" / "config.json").read_text())["dominated_by_front"] == [0]
    assert main(["export", str(gan_mo), "--trial", "0", "--out", str(tmp_path / "g0")]) == 0   # on the front
    assert "Pareto" not in capsys.readouterr().err
    assert "dominated_by_front" not in json.loads((tmp_path / "g0" / "config.json").read_text())


def _trained_with_seed(extractor_run):
    """_train_extractor in a second: the session's network, its weights shifted by the seed (seed 0: itself)."""
    def train(data, seed):
        net, config = load(extractor_run / CACHE_DIR)
        with torch.no_grad():
            for tensor in net.parameters():
                tensor.add_(seed * 1e-3)
        return net, {k: v for k, v in config.items() if k not in ("fingerprint", "seed")}
    return train


def test_a_refused_resume_leaves_the_cached_feature_network_alone(write_study, tmp_path, extractor_run,
                                                                 monkeypatch, capsys):
    """With the cache deleted, a resume with another seed trained a network, wrote it into the cache, then was
    refused; the resume with the original seed then found that network, printed a false note and was refused."""
    monkeypatch.setattr(gan_features, "_train_extractor", _trained_with_seed(extractor_run))
    net, config = load(extractor_run / CACHE_DIR)
    original = gan_features.PenultimateFeatures(net, config["preprocessing"]).digest   # what the trials used
    study = load_study(write_study(GAN.replace("seed: 0", "seed: 5")))
    study.run_dir.mkdir()
    ostudy = optuna.create_study(study_name="gan", storage=study.storage_url)
    ostudy.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=20.0, user_attrs={
        "medfid_features": original}))
    with pytest.raises(ConfigError, match=f"scored with MedFID feature network {original}"):
        GenerateTask(study.config.task).prepare(study)
    assert not (tmp_path / "run" / CACHE_DIR).exists()
    capsys.readouterr()
    resumed = load_study(write_study(GAN))   # seed 0, as the trials were scored
    GenerateTask(resumed.config.task).prepare(resumed)
    assert "MedFID keeps" not in capsys.readouterr().err
    assert json.loads((tmp_path / "run" / CACHE_DIR / "config.json").read_text())["seed"] == 0


def test_the_note_that_medfid_keeps_the_runs_network_is_said_once_per_run(write_study, tmp_path, extractor_run,
                                                                           capsys):
    """A run's preparation and its trials each open the feature network (two task objects): the note that a
    resume with another seed keeps the cached network was printed twice."""
    import shutil

    shutil.copytree(extractor_run / CACHE_DIR, tmp_path / "run" / CACHE_DIR)   # trained with seed 0
    study = load_study(write_study(GAN.replace("seed: 0", "seed: 5")))
    GenerateTask(study.config.task).prepare(study)      # the run's start says it, not each trial's process
    GenerateTask(study.config.task)._reference(study)   # as a trial's worker, another task object, opens it
    assert capsys.readouterr().err.count("note: MedFID") == 1


def test_sample_of_a_multi_objective_gan_run_names_the_front_to_export(tmp_path, capsys):
    """`searchlab sample RUN` on a two-objective run said "export it first, searchlab export RUN --out RUN/best",
    which is refused there (no single best)."""
    from searchlab.cli import main

    run = _gan_run(tmp_path / "gan_mo", [([1.0, 0.1], "d"), ([2.0, 0.2], "d"), ([0.5, 0.3], "d")],
                   objectives=(("medfid", "minimize"), ("kid", "minimize")))
    assert main(["sample", str(run), "--out", str(tmp_path / "x1")]) == 2
    err = capsys.readouterr().err
    assert "2 objectives, so there is no single best generator" in err and "Pareto front (trials 0, 2)" in err
    assert f"searchlab export {run} --trial 0 --out {run / 'best'}" in err


def test_a_gan_export_says_its_medfid_floor_was_measured_at_fewer_images_than_the_trial(gan_mo, tmp_path):
    """medfid_floor scores the 78 validation images while a trial scores 546 samples, and FID is biased upward
    at fewer images: nothing said so, and the floor read as what real images would score at the trial's count."""
    from searchlab.export.exporter import export_run

    config = export_run(gan_mo, tmp_path / "g", trial_number=0)
    assert (config["metrics"]["medfid_floor_images"], config["metrics"]["medfid_samples"]) == (78, 546)
    assert config["medfid_floor_note"].startswith("medfid_floor was measured with 78 validation images against the "
                                                  "train images, the trial's medfid with 546 samples")
    assert "not directly comparable" in config["medfid_floor_note"]


def test_a_pruned_gan_trials_reason_counts_evaluations_not_epochs(write_study):
    """A GAN reports at its evaluations (checkpoints of train.iterations): "pruned after 2 epoch(s)" named a unit
    it does not have."""
    from searchlab.engine.context import TrialContext

    study = load_study(write_study(GAN.replace("pruner: none", "pruner: median")))
    memory = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    for _ in range(3):
        trial = memory.ask()
        for step, value in enumerate((5.0, 4.0)):
            trial.report(value, step)
        memory.tell(trial, 4.0)
    with pytest.raises(optuna.TrialPruned, match=r"^pruned by the pruner after 1 evaluation\(s\), at medfid="):
        ctx = TrialContext(memory.ask(), study, artifacts=None, seed=0)
        for step in range(2):
            ctx.report(step, {"medfid": 100.0})
