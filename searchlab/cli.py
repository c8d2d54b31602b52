"""`searchlab run | status | trials | export | predict | sample | report | compare | dashboard | cache`. User
errors (a bad argument, study file or --out among them) print one message and exit 2; a file the system cannot
read or write (no permission, a full disk) prints one message and exits 1."""
from __future__ import annotations

import argparse
import atexit
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from searchlab.engine.callers_state import callers_state_kept
from searchlab.engine.signals import ignore_stops_once_done
from searchlab.errors import SearchlabError, refuse_folder
from searchlab.export.export_notes import say_search_unfinished, test_headline, warn_about_export

# Exit hooks run last-registered first: this one, registered before those of the libraries a command imports
# (Ray, torch, logging), runs after theirs (engine/signals.py)
atexit.register(ignore_stops_once_done)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    args.argv_given = argv is not None   # a call from Python code (a notebook, a script) goes on after it returns
    args.argv = list(sys.argv[1:] if argv is None else argv)   # said again, with a fix added, by some errors
    if not getattr(args, "command", None):
        parser.print_usage(sys.stderr)
        print(f"searchlab: error: no command given. Fix: name one of {', '.join(args.commands)}, e.g. searchlab run "
              "studies/quickstart.yaml (searchlab --help describes each)", file=sys.stderr)
        return 2
    handler: Callable[[argparse.Namespace], int] = args.handler
    if not args.argv_given:
        from searchlab.output_reader import streams_that_take_any_text

        streams_that_take_any_text()
    code = _run_command(args, handler)
    if not args.argv_given:   # the process ends with the command: a stop from here on cannot undo its work
        from searchlab.engine.signals import end_at_a_stop_with

        end_at_a_stop_with(code)
    return code


def _run_command(args: argparse.Namespace, handler: Callable[[argparse.Namespace], int]) -> int:
    try:
        with callers_state_kept(caller_goes_on=args.argv_given):
            return handler(args)
    except SearchlabError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:   # a stop before or after the trials (they handle their own)
        from searchlab.engine.signals import exit_code, interruption_message

        # `run`: one line said only "interrupted", after minutes of a GAN's feature network or a proxy search
        before = (", before the run's trials started. Fix: run the same command again: it starts, resumes or joins "
                  "the run (what it stored is kept)" if args.command == "run" else "")
        print(f"{interruption_message(exc)}{before}", file=sys.stderr)
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
        # `searchlab report` of a run folder someone else owns: its default RUN/report.html cannot be written
        elsewhere = (", or write it elsewhere with --out FILE" if isinstance(exc, PermissionError)
                     and "out" in args and args.out is None and args.command == "report" else "")
        print(f"error: {f'{where}: ' if where else ''}{exc.strerror or exc}. Fix: check that the path exists, that "
              f"you may read or write it, and that the disk has space{elsewhere} (searchlab --debug ... shows the "
              "traceback)", file=sys.stderr)
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


def module_class(text: str) -> str:
    """A --trust-space value: "module:Class", as a study file names an NNI space."""
    module, sep, name = text.partition(":")
    if not (sep and module and name):
        raise argparse.ArgumentTypeError(f"{text!r} is not of the form module:Class (e.g. my_spaces:SmallNet, as "
                                         "the error naming the space said it)")
    return text


TRUST_SPACE_HELP = ("an NNI model space (module:Class) this run's trials may be built from: building one imports "
                    "that module, so a space named only by the run's database is refused (repeatable)")


