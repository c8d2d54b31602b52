"""The best trial's model on validation data: ROC curve(s) and confusion matrix; GAN trials' sample grids.

A bagged trial (train.cv_model: bag) trained on the validation split, so its curves are drawn from its
out-of-fold predictions on train+val instead. Never the test split: `searchlab export` alone reads it, so
a report can be made (and looked at) as often as one likes without anything being selected on test data.
"""
from __future__ import annotations

import base64
import html
import json
import shlex
import sys
import tempfile
from collections.abc import Collection
from pathlib import Path

import numpy as np
import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState
from sklearn.metrics import roc_auc_score, roc_curve

from searchlab.engine.progress import cut_short_words
from searchlab.engine.rundir import OpenRun
from searchlab.engine.storage import ContainedArtifactStore
from searchlab.errors import CheckpointGone
from searchlab.export.ensemble import load_split
from searchlab.export.export_notes import one_class_said
from searchlab.export.exporter import UntrustedSpace, trial_checkpoint, trial_config
from searchlab.export.out_of_fold import out_of_fold_predictions
from searchlab.export.publish import describe_export
from searchlab.metrics import confusion
from searchlab.models import standalone
from searchlab.report.page import Section, figure, note


def model_sections(run: OpenRun, trial: FrozenTrial, front: int = 0, trust_spaces: Collection[str] = (),
                   command: str | None = None) -> list[Section]:
    """`front`: the size of the Pareto front `trial` was drawn from (several objectives), said in the title:
    no trial is "the best" there, and export asks which one (--trial). A trial built from an NNI space the user
    did not name (`trust_spaces`) is not built: a note says why and how to draw it (`command` with --trust-space).
    """
    bag = "bag" in trial.user_attrs
    split = "out of fold (train+val)" if bag else "on validation"
    on_front = f", one of the {front} trials of the Pareto front (export asks which: --trial N)" if front else ""
    who = f"trial {trial.number}{on_front}" + _unlike_the_export(run.run_dir / "best", trial, front)
    title = f"Trial {trial.number} {split}"
    if "generator" in trial.user_attrs:   # a GAN trial: its samples are the report's section on it
        return []
    if "model_spec" not in trial.user_attrs or "checkpoint" not in trial.user_attrs:
        return [note(title, "this trial stored no classifier (its task trains none)")]
    try:
        config = trial_config(run, trial, trust_spaces)
        net = standalone.build_export_model(config)
        net.load_state_dict(trial_checkpoint(run, trial))
        if bag:   # its fold models trained on the validation split: each image scored by the one that did not
            labels, probs = out_of_fold_predictions(run, list(net.members), config, [trial])
        else:
            val = load_split(run, "val").splits["val"]
            labels, probs = val.labels.numpy(), standalone.predict_proba(net, config, val.images).numpy()
    except UntrustedSpace as exc:   # the rest of the page needs no code of the run's: it is written without these
        return [untrusted_note(title, exc, command or f"searchlab report {shlex.quote(str(run.run_dir))}")]
    except CheckpointGone:   # export's fix (--trial N) is no option of report, and keep_checkpoints keeps the best
        return [note(title, f"not drawn: the checkpoint of trial {trial.number} is not in {run.artifacts}: deleted "
                     "from optuna-dashboard or by hand, or the folder was moved without it. Fix: copy the file "
                     f"{trial.user_attrs['checkpoint']} back into it from a copy of the run folder")]
    except Exception as exc:   # e.g. the data set moved since the run: say so, keep the rest of the report
        return [note(title, f"not drawn: {exc}")]
    kind, names = config["task"], config["class_names"]
    if "model_metrics" in trial.user_attrs:   # selected on a mean of runs: this is the one model it exports
        split += " (the trial's exported model; its value is the mean over its cross-validation runs)"
    threshold = thresholds_said(config["threshold"], names)   # what its confusion counts were cut at
    at = "(the most probable class)" if kind == "multiclass" else f"at the trial's {threshold}"
    roc = figure(f"ROC {split}: {who}", roc_figure(labels, probs, kind, names, POOLED_AUC if bag else "AUC"))
    if bag:   # 0.579 in the legend beside a trial value of 0.659 read as a mistake: they are two measures
        roc.body += note(roc.title, POOLED_AUC_SAID).body
    return [roc,
            figure(f"Confusion matrix {split} {at}: {who}",
                   confusion_figure(labels, probs, kind, names, config["threshold"]))]


