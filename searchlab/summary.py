"""What `run` prints at the end and what `status` prints: plain text a person reads in a terminal."""
from __future__ import annotations

import fcntl
import json
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from searchlab.config.load import Study
from searchlab.config.schema import ExportConfig
from searchlab.engine.own_trials import LEFT_RUNNING
from searchlab.engine.progress import FINISHED, failed_configs, final_trials, stopped_by_failures
from searchlab.engine.run_history import latest_run_live, runs_line, start_warnings_said
from searchlab.engine.rundir import OpenRun
from searchlab.engine.setup_said import describe_setup
from searchlab.engine.storage import GRACE_SECONDS, ContainedArtifactStore, heartbeat_ages
from searchlab.engine.run_history import SAMPLER_STOPPED
from searchlab.engine.trial_time import trial_end, trial_seconds
from searchlab.errors import SearchlabError, shown_url, without_password
from searchlab.summary_pruned import print_all_pruned
from searchlab.summary_front import (cut_short_said, failed_trials, failure_reason, feature_network_said,
                                     front_by_first_objective, front_heading, over_budget_said, retried_failures,
                                     retry_said, setup_objectives)
from searchlab.trial_said import describe_trial, fmt, queued_by
from searchlab.export.publish import export_of_another_study, moving_aside
from searchlab.export.scorings import KEY as SCORINGS_KEY


def print_run_header(study: Study) -> None:
    """Where the run is stored and whether it resumes, and what data it reads: a study run from another
    folder than last time starts a new run directory, and a folder set is worth a look at its counts."""
    from searchlab.engine.rundir import MANIFEST, refuse_other_storage, storage_file

    # the data is read first, so a data error is not printed under a "run: ... (new)" that never starts
    data = None if study.config.data is None else _data_said(study)
    refuse_other_storage(study)   # before saying what the run does with the folder's storage
    resumes = (study.run_dir / MANIFEST).is_file()
    file = storage_file(study.storage_url)
    if resumes and file is not None and not file.is_file():
        # the folder's study file was deleted (or moved): its trials are gone, not resumed
        print(f"run:  {study.run_dir} (its storage {file} is missing: a new study starts there; the checkpoints "
              "in artifacts/ and any export in it are of the lost trials)")
    elif resumes and (held := _study_held(study.run_dir / MANIFEST)) not in (None, study.config.name):
        # one storage holds several studies: this one may have run in this folder before the other did
        stored = _stored_trials(study)
        print(f"run:  {study.run_dir} (a new study '{study.config.name}'; the folder held '{held}')" if stored is None
              else f"run:  {study.run_dir} (resuming study '{study.config.name}': {stored} trial(s) stored; the "
                   f"folder's record named '{held}', the study run there last)")
    elif not resumes and file is None and (held_there := _stored_trials(study)):
        print(f"run:  {study.run_dir} (new folder, joining study '{study.config.name}' in {shown_url(study.storage_url)}"
              f", which holds {held_there} trial(s) run from other folders or machines: they rank with this run's, "
              "and their checkpoints stay in those folders' artifacts/)")
    else:
        print(f"run:  {study.run_dir} ({'resuming the trials stored there' if resumes else 'new'})")
    if data is not None:   # a callable task's function may read its own
        print(f"data: {data}")


def _data_said(study: Study) -> str:
    """The start line's data, from the listing the run's record then keeps (engine/data_record.py): listed
    twice, files added between the two were said by one and recorded by the other."""
    from searchlab.data import describe_data, plan_files
    from searchlab.data.loading import plan_said
    from searchlab.engine.data_record import listed_for_record

    cfg = study.config.data
    plan = plan_files(cfg, study.config.seed, study.base_dir)
    if plan is None:   # MedMNIST: its official file, said by name
        return describe_data(cfg, study.config.seed, study.base_dir)
    listed_for_record(study, plan)
    return plan_said(cfg, plan)


def _stored_trials(study: Study) -> int | None:
    """How many trials the storage holds of this study; None when no such study, or it cannot be read now (the
    run then says why): a second machine's new run folder joins them, which `new` alone did not say."""
    from searchlab.engine.storage import close_connections, open_storage

    try:
        storage = open_storage(study.storage_url, reading=True)
    except SearchlabError:
        return None
    try:
        return len(storage.get_all_trials(storage.get_study_id_from_name(study.config.name), deepcopy=False))
    except KeyError:   # no such study yet
        return None
    finally:
        close_connections(storage)