def _command_line(args: argparse.Namespace) -> str:
    """The command as the user ran it, to say again with a fix."""
    import shlex

    return "searchlab " + shlex.join(args.argv)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="searchlab", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"searchlab {_version()}")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run (or resume) a study")
    run.add_argument("study", help="study YAML file")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a study key, e.g. --set budget.n_trials=5 (value parsed as YAML); "
                     "KEY=null removes KEY from the study, so its default applies (under space, a key only an "
                     "included fragment writes is removed from the merged space; one nothing writes is set to null)")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress bar, nor (in a log) a line per finished or failed trial")
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
    # --bootstrap and --select default to None, so that given ones are told apart: a generator's export refuses them
    export.add_argument("--bootstrap", type=int_in(100), default=None,
                        help="bootstrap resamples for the test metrics' CIs (at least 100; default 2000)")
    export.add_argument("--top-k", type=int_in(1), default=1, metavar="K",
                        help="export the K best trials as one ensemble averaging their probabilities (default 1)")
    export.add_argument("--tta", choices=("none", "flip", "dihedral"), default="none",
                        help="test-time augmentation in the exported model: flip, or dihedral (8 flips/rotations, "
                             "square images only); default none")
    export.add_argument("--select", choices=("top", "greedy"), default=None,
                        help="ensemble members: all K best (top, default), or those of them that forward selection "
                             "on held-out predictions keeps (greedy: a member joins only if it improves the objective)")
    export.add_argument("--trust-space", action="append", default=[], type=module_class, metavar="MODULE:CLASS",
                        help=TRUST_SPACE_HELP)
    export.set_defaults(handler=_cmd_export)

    predict = sub.add_parser("predict", help="an export's probabilities and labels for image files, as CSV")
    predict.add_argument("export", help="export folder (config.json + weights.safetensors)")
    predict.add_argument("images", nargs="+", help="image files, or folders of them (walked, sorted)")
    predict.add_argument("--out", default=None, help="CSV (or .parquet) file to write (default: standard output)")
    predict.set_defaults(handler=_cmd_predict)

    sample = sub.add_parser("sample", help="a generator export's images as PNG files (marked synthetic)")
    sample.add_argument("export", help="a generator's export folder (searchlab export of a GAN study's run)")
    sample.add_argument("--out", required=True, help="folder to write to (one sub-folder per class)")
    sample.add_argument("--n", type=int_in(1, 100_000), default=64,
                        help="images per class (unconditional: in all; default 64, at most 100000)")
    sample.add_argument("--class", dest="classes", action="append", default=None, metavar="NAME",
                        help="a class to draw, by name or index (repeatable; default: every class)")
    sample.add_argument("--seed", type=int_in(0), default=None, help="the same seed draws the same images "
                        "(default: a random one, printed)")
    sample.set_defaults(handler=_cmd_sample)

    report = sub.add_parser("report", help="one self-contained HTML report of a run (plots, best model, top trials)")
    report.add_argument("run", help="run directory (or its study file)")
    report.add_argument("--out", default=None, help="HTML file to write, or DIR/ (default: RUN/report.html)")
    report.add_argument("--top", type=int_in(1), default=20, help="trials in the table (default 20)")
    report.add_argument("--trust-space", action="append", default=[], type=module_class, metavar="MODULE:CLASS",
                        help=TRUST_SPACE_HELP + "; without it the best trial's ROC curve and confusion matrix are "
                        "left out")
    report.set_defaults(handler=_cmd_report)

    compare = sub.add_parser("compare", help="best-so-far curves of several runs on one plot (HTML)")
    compare.add_argument("runs", nargs="+", help="two or more run directories (or study files)")
    compare.add_argument("--out", default="compare.html", help="HTML file to write, or DIR/ (default compare.html)")
    compare.set_defaults(handler=_cmd_compare)

    dash = sub.add_parser("dashboard", help="optuna-dashboard for a run, on 127.0.0.1")
    dash.add_argument("run", help="run directory (or its study file), or a storage URL (all its studies)")
    dash.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    dash.add_argument("--port", type=int_in(1, 65535), default=8080,
                      help="port (default 8080; a busy one: the next free one)")
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
            out[key.strip()] = load_value(value, key.strip()) if value else None
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
    from contextlib import redirect_stdout

    from searchlab.output_reader import OutputWhoseReaderMayLeave

    output = OutputWhoseReaderMayLeave(sys.stdout)
    with redirect_stdout(output):   # type: ignore[type-var]
        return _run_and_summarise(args, output)


