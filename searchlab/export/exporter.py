"""`searchlab export RUN [--trial N | --top-k K] [--tta MODE] --out DIR`: spec + weights + model.py, never a pickle.

The test split is read here and only here: scored once per export, with 95% bootstrap confidence
intervals, and never written back into the study (so no search or selection can see it).
"""
from __future__ import annotations

import shlex
import tempfile
from collections.abc import Collection
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import FrozenTrial, TrialState
from safetensors.torch import load_file

from searchlab.config.schema import BudgetConfig
from searchlab.engine.rundir import OpenRun, open_run
from searchlab.engine.signals import stop_on_signals
from searchlab.engine.storage import ContainedArtifactStore, is_local_file
from searchlab.errors import CheckpointGone, ExportError
from searchlab.data import ImageDataset
from searchlab.data.fingerprint import relative_name
from searchlab.data.loading import clear_cache, medmnist_path
from searchlab.export.checkpoint_place import checkpoint_store
from searchlab.export.ensemble import (MEMBER_METRICS, check_decoded_alike, choose_on_validation,
                                       data_replaced_since_search, ensemble_config, ensemble_state, has_split,
                                       load_split, pick_top_k, run_data_config, own_test_split_changed_since)
from searchlab.export.out_of_fold import bagged, choose_out_of_fold
from searchlab.export.input_range import files_were, record_files_sized
from searchlab.export.generator import export_generator, refuse_classifier_options
from searchlab.export.overlap import seen_in_search
from searchlab.export.picking import dominated_by_front, pick_trial
from searchlab.export.provenance import (file_digest, made_with, medmnist_digests, search_provenance,
                                         split_counts, threshold_choice, trial_provenance)
from searchlab.export.publish import json_text, staged
from searchlab.export.scorings import record_scoring
from searchlab.export.selection import SELECT_MODES, select_members, weaker_than_a_member, weaker_with_tta
from searchlab.export import trained_on
from searchlab.intervals import export_intervals, patients_per_class
from searchlab.metrics import compute_metrics, confusion
from searchlab.models import image_files, model_source, nni_spaces, standalone
from searchlab.models.nni_model import spaces_named_here
from searchlab.nni_space import allow_nni_space, spaces_named
from searchlab.tasks.costs import over_budget
from searchlab.weights_file import save_weights

FORMAT = "searchlab-export/1"
DEFAULT_THRESHOLD = 0.5   # binary and multi-label trials that stored none


def export_run(target: str | Path, out: str | Path, trial_number: int | None = None, bootstrap: int = 2000,
               top_k: int = 1, tta: str = "none", select: str = "top", given: Collection[str] = (),
               trust_spaces: Collection[str] = ()) -> dict[str, Any]:
    """Export one trial (`trial_number`, default the best) or the `top_k` best as one averaging ensemble
    (`select` "greedy": those of the `top_k` best that forward selection keeps, export/selection.py).

    With an ensemble or a `tta` other than "none" the decision threshold is chosen again on validation data.
    `given`: the options a command line named ("--bootstrap", "--select"), which a generator's export refuses
    (their defaults cannot tell a value given from one defaulted, and a study's export settings pass them too).
    `trust_spaces`: the NNI model spaces ("module:Class") the user names (--trust-space, or the study file of the
    run that ends with this export): a trial built from any other is refused (UntrustedSpace), as building it
    imports the module its database names.
    """
    clear_cache()   # image files decoded earlier in this process may have changed since
    # SIGTERM and SIGHUP stop it as Ctrl-C does (unless ignored): by default they ended the process at once,
    # leaving the staging folder behind, and a run's after-run export without its summary
    with stop_on_signals():
        run = open_run(target)
        generate = _is_generate(run)
        if generate:   # checked first: the classifier checks' advice (--select greedy wants --top-k) is not for it
            refuse_classifier_options(top_k, tta, given)
        else:
            _check_options(trial_number, top_k, tta, select, bootstrap)
        with staged(out) as staging:   # the export appears whole under `out`, or not at all
            if generate:
                trial = pick_trial(run.study, trial_number)
                return export_generator(run, trial, trial_checkpoint(run, trial), staging)
            return _export_classifier(run, staging, Path(out), trial_number, bootstrap, top_k, tta, select,
                                      frozenset(trust_spaces))


