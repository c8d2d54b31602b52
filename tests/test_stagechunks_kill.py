"""A stage before training (zen_nas, deepmad) killed as it searches (kill -9, the OOM killer, `docker stop` past its
grace): it writes what it scored in chunks as it goes, so the next run continues from them. It wrote its networks
in one batch at its end: a kill lost every one (minutes of scoring), and the next run refused the stage."""
from __future__ import annotations

import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing, contextmanager
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from searchlab import cli
from searchlab.config.load import load_study
from searchlab.engine.bulk import bulk_add_trials
from searchlab.errors import SearchlabError
from searchlab.nas import stage as stage_module
from searchlab.nas.stage import KILLED, stage_said
from test_deepmad import STUDY as DEEPMAD_STUDY
from test_zen_nas import STUDY as ZEN_STUDY

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
# `searchlab run`, writing a chunk every half second (every CHUNK_SECONDS, 10 s, as shipped: a minute of test)
RUN_WITH_QUICK_CHUNKS = ("import sys; import searchlab.nas.stage as stage; stage.CHUNK_SECONDS = 0.5; "
                         "from searchlab.cli import main; sys.exit(main())")
DM_ARGS = {"top_k": 2, "iterations": 3, "popsize": 5}


def _written(db: Path, name: str) -> int:
    """The trials of study `name` in the SQLite file another process writes (0 before it has any)."""
    if not db.exists():
        return 0
    try:
        with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as con:
            return con.execute("SELECT count(*) FROM trials JOIN studies USING (study_id) WHERE study_name = ?",
                               (name,)).fetchone()[0]
    except sqlite3.OperationalError:   # its tables not made yet
        return 0


def _kill_after_first_chunk(path: Path, db: Path, name: str, log: Path, before_kill=lambda: None) -> None:
    """Run `searchlab run` in a process of its own, and SIGKILL it once the stage has written its first chunk
    (calling `before_kill` first, while it runs)."""
    with run_in_its_stage(path, db, name, log) as proc:
        before_kill()
        proc.kill()
        assert proc.wait(timeout=30) == -signal.SIGKILL


