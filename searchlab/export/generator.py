"""Export a generate study's trial: the EMA generator as model.py + weights.safetensors + config.json, and for
folder and CSV sets trained_on.json (the train and val files it learned from and was scored against).

Nothing is scored at export: the test split plays no part in judging generators (MedFID, KID, precision and
recall were measured during the search and are carried in config.json). config.json says how the trial was
set up (every setting as it ran, its seed, the search), which data it learned from, and which feature network
its scores were measured in, as a classifier export does (export/provenance.py): a classify study that adds
its images (`augment.synthetic`) inherits its data, and a reader of its scores must know they are not
Inception's.
"""
from __future__ import annotations

import json
from collections.abc import Collection
from pathlib import Path
from typing import Any

from optuna.trial import FrozenTrial

from searchlab.data.loading import medmnist_path
from searchlab.engine.rundir import OpenRun
from searchlab.errors import ExportError
from searchlab.export import trained_on
from searchlab.export.ensemble import load_split, run_data_config
from searchlab.export.provenance import (file_digest, made_with, medmnist_digests, search_provenance,
                                         split_counts, trial_provenance)
from searchlab.export.export_notes import warn_dominated
from searchlab.export.picking import dominated_by_front
from searchlab.export.publish import json_text
from searchlab.gan.features import CACHE_DIR
from searchlab.models import generator_source
from searchlab.models.gan_sampling import load_generator
from searchlab.tasks.generate_config import GenerateTrialConfig
from searchlab.weights_file import save_weights

FORMAT = "searchlab-generator/1"
MEASURED_WITH = ("medfid, kid, precision, recall, density, coverage, copying, duplicates, label_agreement, the "
                 "*_floor values and the trial's other sample measures (train_seconds, iterations and image "
                 "counts aside), all of its best evaluation (best_iteration, the generator exported), are "
                 "computed in the feature space of the study's own feature network (feature_network: a classifier "
                 "of these medical images), not ImageNet's Inception: they are not comparable with published FID "
                 "or KID values, nor with another study's unless it used the same feature network")
# As tasks/generate.py scores a trial (keep in step with it): which real images the metrics compare with
SCORED_AGAINST = ("the real images of the train split (the images the GAN learned from), with as many samples "
                  "(medfid_samples); medfid_floor, copying_floor and label_agreement_floor: the validation split's "
                  "real images against them (medfid_floor_images of them: see medfid_floor_note); "
                  "duplicates_floor: the train images among themselves")


def objective_values(run: OpenRun, trial: FrozenTrial) -> dict[str, float]:
    """The trial's values by objective name (a multi-objective trial has several; `trial.value` raises)."""
    return {metric: value for (metric, _), value in zip(run.record["objectives"], trial.values or [])}


# what each export option makes of a classifier's export, none of which a generator's export has
CLASSIFIER_OPTIONS = {"--top-k": "an ensemble of the K best trials", "--select": "the choice of ensemble members",
                      "--tta": "test-time augmentation", "--bootstrap": "resamples for the test metrics' intervals"}


def refuse_classifier_options(top_k: int, tta: str, given: Collection[str] = ()) -> None:
    """An ExportError naming the export options a generator's export cannot honour, rather than ignore them:
    it is one network (no ensemble, no choice of members, no test-time augmentation) and is not scored on the
    test split (no bootstrap intervals). `given`: the options a command line named (export_run)."""
    named = [*(["--top-k"] if top_k > 1 else []), *(["--tta"] if tta != "none" else []), *given]
    if named:
        said = ", ".join(f"{flag} ({CLASSIFIER_OPTIONS.get(flag, 'a classifier option')})" for flag in named)
        raise ExportError(f"a generator exports alone and is not scored on the test split: {said} "
                          f"{'is' if len(named) == 1 else 'are'} for classifiers. Fix: leave out {' and '.join(named)}")


def export_generator(run: OpenRun, trial: FrozenTrial, state: dict[str, Any], out: Path) -> dict[str, Any]:
    config = {"format": FORMAT, "study": run.study.study_name, "trial": _trial(run, trial),
              "generator": trial.user_attrs["generator"],
              "metrics": objective_values(run, trial) | trial.user_attrs.get("metrics", {}),
              "metrics_measured_with": MEASURED_WITH, "metrics_scored_against": SCORED_AGAINST,
              "feature_network": feature_network_used(run, trial), **_data(run), **search_provenance(run)}
    if trial.user_attrs.get("suspect"):   # why its samples looked copied, collapsed or deaf to their labels
        config["suspect"] = trial.user_attrs["suspect"]
    if note := floor_images_note(config["metrics"]):
        config["medfid_floor_note"] = note
    if len(run.study.directions) > 1 and (front := dominated_by(run, trial)):
        config["dominated_by_front"] = front
    out.mkdir(parents=True, exist_ok=True)
    save_weights(state, out / "weights.safetensors")
    config.update(weights_sha256=file_digest(out / "weights.safetensors"), made_with=made_with())
    (out / "model.py").write_text(generator_source(config["generator"]["family"]))   # its family's generator only
    (out / "config.json").write_text(json_text(config, indent=2))
    trained_on.write_of_run(out, run)   # a classify study adding its images checks its own splits against it
    load_generator(out)    # the written export must rebuild (shapes, spec) before anyone relies on it
    return config