def _check_options(trial_number: int | None, top_k: int, tta: str, select: str, bootstrap: int) -> None:
    if bootstrap < 1:
        raise ExportError(f"--bootstrap must be at least 1 (got {bootstrap}). Fix: leave the default 2000; CIs "
                          "from fewer than ~1000 resamples are rough")
    if tta not in standalone.TTA_MODES:
        raise ExportError(f"unknown --tta {tta!r}. Fix: one of {', '.join(standalone.TTA_MODES)}")
    if select not in SELECT_MODES:
        raise ExportError(f"unknown --select {select!r}. Fix: one of {', '.join(SELECT_MODES)}")
    if top_k < 1:
        raise ExportError(f"--top-k must be at least 1 (got {top_k})")
    if trial_number is not None and top_k > 1:
        raise ExportError(f"--trial {trial_number} exports one trial and --top-k {top_k} an ensemble of the "
                          f"{top_k} best. Fix: pass only one of them")
    if select == "greedy" and top_k < 2:
        raise ExportError("--select greedy chooses ensemble members among the --top-k K best trials, and K is 1. "
                          "Fix: --top-k 5 (or more) with it")


def _export_classifier(run: OpenRun, out: Path, final_out: Path, trial_number: int | None, bootstrap: int,
                       top_k: int, tta: str, select: str, trust_spaces: frozenset[str]) -> dict[str, Any]:
    """Writes the export into `out` (a staging folder that becomes `final_out`)."""
    trials = pick_top_k(run.study, top_k) if top_k > 1 else [pick_trial(run.study, trial_number)]
    refuse_untrusted_spaces(run, trials, trust_spaces)   # every space at once, before any data or weights are read
    check_decoded_alike(run)
    checkpoints = {t.number: trial_checkpoint(run, t) for t in trials}
    net, config = assemble(run, trials, checkpoints, tta, trust_spaces)
    selection = None
    if select == "greedy":
        trials, selection = select_members(run, net, config, trials)
        net, config = assemble(run, trials, checkpoints, tta, trust_spaces)
    if len(trials) > 1 or tta != "none":
        if len(trials) == 1:   # keep what the trial itself chose and scored without TTA, said for what each is
            scored = {k: config.pop(k) for k in MEMBER_METRICS if k in config}
            config["trial"].update(threshold=config["threshold"], **scored)
        choose = choose_out_of_fold if bagged(trials) else choose_on_validation
        config.update(choose(run, net, config, trials))
    else:
        config["threshold_choice"] = threshold_choice(trials[0], config["task"])
    if selection is not None:
        config["selection"] = selection
    elif len(trials) > 1 and (below := weaker_than_a_member(run, net, config, trials)):
        config["ensemble_below_member"] = below
    if below_plain := weaker_with_tta(run, net, config, trials):
        config["tta_below_plain"] = below_plain
    if len(run.study.directions) > 1 and (front := dominated_by_front(run.study, trials[0])):
        config["dominated_by_front"] = front
    test = _score_test(run, net, config, bootstrap)
    config.update(test["summary"])
    if config["test_metrics"] is not None:
        config["test_split_scored"] = record_scoring(run.study, config, final_out)
    if config["task"] == "binary":   # the class sensitivity is of, which a paper on the other class misreads
        negative, positive = config["class_names"]
        config["positive_class"] = (f"{positive!r} (class_names[1]): sensitivity and average_precision are of it, "
                                    f"specificity of {negative!r} (precision, recall and f1 average both); "
                                    "data.positive_class chooses it")
    for key in ("validation_metrics", "test_metrics", "test_metrics_ci95"):
        if table := per_class_table(config.get(key) or {}, config["class_names"]):
            config[f"{key}_per_class"] = table
    config.update(search_provenance(run))   # how the search that chose this model was set up, and its objectives
    if over := over_budget_now(run, trials):   # search.budget above is the latest run's: say it does not fit it
        config["over_budget_now"] = over
    save_weights(net.state_dict(), out / "weights.safetensors")
    config.update(weights_sha256=file_digest(out / "weights.safetensors"), made_with=made_with())
    (out / "model.py").write_text(model_source(config["model"]))
    (out / "config.json").write_text(json_text(config, indent=2))
    if test["predictions"] is not None:
        (out / "test_predictions.json").write_text(json_text(test["predictions"]))
    # a study starting from these weights checks its splits against it (and what the trials' own weights learned)
    trained_on.write_of_run(out, run, config)
    return config