def untrusted_note(title: str, exc: UntrustedSpace, command: str) -> Section:
    """The page's note in place of the figures, said on standard error too (the terminal shows no page)."""
    said = f"{exc.rule}. Fix: if you trust that code, make the report again with: {exc.again(command)}"
    print(f"warning: the report leaves out the ROC curve and confusion matrix of its best trial: {said}",
          file=sys.stderr)
    return note(title, f"not drawn: {said}")


def one_class_warning(run: OpenRun, trial: FrozenTrial, trust_spaces: Collection[str] = ()) -> list[Section]:
    """The export's warning that the model labels every validation image one class at its threshold (a confusion
    of [[21, 0], [57, 0]]), said of the trial the report draws: the report, read instead of the terminal that
    export printed it on, said nothing of it. The export's own check and words (export_notes), not a copy."""
    if trial.user_attrs.get("task_kind") != "binary" or "model_spec" not in trial.user_attrs:
        return []
    try:
        config = trial_config(run, trial, trust_spaces)
    except Exception:   # noqa: BLE001 - a trial export cannot read is said by the model's section below
        return []
    said = one_class_said(config)
    if not said:
        return []
    text = said[:1].upper() + said[1:]
    return [Section(f"Warning: trial {trial.number}, drawn below, predicts one class on validation",
                    f"<p>{html.escape(text)}</p>")]


POOLED_AUC = "pooled out-of-fold AUC"
POOLED_AUC_SAID = ("The AUC in the legend is of all the out-of-fold predictions pooled (each image scored by the fold "
                   "model that did not train on it); the trial's value is the mean of its per-fold AUCs, so the two "
                   "differ.")


def thresholds_said(threshold: object, names: list[str]) -> str:
    """Per label 'thresholds mass=0.506 calc=0.433 rare=0.535' (as `status` says them; a bare list of floats said
    nothing of which label each was), else 'threshold'."""
    if isinstance(threshold, list) and len(threshold) == len(names):
        return "thresholds " + " ".join(f"{name}={float(t):.3g}" for name, t in zip(names, threshold))
    return "threshold"


def _unlike_the_export(folder: Path, trial: FrozenTrial, front: int = 0) -> str:
    """Said beside the trial's figures when the run's export is not this trial as drawn, only what differs:
    another trial, an ensemble, or this trial with test-time augmentation. One sentence for all three read
    "trial 0 alone, without test-time augmentation" of an export of trial 2 that used none."""
    described = describe_export(folder)
    if described is None:
        return ""
    config = json.loads((folder / "config.json").read_text())
    tta = config.get("tta") or "none"
    with_tta = f" with test-time augmentation '{tta}'" if tta != "none" else ""
    this_trial = described == f"trial {trial.number}" or described.startswith(f"trial {trial.number} ")
    if this_trial:
        return f" without test-time augmentation (the export in {folder} is this trial{with_tta})" if with_tta else ""
    best = "" if front else ", the study's best trial"
    if described.startswith("ensemble"):
        return f" alone{best}; the export in {folder} is the {described}{with_tta}, not drawn here"
    return f"{best}; the export in {folder} is {described}{with_tta}, not drawn here"


def roc_figure(labels: np.ndarray, probs: np.ndarray, kind: str, names: list[str],
               auc_name: str = "AUC") -> go.Figure:
    """binary: one curve; multi-class: one-vs-rest per class; multi-label: one per label. `auc_name` says which
    AUC the legend gives (a bagged trial's: of its out-of-fold predictions pooled)."""
    fig = go.Figure()
    curves = [(names[-1], labels, probs)] if kind == "binary" else [
        (name, (labels == i) if kind == "multiclass" else labels[:, i], probs[:, i]) for i, name in enumerate(names)]
    for name, truth, score in curves:
        truth = np.asarray(truth).astype(int)
        if truth.min() == truth.max():
            continue   # one class only in this split: no curve
        fpr, tpr, _ = roc_curve(truth, score)
        auc = roc_auc_score(truth, score)
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"{name} ({auc_name} {auc:.3f})"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color="grey"), name="chance"))
    fig.update_layout(xaxis_title="false positive rate", yaxis_title="true positive rate", height=450)
    return fig