def floor_images_note(metrics: dict[str, Any]) -> str | None:
    """medfid_floor is of the validation images, usually fewer than the samples a trial scores (as many as
    the train images), and FID is biased upward at fewer images: said, so it is not read as a like-for-like
    floor. None when the counts were not recorded (trials of an earlier searchlab) or match. Only this
    export's own floor is quoted: a floor measured on other data or in another feature network says nothing
    of this one (metrics_measured_with), and a trial measures its floor at one image count only."""
    floor_images, samples = metrics.get("medfid_floor_images"), metrics.get("medfid_samples")
    if not floor_images or not samples or floor_images >= samples:
        return None
    return (f"medfid_floor was measured with {floor_images:.0f} validation images against the train images, the "
            f"trial's medfid with {samples:.0f} samples: {_own_floor(metrics.get('medfid_floor'), floor_images)}. "
            "FID is biased upward at fewer images (the bias falls roughly as 1/images: Chong & Forsyth, CVPR "
            "2020; how large it is depends on the data and the feature network), so the floor reads higher than "
            "real images would score at the trial's count and is not directly comparable with medfid")


def _own_floor(floor: Any, floor_images: float) -> str:
    """This export's floor as measured: the only count it was measured at (no floor at the trial's count)."""
    if not isinstance(floor, (int, float)):
        return "its medfid_floor value was not recorded"
    return f"this export's medfid_floor is {floor:.3g} at {floor_images:.0f} images, the only count it was measured at"


def dominated_by(run: OpenRun, trial: FrozenTrial) -> list[int]:
    """The Pareto front's trial numbers when the trial is not on it, said now as a classifier's export says it
    (the cli prints a classifier's warnings, not a generator's)."""
    front = dominated_by_front(run.study, trial)
    if front:
        warn_dominated(trial.number, front)
    return front


def _trial(run: OpenRun, trial: FrozenTrial) -> dict[str, Any]:
    """The trial as a classifier export records its own. A generate trial does not record its config with
    every default (batch_size, iterations, evaluations ... left out of the space), so it is rebuilt here from
    its sampled config and this searchlab's defaults, and said so."""
    found = trial_provenance(run, trial)
    if "config_with_defaults" not in found:
        try:
            found["config_with_defaults"] = GenerateTrialConfig.model_validate(found["config"]).model_dump(mode="json")
        except ValueError:   # a config this searchlab no longer reads: its sampled config alone says what ran
            return found
        found["config_with_defaults_is"] = ("rebuilt at export from the trial's config and the defaults of the "
                                            f"searchlab that exported it ({made_with()['searchlab']})")
        for net, adam in (trial.user_attrs.get("adam") or {}).items():   # as the trial ran them (recorded)
            found["config_with_defaults"]["optim"].update({f"lr_{net}": adam["lr"], f"beta1_{net}": adam["betas"][0],
                                                           f"beta2_{net}": adam["betas"][1]})
    return found


def _data(run: OpenRun) -> dict[str, Any]:
    """Which data the generator learned from: images per split and class, and the data set's identity (a
    MedMNIST file's digests, or a folder's or CSV's fingerprint: members and contents per split). Read as the
    run read it: refused when the files moved between splits since (trained_on.json would list others)."""
    searched = load_split(run, "train", "val")
    found: dict[str, Any] = {"data_splits": split_counts(searched)}
    if run.record.get("data_file"):
        found["data_file"] = medmnist_digests(run.record["data_file"], medmnist_path(*run_data_config(run)))
    if run.record.get("data_files"):
        found["data_files"] = run.record["data_files"]
    read = run.record.get("data") or {}
    if "fit" in read:   # how its images were framed: a classifier adding its images must read its own alike
        found["input"] = {"fit": read["fit"], **({"bit_depth": read["bit_depth"]} if read.get("bit_depth") else {})}
    return found


def feature_network_used(run: OpenRun, trial: FrozenTrial) -> dict[str, Any]:
    """Which network the trial's metrics were measured in: the classifier export `task.features` named, or the
    one trained for the study and cached in its run folder; with the digest of its weights, and the digest the
    trial recorded of the network it was scored with (`medfid_features`, of weights and preprocessing)."""
    named = (run.record.get("task") or {}).get("features")
    if named:
        folder = (Path(run.record["base_dir"]) / named).resolve()
        about = {"source": f"task.features: {named}", "export": str(folder)}
    else:
        folder = (run.run_dir / CACHE_DIR).resolve()   # absolute, as `export` is: read elsewhere, still true
        about = {"source": "trained for this study on its train split (best epoch by validation; gan/features.py)",
                 "folder": str(folder)}
    try:
        spec = json.loads((folder / "config.json").read_text())
        about.update(model=spec["model"], weights_sha256=file_digest(folder / "weights.safetensors"))
    except (OSError, ValueError, KeyError, TypeError):   # moved or deleted since the search: what is known
        about["note"] = f"{folder} could not be read at export: its model and weights digest are not recorded"
    if "medfid_features" in trial.user_attrs:
        about["digest"] = trial.user_attrs["medfid_features"]
    return about