def assemble(run: OpenRun, trials: list[FrozenTrial], checkpoints: dict[int, dict[str, torch.Tensor]],
             tta: str, trust_spaces: Collection[str] = ()) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The network and config.json of one trial, or of the trials as one ensemble, best first."""
    configs = [trial_config(run, t, trust_spaces) for t in trials]
    states = [checkpoints[t.number] for t in trials]
    config = configs[0] if len(trials) == 1 else ensemble_config(configs, trials)
    config["tta"] = tta
    net = standalone.build_export_model(config)
    net.load_state_dict(states[0] if len(trials) == 1 else ensemble_state(states))
    return net, config


ARCHITECTURE_LIMITS = ("max_flops", "max_params", "max_depth")


def over_budget_now(run: OpenRun, trials: list[FrozenTrial]) -> str | None:
    """Which exported trials break the study's current architecture budget (the latest run's, which a resume
    may have lowered after they ran under an earlier one), by the costs in their metrics, as a resume checks
    them: "params 1.822e+04 > max_params 5000", each prefixed by its trial for an ensemble. None when all fit."""
    recorded = (run.search.get("budget") or {}) if isinstance(run.search, dict) else {}
    limits = {k: recorded[k] for k in ARCHITECTURE_LIMITS if recorded.get(k) is not None}
    if not limits:
        return None
    budget = BudgetConfig(**limits)
    over = [(t.number, reason.removeprefix("over budget: ")) for t in trials
            if (reason := over_budget(t.user_attrs.get("metrics") or {}, budget))]
    if len(trials) == 1:
        return over[0][1] if over else None
    return "; ".join(f"trial {number}: {reason}" for number, reason in over) or None


def _is_generate(run: OpenRun) -> bool:
    """A generate study's trials carry the generator's spec (a study of one task kind throughout)."""
    complete = run.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return bool(complete) and "generator" in complete[0].user_attrs


# how a checkpoint an export or report looks for leaves artifacts/ (optuna-dashboard lists a trial's artifacts,
# each with a delete button)
CHECKPOINT_GONE_BY = ("deleted by export.keep_checkpoints (only the best trials keep their weights), from "
                      "optuna-dashboard or by hand, or the folder was moved")


def trial_checkpoint(run: OpenRun, trial: FrozenTrial) -> dict[str, torch.Tensor]:
    artifact_id = trial.user_attrs.get("checkpoint")
    if artifact_id is None or not {"model_spec", "generator"} & set(trial.user_attrs):
        raise ExportError(f"trial {trial.number} stored no model (its task does not train one). Fix: export runs "
                          "of classify and generate studies; see this run's results with searchlab trials RUN")
    store = checkpoint_store(run, trial, artifact_id)   # another run folder's, for another driver's trial
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.safetensors"
        try:
            optuna.artifacts.download_artifact(artifact_store=store, file_path=str(path), artifact_id=artifact_id)
        except ArtifactNotFound:
            elsewhere = "" if is_local_file(run.storage_url) else (
                ", or the trial ran from another run folder of this study (another machine's), whose artifacts/ "
                "holds it: export there, or copy that folder's artifacts/ into this one")
            raise CheckpointGone(f"the checkpoint of trial {trial.number} ({artifact_id}) is not in "
                                 f"{run.artifacts}: {CHECKPOINT_GONE_BY}{elsewhere}. Fix: pick a trial that still "
                                 f"has its weights ({_with_checkpoints(run, store)})") from None
        except Exception as exc:
            raise ExportError(f"the checkpoint of trial {trial.number} ({artifact_id}) cannot be read from "
                              f"{store._base_path}: {exc}. Fix: export another trial (--trial N)") from None
        return load_file(str(path))


def _with_checkpoints(run: OpenRun, store: ContainedArtifactStore) -> str:
    """The completed trials whose checkpoint file is still there, as "trials 3, 7" for an error message."""
    numbers = [str(t.number) for t in run.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
               if "checkpoint" in t.user_attrs and store.exists(t.user_attrs["checkpoint"])]
    return f"trials {', '.join(numbers)}" if numbers else "none has: the artifact folder holds no checkpoint"


def trial_config(run: OpenRun, trial: FrozenTrial, trust_spaces: Collection[str] = ()) -> dict[str, Any]:
    """The trial's config.json; one built from an NNI space the user did not name is refused (UntrustedSpace)."""
    attrs = trial.user_attrs
    _allow_nni_spaces_of_the_study(run, trial, trust_spaces)
    return {
        "format": FORMAT,
        "model": attrs["model_spec"],
        "preprocessing": attrs["preprocessing"],
        "task": attrs["task_kind"],
        "class_names": attrs["class_names"],
        "threshold": _trial_threshold(attrs),
        "trial": trial_provenance(run, trial),
        "validation_metrics": attrs.get("metrics", {}),
        **_model_metrics(attrs),
    }