@contextmanager
def run_in_its_stage(path: Path, db: Path, name: str, log: Path):
    """`searchlab run` in a process of its own, given once its stage (recorded as study `name`) has written its
    first chunk; killed on the way out if still alive."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", RUN_WITH_QUICK_CHUNKS, "run", str(path), "--no-progress"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 60
        while not _written(db, name):
            assert proc.poll() is None, f"the run ended before the stage wrote anything:\n{log.read_text()}"
            assert time.time() < deadline, f"the stage wrote nothing in 60 s:\n{log.read_text()}"
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _trials(record: optuna.Study) -> list[tuple]:
    return [(t.number, t.state, t.params, t.value, t.user_attrs) for t in record.trials]


def test_a_zen_nas_stage_killed_mid_search_is_continued_from_the_networks_it_wrote(write_study, tmp_path, capsys):
    path = write_study(ZEN_STUDY.replace("N", "1").replace("candidates: 30", "candidates: 5000"))
    db, log = tmp_path / "run" / "study.db", tmp_path / "killed.log"
    running = []   # what status says while the stage searches: running, not killed (as it read before the kill)
    _kill_after_first_chunk(path, db, "zen.zen_proxy", log,
                            lambda: running.append((cli.main(["status", str(tmp_path / "run")]),
                                                    capsys.readouterr().out)))
    assert running[0][0] == 0 and "  stage before training: running, " in running[0][1], running
    assert KILLED not in running[0][1]
    storage = f"sqlite:///{db}"
    record = optuna.load_study(study_name="zen.zen_proxy", storage=storage)
    kept, attrs = record.trials, record.user_attrs
    scored = sum(t.state == TrialState.COMPLETE for t in kept)
    assert scored and not attrs["searchlab:stage_done"] and attrs["searchlab:stage_cut"] is None, log.read_text()
    assert attrs["searchlab:stage_args"]["candidates"] == 5000
    assert not optuna.load_study(study_name="zen", storage=storage).trials   # killed before any trial
    # status says what the stage kept, as for one cut short
    assert cli.main(["status", str(tmp_path / "run")]) == 0
    said = capsys.readouterr().out
    assert f"stage before training: cut short by {KILLED}; kept: {scored} scored, " in said, said
    assert "The next `searchlab run` of this study continues it" in said
    # the next run continues it (it was refused): asked 8 more networks than were kept, it scores those 8
    assert cli.main(["run", str(path), "--no-progress", "--set", f"strategy.args.candidates={scored + 8}"]) == 0
    out = capsys.readouterr().out
    assert (f"zen.zen_proxy: continuing the stage cut short by {KILLED}; kept: the {len(kept)} networks it wrote "
            f"({scored} scored, ") in out, out
    assert f", now with candidates {scored + 8} (it was recorded with 5000)" in out
    record = optuna.load_study(study_name="zen.zen_proxy", storage=storage)
    assert record.user_attrs["searchlab:stage_done"]
    assert [(t.params, t.value, t.state) for t in record.trials[:len(kept)]] == \
        [(t.params, t.value, t.state) for t in kept]
    networks = [t.user_attrs["architecture"] for t in record.trials if t.state == TrialState.COMPLETE]
    assert len(networks) == len(set(networks)) == scored + 8   # none scored again
    by_number = {t.number: t for t in record.trials}
    assert all(by_number[t.user_attrs["same_network_as"]].user_attrs["architecture"] == t.user_attrs["architecture"]
               for t in record.trials if "same_network_as" in t.user_attrs)   # numbered as the search numbered them
    [trained] = optuna.load_study(study_name="zen", storage=storage).get_trials(states=(TrialState.COMPLETE,))
    assert "zen_score" in trained.user_attrs   # its best queued once it finished


class _Killed(BaseException):
    """Stands in for SIGKILL in this process: the stage ends where it is, writing nothing more."""


def _killed_after_first_chunk(monkeypatch) -> None:
    real = stage_module._Chunks.write

    def write_then_die(self, trials, state, cut, running=False):
        real(self, trials, state, cut, running)
        if running:
            raise _Killed

    monkeypatch.setattr(stage_module, "CHUNK_SECONDS", 0.0)   # a chunk at every generation
    monkeypatch.setattr(stage_module._Chunks, "write", write_then_die)


def test_a_deepmad_solve_killed_after_a_chunk_is_continued_and_said_as_kept(write_study, tmp_path, monkeypatch,
                                                                           capsys):
    from searchlab.nas.deepmad_design import prepare_deepmad

    study = load_study(write_study(DEEPMAD_STUDY.replace("FLOPS", "4.0e+6")))
    main = optuna.create_study(study_name="dm", storage=f"sqlite:///{tmp_path / 'dm.db'}", direction="maximize")
    _killed_after_first_chunk(monkeypatch)
    with pytest.raises(_Killed):
        prepare_deepmad(study, main, DM_ARGS)
    monkeypatch.undo()
    record = optuna.load_study(study_name="dm.deepmad", storage=main._storage)
    kept, attrs = record.trials, record.user_attrs
    assert kept and all(t.state == TrialState.COMPLETE for t in kept)   # the feasible designs found so far
    assert not attrs["searchlab:stage_done"] and attrs["searchlab:stage_state"]["generations"] >= 1
    assert not main.trials
    assert stage_said(main, (".deepmad",)).startswith(f"  stage before training: cut short by {KILLED}; kept: "
                                                      f"{len(kept)} scored, 0 over")
    with pytest.raises(SearchlabError, match=re.escape(f"cut short by {KILLED} with rho0 0.5; this run asks rho0 "
                                                       "0.4, and continuing it would mix two searches")):
        prepare_deepmad(study, main, {**DM_ARGS, "rho0": 0.4})
    capsys.readouterr()
    prepare_deepmad(study, main, DM_ARGS)
    assert (f"dm.deepmad: continuing the stage cut short by {KILLED}; kept: the {len(kept)} networks it wrote "
            f"({len(kept)} scored, 0 over") in capsys.readouterr().out
    record = optuna.load_study(study_name="dm.deepmad", storage=main._storage)
    assert record.user_attrs["searchlab:stage_done"] and len(record.trials) > len(kept)
    assert [t.params for t in record.trials[:len(kept)]] == [t.params for t in kept]
    keys = [str(sorted(t.params.items())) for t in record.trials]
    assert len(keys) == len(set(keys))   # each design recorded once
    assert len([t for t in main.trials if t.state == TrialState.WAITING]) == 2


def _staged(prepare, study, args, db: Path, suffix: str, every: float, monkeypatch) -> tuple[list, list, int]:
    """The record, the designs queued and the writes of a stage run with a chunk every `every` seconds."""
    monkeypatch.setattr(stage_module, "CHUNK_SECONDS", every)
    writes = []
    real = stage_module.bulk_add_trials
    monkeypatch.setattr(stage_module, "bulk_add_trials", lambda *a: writes.append(1) or real(*a))
    main = optuna.create_study(study_name=study.config.name, storage=f"sqlite:///{db}", direction="maximize")
    prepare(study, main, args)
    record = optuna.load_study(study_name=study.config.name + suffix, storage=main._storage)
    queued = [(t.system_attrs.get("fixed_params"), t.user_attrs) for t in main.trials]
    return _trials(record), queued, len(writes)


def test_chunks_record_the_same_stage_as_one_batch(write_study, tmp_path, monkeypatch):
    """Written round by round (generation by generation), each network keeps its number (same_network_as and
    proxy_trial name trials by it), its score and attrs, and the same designs are queued."""
    from searchlab.nas.deepmad_design import prepare_deepmad
    from searchlab.nas.zen_nas import prepare_zen_nas

    zen = load_study(write_study(ZEN_STUDY.replace("N", "1"), name="zen.yaml"))
    zen_args = {"candidates": 24, "top_k": 2, "population_size": 4, "sample_size": 2, "batch_size": 4, "threads": 1}
    dm = load_study(write_study(DEEPMAD_STUDY.replace("FLOPS", "4.0e+6"), name="dm.yaml"))
    for prepare, study, args, suffix in ((prepare_zen_nas, zen, zen_args, ".zen_proxy"),
                                         (prepare_deepmad, dm, DM_ARGS, ".deepmad")):
        chunked = _staged(prepare, study, args, tmp_path / f"chunked{suffix}.db", suffix, 0.0, monkeypatch)
        batch = _staged(prepare, study, args, tmp_path / f"batch{suffix}.db", suffix, math.inf, monkeypatch)
        assert chunked[:2] == batch[:2] and chunked[0] and chunked[1]
        assert batch[2] == 1 and chunked[2] >= 3, (suffix, chunked[2])   # chunks, then the end's write


def test_a_stage_written_in_one_batch_and_killed_before_its_arguments_is_still_refused(write_study):
    """Trials but no arguments (a searchlab before chunks, killed between its batch and the attrs): what they were
    searched with is unknown, so continuing could mix searches."""
    from searchlab.nas.zen_nas import prepare_zen_nas

    main = optuna.create_study(study_name="zen", direction="maximize")
    record = optuna.create_study(study_name="zen.zen_proxy", storage=main._storage, direction="maximize")
    record.add_trial(create_trial(params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}, value=1.0))
    assert "the next run refuses it" in stage_said(main, (".zen_proxy",))
    with pytest.raises(SearchlabError, match="holds an unfinished search"):
        prepare_zen_nas(load_study(write_study(ZEN_STUDY.replace("N", "1"))), main, {})


def test_bulk_writes_the_study_attrs_with_the_trials(tmp_path):
    trial = create_trial(params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}, value=1.0)
    for storage in (f"sqlite:///{tmp_path / 'a.db'}",
                    optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "j")))):
        study = optuna.create_study(storage=storage)
        bulk_add_trials(study, [trial], {"state": {"generations": 3}, "done": False})
        assert bulk_add_trials(study, [], {"done": True}) == "none"
        assert study.user_attrs == {"state": {"generations": 3}, "done": True} and len(study.trials) == 1


def test_bulk_writes_the_study_attrs_with_the_trials_on_postgresql(postgres):
    from searchlab.engine.storage import open_storage

    study = optuna.create_study(study_name="chunks", storage=open_storage(postgres), direction="maximize")
    trial = create_trial(params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}, value=1.0)
    assert bulk_add_trials(study, [trial, trial], {"state": None, "done": False}) == "rdb-batch"
    assert bulk_add_trials(study, [trial], {"done": True}) == "rdb-batch"
    read = optuna.load_study(study_name="chunks", storage=open_storage(postgres))
    assert read.user_attrs == {"state": None, "done": True} and [t.number for t in read.trials] == [0, 1, 2]