def export_command(study: Study, top_k: int | None = None, trial: str | None = None,
                   there: Path | None = None) -> str:
    """The `searchlab export` command that makes the export the study file asks for (export.dir, top_k, tta,
    select, bootstrap): a hint naming best/ and no flags made another export than the after-run one. `there`:
    another run folder of the study (another driver's, which holds the checkpoints), exporting to its best/."""
    export = study.config.export
    folder, out = (study.run_dir, export_dir(study)) if there is None else (there, export.dir or there / "best")
    k = export.top_k if top_k is None else top_k
    flags = [f"--trial {trial}"] if trial else [f"--top-k {k}"] if k > 1 else []
    flags += [f"--tta {export.tta}"] if export.tta != "none" else []
    flags += [f"--select {export.select}"] if k > 1 and not trial and export.select != "top" else []
    flags += [f"--bootstrap {export.bootstrap}"] if export.bootstrap != ExportConfig().bootstrap else []
    # quoted: a folder with a space in its name, pasted into a shell, was two arguments
    return " ".join(["searchlab export", shlex.quote(str(folder)), *flags, "--out", shlex.quote(str(out))])


def export_dir(study: Study) -> Path:
    """Where the study's after-run export goes."""
    return study.config.export.dir or study.run_dir / "best"


def dashboard_argument(url: str) -> str:
    """What optuna-dashboard's command line takes for the storage: a journal file by its path (journal:///
    is searchlab's own form, which it refused with a SQLAlchemy error); any other by its URL, password hidden."""
    from searchlab.engine.rundir import storage_file

    return str(storage_file(url)) if url.startswith("journal://") else shown_url(url)


def dashboard_command(study: Study) -> str:
    """A dashboard command that works as pasted: optuna-dashboard given the masked password failed to log in
    (a StorageInternalError traceback), so a storage with a password is shown by searchlab's own command, or
    optuna-dashboard with the password left for PGPASSWORD."""
    url, run = study.storage_url, shlex.quote(str(study.run_dir))
    if shown_url(url) == url:   # no password in the URL
        return f"optuna-dashboard {shlex.quote(dashboard_argument(url))}   (or: searchlab dashboard {run})"
    if url.startswith("postgres"):
        return f"searchlab dashboard {run}   (or: PGPASSWORD=... optuna-dashboard {shlex.quote(without_password(url))})"
    return f"searchlab dashboard {run}"


def _study_held(manifest: Path) -> str | None:
    """The study name a run folder's manifest records (None when unreadable: the run replaces it)."""
    try:
        name = json.loads(manifest.read_text()).get("study_name")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def failure_cap_reached(failed: int, failed_before: int, max_failed: int, defaulted: bool = True) -> str:
    """Failed trials stay in the study and the cap counts them all, so running again as it is would stop at
    once: the fix includes a higher cap. `defaulted`: the study file set no max_failed (n_trials is the cap)."""
    return (f"stopped: {failed} trials failed, budget.max_failed={max_failed}"
            f"{' (default: n_trials)' if defaulted else ''} reached"
            + (f" ({failed_before} of them in earlier runs: the cap counts the study's failures over all its runs)"
               if failed_before else "")
            + ("; trials already running finished" if failed > failed_before else "")
            + f". Fix what the failures say, then run again with a higher cap (failed trials stay in the study): "
              f"--set budget.max_failed={failed + max_failed}")