def _run_and_summarise(args: argparse.Namespace, output: Any) -> int:
    from searchlab.config.load import load_study
    from searchlab.engine.disks import refuse_an_unwritable_run_dir
    from searchlab.engine.rundir import MANIFEST
    from searchlab.engine.signals import exit_code, only_winding_down_after_a_stop, raise_if_stopped, stop_on_signals

    # A Ctrl-C while the study's modules import is remembered: medmnist's import swallows it in a bare
    # `except:`, and the whole search then ran and exited 0
    with stop_on_signals():
        # The study file first: a typo is reported in well under a second, before torch and Optuna are imported
        _refuse_a_storage_url(args.study)
        study = load_study(args.study, parse_overrides(args.set))
        refuse_an_unwritable_run_dir(study.run_dir, MANIFEST)   # before the data is read
        import optuna

        from searchlab.data.image_cache import check_cache_settings
        from searchlab.summary import best_trials, print_run_header, print_run_summary
        from searchlab.engine.run import refuse_what_cannot_run

        if study.config.export.after_run:   # the exporter brings scikit-learn and the tasks: ~2 s a run need not pay
            from searchlab.after_run_export import export_best

        optuna.logging.set_verbosity(optuna.logging.ERROR)   # our progress bar reports trials and failures
        check_cache_settings()
        refuse_what_cannot_run(study)   # not under a "run: ... (new)" line that never starts
        print_run_header(study)
        raise_if_stopped()
    # main() without arguments is this process's own command line: the process ends with it
    with only_winding_down_after_a_stop(process_ends=not args.argv_given):
        result = _run_saying_a_lost_storage(study, progress=not args.no_progress)
        exported, headline, export_failed, export_stopped, there = None, None, False, 0, None
        if study.config.export.after_run and not result.interrupted:
            try:
                exported, headline, export_failed, there = export_best(study, result)
            except KeyboardInterrupt as exc:   # said by export_best; the summary, with the command, still follows
                export_failed, export_stopped = True, exit_code(exc)
        print_run_summary(study, result, exported, headline, export_there=there)
        output.flush()
        if output.reader_left:
            print(f"note: the reader of this run's output left (e.g. `| head`), and the run went on to its end: "
                  f"searchlab status {study.run_dir} shows its summary", file=sys.stderr)
        _shut_ray_down()
    if result.interrupted or export_stopped:
        return result.exit_code if result.interrupted else export_stopped
    # A plug-in strategy's error that ended the run after some trials: raised once they are summarised and the
    # best exported, so _run_command says it last (--debug: with its traceback) and exits 2, as when it stops a
    # run before any trial: errors.py's code for a problem in the user's own code or files (1: a run that
    # completed nothing, or a file that could not be written)
    if result.strategy_error is not None:
        raise result.strategy_error
    # a run where no trial completed, that budget.max_failed stopped, or whose export failed, failed: for scripts
    # and CI too (`run && use best/` used a missing or an earlier export)
    return 0 if best_trials(result.study) and result.stopped_by != "budget.max_failed" and not export_failed else 1


def _refuse_a_storage_url(study_file: str) -> None:
    """`searchlab run postgresql://...`: was "file not found" of the URL as a path, `//` collapsed, password shown."""
    from searchlab.errors import shown_url, storage_url_in

    if storage_url_in(study_file) is not None:
        raise SearchlabError(f"'{shown_url(study_file)}' is a storage URL, not a study file. Fix: name the study file "
                             "(e.g. studies/quickstart.yaml) and give the URL as its `storage:`, or with "
                             "--set storage=URL")


def _shut_ray_down() -> None:
    """Now, not at exit: Ray's shutdown takes a second, and a Ctrl-C in it printed Ray's traceback."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        from searchlab.engine.signals import stops_ignored

        with stops_ignored():
            ray.shutdown()


def _run_saying_a_lost_storage(study: Any, progress: bool) -> Any:
    """run_study, with a database server that stopped or restarted mid-run (a StorageError: exit 2), or a full
    disk (exit 1), said in one line instead of the 300-line traceback Optuna's tell ends in, with how to resume."""
    from searchlab.engine.run import run_study
    from searchlab.engine.disks import disk_full_error
    from searchlab.engine.storage import lost_storage_error

    from searchlab.strategy_guard import StrategyError

    try:
        return run_study(study, progress=progress)
    except StrategyError as exc:   # after some trials: summarised and exported, then said (_run_and_summarise)
        if exc.run_result is None:
            raise
        return exc.run_result
    except SearchlabError:   # already one line, e.g. a storage that could not be opened at all
        raise
    except Exception as exc:
        lost = lost_storage_error(study.storage_url, exc) or disk_full_error(study.run_dir, exc)
        if lost is None:
            raise
        raise lost from None


def _cmd_status(args: argparse.Namespace) -> int:
    from searchlab.engine.rundir import open_run
    from searchlab.output_reader import refuse_a_closed_stdout
    from searchlab.summary import print_status

    refuse_a_closed_stdout("the run's status", "leave standard output open, or send it to a file: > status.txt")
    print_status(open_run(args.run), args.top)
    return 0