def confusion_figure(labels: np.ndarray, probs: np.ndarray, kind: str, names: list[str], threshold: object) -> go.Figure:
    matrix = np.array(confusion(labels, probs, kind, len(names), threshold=threshold))
    if kind == "multilabel":   # per label: tn, fp, fn, tp
        x, y = ["tn", "fp", "fn", "tp"], names
    else:
        x, y = [f"predicted {n}" for n in names], [f"true {n}" for n in names]
    fig = go.Figure(go.Heatmap(z=matrix, x=x, y=y, text=matrix, texttemplate="%{text}", colorscale="Blues",
                               showscale=False))
    fig.update_layout(yaxis_autorange="reversed", height=120 + 60 * len(y))
    return fig


def sample_grids(run: OpenRun, study: optuna.Study, trials: list[FrozenTrial],
                 objectives: list[str] | None = None) -> list[Section]:
    """The PNG sample grids GAN trials stored, inlined (the report is one file), each captioned with what a
    reader needs beside it (its family, scores, whether it was cut short or suspect) and, for a conditional
    generator, its class beside each row: a bare "trial 2" under a grid said none of it."""
    with_grids = [t for t in trials if t.state == TrialState.COMPLETE and "samples" in t.user_attrs]
    if not with_grids:
        return []
    store = ContainedArtifactStore(run.artifacts)
    images = []
    with tempfile.TemporaryDirectory() as tmp:
        for trial in with_grids:
            path = Path(tmp) / f"{trial.number}.png"
            try:
                optuna.artifacts.download_artifact(artifact_store=store, file_path=str(path),
                                                   artifact_id=trial.user_attrs["samples"])
            except Exception as exc:
                images.append(f'<p class="note">trial {trial.number}: grid not readable ({html.escape(str(exc))})</p>')
                continue
            data = base64.b64encode(path.read_bytes()).decode()
            image = (f'<img class="grid" alt="samples of trial {trial.number}" src="data:image/png;base64,{data}">')
            rows = "".join(f"<div>{html.escape(name)}</div>" for name in grid_rows(trial))
            drawn = f'<div class="rowed"><div class="rows">{rows}</div>{image}</div>' if rows else image
            images.append(f'<figure class="grid">{drawn}<figcaption>{html.escape(grid_caption(trial, objectives))}'
                          f'</figcaption></figure>')
    return [Section("Generated samples of the best trials", "\n".join(images))]


def grid_rows(trial: FrozenTrial) -> list[str]:
    """The class of each row of a conditional generator's grid (tasks/generate.py _store_grid draws a row per
    class, in the order of its class_names); none for an unconditional one (8 x 8 of any class)."""
    spec = trial.user_attrs.get("generator")
    if not isinstance(spec, dict) or not (spec.get("args") or {}).get("n_classes"):
        return []
    names = spec.get("class_names") or []
    return [str(name) for name in names] if len(names) == spec["args"]["n_classes"] else []


def grid_caption(trial: FrozenTrial, objectives: list[str] | None = None) -> str:
    """"trial 2, dcgan: medfid 41.2, copying 0.01; cut short by budget.timeout at iteration 122 of 300;
    suspect: ..."."""
    spec = trial.user_attrs.get("generator")
    family = f", {spec['family']}" if isinstance(spec, dict) and spec.get("family") else ""
    names = objectives if objectives and len(objectives) == len(trial.values or []) else [
        f"value {i}" if len(trial.values) > 1 else "value" for i in range(len(trial.values or []))]
    scores = ", ".join(f"{name} {value:.4g}" for name, value in zip(names, trial.values or []))
    caption = f"trial {trial.number}{family}" + (f": {scores}" if scores else "")
    cut = trial.user_attrs.get("cut_short")
    if isinstance(cut, str):
        caption += f"; {cut_short_words(cut)}"
    if isinstance(trial.user_attrs.get("suspect"), str):
        caption += f"; suspect: {trial.user_attrs['suspect']}"
    return caption
