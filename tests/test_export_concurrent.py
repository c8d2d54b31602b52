"""Exports while a search runs. Two exports to one folder at once: the second took the first's staging folder
for a killed export's leftover and deleted it, failing the first (a user's export beside a run's after-run
export: the run exited 1 without its summary); exports to a folder now take turns. An export made while trials
ran read as the search's result; it now says it is the best so far."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from test_run import TINY_CLASSIFY

REPO = Path(__file__).resolve().parents[1]


def test_an_export_waits_for_another_writing_beside_it_and_leaves_its_staging_alone(write_study, tmp_path):
    run_study(load_study(write_study(TINY_CLASSIFY)), progress=False)
    live = tmp_path / "exports" / ".best.partial-live"   # the staging folder of an export still writing
    live.mkdir(parents=True)
    (live / "weights.safetensors").write_bytes(b"half")
    folder = os.open(tmp_path / "exports", os.O_RDONLY)
    fcntl.flock(folder, fcntl.LOCK_EX)   # held as that export holds it
    proc = subprocess.Popen([sys.executable, "-m", "searchlab.cli", "export", str(tmp_path / "run"), "--out",
                             str(tmp_path / "exports" / "best"), "--bootstrap", "100"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    said = _StreamLines(proc.stderr)
    try:
        # it reached the folder (loaded, scored the test split) once it says it waits: no fixed 8 s sleep
        assert said.wait_for("another export is writing in", seconds=240), (proc.poll(), said.lines)
        time.sleep(1)   # and it stays waiting while the lock is held
        assert proc.poll() is None, said.lines
        assert not (tmp_path / "exports" / "best").exists()   # waiting its turn
        assert (live / "weights.safetensors").read_bytes() == b"half"
    finally:
        os.close(folder)   # the other export is done: its turn
    proc.stdout.read()
    assert proc.wait(timeout=300) == 0, said.lines
    said.thread.join(timeout=60)
    assert (tmp_path / "exports" / "best" / "config.json").is_file()
    assert not live.exists()   # no export holds it now: a leftover


class _StreamLines:
    """A process's stream read line by line in a thread, so a test can wait for a line with a deadline."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self.thread.start()

    def _pump(self, stream) -> None:
        for line in stream:
            with self.changed:
                self.lines.append(line)
                self.changed.notify_all()
        with self.changed:
            self.lines.append(None)   # end of the stream
            self.changed.notify_all()

    def wait_for(self, text: str, seconds: float) -> bool:
        def seen():
            return any(line is None or text in line for line in self.lines)

        with self.changed:
            self.changed.wait_for(seen, timeout=seconds)
            return any(line is not None and text in line for line in self.lines)


def test_an_export_made_while_trials_run_says_it_is_the_best_so_far(write_study, tmp_path, capsys):
    import optuna
    from optuna.distributions import FloatDistribution

    from searchlab.export.export_notes import warn_about_export
    from searchlab.export.exporter import export_run

    run_study(load_study(write_study(TINY_CLASSIFY.replace("n_trials: 2", "n_trials: 5"))), progress=False)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    config = export_run(tmp_path / "run", tmp_path / "done", bootstrap=100)
    assert "search_at_export" not in config
    study.ask({"optim.lr": FloatDistribution(1e-3, 1e-2, log=True)})   # a trial running now
    config = export_run(tmp_path / "run", tmp_path / "early", bootstrap=100)
    assert config["search_at_export"]["trials_finished"] == 5 and config["search_at_export"]["trials_running"] == 1
    capsys.readouterr()
    warn_about_export(config)
    assert ("1 trial(s) of the study were running: this export is of the best of the 5 finished of "
            "budget.n_trials=5 so far") in capsys.readouterr().err


def test_export_of_a_trial_still_running_is_refused_before_the_exporter_loads(write_study, tmp_path):
    import optuna
    from optuna.distributions import FloatDistribution

    run_study(load_study(write_study(TINY_CLASSIFY)), progress=False)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    running = study.ask({"optim.lr": FloatDistribution(1e-3, 1e-2, log=True)})
    # torch and the data readers take seconds to import: a refusal should not wait for them
    script = ("import sys; from searchlab.cli import main; code = main(sys.argv[1:]); "
              "print('torch loaded' if 'torch' in sys.modules else 'torch not loaded'); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script, "export", str(tmp_path / "run"), "--trial",
                           str(running.number), "--out", str(tmp_path / "early")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 2, done.stderr
    assert f"trial {running.number} is RUNNING; only COMPLETE trials can be exported" in done.stderr
    assert "torch not loaded" in done.stdout and not (tmp_path / "early").exists()


def test_export_while_no_trial_has_completed_yet_says_to_wait_before_the_exporter_loads(write_study, tmp_path):
    from test_run import CALLABLE

    text = CALLABLE.format(fn="fails_when_positive", n=1, sleep=0.0).replace("[-3, 3]", "[1, 3]")
    run_study(load_study(write_study(text)), progress=False)   # its one trial failed
    study = optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    study.ask()   # a search going on: a trial running, none completed
    script = ("import sys; from searchlab.cli import main; code = main(sys.argv[1:]); "
              "print('torch loaded' if 'torch' in sys.modules else 'torch not loaded'); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", script, "export", str(tmp_path / "run"), "--out",
                           str(tmp_path / "early")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert done.returncode == 2 and "has no completed trial to export yet (1 FAIL, 1 RUNNING" in done.stderr
    assert "Fix: wait until a trial completes" in done.stderr and "torch not loaded" in done.stdout
