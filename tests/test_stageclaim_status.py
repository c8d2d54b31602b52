"""`searchlab status` of a run folder whose run waits for the stage before training searched by another run folder
of the study (two folders on one SQLite file through `storage:`).

The waiting run marked nothing: status of its folder did not say that its run waits, nor for whom, and a run that
trained nothing for minutes looked stuck. It now marks its own folder while it waits, and status names the writer.
The waiting run is a real `searchlab run` in a process of its own; the stage's writer, a live process of this
machine whose stamp is fresh (a `sleep`, standing in for the other folder's run in its stage: a real one costs
another 10 s of start).
"""
from __future__ import annotations

import re
import socket
import subprocess
import time

import optuna

from searchlab import cli
from searchlab.nas.stage_live import WRITER, waiting_runs
from test_stagelive_waits import ELSEWHERE, _run, _until
from test_zen_nas import STUDY as ZEN_STUDY


def test_status_of_a_folder_waiting_for_another_folders_stage_says_its_run_waits_and_for_whom(write_study, tmp_path,
                                                                                             capsys):
    db = tmp_path / "shared.db"
    path = write_study(ZEN_STUDY.replace("N", "2") + f"\nstorage: 'sqlite:///{db}'\nrun_dir: '{tmp_path / 'two'}'\n")
    writer = subprocess.Popen(["sleep", "60"])
    try:
        record = optuna.create_study(study_name="zen.zen_proxy", storage=f"sqlite:///{db}", direction="maximize")
        record.set_user_attr(WRITER, {"host": socket.gethostname(), "pid": writer.pid, "at": time.time() + 60})
        with _run(path, tmp_path / "two.log") as two:
            _until(lambda: ELSEWHERE in (tmp_path / "two.log").read_text(), two, tmp_path / "two.log")
            assert cli.main(["status", str(tmp_path / "two")]) == 0
            said = capsys.readouterr().out
    finally:
        writer.kill()
        writer.wait()
    line = next((line for line in said.splitlines() if "stage before training" in line), said)
    assert line.startswith("  stage before training: running, nothing written yet (study 'zen.zen_proxy'); "), said
    assert re.search(rf"; this folder's run \(pid {two.pid}\) waits for it, as another run folder or machine of this "
                     rf"study searches it \(pid {writer.pid} on {re.escape(socket.gethostname())}, last write \d+ s "
                     r"ago\), then trains its designs$", line), line
    assert "joined run(s) of this folder" not in line and not waiting_runs(tmp_path / "two")
    from searchlab.nas.stage_live import runs_waiting_elsewhere

    assert not runs_waiting_elsewhere(tmp_path / "two")   # the waiting run, killed: its marker is not counted
