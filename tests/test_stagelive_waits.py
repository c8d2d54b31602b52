"""A stage before training (zen_nas) searched by one run while another looks at it.

- Two run folders of one study (one SQLite file through `storage:`, as two Ray drivers share a PostgreSQL
  study): the second read the first's live chunks as a killed stage's and continued it at the same time (two
  searches wrote one record). It now waits while the stage is written, and continues it once its run is killed.
- `searchlab status` of a folder whose runner is in its stage while a joined run waits: it counted the waiting
  run as running, and said nothing of the stage being searched nor of the run waiting for it.

Cheap: the runs in processes of their own write a chunk every half second (stage.CHUNK_SECONDS patched by the
`python -c` they run, as tests/test_stagechunks_kill.py does: the product reads no setting for it), so a stage is
told silent after 1.5 s, not 30.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import optuna
from optuna.trial import TrialState

from searchlab import cli
from searchlab.nas.stage_live import WAITING_MARKER, WRITER, waiting_runs
from test_stagechunks_kill import REPO, RUN_WITH_QUICK_CHUNKS, TESTS, _written, run_in_its_stage
from test_zen_nas import STUDY as ZEN_STUDY

ELSEWHERE = "zen.zen_proxy: the stage before training is being searched by another run of this study (pid "
LONG_STAGE = ZEN_STUDY.replace("N", "2").replace("candidates: 30", "candidates: 5000")


@contextmanager
def _run(path: Path, log: Path, *flags: str):
    """`searchlab run` (quick chunks) in a process of its own; killed on the way out if still alive."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)])}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-c", RUN_WITH_QUICK_CHUNKS, "run", str(path), "--no-progress",
                                 *flags], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _until(said, proc: subprocess.Popen, log: Path, seconds: float = 40) -> None:
    deadline = time.time() + seconds
    while not said():
        assert proc.poll() is None, f"the run ended first:\n{log.read_text()}"
        assert time.time() < deadline, log.read_text()
        time.sleep(0.1)


def test_a_second_folder_of_the_study_waits_for_its_live_stage_and_continues_it_once_killed(write_study, tmp_path):
    db = tmp_path / "shared.db"
    storage = f"\nstorage: 'sqlite:///{db}'\n"
    first = write_study(LONG_STAGE + storage + f"run_dir: '{tmp_path / 'one'}'\n", name="one.yaml")
    second = write_study(LONG_STAGE + storage + f"run_dir: '{tmp_path / 'two'}'\n", name="two.yaml")
    log_one, log_two = tmp_path / "one.log", tmp_path / "two.log"
    with run_in_its_stage(first, db, "zen.zen_proxy", log_one) as one:
        # the second asks fewer candidates than the first has scored once it continues: it finishes at once then
        with _run(second, log_two, "--set", "strategy.args.candidates=20") as two:
            _until(lambda: ELSEWHERE in log_two.read_text(), two, log_two)
            record = optuna.load_study(study_name="zen.zen_proxy", storage=f"sqlite:///{db}")
            assert record.user_attrs[WRITER]["pid"] == one.pid   # the first still writes it, alone
            assert "continuing the stage" not in log_two.read_text()
            stamped = record.user_attrs[WRITER]["at"]   # the first goes on stamping it meanwhile
            _until(lambda: record.user_attrs[WRITER]["at"] > stamped, one, log_one)
            one.kill()
            one.wait()
            assert two.wait(timeout=60) == 0, log_two.read_text()
    said = log_two.read_text()
    assert said.count(ELSEWHERE) == 1, said
    assert "zen.zen_proxy: continuing the stage cut short by a kill" in said, said
    main = optuna.load_study(study_name="zen", storage=f"sqlite:///{db}")
    trained = main.get_trials(states=(TrialState.COMPLETE,))
    assert len(trained) == 2 and all("zen_score" in t.user_attrs for t in trained), said


def test_status_says_the_stage_runs_and_the_joined_runs_waiting_for_it(write_study, tmp_path, capsys):
    path = write_study(LONG_STAGE)
    run_dir, db = tmp_path / "run", tmp_path / "run" / "study.db"
    with _run(path, tmp_path / "one.log") as one:
        _until(lambda: (run_dir / ".lock").is_file(), one, tmp_path / "one.log")   # its sole runner: the other joins
        with _run(path, tmp_path / "joined.log") as joined:
            _until(lambda: any(run_dir.glob(f"{WAITING_MARKER}*")), joined, tmp_path / "joined.log")
            _until(lambda: _written(db, "zen.zen_proxy"), one, tmp_path / "one.log")
            assert cli.main(["status", str(run_dir)]) == 0
            said = capsys.readouterr().out
    line = next((line for line in said.splitlines() if "stage before training" in line), said)
    assert line.startswith("  stage before training: running, ") and " written so far; 1 joined run(s) of this " \
        "folder wait for it (their workers start once it has queued its designs)" in line, said
    assert not waiting_runs(run_dir)   # the marker of the waiting run, killed, is not counted


def _stamped_by_a_live_process(write_study, tmp_path) -> tuple[Path, subprocess.Popen]:
    """A zen study whose stage record is stamped, now, by a live process of this machine (a `sleep`, standing in
    for a run of another folder in its stage)."""
    path = write_study(ZEN_STUDY.replace("N", "2"))
    other = subprocess.Popen(["sleep", "30"])
    storage = f"sqlite:///{tmp_path / 'run' / 'study.db'}"
    (tmp_path / "run").mkdir()
    record = optuna.create_study(study_name="zen.zen_proxy", storage=storage, direction="maximize")
    record.set_user_attr(WRITER, {"host": socket.gethostname(), "pid": other.pid, "at": time.time() + 60})
    return path, other


def test_budget_timeout_and_ctrl_c_count_while_waiting_for_a_stage_elsewhere(write_study, tmp_path, capsys):
    path, other = _stamped_by_a_live_process(write_study, tmp_path)
    try:
        started = time.time()
        # no trial completed: exit code 1, as for any run that trained none
        assert cli.main(["run", str(path), "--no-progress", "--set", "budget.timeout=2"]) == 1
        out, err = capsys.readouterr()
        assert ELSEWHERE in err and "(budget.timeout counts while it waits)" in err
        assert "budget.timeout ran out while this run waited for the stage searched by another run" in err
        assert time.time() - started < 20 and "continuing the stage" not in out
        assert not optuna.load_study(study_name="zen", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
        assert cli.main(["run", str(path), "--no-progress"]) == 130
        assert ELSEWHERE in capsys.readouterr().err
    finally:
        other.kill()
        other.wait()
