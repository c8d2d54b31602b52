"""`searchlab run | status | trials | export | predict | report | compare | dashboard | cache`. User errors
print one message and exit 2; a file that cannot be read or written prints one message and exits 1."""
from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from searchlab.errors import SearchlabError, refuse_folder


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_usage(sys.stderr)
        print(f"searchlab: error: no command given. Fix: name one of {', '.join(args.commands)}, e.g. searchlab run "
              "studies/quickstart.yaml (searchlab --help describes each)", file=sys.stderr)
        return 2
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except SearchlabError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:   # a stop before or after the trials (they handle their own)
        from searchlab.engine.signals import exit_code

        print("interrupted", file=sys.stderr)
        return exit_code(exc)
    except BrokenPipeError:
        # the reader of our output left (`searchlab trials RUN | head`): no traceback, and none at exit either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:
        if args.debug:
            raise
        # a full disk names no file: the file being written is the command's --out, when it has one
        where = exc.filename or getattr(args, "out", None)
        print(f"error: {f'{where}: ' if where else ''}{exc.strerror or exc}. Fix: check that the path exists, that "
              "you may read or write it, and that the disk has space (searchlab --debug ... shows the traceback)",
              file=sys.stderr)
        return 1


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high]; argparse prints the rule with the usage and exits 2."""
    rule = f"an integer from {low} to {high}" if high is not None else f"an integer of at least {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {rule} (got {text!r})")
        return value
    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="searchlab", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"searchlab {_version()}")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run (or resume) a study")
    run.add_argument("study", help="study YAML file")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a study key, e.g. --set budget.n_trials=5 (value parsed as YAML)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(handler=_cmd_run)

    status = sub.add_parser("status", help="trial counts and the best trials of a run")
    status.add_argument("run", help="run directory (or its study file)")
    status.add_argument("--top", type=int_in(1), default=5, help="best trials shown (default 5)")
    status.set_defaults(handler=_cmd_status)

    trials = sub.add_parser("trials", help="the trial table (params, metrics, states, timings)")
    trials.add_argument("run", help="run directory (or its study file)")
    trials.add_argument("--format", choices=("csv", "parquet", "json"), default=None,
                        help="default: the --out file's extension (.parquet, .json), else csv")
    trials.add_argument("--out", default=None, help="output file (default: standard output; parquet needs one)")
    trials.set_defaults(handler=_cmd_trials)

    export = sub.add_parser("export", help="export a trial as config.json + weights.safetensors + model.py")
    export.add_argument("run", help="run directory (or its study file)")
    export.add_argument("--out", required=True, help="output directory")
    export.add_argument("--trial", type=int_in(0), default=None, help="trial number (default: the best)")
    # the floor of the study file's export.bootstrap: fewer resamples give intervals that move from run to run
    export.add_argument("--bootstrap", type=int_in(100), default=2000,
                        help="bootstrap resamples for the test metrics' CIs (at least 100; default 2000)")
    export.add_argument("--top-k", type=int_in(1), default=1, metavar="K",
                        help="export the K best trials as one ensemble averaging their probabilities (default 1)")
    export.add_argument("--tta", choices=("none", "flip", "dihedral"), default="none",
                        help="test-time augmentation in the exported model: flip, or dihedral (8 flips/rotations, "
                             "square images only); default none")
    export.add_argument("--select", choices=("top", "greedy"), default="top",
                        help="ensemble members: all K best (top, default), or those of them that forward selection "
                             "on held-out predictions keeps (greedy: a member joins only if it improves the objective)")
    export.set_defaults(handler=_cmd_export)

    predict = sub.add_parser("predict", help="an export's probabilities and labels for image files, as CSV")
    predict.add_argument("export", help="export folder (config.json + weights.safetensors)")
    predict.add_argument("images", nargs="+", help="image files, or folders of them (walked, sorted)")
    predict.add_argument("--out", default=None, help="CSV file to write (default: standard output)")
    predict.set_defaults(handler=_cmd_predict)

    report = sub.add_parser("report", help="one self-contained HTML report of a run (plots, best model, top trials)")
    report.add_argument("run", help="run directory (or its study file)")
    report.add_argument("--out", default=None, help="HTML file to write (default: RUN/report.html)")
    report.add_argument("--top", type=int_in(1), default=20, help="trials in the table (default 20)")
    report.set_defaults(handler=_cmd_report)

    compare = sub.add_parser("compare", help="best-so-far curves of several runs on one plot (HTML)")
    compare.add_argument("runs", nargs="+", help="two or more run directories (or study files)")
    compare.add_argument("--out", default="compare.html", help="HTML file to write (default compare.html)")
    compare.set_defaults(handler=_cmd_compare)

    dash = sub.add_parser("dashboard", help="optuna-dashboard for a run, on 127.0.0.1")
    dash.add_argument("run", help="run directory (or its study file)")
    dash.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    dash.add_argument("--port", type=int_in(1, 65535), default=8080)
    dash.set_defaults(handler=_cmd_dashboard)

    cache = sub.add_parser("cache", help="the decoded-image cache: where, how big; --clear empties it")
    cache.add_argument("--clear", action="store_true", help="delete every cached entry")
    cache.set_defaults(handler=_cmd_cache)
    parser.set_defaults(commands=tuple(sub.choices))
    return parser


def _version() -> str:
    from searchlab import __version__

    return __version__


def parse_overrides(items: list[str]) -> dict[str, Any]:
    import yaml

    from searchlab.config.yamlsrc import load_value

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SearchlabError(f"--set '{item}' is not KEY=VALUE. Fix: e.g. --set budget.n_trials=5")
        try:
            out[key.strip()] = load_value(value) if value else None
        except yaml.YAMLError as exc:   # e.g. an unclosed [ or a !!python tag, which safe_load refuses
            problem = " ".join(str(getattr(exc, "problem", None) or exc).split())
            raise SearchlabError(f"--set {item}: the value is not valid YAML ({problem}). Fix: quote the whole "
                                 "option for the shell and write the value as in the study file, e.g. "
                                 "--set 'space.optim.lr={float: [1.0e-4, 1.0e-2]}'") from None
        except RecursionError:   # brackets nested thousands deep: the parser's recursion, not a traceback
            raise SearchlabError(f"--set {key.strip()}=...: the value is nested too deeply to read. Fix: write it "
                                 "with the few levels the study file would have") from None
    return out


def _cmd_run(args: argparse.Namespace) -> int:
    from searchlab.config.load import load_study

    # The study file first: a typo is reported in well under a second, before torch and Optuna are imported
    study = load_study(args.study, parse_overrides(args.set))
    import optuna

    from searchlab.data.image_cache import check_cache_settings
    from searchlab.summary import best_trials, print_run_header, print_run_summary

    optuna.logging.set_verbosity(optuna.logging.ERROR)   # our progress bar reports trials and failures
    check_cache_settings()
    print_run_header(study)
    result = _run_saying_a_lost_storage(study, progress=not args.no_progress)
    exported, headline, export_failed = None, None, False
    if study.config.export.after_run and not result.interrupted:
        exported, headline, export_failed = _export_best(study, result)
    print_run_summary(study, result, exported, headline)
    if result.interrupted:
        return result.exit_code
    # a run where no trial completed, that budget.max_failed stopped, or whose export failed, failed: for scripts
    # and CI too (`run && use best/` used a missing or an earlier export)
    return 0 if best_trials(result.study) and result.stopped_by != "budget.max_failed" and not export_failed else 1


def _run_saying_a_lost_storage(study: Any, progress: bool) -> Any:
    """run_study, with a database server that stopped or restarted mid-run said in one line (a StorageError:
    exit 2) instead of the 300-line traceback Optuna's tell ends in, with how to resume."""
    from searchlab.engine.run import run_study
    from searchlab.engine.storage import lost_storage_error

    try:
        return run_study(study, progress=progress)
    except SearchlabError:   # already one line, e.g. a storage that could not be opened at all
        raise
    except Exception as exc:
        lost = lost_storage_error(study.storage_url, exc)
        if lost is None:
            raise
        raise lost from None


