"""A `searchlab run` joining another run of its folder while that run's stage before training (zen_nas, deepmad)
still searches waits for it: it joined at once, and its workers trained random networks (taking budget.n_trials)
before the stage had queued its designs. If the other run is killed meanwhile, the joiner continues the stage."""
from __future__ import annotations

import fcntl
import os
import signal
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from searchlab import cli
from searchlab.config.load import load_study
from searchlab.engine import stage_wait
from searchlab.engine.run import held_run_lock, run_study
from searchlab.engine.run_history import KEY
from searchlab.nas.stage import QUEUED
from searchlab.strategy import prepare_strategy
from test_stagechunks_kill import run_in_its_stage
from test_zen_nas import STUDY as ZEN_STUDY

WAITS = "note: waiting for the stage before training of the other `searchlab run` of "


@contextmanager
def _another_runner_preparing(run_dir: Path):
    """Hold the folder's locks as a sole runner in its stage before training does; yields what ends the stage."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / ".lock").open("a") as lock, (run_dir / stage_wait.PREPARE_LOCK).open("a") as prepare:
        fcntl.flock(lock, fcntl.LOCK_SH)
        fcntl.flock(prepare, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield lambda: fcntl.flock(prepare, fcntl.LOCK_UN)


def _main(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(study_name="zen", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")


def _on_first_pause(monkeypatch, action) -> list[int]:
    """Call `action` once, at the joining run's first pause while it waits; returns the pauses counted."""
    pauses = []
    real = stage_wait._pause

    def pause(deadline):
        pauses.append(1)
        if len(pauses) == 1:
            action()
        real(deadline)

    monkeypatch.setattr(stage_wait, "_pause", pause)
    return pauses


@pytest.mark.parametrize("queued", [True, False])
def test_a_run_joining_a_stage_waits_for_its_designs_and_then_trains_them(write_study, tmp_path, monkeypatch,
                                                                          capsys, queued):
    """`queued` False: the other run was killed after its stage finished, before it queued the designs (or a
    searchlab before the mark wrote it): the joining run queues them itself."""
    path = write_study(ZEN_STUDY.replace("N", "2").replace("candidates: 30", "candidates: 10"))
    trials_when_waiting = []

    with _another_runner_preparing(tmp_path / "run") as end_stage:
        def stage_of_the_other_run():   # while the joiner waits: the sole runner's stage runs, queues, ends
            trials_when_waiting.append(len(_main(tmp_path).trials))
            main = _main(tmp_path) if queued else optuna.create_study(study_name="elsewhere",
                                                                      storage=_main(tmp_path)._storage)
            prepare_strategy(load_study(path), main, None)
            if not queued:
                optuna.load_study(study_name="zen.zen_proxy", storage=main._storage).set_user_attr(QUEUED, False)
            end_stage()

        pauses = _on_first_pause(monkeypatch, stage_of_the_other_run)
        result = run_study(load_study(path), progress=False)
    err = capsys.readouterr().err
    assert pauses and trials_when_waiting == [0], err   # it waited, and trained nothing meanwhile
    assert f"{WAITS}{tmp_path / 'run'} (nothing written yet); this run's workers start once it has queued its " \
           "designs" in err
    assert err.count(WAITS) == 1
    assert ("this run continues the stage itself" in err) is not queued
    trained = result.study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trained) == 2 and all("zen_score" in t.user_attrs for t in trained)   # the stage's picks, no draws
    record = optuna.load_study(study_name="zen.zen_proxy", storage=result.study._storage)
    assert sum(t.state == TrialState.COMPLETE for t in record.trials) == 10   # searched once, by the other run
    assert record.user_attrs[QUEUED]