def _trial_threshold(attrs: dict[str, Any]) -> float | list[float] | None:
    """The threshold the trial chose on validation data; none on multi-class data, whose prediction is the most
    probable class (older runs recorded an unused 0.5 there)."""
    return None if attrs["task_kind"] == "multiclass" else attrs.get("threshold", DEFAULT_THRESHOLD)


def _allow_nni_spaces_of_the_study(run: OpenRun, trial: FrozenTrial, trust_spaces: Collection[str]) -> None:
    """Lets this process build the NNI spaces of the trial once refuse_untrusted_spaces found them named."""
    refuse_untrusted_spaces(run, [trial], trust_spaces)
    for space in nni_spaces(trial.user_attrs["model_spec"]):
        allow_nni_space(space)


def _spaces_of_the_study(run: OpenRun, trial: FrozenTrial) -> list[str]:
    """The NNI spaces of a trial's stored spec, which may name only one its study's space named."""
    spec = trial.user_attrs.get("model_spec")
    spaces = nni_spaces(spec) if isinstance(spec, dict) else []
    named = spaces_named(run.search.get("space_fixed") or {})
    for space in spaces:
        if space not in named:
            raise ExportError(f"trial {trial.number}'s stored model names the NNI space {space!r}, which the study's "
                              f"space does not ({', '.join(sorted(named)) or 'it names none'}): searchlab imports "
                              "only a module:Class that a study file names. Fix: export a trial of a run whose "
                              "study searched that space")
    return spaces


class UntrustedSpace(ExportError):
    """Trials whose network is built from an NNI model space ("module:Class") that only the run's database
    names. `wanted`: space -> the numbers of the trials built from it."""

    def __init__(self, run_dir: Path, wanted: dict[str, list[int]], command: str | None = None) -> None:
        self.run_dir, self.wanted = run_dir, wanted
        super().__init__(self.said(command))

    @property
    def rule(self) -> str:
        spaces = ", ".join(f"{space} (trial{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))})"
                           for space, numbers in self.wanted.items())
        return (f"the run's database (the study in {self.run_dir}) asks to build {spaces}: that imports the module "
                "and calls the class with arguments stored there, and searchlab runs no code that a database "
                "names unless you name it too (a copied or edited database could name any module:Class)")

    def again(self, command: str) -> str:
        """`command` (as the user ran it) with a --trust-space for each space."""
        return command + "".join(f" --trust-space {shlex.quote(space)}" for space in self.wanted)

    def said(self, command: str | None = None) -> str:
        if command is not None:
            return f"{self.rule}. Fix: if you trust that code, run: {self.again(command)}"
        example = self.again(f"searchlab export {shlex.quote(str(self.run_dir))} --out DIR")
        return (f"{self.rule}. Fix: if you trust that code, run: {example} (from Python: export_run(..., "
                f"trust_spaces={sorted(self.wanted)!r}))")


