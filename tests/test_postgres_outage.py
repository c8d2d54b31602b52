"""A PostgreSQL storage that stops, restarts or is shared by runners that do not know of each other: on a real
server of this module's own (tests/postgres_server.py starts one it cannot stop and start again)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from postgres_server import _as_server_user, _bindir, _free_port
from searchlab.cli import main
from searchlab.config.load import load_study
from searchlab.engine import storage as storage_module
from searchlab.engine.run import create_or_load, run_study
from searchlab.engine.storage import open_storage
from searchlab.engine.worker import open_optuna_study
from searchlab.errors import StorageError
from test_run import callable_study
from test_signals import _start_run, _study, _wait_for_pids


class Server:
    """A throwaway PostgreSQL cluster (127.0.0.1 only) that a test may stop and start."""

    def __init__(self, bindir: Path) -> None:
        self.bindir, self.port = bindir, _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="searchlab-pg-outage-"))
        self.data = self.folder / "data"
        self.url = f"postgresql://searchlab@127.0.0.1:{self.port}/searchlab"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(_as_server_user([str(self.bindir / program), *args]), check=True, capture_output=True,
                       text=True)

    def create(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "searchlab", "--auth=trust", "-E", "UTF8")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "searchlab", "searchlab")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), "-w", "-o",
                  f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder}", "start")

    def stop(self) -> None:   # -m fast: the server ends its clients' connections, as a restart or an outage does
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def is_running(self) -> bool:
        return subprocess.run(_as_server_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"]),
                              capture_output=True).returncode == 0

    def remove(self) -> None:
        subprocess.run(_as_server_user([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                                        "stop"]), capture_output=True)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    bindir = _bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server programs on this machine (Debian: apt-get install postgresql)")
    made = Server(bindir)
    try:
        made.create()
        yield made
    finally:
        made.remove()


@pytest.fixture()
def pg(server: Server) -> Iterator[str]:
    """The server's URL; running again after the test, whatever the test stopped."""
    yield server.url
    if not server.is_running():
        server.start()


def _named(write_study, text: str, name: str):
    return write_study(text.replace("name: fake", f"name: {name}"))   # the server is shared by the module's tests


def test_a_restarted_server_is_used_again_without_an_error(server, pg):
    """Every pooled connection dies with a server restart: the first query on one failed although the server
    was back (the run's progress read then ended it with a traceback)."""
    storage = open_storage(pg)
    optuna.create_study(study_name="restarted", storage=storage)
    server.stop()
    server.start()
    assert [s.study_name for s in storage.get_all_studies()] == ["restarted"]


def test_a_heartbeat_while_the_server_is_away_is_skipped(server, pg):
    """Optuna's heartbeat thread ended at its first error, so a trial alive through a 2-second restart looked
    dead to every other runner afterwards."""
    ostudy = optuna.create_study(study_name="beats", storage=open_storage(pg, heartbeat=True))
    trial = ostudy.ask()
    server.stop()
    ostudy._storage.record_heartbeat(trial._trial_id)   # no error: the next beat, with the server back, counts
    server.start()
    ostudy._storage.record_heartbeat(trial._trial_id)


def test_a_run_goes_on_through_a_server_restart(write_study, tmp_path, server, pg):
    """A 2-second restart while a trial trained (no query in flight) ended the run with a traceback at its next
    query, on a pooled connection the restart had closed; its history and summary were never written."""
    path, pid_dir = _study(write_study, tmp_path, n=2, sleep=3, extra=f"\nstorage: '{pg}'\n")
    path.write_text(path.read_text().replace("name: fake", "name: restarted_run"))
    proc = _start_run(path)
    _wait_for_pids(pid_dir, 1)
    server.stop()
    server.start()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    trials = optuna.load_study(study_name="restarted_run", storage=open_storage(pg)).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2


@pytest.mark.parametrize("workers", [1, 2])   # 2: worker processes under the run's supervision
def test_a_server_that_stops_mid_run_ends_it_with_one_line(write_study, tmp_path, server, pg, workers):
    """It ended in a 315-line traceback (Optuna's UnboundLocalError 'updated_state')."""
    extra = f"\nstorage: '{pg}'\nexecutor: {{kind: local, workers: {workers}}}\n"
    path, pid_dir = _study(write_study, tmp_path, n=2, sleep=3, extra=extra)
    path.write_text(path.read_text().replace("name: fake", f"name: outage{workers}"))
    proc = _start_run(path)
    _wait_for_pids(pid_dir, workers)
    server.stop()                       # while trial 0 runs: its result cannot be stored
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    assert "Traceback" not in err and "UnboundLocalError" not in err
    [line] = [said for said in err.splitlines() if said.startswith("error:")]
    assert f"lost the connection to storage '{pg}' during the run" in line
    assert "The trials that finished are stored there" in line
    assert "Fix: once the server is reachable again, run the same `searchlab run` command to resume" in line


