"""The export a run makes of its best trial(s) when it ends (`export.after_run`): said on standard error, never
failing the search it follows (the trials are stored; the command to export them is given)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from searchlab.engine.storage import close_connections
from searchlab.errors import SearchlabError
from searchlab.export.checkpoint_place import CheckpointElsewhere
from searchlab.export.export_notes import test_headline, warn_about_export
from searchlab.export.exporter import export_run
from searchlab.export.publish import describe_export, export_of_another_study, holds_fine_tuned_weights, moving_aside
from searchlab.nni_space import spaces_named
from searchlab.summary import export_command, export_dir


def export_best(study: Any, result: Any) -> tuple[Any, str | None, bool, str | None]:
    """(the export folder, its test headline, whether the export failed, the command making it where the
    checkpoints are when another run folder of the study holds them) of the after-run export."""
    out = export_dir(study)
    export = study.config.export
    complete = len(result.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if complete == 0:   # nothing to export: the run summary says why no trial completed
        return None, None, False, None
    if study.config.task.kind == "callable":   # not a failure of the run: there is no model to export
        print("export: export.after_run is set, but a callable task's function trains no model searchlab could "
              "export; nothing exported (remove export.after_run)", file=sys.stderr)
        return None, None, False, None
    top_k = min(export.top_k, max(complete, 1))
    # Several objectives have no single best: the error names the Pareto front; --top-k would fail again.
    how = export_command(study, trial="N") if len(study.objectives) > 1 else export_command(study, top_k)
    if result.trials_finished == 0 and (out / "config.json").is_file():   # a resume whose budget was reached
        other = export_of_another_study(out, result.study)
        if other is None:
            print(f"export: nothing ran, so the export in {out} stands (the test split is not scored again)",
                  file=sys.stderr)
            return None, None, False, None
        if holds_fine_tuned_weights(out):   # an export would replace them, and refuses to: skipped, said so once
            print(f"export: nothing ran, but {out} holds {other}, which an export would replace: export skipped, "
                  f"they are kept.\nThe trials are stored; export them with: {how}{moving_aside(out)}",
                  file=sys.stderr)
            # nothing new to export and weights kept on purpose: no failure (`run && ...` failed on every call)
            return None, None, False, None
        # another study's model (one run in this folder under another name) must not pass for this study's
        print(f"export: nothing ran, but {out} holds {other}, not a trial of study '{study.config.name}'; "
              "exporting this study's best in its place", file=sys.stderr)
    close_connections(result.study._storage)   # the search is over; export_run opens the study afresh
    if top_k < export.top_k:   # a short run still leaves a model; say that it is a smaller ensemble
        print(f"export: {complete} completed trial(s), fewer than export.top_k={export.top_k}; "
              f"exporting the {top_k} best", file=sys.stderr)
    select = export.select if top_k > 1 else "top"   # one candidate: nothing to select among
    replaced = describe_export(out)
    try:
        config = export_run(study.run_dir, out, bootstrap=export.bootstrap, top_k=top_k, tta=export.tta,
                            select=select, trust_spaces=spaces_of_the_study_file(study))
    except CheckpointElsewhere as exc:   # one line: which trial, the folder holding it, the command to run there
        if not exc.on_another_machine:   # that folder was here: it is to be put back, not exported from
            print(f"export skipped: {exc}", file=sys.stderr)
            return None, None, True, None
        there = export_command(study, top_k, str(exc.trial_number) if top_k == 1 else None, Path(exc.holder.run_dir))
        print(f"export skipped: {exc.rule}. Fix: export it there: {there}", file=sys.stderr)
        return None, None, True, there
    except (SearchlabError, OSError) as exc:   # the search is done and stored: say how to export it, keep the run
        said = exc if isinstance(exc, SearchlabError) else f"{exc.filename or out}: {exc.strerror or exc}"
        if works := getattr(exc, "top_k_that_works", None):   # the same command would fail the same way
            how = export_command(study, works)
        print(f"export skipped: {said}\nThe trials are stored; export them with: {how}{moving_aside(out)}",
              file=sys.stderr)
        return None, None, len(study.objectives) == 1, None   # several objectives: no single best, as designed
    except KeyboardInterrupt as exc:   # a stop (export_run removed its partial folder): the run's code is the stop's
        from searchlab.engine.signals import as_interrupted

        print(f"export interrupted ({as_interrupted(exc).reason}): {out} is as it was. The trials are stored; export "
              f"them with: {how}{moving_aside(out)}", file=sys.stderr)
        raise
    if replaced:   # as `searchlab export` says it: the folder may have held another study's model
        print(f"note: replaced the earlier export in {out} ({replaced})", file=sys.stderr)
    if "generator" in config:
        return out, None, False, None
    warn_about_export(config)
    return out, test_headline(config), False, None


def spaces_of_the_study_file(study: Any) -> set[str]:
    """The NNI model spaces ("module:Class") the study file being run names: the ones its export may import,
    read from the loaded study (not from the database, whose copy of them anyone who edits it writes)."""
    from searchlab.engine.setup_record import fixed_by_path

    return spaces_named(fixed_by_path(study.space))