def trusted_space(space: str, trust_spaces: Collection[str]) -> bool:
    """Named by the user: on the command line (--trust-space), or by a study file this process loaded (the run
    that made these trials, or a study file given in place of its run folder); never by the database alone."""
    return space in trust_spaces or space in spaces_named_here()


def refuse_untrusted_spaces(run: OpenRun, trials: list[FrozenTrial], trust_spaces: Collection[str]) -> None:
    """UntrustedSpace naming every NNI space of `trials` the user has not named (nothing imported). Both the
    study's record of its space and the trial's spec are the database's, which anyone who copies or edits it
    writes: their agreeing (checked first) shows no trust."""
    wanted: dict[str, list[int]] = {}
    for trial in trials:
        for space in _spaces_of_the_study(run, trial):
            if not trusted_space(str(space), trust_spaces):
                wanted.setdefault(str(space), []).append(trial.number)
    if wanted:
        raise UntrustedSpace(run.run_dir, wanted)


def _model_metrics(attrs: dict[str, Any]) -> dict[str, Any]:
    """A trial selected on the mean of several runs (CV folds, repeats) exports one model: its own validation
    metrics differ from the mean its validation_metrics hold, so both are kept, each said for what it is."""
    if "model_metrics" not in attrs:
        return {}
    return {"model_validation_metrics": attrs["model_metrics"],
            "validation_metrics_are": "the trial's selection score: the mean over its cross-validation folds or "
                                      "repeats (train_seconds and images_per_second: the whole trial's; best_epoch "
                                      "and epochs_trained: the exported model's); model_validation_metrics are the "
                                      "exported model's own, on the validation split"}


def _record_files_were(summary: dict[str, Any], searched: ImageDataset) -> None:
    """Whether the training files were grey or colour, and the range of their sizes: `predict` warns of grey
    files only for a model trained on colour ones, and of files far from that range (input_range.py)."""
    trained_on = searched.extra.get("files", {})
    if isinstance(trained_on, dict) and (were := files_were(list(trained_on.get("train", [])))):
        summary["input"]["files_were"] = were
        record_files_sized(summary, trained_on.get("train", []))


def _score_test(run: OpenRun, net: torch.nn.Module, config: dict[str, Any], bootstrap: int) -> dict[str, Any]:
    if not has_split(run, "test"):   # an external test set: the model is exported, scored elsewhere
        val = load_split(run, "val")
        searched = load_split(run, "train", "val")
        summary = {"test_metrics": None, "test_size": 0, "input": _input_spec(run, val), **_order(val),
                   "test_note": "the data set has no test split; score the export on your own test images "
                                "(searchlab predict)", "data_splits": split_counts(searched)}
        _record_files_were(summary, searched)   # left out, predict warned grey files of a grey-trained model
        return {"summary": summary, "predictions": None}
    data = load_split(run, "test")
    test = data.splits["test"]
    probs = standalone.predict_proba(net, config, test.images).numpy()
    labels = test.labels.numpy()
    n_classes, kind, threshold = len(config["class_names"]), config["task"], config["threshold"]
    metrics = compute_metrics(labels, probs, kind, n_classes, threshold=threshold)
    names = list(metrics)   # each class's too: a 4-image class's recall of 1.0 is [0.40, 1.00]
    ci, methods = export_intervals(labels, probs, kind, n_classes, names, n_resamples=bootstrap,
                                   seed=run.record["seed"], threshold=threshold, groups=test.groups,
                                   class_names=config["class_names"])
    replaced = data_replaced_since_search(run)
    summary = {"test_metrics": metrics, "test_metrics_ci95": {k: list(v) for k, v in ci.items()},
               "test_metrics_ci95_method": methods,
               "test_metrics_ci95_resampling": {"resamples": bootstrap, "seed": run.record["seed"],
                                                "of": "patients" if test.groups else "images"},
               "test_confusion": confusion(labels, probs, kind, n_classes, threshold=threshold),
               "test_size": len(test), "input": _input_spec(run, data), **_order(data),
               **({"test_patients": len(set(test.groups)), "test_patients_per_class": patients_per_class(
                   labels, test.groups, kind, config["class_names"])} if test.groups else {}),
               **({"data_file": medmnist_digests(run.record["data_file"], medmnist_path(*run_data_config(run)))}
                  if run.record.get("data_file") else {})}
    if replaced:
        summary["data_replaced_since_search"] = replaced
    if changed := own_test_split_changed_since(run):   # stderr said it too (has_split)
        summary["test_split_changed_since_search"] = changed
    searched = load_split(run, "train", "val")
    summary["data_splits"] = split_counts(searched) | split_counts(data)
    _record_files_were(summary, searched)
    seen = seen_in_search(test, list(searched.splits.values()))
    if seen:
        summary["test_images_seen_in_search"] = seen
    # weights the trials started from, or a generator whose images they trained on (augment.synthetic, a path
    # relative to the study file's folder)
    if by_weights := trained_on.test_seen_by_weights(config, data.extra.get("files", {}).get("test", []),
                                                     Path(run.record["base_dir"])):
        summary["test_images_seen_by_weights"] = by_weights   # the run start warned of it too
    # Self-describing: which class each probability is of, and that `labels` are the truth, not predictions
    predictions: dict[str, Any] = {
        "class_names": config["class_names"],
        "probabilities_of": "class_names[1]" if kind == "binary" else "each class_names entry",
        "labels_are": "the true labels (indices into class_names; multi-label: 0/1 per name)",
        "probabilities": probs.tolist(), "labels": labels.tolist()}
    predictions.update(_test_files(data))
    return {"summary": summary, "predictions": predictions}