def print_run_summary(study: Study, result: Any, exported: Path | None, test_headline: str | None = None,
                      export_there: str | None = None) -> None:
    """`export_there`: the command exporting the best where its checkpoint is (another run folder of the study,
    which this one cannot read), when the after-run export could not be made here."""
    ostudy: optuna.Study = result.study
    print(f"\nstudy '{study.config.name}': {state_counts(ostudy)}{retried_failures_said(ostudy)} in "
          f"{result.seconds:.0f} s"
          + _shared_said(ostudy, result) + (_interrupted_said(study.run_dir) if result.interrupted else ""))
    best = best_trials(ostudy)
    if best and (over := over_budget_said(ostudy, study.run_dir)):   # with none completed, the end says it
        print(over)
    if cut := cut_short_said(ostudy, study.run_dir):
        print(cut)
    n_trials = study.config.budget.n_trials
    finished = len(ostudy.get_trials(deepcopy=False, states=FINISHED))
    if not result.interrupted and finished == result.trials_before and finished >= n_trials:
        configs = sum(t.state in FINISHED for t in final_trials(ostudy))   # as the budget counts: a retry once
        print(f"nothing ran: the {configs} stored trials already reach budget.n_trials={n_trials}. To search on, "
              f"raise it above {configs} (e.g. --set budget.n_trials={configs + n_trials}) or give the study a new "
              "name for a fresh search")
    if getattr(result, "stopped_by", None) == LEFT_RUNNING:
        print(_left_running_said(ostudy))
    given_cap = getattr(study.config.budget, "max_failed", None)
    max_failed = given_cap or n_trials
    failed_out = failed_configs(ostudy) >= max_failed
    if stopped_by_failures(ostudy, n_trials, max_failed, result.interrupted):
        print(failure_cap_reached(failed_configs(ostudy), getattr(result, "failed_before", 0), max_failed,
                                  defaulted=given_cap is None))
    timeout = getattr(study.config.budget, "timeout", None)
    if not result.interrupted and not failed_out and timeout and finished < n_trials and result.seconds >= timeout:
        # a search the clock ended is a shorter search than the study file says: report it as run
        print(f"stopped: budget.timeout={timeout:g} s reached after {finished} of budget.n_trials={n_trials} trials "
              "(completed and pruned); running the study again resumes it")
    if getattr(result, "strategy_error", None) is not None:
        print(_strategy_stop_said(result.trials_finished, n_trials, result.strategy_error))
    if getattr(result, "stopped_by", None) == SAMPLER_STOPPED:   # its note said why, before the trials' lines
        print(f"stopped: the strategy's sampler ended the study itself after {finished} of budget.n_trials="
              f"{n_trials} trials (the note above says when)")
    queued = ostudy.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    if queued and not result.interrupted and finished >= n_trials:
        print(f"{len(queued)} queued config(s) did not run: budget.n_trials={n_trials} is reached. To run them: "
              f"--set budget.n_trials={finished + len(queued)}")
        for trial in queued[:3]:
            print(f"  queued trial {trial.number} ({queued_by(trial)}): "
                  + ", ".join(f"{k}={fmt(v)}" for k, v in trial.system_attrs.get("fixed_params", {}).items()))
    if best and len(ostudy.directions) > 1:   # no trial is "the best": say what is listed and in which order
        best = front_by_first_objective(ostudy, best)
        print(front_heading(best, min(3, len(best)), getattr(study, "objectives", ())))
    for trial in best[:3]:
        print(describe_trial(ostudy, trial))
    if len(best) > 3:
        ranked = "of the Pareto front" if len(ostudy.directions) > 1 else "completed"
        print(f"(the best 3 of {len(best)} {ranked} shown; all: searchlab status {shlex.quote(str(study.run_dir))} "
              f"--top {len(best)})")
    if not result.interrupted:   # why trials failed, whether or not the progress bar said it (the latest 3)
        print_failures(ostudy)
    print(f"storage:   {shown_url(study.storage_url)}")
    print(f"dashboard: {dashboard_command(study)}")
    # an export left by another study run in this folder does not stand for this one
    other = export_of_another_study(export_dir(study), ostudy) if best and result.trials_finished == 0 else None
    if exported is not None:
        print(f"exported:  {exported}  (load with torch alone: see its model.py)")
        if test_headline:   # the first time the test split is read: once, for the model the search chose
            print(f"           {test_headline}")
    elif best and getattr(getattr(study.config, "task", None), "kind", None) == "callable":
        pass   # the user's function trains no model searchlab could export
    elif best and len(ostudy.directions) > 1:   # no single best: the user picks a trade-off from the front
        print(f"export:    {export_command(study, trial='N')}   (N: a trial "
              f"of the Pareto front, e.g. {best[0].number}){moving_aside(export_dir(study))}")
    elif best and result.trials_finished == 0 and (export_dir(study) / "config.json").is_file() and other is None:
        print(f"exported:  {export_dir(study)}  (by an earlier run: nothing ran since, so it stands)")
    elif best and export_there:   # the command below would fail here again: the checkpoint is another folder's
        print(f"export:    {export_there}   (on the machine holding that run folder)")
    elif best:   # as the after-run export does: an ensemble of at most the completed trials
        completed = len(ostudy.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        print(f"export:    {export_command(study, min(study.config.export.top_k, completed))}"
              + (f"   ({export_dir(study)} holds {other}, not this study's)" if other else "")
              + moving_aside(export_dir(study)))   # a copied command was refused
    elif result.interrupted:
        print("no trial completed before the interruption")
    elif ostudy.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        print("no trial completed: fix what the failures above say (`searchlab status` shows the latest ones), "
              "then run again")
    else:
        print_all_pruned(ostudy, study)


def _strategy_stop_said(finished: int, n_trials: int, error: Exception) -> str:
    """A run a plug-in strategy's error ended: what it kept. Only the error followed the trials it had run. A
    refusal of the space (strategy_guard.Refusal) is no bug of the class: the space or the args are to change."""
    refused = " it cannot sample " in str(error)
    return (f"stopped: the study's strategy class {'refused the space' if refused else 'raised'} (its error is the "
            f"last line) after {finished} trial(s) of this run finished (budget.n_trials={n_trials}): they are kept, "
            "summarised below, and count in the budget when the study runs again once "
            + ("the space (or the strategy's args) is changed as its error says" if refused else
               "the class is corrected"))


def _shared_said(ostudy: optuna.Study, result: Any) -> str:
    """Of the study's trials, how many this run finished, when another run of the study finished some meanwhile
    (one that joined it, or that it joined): its progress counted its own only, and the best listed below may
    be the other's."""
    finished = len(ostudy.get_trials(deepcopy=False, states=FINISHED))
    mine = getattr(result, "trials_finished", 0)
    others = finished - getattr(result, "trials_before", 0) - mine
    return (f" ({mine} finished by this run, {others} by another run of the study meanwhile; the best listed are "
            "the study's)") if others > 0 else ""


def _left_running_said(ostudy: optuna.Study) -> str:
    """Why a run stopped short of budget.n_trials with trials RUNNING: they were not its budget to wait for."""
    running = [t.number for t in ostudy.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    shown = ", ".join(map(str, running[:5])) + (", ..." if len(running) > 5 else "")
    return (f"stopped: {len(running)} trial(s) RUNNING (trial {shown}) were left by a run of this folder that ended "
            "without finishing them (killed); they hold budget.n_trials, and no live run finishes them. Fix: run "
            "the study again: it fails them and runs their configs again")


def print_status(run: OpenRun, top: int) -> None:
    study = run.study
    print(f"study '{study.study_name}' in {shown_url(run.storage_url)}: {state_counts(study)}"
          + retried_failures_said(study))
    if over := over_budget_said(study, run.run_dir):   # right under the counts it explains
        print(over)
    if cut := cut_short_said(study, run.run_dir):
        print(cut)
    if measured := feature_network_said(study):
        print(f"  ({measured})")
    if stage := _stage_said(study, run.run_dir):
        print(stage)
    record = run.study.user_attrs.get("searchlab")
    setup = record.get("search") if isinstance(record, dict) else None
    if setup:   # studies recorded before the setup was kept have none, nor do studies made by Optuna directly
        print(describe_setup(setup))
    if waiting := _waiting_for_ray(study, setup, run_here=_run_in_progress(run.run_dir)):
        print(waiting)
    if timing := _time_spent(study):
        print(timing)
    if runs := runs_line(study, _run_in_progress(run.run_dir), run.run_dir):
        print(runs)
    if warned := start_warnings_said(study):
        print(warned)
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    if running and not _run_in_progress(run.run_dir):
        print(_running_elsewhere(study, running))
    best = best_trials(study)
    if best and len(study.directions) > 1:   # no trial is "the best": say what is listed and in which order
        best = front_by_first_objective(study, best)
        print(front_heading(best, min(top, len(best)), setup_objectives(record), run.run_dir))
    for trial in best[:top]:
        print(describe_trial(study, trial))
    print_failures(study)
    print_checkpoint_usage(run)
    if exports := study.user_attrs.get(SCORINGS_KEY):
        print(_exports_line(exports))


def _stage_said(study: optuna.Study, run_dir: Path) -> str | None:
    from searchlab.nas.stage import DESIGN_SUFFIX, PROXY_SUFFIX, stage_said   # no torch: status stays light
    from searchlab.nas.stage_live import runs_waiting_elsewhere, waiting_runs

    # the waiting runs by their markers: a status taking the prepare lock, even for an instant, could stop them waiting
    return stage_said(study, (PROXY_SUFFIX, DESIGN_SUFFIX), latest_run_live(study, _run_in_progress(run_dir), run_dir),
                      waiting=waiting_runs(run_dir), elsewhere=runs_waiting_elsewhere(run_dir))


def _waiting_for_ray(study: optuna.Study, setup: dict[str, Any] | None, run_here: bool = True) -> str | None:
    """Ray trials asked of the study that no worker started yet (no `ray_node`): Tune holds them until a node
    has their resources, e.g. while another driver's trials fill the cluster. RUNNING in the storage all the
    same, so `running` counted them as running. `run_here`: a run of the folder is live on this machine; without
    one only a driver elsewhere whose heartbeats go on holds them: a killed driver's were said to wait for a
    worker and, beside it, to be left by a run that stopped."""
    if not setup or (setup.get("executor") or {}).get("kind") != "ray":
        return None
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    held = running if run_here else _beating(study, running)
    waiting = [t.number for t in held if "ray_node" not in t.user_attrs]
    if not waiting:
        return None
    shown = ", ".join(map(str, waiting[:5])) + (", ..." if len(waiting) > 5 else "")
    return (f"  ({len(waiting)} of the {len(running)} running trial(s) (trial {shown}) wait for a Ray worker: "
            "asked of the study, not started on a node yet; Tune starts them when a node has their resources)")


def _beating(study: optuna.Study, running: list[FrozenTrial]) -> list[FrozenTrial]:
    """The running trials whose driver (on another machine) sent their heartbeat within the grace period."""
    ages = heartbeat_ages(study._storage, running)
    return [t for t in running if ages.get(t.number, GRACE_SECONDS) < GRACE_SECONDS]


def _exports_line(exports: list[dict[str, Any]]) -> str:
    """How often exports scored the test split, and the latest one."""
    last = exports[-1]
    return (f"exports:   the test split was scored by {len(exports)} export(s); the latest, trials "
            f"{','.join(map(str, last['trials']))} tta {last['tta']} at {last['at_utc']} to {last['out']} (all in "
            f"the study's user attribute {SCORINGS_KEY}; their test metrics are in each export's config.json)")


def _time_spent(study: optuna.Study) -> str | None:
    """The trials' summed run time (what `compare` plots against) beside the span from the first start to the
    last end (which counts the idle time between resumed runs), each said for what it is."""
    done = [t for t in study.get_trials(deepcopy=False) if t.datetime_start and t.datetime_complete]
    if not done:
        return None
    ran = sum(trial_seconds(t) for t in done)   # one that died unseen: until its last sign of life
    span = (max(trial_end(t) for t in done) - min(t.datetime_start for t in done)).total_seconds()
    return (f"time:      {ran:.0f} s of trials run (summed over {len(done)} ended trial(s)); {span:.0f} s from the "
            "first start to the last end (with the time between runs, and trials run at once counted once)")


def _running_elsewhere(study: optuna.Study, running: list[FrozenTrial]) -> str:
    """What the RUNNING trials no run of this folder holds are. On a server storage, a trial whose heartbeat is
    recent is alive: another machine (or run folder) runs it. Those were called left by a killed run."""
    ages = heartbeat_ages(study._storage, running)
    alive = sorted(n for n, age in ages.items() if age < GRACE_SECONDS)
    lines = []
    if alive:
        shown = ", ".join(map(str, alive[:5])) + (", ..." if len(alive) > 5 else "")
        lines.append(f"  ({len(alive)} 'running' (trial {shown}) may be running elsewhere: a runner on another "
                     f"machine or run folder of this storage sent their heartbeat {max(ages[n] for n in alive):.0f} s "
                     f"ago or less. If it was killed, a `searchlab run` of the study fails them once they have sent "
                     f"none for {GRACE_SECONDS} s, and runs their configs again)")
    if len(running) > len(alive):
        lines.append(f"  ({len(running) - len(alive)} 'running' left by a run that stopped without finishing them "
                     "(killed or crashed): the next `searchlab run` of the study fails them and runs their configs "
                     "again)")
    return "\n".join(lines)


def _interrupted_said(run_dir: Path) -> str:
    """What a stopped run left, and what running it again does: resumes, or joins a run still going."""
    if _run_in_progress(run_dir):   # another `searchlab run` of the folder, joined by this one, goes on
        return (" (interrupted: this run's running trials are marked FAIL; another `searchlab run` of this folder "
                "goes on, and the running trials are its own; running this again joins it and queues the "
                "interrupted configs again)")
    return (" (interrupted: trials that were running, if any, are marked FAIL; run again to resume, and their "
            "configs run again)")


def _run_in_progress(run_dir: Path) -> bool:
    """Whether a `run` of this folder holds its lock (engine/run.py run_lock) on this machine now."""
    lock = run_dir / ".lock"
    if not lock.is_file():
        return False
    with lock.open("r") as fh:   # flock needs no write access: a run folder one may only read is looked at
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def print_checkpoint_usage(run: OpenRun) -> None:
    """How many trials still have their weights and the disk they take (what export.keep_checkpoints bounds)."""
    store = ContainedArtifactStore(run.artifacts)
    ids = [t.user_attrs["checkpoint"] for t in run.study.get_trials(deepcopy=False) if "checkpoint" in t.user_attrs]
    if not ids:   # a task that trains no model
        return
    present = [i for i in ids if store.exists(i)]
    size = sum((run.artifacts / i).stat().st_size for i in present)
    print(f"weights:   {len(present)} of {len(ids)} trials' checkpoints kept, {size / 2**20:.1f} MiB in "
          f"{run.artifacts} (export.keep_checkpoints: K keeps the K best)")
    if elsewhere := _checkpoints_elsewhere(run, store):
        print(elsewhere)


def _checkpoints_elsewhere(run: OpenRun, store: ContainedArtifactStore) -> str | None:
    """The trials whose checkpoints other run folders of the study hold (engine/own_trials.py record_trained):
    a second folder's status said "2 of 6 kept", as if keep_checkpoints had deleted the other run's four."""
    import socket

    from searchlab.engine.own_trials import trained_in

    not_here = {t.number for t in run.study.get_trials(deepcopy=False)
                if "checkpoint" in t.user_attrs and not store.exists(t.user_attrs["checkpoint"])}
    here = (socket.gethostname(), str(run.run_dir.resolve()))
    held = [(folder, len(not_here & folder.trials)) for folder in trained_in(run.study.user_attrs)
            if (folder.host, folder.run_dir) != here]
    said = [f"{n} in {folder.run_dir}" + _where_held(folder, here[0]) for folder, n in held if n]
    return f"           trained by other run folders of this study, which hold them: {', '.join(said)}" \
        if said else None


def _where_held(folder: Any, host: str) -> str:
    """Another machine's folder named by its machine; one of this machine that is gone said so (moved or deleted:
    its checkpoints are not there to export)."""
    if folder.host != host:
        return f" on machine {folder.host}"
    return "" if Path(folder.artifacts).is_dir() else " (not found on this machine: moved or deleted)"


def print_failures(study: optuna.Study, last: int = 3) -> None:
    """The latest failed configs with their reasons."""
    for trial in failed_trials(study)[-last:]:
        print(f"  failed trial {trial.number}: {failure_reason(trial)}")


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return []
    if len(study.directions) > 1:
        return list(study.best_trials)
    sign = -1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1
    return sorted(complete, key=lambda t: sign * t.value)


def state_counts(study: optuna.Study) -> str:
    counts = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no trials"


def retried_failures_said(study: optuna.Study) -> str:
    """The failed trials whose config ran again (a retry with user attr `retry_of`), said after the counts: after
    a Ctrl-C and a resume, "3 complete, 1 fail" said nothing of the fail being an interruption whose config
    re-ran; only `searchlab trials` (its error and retry_of columns) told it."""
    retried = retried_failures(study)
    if len(retried) == 1:
        return f" ({retry_said(*retried[0])})"
    pairs = ", ".join(f"{failed.number} as {retry.number}" for failed, retry in retried[:5])
    return (f" ({len(retried)} of them stopped before their end, and their configs run again as other trials: "
            f"trial {pairs}{', ...' if len(retried) > 5 else ''})") if retried else ""