def _export_best(study: Any, result: Any) -> tuple[Any, str | None, bool]:
    """(the export folder, its test headline, whether the export failed) of the after-run export."""
    from optuna.trial import TrialState

    from searchlab.engine.storage import close_connections
    from searchlab.errors import SearchlabError
    from searchlab.export.exporter import export_run
    from searchlab.summary import export_command, export_dir

    out = export_dir(study)
    export = study.config.export
    complete = len(result.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if complete == 0:   # nothing to export: the run summary says why no trial completed
        return None, None, False
    if study.config.task.kind == "callable":   # not a failure of the run: there is no model to export
        print("export: export.after_run is set, but a callable task's function trains no model searchlab could "
              "export; nothing exported (remove export.after_run)", file=sys.stderr)
        return None, None, False
    if result.trials_finished == 0 and (out / "config.json").is_file():   # a resume whose budget was reached
        print(f"export: nothing ran, so the export in {out} stands (the test split is not scored again)",
              file=sys.stderr)
        return None, None, False
    close_connections(result.study._storage)   # the search is over; export_run opens the study afresh
    top_k = min(export.top_k, max(complete, 1))
    if top_k < export.top_k:   # a short run still leaves a model; say that it is a smaller ensemble
        print(f"export: {complete} completed trial(s), fewer than export.top_k={export.top_k}; "
              f"exporting the {top_k} best", file=sys.stderr)
    select = export.select if top_k > 1 else "top"   # one candidate: nothing to select among
    try:
        config = export_run(study.run_dir, out, bootstrap=export.bootstrap, top_k=top_k, tta=export.tta,
                            select=select)
    except SearchlabError as exc:   # the search is done and stored: say how to export it, do not lose the run
        # Several objectives have no single best: the error names the Pareto front; --top-k would fail again.
        how = export_command(study, trial="N") if len(study.objectives) > 1 else export_command(study, top_k)
        print(f"export skipped: {exc}\nThe trials are stored; export them with: {how}", file=sys.stderr)
        return None, None, len(study.objectives) == 1   # several objectives: no single best, as designed
    if "generator" in config:
        return out, None, False
    warn_about_export(config)
    return out, test_headline(config), False


def _cmd_status(args: argparse.Namespace) -> int:
    from searchlab.engine.rundir import open_run
    from searchlab.summary import print_status

    print_status(open_run(args.run), args.top)
    return 0


def _cmd_trials(args: argparse.Namespace) -> int:
    from pathlib import Path

    from searchlab.engine.rundir import open_run
    from searchlab.trials_table import trial_table, write_table

    refuse_folder(args.out, "trials.csv")
    write_table(trial_table(open_run(args.run)), args.format, Path(args.out) if args.out else None)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from searchlab.export.exporter import export_run
    from searchlab.export.publish import describe_export

    replaced = describe_export(Path(args.out))
    config = export_run(args.run, args.out, args.trial, args.bootstrap, top_k=args.top_k, tta=args.tta,
                        select=args.select)
    if replaced:
        print(f"note: replaced the earlier export in {args.out} ({replaced})", file=sys.stderr)
    if "generator" in config:
        print(f"exported the generator of trial {config['trial']['number']} to {args.out}: MedFID "
              f"{config['metrics']['medfid']:.3f} (sample with model.load_generator / model.sample_images)")
        return 0
    what = (f"ensemble of trials {', '.join(str(t['number']) for t in config['trials'])}" if "trials" in config
            else f"trial {config['trial']['number']}")
    tta = f" with tta {config['tta']}" if config["tta"] != "none" else ""
    if "selection" in config:
        what += f" (greedy pick of {len(config['selection']['candidates'])})"
    print(f"exported {what}{tta} to {args.out}: {test_headline(config)}")
    warn_about_export(config)
    return 0


def test_headline(config: dict[str, Any]) -> str:
    """An export's test AUC and accuracy with their 95% intervals, or why it has none."""
    test, ci = config["test_metrics"], config.get("test_metrics_ci95") or {}
    if test is None:
        return config["test_note"]
    chosen_by = [m for m in config.get("objectives", []) if m not in ("auc", "accuracy")]
    names = [k for k in ("auc", "accuracy", *chosen_by) if k in test and test[k] is not None]
    # undefined (a class or label absent from the test split): said, not "nan [nan, nan]"; warned of below
    shown = ", ".join(f"{k} undefined" if not math.isfinite(test[k]) else
                      f"{k} {test[k]:.3f} [{ci[k][0]:.3f}, {ci[k][1]:.3f}]" if k in ci else f"{k} {test[k]:.3f}"
                      for k in names)
    methods = config.get("test_metrics_ci95_method") or {}
    how = "; ".join(f"{k}: {methods[k]}" for k in names if k in ci and k in methods)
    return f"test {shown} (n={config['test_size']}" + (f"; 95% intervals, {how})" if how else ")")


def warn_about_export(config: dict[str, Any]) -> None:
    """What an export's numbers do not show at a glance: undefined test metrics, a one-label model."""
    from searchlab.export.scorings import scorings_note

    test = config.get("test_metrics") or {}
    undefined = [k for k in ("auc", "average_precision", "sensitivity", "specificity")
                 if k in test and not math.isfinite(test[k])]
    if undefined:
        lacking = [name for j, name in enumerate(config["class_names"])
                   if not math.isfinite(test.get(f"auc_class_{j}", math.inf))]
        which = f" ({', '.join(map(repr, lacking))})" if lacking else ""
        print(f"warning: {', '.join(undefined)} undefined on this test split ({config['test_size']} images): a "
              f"class{which} is missing from it (multi-label: a label never or always on); recorded as null in "
              "config.json. Fix: a test split that has every class", file=sys.stderr)
    if config.get("data_replaced_since_search"):
        print(f"note: images were replaced in place since the search ({config['data_replaced_since_search']}); "
              "the splits did not move, and the test metrics are of the images as they are now", file=sys.stderr)
    seen = config.get("test_images_seen_in_search")
    if seen:
        print(f"note: {seen['images']} of the {config['test_size']} test images are pixel-for-pixel copies of "
              f"training or validation images ({seen['labelled_otherwise']} of them labelled otherwise there); "
              "their rows are in config.json under test_images_seen_in_search", file=sys.stderr)
    for source in config.get("test_images_seen_by_weights") or []:
        if source.get("used_as") == "space.augment.synthetic":   # a generator these trials took images from
            how, fix = "the GAN study of the generator whose images these trials trained on", "use a generator " \
                "trained on other data"
        else:
            how, fix = "the run of the weights these trials started from", "start from weights of other data"
        print(f"warning: {source['test_images']} of the {config['test_size']} test images were trained or selected "
              f"on by {how} ({source['weights']}): the test metrics are optimistic. Fix: split as that study did, "
              f"or {fix}", file=sys.stderr)
    if config.get("test_split_scored") and (note := scorings_note(config["test_split_scored"])):
        print(note, file=sys.stderr)
    _warn_if_one_class(config)
    _warn_if_a_label_is_always_on(config)
    _warn_if_few_test_images_of_a_class(config)
    front = config.get("dominated_by_front")
    if front:
        print(f"warning: trial {config['trial']['number']} is not on the Pareto front (trials "
              f"{', '.join(map(str, front))}): one of those is at least as good in every objective and better in "
              "one. Fix: --trial N with N from the front (searchlab status lists it)", file=sys.stderr)
    worse = config.get("tta_below_plain")
    if worse:
        print(f"warning: --tta {worse['tta']} lowers {worse['metric']} on the {worse['split']} split to "
              f"{worse['with_tta']:.4f}, from {worse['without_tta']:.4f} without it: the trials did not train on "
              "those views (e.g. rotated images), so averaging over them adds errors. Fix: --tta "
              f"{'none' if worse['tta'] == 'flip' else 'none (or flip)'}, "
              "or search augmentations that include them", file=sys.stderr)
    below = config.get("ensemble_below_member")
    if below:
        views = "" if config.get("tta", "none") == "none" else f", both with --tta {config['tta']}"
        print(f"warning: on the {below['split']} predictions this ensemble's {below['metric']} "
              f"({below['ensemble']:.4f}) is worse than that of its member trial {below['member']} "
              f"({below['member_value']:.4f}{views}): a weaker member pulls the average down. Fix: --select greedy "
              f"(keeps only members that help), a smaller --top-k, or --trial {below['member']}", file=sys.stderr)


def _warn_if_few_test_images_of_a_class(config: dict[str, Any]) -> None:
    """With a handful of test images of a class (multi-label: of a label's positives or negatives), every
    metric about it moves by a large step per image: the intervals in config.json say how much, but a
    headline number hides it."""
    matrix, names = config.get("test_confusion"), config["class_names"]
    if not matrix:
        return
    if config["task"] == "multilabel":   # per label: [tn, fp, fn, tp]
        counts = {f"{name} positives": row[2] + row[3] for name, row in zip(names, matrix)}
        counts.update({f"{name} negatives": row[0] + row[1] for name, row in zip(names, matrix)})
    else:                                # rows: the true classes
        counts = {f"class {name!r}": sum(row) for name, row in zip(names, matrix)}
    few = {what: n for what, n in counts.items() if 0 < n < 10}
    if not few:
        return
    ci = (config.get("test_metrics_ci95") or {}).get("sensitivity")
    width = f" (the sensitivity interval is [{ci[0]:.2f}, {ci[1]:.2f}])" if ci and f"class {names[-1]!r}" in few \
        and config["task"] == "binary" else ""
    listed = ", ".join(f"{n} of {what}" for what, n in few.items())
    print(f"warning: the test split has only {listed}: each of those images moves the metrics about it by "
          f"1/{min(few.values())} or more{width}; read the intervals in config.json, not the point values",
          file=sys.stderr)


def _warn_if_one_class(config: dict[str, Any]) -> None:
    """A model that gives every validation image the same label (short trials on an imbalanced set) exports
    fine and looks fine by AUC; say so. Judged on the exported model's own metrics (not a mean over CV folds)."""
    val = config.get("model_validation_metrics") or config.get("validation_metrics") or {}
    if config["task"] != "binary" or "sensitivity" not in val or "specificity" not in val:
        return
    if {val["sensitivity"], val["specificity"]} == {0.0, 1.0}:
        label = config["class_names"][1 if val["sensitivity"] == 1.0 else 0]
        print(f"warning: at its threshold ({config['threshold']:.3g}) this model labels every validation image "
              f"'{label}' (sensitivity {val['sensitivity']:.0f}, specificity {val['specificity']:.0f}). Fix: "
              + _one_class_fixes(config), file=sys.stderr)


def _one_class_fixes(config: dict[str, Any]) -> str:
    """The remedies a one-class model's trial did not already use (an ensemble's: its best member's)."""
    trial = config.get("trial") or (config.get("trials") or [{}])[0]
    imbalance = (trial.get("config") or {}).get("imbalance") or {}
    fixes = ["train longer (budget.epochs)"]
    if imbalance.get("threshold", "fixed") == "fixed":
        fixes.append("let the search pick the threshold (imbalance.threshold: youden)")
    weighted = imbalance.get("loss") == "weighted_ce" or (imbalance.get("loss") == "focal"
                                                          and imbalance.get("focal_alpha", "balanced") == "balanced")
    if not weighted or imbalance.get("class_weight_power", 1.0) == 0:
        fixes.append("when the classes are imbalanced, weight them (imbalance.loss: weighted_ce with "
                     "class_weight_power above 0)")
    return ", or ".join(fixes)


def _warn_if_a_label_is_always_on(config: dict[str, Any]) -> None:
    """A multi-label threshold of 0 (F1's choice for a label the model cannot separate) flags every image; so
    does 0.5 for a label whose probabilities all sit just above it (an undertrained head, a label never on in
    validation, where no threshold can be chosen): judged on the test predictions too."""
    if config["task"] != "multilabel":
        return
    names, chosen = config["class_names"], config["threshold"]
    thresholds = chosen if isinstance(chosen, list) else [chosen] * len(names)
    always = [name for name, t in zip(names, thresholds) if t <= 0.0]
    if always:
        print(f"warning: the threshold chosen on validation for label(s) {', '.join(map(repr, always))} is 0: the "
              "model flags every image with them, as it does not tell them apart there. Fix: more images of "
              "those labels, longer training, or imbalance.threshold: youden", file=sys.stderr)
    # test_confusion per label: [tn, fp, fn, tp]; nothing predicted negative means every image flagged
    on_all = [name for name, (tn, _, fn, _) in zip(names, config.get("test_confusion") or [])
              if tn + fn == 0 and name not in always]
    if on_all:
        print(f"warning: the model flags every one of the {config['test_size']} test images with label(s) "
              f"{', '.join(map(repr, on_all))}, so exact-match accuracy and hamming loss count them as wrong "
              "wherever they are off. Fix: train longer, weigh the rare label (imbalance.loss: weighted_ce or "
              "focal), give the validation split positives of it so a threshold can be chosen, or drop it from "
              "data.label_columns", file=sys.stderr)
    never = [f"'{name}' ({fn})" for name, (_, fp, fn, tp) in zip(names, config.get("test_confusion") or [])
             if tp + fp == 0 and fn > 0]
    if never:
        print(f"warning: the model flags none of the {config['test_size']} test images with label(s) "
              f"{', '.join(never)}, though that many images have them: it has not learned them (sensitivity 0). "
              "Fix: train longer, weigh rare labels (imbalance.loss: weighted_ce or focal, imbalance.sampler: "
              "balanced), let the search choose thresholds (imbalance.threshold: youden), or drop them from "
              "data.label_columns", file=sys.stderr)


def _cmd_predict(args: argparse.Namespace) -> int:
    from searchlab.export.predict import write_predictions

    rows = write_predictions(args.export, args.images, args.out)
    if args.out is not None:
        print(f"{rows} predictions written to {args.out}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from searchlab.report.build import write_report

    refuse_folder(args.out, "report.html")
    print(f"report: {write_report(args.run, args.out, args.top)}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from searchlab.report.compare import compare_runs

    refuse_folder(args.out, "compare.html")
    path, curves, pools = compare_runs(args.runs, args.out)
    for curve in curves:
        best = f"{curve.best[-1]:.4f} after {len(curve.trials)} completed trials" if curve.best else "no completed trial"
        print(f"{curve.label}: best {best}")
    for pool in pools:
        print(f"over seeds: {pool.said()}")
    print(f"plot: {path}")
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from searchlab.dashboard import serve

    serve(args.run, args.host, args.port)
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from searchlab.data.image_cache import cache_usage, clear_image_cache

    print(clear_image_cache() if args.clear else cache_usage())
    return 0


if __name__ == "__main__":
    sys.exit(main())
