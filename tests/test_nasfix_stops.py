"""A stop (SIGTERM, Ctrl-C) during a zen_nas or deepmad run: the stage keeps what it scored, as a budget.timeout
cut does, and a design re-run after a stop keeps the proxy score it was picked by."""
from __future__ import annotations

import os
import signal

import optuna
from optuna.trial import TrialState

from searchlab import cli
from searchlab.engine.context import TrialContext
from test_deepmad import STUDY as DEEPMAD_STUDY
from test_zen_nas import STUDY as ZEN_STUDY

SIGTERM_CODE = 128 + signal.SIGTERM


def _stop_this_process() -> None:
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:   # it would end pytest itself at once
        raise AssertionError("SIGTERM has its default action here: the process would end at once")
    os.kill(os.getpid(), signal.SIGTERM)


def _stopped_at_call(real, call: int):
    """`real`, sending this process SIGTERM as its `call`-th call starts."""
    calls = []

    def stopped(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            _stop_this_process()
        return real(*args, **kwargs)

    return stopped


def _study(tmp_path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")


def test_a_stop_during_the_zen_nas_stage_keeps_what_it_scored_and_the_next_run_continues(
        write_study, tmp_path, monkeypatch, capsys):
    """SIGTERM in its second round of candidates: the 16 scored by then were thrown away (one batch written once
    the search returned), and the next run scored them all again."""
    from searchlab.nas import zen_nas

    path = str(write_study(ZEN_STUDY.replace("N", "1")))
    monkeypatch.setattr(zen_nas, "_draw_round", _stopped_at_call(zen_nas._draw_round, 2))
    code = cli.main(["run", path, "--no-progress"])
    out, err = capsys.readouterr()
    assert code == SIGTERM_CODE and "interrupted (SIGTERM), before the run's trials started. Fix: run the same " \
        "command again" in err, err
    record = _study(tmp_path, "zen.zen_proxy")
    kept = record.trials
    # the round under way when the stop came is finished, then no more
    assert sum(t.state == TrialState.COMPLETE for t in kept) == 16
    assert record.user_attrs["searchlab:stage_cut"] == "a stop (SIGTERM), 16 of 30 candidates scored"
    assert not record.user_attrs["searchlab:stage_done"] and not _study(tmp_path, "zen").trials   # nothing queued
    assert "cut short by a stop (SIGTERM), 16 of 30 candidates scored" in out
    # status, with the main study at 0 trials, says what the stage kept for the next run
    assert cli.main(["status", str(tmp_path / "run")]) == 0
    said = capsys.readouterr().out
    assert "stage before training: cut short by a stop (SIGTERM), 16 of 30 candidates scored; kept: " in said, said
    assert "(study 'zen.zen_proxy'). The next `searchlab run` of this study continues it" in said
    monkeypatch.undo()
    assert cli.main(["run", path, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "continuing the stage cut short by a stop (SIGTERM), 16 of 30 candidates scored" in out
    record = _study(tmp_path, "zen.zen_proxy")
    assert record.user_attrs["searchlab:stage_done"]
    assert [(t.params, t.value) for t in record.trials[:len(kept)]] == [(t.params, t.value) for t in kept]
    assert sum(t.state == TrialState.COMPLETE for t in record.trials) == 30
    assert cli.main(["status", str(tmp_path / "run")]) == 0
    assert "stage before training: finished, 30 scored" in capsys.readouterr().out
    [trained] = [t for t in _study(tmp_path, "zen").trials if t.state == TrialState.COMPLETE]
    assert "zen_score" in trained.user_attrs   # its best queued, once the stage finished


def test_a_stop_during_the_deepmad_solve_keeps_the_designs_found_and_the_next_run_continues(
        write_study, tmp_path, monkeypatch, capsys):
    from searchlab.nas.deepmad_design import Program

    path = str(write_study(DEEPMAD_STUDY.replace("FLOPS", "4.0e+6")))
    run = ["run", path, "--no-progress", "--set", "strategy.args.iterations=30", "--set", "budget.n_trials=1"]
    monkeypatch.setattr(Program, "objective", _stopped_at_call(Program.objective, 20))   # in the first population
    assert cli.main(run) == SIGTERM_CODE
    assert "interrupted" in capsys.readouterr().err
    record = _study(tmp_path, "dm.deepmad")
    kept = record.trials
    assert any(t.state == TrialState.COMPLETE for t in kept)
    assert record.user_attrs["searchlab:stage_cut"].startswith("a stop (SIGTERM), after ")
    assert not record.user_attrs["searchlab:stage_done"] and not _study(tmp_path, "dm").trials
    monkeypatch.undo()
    assert cli.main(run) == 0
    assert "continuing the stage cut short by a stop (SIGTERM), after " in capsys.readouterr().out
    record = _study(tmp_path, "dm.deepmad")
    assert record.user_attrs["searchlab:stage_done"] and len(record.trials) > len(kept)
    assert [t.params for t in record.trials[:len(kept)]] == [t.params for t in kept]


def test_a_design_run_again_after_a_stop_keeps_the_proxy_score_it_was_picked_by(
        write_study, tmp_path, monkeypatch, capsys):
    """The retry of a stopped top design lost its zen_score and proxy_trial: status and the export then called it
    a plain retry, and the proxy's ranking could no longer be checked against its trained score."""
    path = str(write_study(ZEN_STUDY.replace("N", "1")))
    run = ["run", path, "--no-progress", "--set", "strategy.args.candidates=8"]
    monkeypatch.setattr(TrialContext, "report", _stopped_at_call(TrialContext.report, 1))   # in its first epoch
    assert cli.main(run) == SIGTERM_CODE
    stopped = _study(tmp_path, "zen").trials[0]   # the best design; the other two wait
    assert stopped.state == TrialState.FAIL and "zen_score" in stopped.user_attrs
    monkeypatch.undo()
    assert cli.main([*run, "--set", "budget.n_trials=3"]) == 0   # the two waiting designs, then the retry
    [retry] = [t for t in _study(tmp_path, "zen").trials if t.user_attrs.get("retry_of") == stopped.number]
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["architecture"].startswith("ZenNet(")
    for key in ("zen_score", "proxy_trial"):
        assert retry.user_attrs[key] == stopped.user_attrs[key]
    capsys.readouterr()
    assert cli.main(["status", str(tmp_path / "run")]) == 0
    assert (f"picked as zen_nas's candidate, Zen-score {stopped.user_attrs['zen_score']:.4g} "
            f"(trial {stopped.user_attrs['proxy_trial']} of its stage's study)") in capsys.readouterr().out