def test_two_runners_started_together_draw_different_configs(write_study, tmp_path, pg):
    """Two machines (two run folders) starting one study at once counted the same trials, so seeded their
    samplers alike and ran every config twice. A lone runner keeps the seed it always had."""
    path = _named(write_study, callable_study(write_study, n=2, extra=f"\nstorage: '{pg}'\n").read_text(),
                  "together")
    study_a = load_study(path, {"run_dir": str(tmp_path / "a")})
    study_b = load_study(path, {"run_dir": str(tmp_path / "b")})
    create_or_load(study_a)
    runner_a, runner_b = open_optuna_study(study_a), open_optuna_study(study_b)   # both count 0 trials
    draw = {"x": FloatDistribution(-3, 3)}
    first, second = runner_a.ask(draw), runner_b.ask(draw)
    assert (first.number, second.number) == (0, 1)
    assert first.params != second.params
    lone = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=study_a.config.seed)).ask(draw)
    assert first.params == lone.params


def test_a_stale_trial_is_failed_with_its_reason_and_the_wait_is_said(write_study, pg, monkeypatch, capsys):
    """A resume on PostgreSQL waited for a killed run's trial to go stale without a word (about 45 s), then
    said `trial 1 failed: no reason stored`."""
    monkeypatch.setattr(storage_module, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(storage_module, "GRACE_SECONDS", 2)
    path = _named(write_study, callable_study(write_study, n=2, extra=f"\nstorage: '{pg}'\n").read_text(), "stale")
    run_study(load_study(path), progress=False)
    ostudy = optuna.load_study(study_name="stale", storage=open_storage(pg, heartbeat=True))
    killed = ostudy.ask({"x": FloatDistribution(-3, 3)})
    ostudy._storage.record_heartbeat(killed._trial_id)   # its process then died: no more heartbeats
    capsys.readouterr()
    study = run_study(load_study(path, {"budget.n_trials": 3}), progress=False).study
    err = capsys.readouterr().err
    assert f"waiting for 1 trial(s) RUNNING in the storage (trial {killed.number}:" in err
    assert "once their runner has sent no heartbeat for 2 s" in err
    failed = study.get_trials()[killed.number]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["error"].startswith("its runner sent no heartbeat for over 2 s (killed, crashed")
    assert [t.params for t in study.get_trials() if t.user_attrs.get("retry_of") == killed.number] == [failed.params]


def test_status_says_a_trial_with_a_recent_heartbeat_may_be_running_elsewhere(write_study, tmp_path, pg, capsys):
    """`status` from machine B's run folder called the trial machine A was training 'left by a run that stopped
    without finishing them (killed or crashed)'."""
    path = _named(write_study, callable_study(write_study, n=1, extra=f"\nstorage: '{pg}'\n").read_text(),
                  "elsewhere")
    run_study(load_study(path), progress=False)
    ostudy = optuna.load_study(study_name="elsewhere", storage=open_storage(pg, heartbeat=True))
    alive = ostudy.ask({"x": FloatDistribution(-3, 3)})
    ostudy._storage.record_heartbeat(alive._trial_id)   # another machine trains it
    capsys.readouterr()
    assert main(["status", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert f"1 'running' (trial {alive.number}) may be running elsewhere" in out
    assert "left by a run that stopped" not in out


def test_the_postgres_spelling_is_refused_with_the_one_sqlalchemy_knows(pg):
    """postgres:// (libpq's and Heroku's spelling) said only "Can't load plugin: sqlalchemy.dialects:postgres"."""
    with pytest.raises(StorageError, match="Fix: use postgresql:// .*e.g. postgresql://searchlab@127.0.0.1"):
        open_storage(pg.replace("postgresql://", "postgres://"))


def test_a_call_during_a_short_outage_is_tried_again_until_the_server_is_back(server, pg, capsys):
    """A Ray driver asks for and tells every trial, and every new Ray worker opens the storage: one of those
    during a 4-second restart ended the whole Ray run."""
    import threading

    from searchlab.engine.storage import through_outage

    server.stop()
    threading.Timer(3.0, server.start).start()
    said: list[bool] = []
    studies = through_outage(lambda: open_storage(pg).get_all_studies(), seconds=60, said=said)
    assert isinstance(studies, list) and said == [True]
    err = capsys.readouterr().err
    assert err.count("note: the storage's server cannot be reached") == 1 and "trying again for up to 60 s" in err
    with pytest.raises(StorageError, match="cannot open storage"):   # not a server away: raised at once
        through_outage(lambda: open_storage(pg.replace("/searchlab", "/no_such_db")), seconds=60)


def test_a_ray_run_goes_on_through_a_server_restart(write_study, tmp_path, server, pg):
    """The audit's case: `pg_ctl stop; sleep 3; pg_ctl start` during a Ray run on PostgreSQL ended it (exit 2,
    45 lines of "Trial task failed ... StorageError"), two trials left RUNNING."""
    pytest.importorskip("ray")
    extra = f"\nstorage: '{pg}'\nexecutor: {{kind: ray, max_concurrent: 1}}\n"
    path, pid_dir = _study(write_study, tmp_path, n=3, sleep=2, extra=extra)
    path.write_text(path.read_text().replace("name: fake", "name: ray_restart"))
    proc = _start_run(path)
    _wait_for_pids(pid_dir, 1)
    server.stop()   # while trial 0 sleeps; trial 1 is asked for while the server is away
    time.sleep(3)
    server.start()
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    trials = optuna.load_study(study_name="ray_restart", storage=open_storage(pg)).get_trials()
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 3, [(t.state, t.user_attrs.get("error")) for t in trials]
    assert not [t for t in trials if t.state == TrialState.RUNNING]
