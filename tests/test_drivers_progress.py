"""The progress a run prints (one line per finished trial in a log) when another run shares its study: more workers
of its folder from a second shell, or a run of the study from another run folder (as a second Ray driver of a
PostgreSQL study is). Each says its own trials only; the best it shows is the study's, said so."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from searchlab.engine.run_history import KEY
from searchlab.engine.rundir import MANIFEST
from test_run import REPO, TESTS, callable_study

TRIAL_LINE = re.compile(r"^trial (\d+) (?:complete|pruned)[^\[]*\[(.*)\]$")
MEETING = """
name: fake
task: {kind: callable, function: "test_drivers_progress:meets_the_other_run"}
space:
  x: {float: [-3, 3]}
objective: {metric: loss, direction: minimize}
strategy: random
pruner: none
budget: {n_trials: 6}
"""


def meets_the_other_run(config, ctx):
    """Each trial notes its process in $DRIVERS_MEET, then waits (60 s at most) until two processes have run one:
    the two runs overlap however slowly the second starts (8 s on a busy machine, longer than the first's trials)."""
    folder = Path(os.environ["DRIVERS_MEET"])
    (folder / str(os.getpid())).touch()
    ctx.record(pid=os.getpid())
    deadline = time.time() + 60
    while len(list(folder.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    return {"loss": (config["x"] - 1) ** 2}


def _start_run(path: Path) -> subprocess.Popen:
    """`searchlab run` with its progress on (stderr is a pipe: one line per trial)."""
    meet = path.parent / "meet"
    meet.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)]), "DRIVERS_MEET": str(meet)}
    return subprocess.Popen([sys.executable, "-m", "searchlab.cli", "run", str(path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _running_pids(url: str) -> set[int]:
    try:
        study = optuna.load_study(study_name="fake", storage=url)
    except KeyError:   # not made yet
        return set()
    return {t.user_attrs["pid"] for t in study.get_trials(states=(TrialState.RUNNING,)) if "pid" in t.user_attrs}


def _wait_for(condition, proc: subprocess.Popen, seconds: float = 120.0) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        if condition():
            return
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"the run never got there: {proc.communicate()[1]}")


def _two_runs_at_once(first_path: Path, second_path: Path, url: str, first_dir: Path) -> dict[int, tuple[str, str]]:
    """Both runs' (stdout, stderr) by pid, the second started while the first runs a trial, both running one."""
    first = _start_run(first_path)
    # its manifest is written once it made the study: opening the storage before would race its creation
    _wait_for(lambda: (first_dir / MANIFEST).is_file() and first.pid in _running_pids(url), first)
    second = _start_run(second_path)
    said = {}
    for proc in (first, second):
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        said[proc.pid] = (out, err)
    return said


def _check_each_says_its_own(said: dict[int, tuple[str, str]], url: str) -> None:
    study = optuna.load_study(study_name="fake", storage=url)
    pid_of = {t.number: t.user_attrs["pid"] for t in study.trials if "pid" in t.user_attrs}
    recorded = {run["pid"]: run["trials_finished"] for run in study.user_attrs[KEY]}
    for pid, (out, err) in said.items():
        lines = [TRIAL_LINE.match(line) for line in err.splitlines()]
        numbers = [int(m.group(1)) for m in lines if m]
        assert numbers and all(pid_of[n] == pid for n in numbers), (pid, numbers, pid_of, err)
        assert len(numbers) == recorded[pid]   # every trial of its own said, once
        assert "progress: another run of this study runs beside this one" in err
        last = [m.group(2) for m in lines if m][-1]
        # its own count, and the best of all runs' trials, said to be the study's
        assert last.startswith(f"{recorded[pid]} by this run, ") and ", study best: " in last, last
        # the summary says so too (the other run's trials finished by the time this one ended: some may still run)
        heading = re.search(r"^study 'fake': .*\((\d+) finished by this run, (\d+) by another run of the study "
                            r"meanwhile; the best listed are the study's\)$", out, re.MULTILINE)
        assert heading and int(heading.group(1)) == recorded[pid] and int(heading.group(2)) > 0, out


def test_joined_runs_of_one_folder_each_say_only_their_own_trials(write_study, tmp_path):
    """The joining run's lines and its [k/N] took in the other's trials: both said trials 0 to 7 of 8."""
    path = write_study(MEETING)
    url = f"sqlite:///{tmp_path / 'run' / 'study.db'}"
    _check_each_says_its_own(_two_runs_at_once(path, path, url, tmp_path / "run"), url)


def test_runs_of_one_study_from_two_run_folders_each_say_only_their_own_trials(write_study, tmp_path, postgres):
    """Two run folders of one PostgreSQL study (as two Ray drivers from two folders are): the second is alone in
    its folder, yet joins the first's study."""
    first = write_study(MEETING + f"storage: '{postgres}'\nrun_dir: '{tmp_path / 'a'}'\n")
    second = write_study(first.read_text().replace(str(tmp_path / "a"), str(tmp_path / "b")), name="b.yaml")
    _check_each_says_its_own(_two_runs_at_once(first, second, postgres, tmp_path / "a"), postgres)


def test_a_second_run_folder_sharing_the_sqlite_file_leaves_the_first_runs_live_trials_alone(write_study, tmp_path):
    """Alone in its folder, the second run took the file's RUNNING trials for a killed run's and failed them: the
    first run, telling its trial, crashed with Optuna's "Cannot tell a FAIL trial" traceback."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = write_study(MEETING + f"storage: '{url}'\nrun_dir: '{tmp_path / 'a'}'\n")
    second = write_study(first.read_text().replace(str(tmp_path / "a"), str(tmp_path / "b")), name="b.yaml")
    said = _two_runs_at_once(first, second, url, tmp_path / "a")   # both exit 0
    assert not optuna.load_study(study_name="fake", storage=url).get_trials(states=(TrialState.FAIL,))
    _check_each_says_its_own(said, url)


def test_a_run_nobody_joined_counts_toward_the_budget_with_earlier_runs_trials(write_study, tmp_path, capsys):
    """Resumed alone: [k/N] counts the earlier run's trials too, and its best is said plainly."""
    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study

    path = callable_study(write_study, n=1)
    run_study(load_study(path), progress=False)
    result = run_study(load_study(path, {"budget.n_trials": 3}), progress=True)
    err = capsys.readouterr().err
    assert [m.group(2).split(",")[0] for m in map(TRIAL_LINE.match, err.splitlines()) if m] == ["2/3", "3/3"]
    assert "progress:" not in err and "study best" not in err and ", best: " in err
    assert result.trials_finished == 2