def test_a_run_joining_a_stage_whose_run_is_killed_continues_the_stage(write_study, tmp_path, monkeypatch, capsys):
    """A real `searchlab run` in its stage, and a second one joining it; the first is killed -9 while the second
    waits: the second continues the stage from the chunks written, as the next run would, and trains its picks."""
    path = write_study(ZEN_STUDY.replace("N", "2").replace("candidates: 30", "candidates: 5000"))
    db, log = tmp_path / "run" / "study.db", tmp_path / "first.log"
    with run_in_its_stage(path, db, "zen.zen_proxy", log) as first:
        trials_when_waiting = []

        def kill_the_first():
            trials_when_waiting.append(len(_main(tmp_path).trials))
            first.kill()
            assert first.wait(timeout=30) == -signal.SIGKILL

        pauses = _on_first_pause(monkeypatch, kill_the_first)
        code = cli.main(["run", str(path), "--no-progress", "--set", "strategy.args.candidates=20"])
    out, err = capsys.readouterr()
    assert code == 0 and pauses and trials_when_waiting == [0], err
    assert WAITS in err and "stage before training: running, " in err and " written so far)" in err
    assert "this run continues the stage itself, as the next `searchlab run` of this study would" in err
    assert "zen.zen_proxy: continuing the stage cut short by a kill" in out
    trained = _main(tmp_path).get_trials(states=(TrialState.COMPLETE,))
    assert len(trained) == 2 and all("zen_score" in t.user_attrs for t in trained), err


def test_ctrl_c_while_waiting_stops_the_joining_run_cleanly(write_study, tmp_path, monkeypatch, capsys):
    path = write_study(ZEN_STUDY.replace("N", "2"))
    with _another_runner_preparing(tmp_path / "run"):
        _on_first_pause(monkeypatch, lambda: os.kill(os.getpid(), signal.SIGINT))
        code = cli.main(["run", str(path), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 130 and WAITS in err
        assert "interrupted (Ctrl-C), before the run's trials started" in err
        main = _main(tmp_path)
        assert not main.trials and main.user_attrs[KEY][-1]["stopped_by"] == "interrupted"
    for name in (".lock", stage_wait.PREPARE_LOCK):   # the joiner let go of the folder's locks
        with (tmp_path / "run" / name).open("a") as probe:
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_budget_timeout_counts_while_waiting(write_study, tmp_path, capsys):
    path = write_study(ZEN_STUDY.replace("N", "2"))
    with _another_runner_preparing(tmp_path / "run"):
        result = run_study(load_study(path, {"budget.timeout": 1}), progress=True)
    out, err = capsys.readouterr()
    assert "progress:" not in out + err   # it said it trains nothing: no progress of a run beside it follows
    assert "(its budget.timeout of 1 s counts while it waits)" in err
    assert "note: budget.timeout (1 s) ran out while this run waited for the other run's stage before training: " \
           "it trains nothing" in err
    assert result.stopped_by == "budget.timeout" and not result.study.trials


def test_a_sole_runner_holds_the_prepare_lock_from_before_anyone_can_join(tmp_path):
    def free() -> bool:
        with (tmp_path / stage_wait.PREPARE_LOCK).open("a") as probe:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                return False

    with held_run_lock(tmp_path, preparing=True) as lock:
        assert lock.sole and not free()
        with held_run_lock(tmp_path, preparing=True) as joined:   # a second runner holds none
            assert not joined.sole and joined.preparing is None
        lock.prepared()
        assert free()
    with held_run_lock(tmp_path, preparing=True):
        pass
    assert free()   # released at the end too (a run that raised in its stage)


def test_the_stage_waited_for_is_the_strategys(write_study):
    from test_deepmad import STUDY as DEEPMAD_STUDY

    assert stage_wait._stage_suffix(load_study(write_study(ZEN_STUDY.replace("N", "2"), name="z.yaml"))) == ".zen_proxy"
    deepmad = load_study(write_study(DEEPMAD_STUDY.replace("FLOPS", "4.0e+6"), name="d.yaml"))
    assert stage_wait._stage_suffix(deepmad) == ".deepmad"
    tpe = load_study(write_study(ZEN_STUDY.replace("N", "2").replace("name: zen_nas", "name: tpe")
                                 .replace(", args: {candidates: 30, top_k: 3, population_size: 8, sample_size: 3, "
                                          "batch_size: 8}", ""), name="t.yaml"))
    assert stage_wait._stage_suffix(tpe) is None   # no stage: joins at once, as before