def _test_files(data: ImageDataset) -> dict[str, Any]:
    """Folder and CSV sets: which image each row is, named as the run's record names them (relative to the
    image folder, or the CSV's folder): absolute paths gave away home folders and patient-named folders above
    the data, which config.json and trained_on.json do not hold."""
    files, root = data.extra.get("files", {}), data.extra.get("root")
    if not isinstance(files, dict) or "test" not in files:
        return {}
    if root is None:   # a set loaded without its root: as read
        return {"files": list(files["test"])}
    folder = "the image folder" if data.extra.get("source") == "folder" else "the CSV's folder (a file outside it: " \
        "as the CSV names it)"
    return {"files": [relative_name(Path(f), Path(str(root))) for f in files["test"]],
            "files_are": f"relative to {folder} data.path names"}


def per_class_table(metrics: dict[str, Any], class_names: list[str]) -> dict[str, dict[str, Any]]:
    """{class name: {metric: value}} of the per-class metrics (`f1_class_3` -> table["carcinoma"]["f1"]): the
    keys stay by index, as objectives name them, and this says which class each index is. Every class gets a
    row: a trial's stored metrics leave out what was undefined (a class with no validation image), and a reader
    of table["rare_lesion"] should find nulls there, as on the test side, not a missing key."""
    table: dict[str, dict[str, Any]] = {}
    for key, value in metrics.items():
        metric, _, index = key.partition("_class_")
        if index.isdigit() and int(index) < len(class_names):
            table.setdefault(class_names[int(index)], {})[metric] = value
    columns = list(dict.fromkeys(metric for row in table.values() for metric in row))
    return {name: {metric: table.get(name, {}).get(metric) for metric in columns} for name in class_names} \
        if table else {}


def _order(data: ImageDataset) -> dict[str, Any]:
    """The data's own class order when data.positive_class reversed it (labels in the data files are then
    indices into this list, not into class_names)."""
    names = data.extra.get("source_class_names")
    return {"source_class_names": list(names)} if names else {}


def _input_spec(run: OpenRun, data: ImageDataset) -> dict[str, Any]:
    """How model.load_images reads image files: as this run's loader read them."""
    spec = {"channels": data.channels, "height": data.image_size[0], "width": data.image_size[1], "dtype": "uint8",
            "fit": run.record["data"].get("fit", "stretch"), "decoder": image_files.DECODER}
    if run.record["data"].get("bit_depth") is not None:
        spec["bit_depth"] = run.record["data"]["bit_depth"]
    return spec