def _cmd_trials(args: argparse.Namespace) -> int:
    from pathlib import Path

    from searchlab.engine.rundir import open_run
    from searchlab.trials_table import trial_table, write_table
    from searchlab.whole_file import out_file

    out = args.out and str(out_file(args.out, f"trials.{args.format or 'csv'}"))
    refuse_folder(out, "trials.csv")
    write_table(trial_table(open_run(args.run)), args.format, Path(out) if out else None)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.trial is not None or args.top_k == 1:
        _refuse_unfinished_trial_early(args.run, args.trial)
    from searchlab.export.exporter import UntrustedSpace, export_run
    from searchlab.export.publish import describe_export

    replaced = describe_export(Path(args.out))
    given = {name: value for name in ("bootstrap", "select") if (value := getattr(args, name)) is not None}
    try:
        config = export_run(args.run, args.out, args.trial, top_k=args.top_k, tta=args.tta,
                            given=[f"--{name}" for name in given], trust_spaces=args.trust_space, **given)
    except UntrustedSpace as exc:   # its fix: this very command, with --trust-space
        raise UntrustedSpace(exc.run_dir, exc.wanted, _command_line(args)) from None
    if replaced:
        print(f"note: replaced the earlier export in {args.out} ({replaced})", file=sys.stderr)
    if "generator" in config:
        print(f"exported the generator of trial {config['trial']['number']} to {args.out}: MedFID "
              f"{config['metrics']['medfid']:.3f} (sample with model.load_generator / model.sample_images)")
        if config.get("suspect"):   # the GAN task's doubts: `sample` and augment.synthetic say them again
            _say_suspect(config["suspect"])
        say_search_unfinished(config)
        return 0
    what = (f"ensemble of trials {', '.join(str(t['number']) for t in config['trials'])}" if "trials" in config
            else f"trial {config['trial']['number']}")
    tta = f" with tta {config['tta']}" if config["tta"] != "none" else ""
    if "selection" in config:
        what += f" (greedy pick of {len(config['selection']['candidates'])})"
    print(f"exported {what}{tta} to {args.out}: {test_headline(config)}")
    warn_about_export(config)
    return 0


def _refuse_unfinished_trial_early(run_folder: str, number: int | None) -> None:
    """A trial that is not COMPLETE (one still RUNNING, say), or a study with none yet, is refused before the
    exporter's imports (~5 s)."""
    from searchlab.engine.rundir import open_run
    from searchlab.export.picking import pick_trial

    pick_trial(open_run(run_folder).study, number)


def _cmd_predict(args: argparse.Namespace) -> int:
    from searchlab.export.predict import write_predictions
    from searchlab.output_reader import beside_the_output
    from searchlab.whole_file import out_file

    out = args.out and str(out_file(args.out, "predictions.csv"))
    rows = write_predictions(args.export, args.images, out)
    if out is not None:
        print(f"{rows} predictions written to {out}", file=beside_the_output(out))
    return 0


def _say_suspect(reason: str) -> None:
    print(f"warning: this generator's trial was marked suspect: {reason}", file=sys.stderr)


def _cmd_sample(args: argparse.Namespace) -> int:
    from searchlab.export.sample import write_samples

    draw = write_samples(args.export, args.out, args.n, args.classes, args.seed)
    print(draw.said())
    if draw.suspect:   # the GAN task's own doubts about this generator (copies, collapse, deaf to its labels)
        _say_suspect(draw.suspect)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from searchlab.output_reader import beside_the_output
    from searchlab.report.build import write_report

    refuse_folder(args.out, "report.html", into_folder=True)   # --out DIR/: DIR/report.html
    path = write_report(args.run, args.out, args.top, trust_spaces=args.trust_space, command=_command_line(args))
    print(f"report: {path}", file=beside_the_output(args.out))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from searchlab.output_reader import beside_the_output
    from searchlab.report.compare import compare_runs

    refuse_folder(args.out, "compare.html", into_folder=True)   # --out DIR/: DIR/compare.html
    path, curves, pools = compare_runs(args.runs, args.out)
    said = beside_the_output(args.out)
    for curve in curves:
        best = f"{curve.best[-1]:.4f} after {len(curve.trials)} completed trials" if curve.best else "no completed trial"
        print(f"{curve.label}: best {best}", file=said)
    for pool in pools:
        print(f"over seeds: {pool.said()}", file=said)
    print(f"plot: {path}", file=said)
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from searchlab.dashboard import serve
    from searchlab.errors import storage_url_in
    from searchlab.storage_dashboard import serve_storage

    if storage_url_in(args.run) is not None:   # as optuna-dashboard URL: every study of that storage
        serve_storage(args.run, args.host, args.port)
        return 0
    serve(args.run, args.host, args.port)
    return 0


def _cmd_cache(args: argparse.Namespace) -> int:
    from searchlab.data.image_cache import cache_usage, clear_image_cache
    from searchlab.output_reader import refuse_a_closed_stdout

    if not args.clear:
        refuse_a_closed_stdout("the cache's usage", "leave standard output open, or send it to a file: > usage.txt")
    print(clear_image_cache() if args.clear else cache_usage())
    return 0


if __name__ == "__main__":
    sys.exit(main())
