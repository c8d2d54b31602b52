"""`export.keep_checkpoints`: only the best trials keep their weights, on a real SQLite study and artifact folder."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.study import StudyDirection
from optuna.trial import TrialState, create_trial

from searchlab.cli import main
from searchlab.config.load import load_study
from searchlab.engine.retention import kept_trial_numbers
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError, ExportError
from searchlab.export.exporter import export_run
from test_run import TINY_CLASSIFY, callable_study

MAX, MIN = StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE


def _complete(values, state=TrialState.COMPLETE):
    trials = [create_trial(values=list(v) if state == TrialState.COMPLETE else None, state=state) for v in values]
    for number, trial in enumerate(trials):
        trial.number = number
    return trials


def _dominated_by(values, directions, i):
    """Written out pair by pair: how many trials are at least as good as i everywhere and better somewhere."""
    def better(a, b, d):
        return a > b if d == MAX else a < b

    count = 0
    for j, other in enumerate(values):
        no_worse = all(not better(values[i][k], other[k], d) for k, d in enumerate(directions))
        somewhere = any(better(other[k], values[i][k], d) for k, d in enumerate(directions))
        count += j != i and no_worse and somewhere
    return count


def test_a_single_objective_keeps_the_k_best_and_any_tied_with_the_kth():
    values = [(0.7,), (0.9,), (0.8,), (0.8,), (0.6,)]
    assert kept_trial_numbers(_complete(values), [MAX], 1) == {1}
    assert kept_trial_numbers(_complete(values), [MAX], 2) == {1, 2, 3}      # 2 and 3 tie for second
    assert kept_trial_numbers(_complete(values), [MIN], 2) == {4, 0}
    assert kept_trial_numbers(_complete(values), [MAX], 10) == {0, 1, 2, 3, 4}


@pytest.mark.parametrize("directions", [[MAX, MIN], [MIN, MIN, MAX]])
def test_several_objectives_keep_the_trials_dominated_by_fewer_than_k(directions):
    rng = np.random.default_rng(0)
    values = [tuple(v) for v in rng.integers(0, 6, size=(300, len(directions))).astype(float)]   # many ties
    trials = _complete(values)
    for keep in (1, 3, 20):
        expected = {i for i in range(len(values)) if _dominated_by(values, directions, i) < keep}
        assert kept_trial_numbers(trials, directions, keep) == expected
    front = {t.number for t in optuna.study._multi_objective._get_pareto_front_trials_by_trials(trials, directions)}
    assert kept_trial_numbers(trials, directions, 1) == front


def test_judging_only_the_trials_not_yet_dropped_gives_the_same_answer_as_the_run_goes():
    rng = np.random.default_rng(1)
    directions = [MAX, MIN]
    trials = _complete([tuple(v) for v in rng.integers(0, 8, size=(200, 2)).astype(float)])
    dropped: set[int] = set()
    for n in range(1, len(trials) + 1):
        kept = kept_trial_numbers(trials[:n], directions, 3, dropped)
        assert kept == kept_trial_numbers(trials[:n], directions, 3)
        dropped |= set(range(n)) - kept


def test_only_complete_trials_are_ranked():
    trials = _complete([(1.0,), (2.0,)]) + _complete([(9.0,)], state=TrialState.FAIL)
    trials[2].number = 2
    assert kept_trial_numbers(trials, [MAX], 1) == {1}


def _checkpoint_files(run: Path) -> set[str]:
    return {p.name for p in (run / "artifacts").iterdir()}


def _kept_invariant(run: Path, keep: int) -> list:
    """The files left are exactly the checkpoints of the `keep` best completed trials (none tie here)."""
    study = optuna.load_study(study_name="fake", storage=f"sqlite:///{run / 'study.db'}")
    complete = sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: (t.value, t.number))
    assert _checkpoint_files(run) == {t.user_attrs["checkpoint"] for t in complete[:keep]}
    return complete


@pytest.mark.parametrize("workers", [1, 2])
def test_a_run_deletes_the_checkpoints_that_fell_out_of_the_best(write_study, tmp_path, workers):
    extra = f"export: {{keep_checkpoints: 2}}\nexecutor: {{workers: {workers}}}\n"
    run_study(load_study(callable_study(write_study, fn="checkpointed", n=8, extra=extra)), progress=False)
    assert len(_kept_invariant(tmp_path / "run", 2)) == 8


def test_without_the_setting_every_checkpoint_stays(write_study, tmp_path):
    run_study(load_study(callable_study(write_study, fn="checkpointed", n=4)), progress=False)
    assert len(_checkpoint_files(tmp_path / "run")) == 4


def test_a_resumed_run_with_a_smaller_keep_deletes_more(write_study, tmp_path, capsys):
    path = callable_study(write_study, fn="checkpointed", n=4, extra="export: {keep_checkpoints: 3}\n")
    run_study(load_study(path), progress=False)
    _kept_invariant(tmp_path / "run", 3)
    run_study(load_study(path, {"budget.n_trials": 6, "export.keep_checkpoints": 1}), progress=False)
    assert len(_kept_invariant(tmp_path / "run", 1)) == 6
    capsys.readouterr()
    assert main(["status", str(tmp_path / "run")]) == 0
    size = sum(p.stat().st_size for p in (tmp_path / "run" / "artifacts").iterdir()) / 2**20
    assert f"weights:   1 of 6 trials' checkpoints kept, {size:.1f} MiB in" in capsys.readouterr().out


def test_keeping_fewer_than_the_export_ensemble_needs_is_refused(write_study):
    path = callable_study(write_study, extra="export: {keep_checkpoints: 2, top_k: 3}\n")
    with pytest.raises(ConfigError) as err:
        load_study(path)
    message = str(err.value)
    assert "export" in message and "keep_checkpoints (2) is below export.top_k (3)" in message
    assert "Fix: keep_checkpoints: 3 or more" in message


def test_exporting_a_trial_whose_weights_were_deleted_names_those_that_have_them(write_study, tmp_path, capsys):
    text = TINY_CLASSIFY.replace("n_trials: 2, epochs: 2", "n_trials: 4, epochs: 1")
    run_study(load_study(write_study(text + "export: {keep_checkpoints: 2}\n")), progress=False)
    run = tmp_path / "run"
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{run / 'study.db'}")
    ranked = sorted(study.trials, key=lambda t: (-t.value, t.number))
    kept, dropped = ranked[:2], ranked[2:]
    assert all((run / "artifacts" / t.user_attrs["checkpoint"]).is_file() for t in kept)
    assert not any((run / "artifacts" / t.user_attrs["checkpoint"]).exists() for t in dropped)
    export_run(run, tmp_path / "ens", top_k=2, bootstrap=100)   # the best two still export, as one ensemble
    with pytest.raises(ExportError) as err:
        export_run(run, tmp_path / "gone", trial_number=dropped[0].number, bootstrap=100)
    names = ", ".join(str(n) for n in sorted(t.number for t in kept))
    assert "deleted by export.keep_checkpoints" in str(err.value) and f"(trials {names})" in str(err.value)
    assert main(["export", str(run), "--top-k", "3", "--out", str(tmp_path / "three")]) == 2
    assert f"(trials {names})" in capsys.readouterr().err
    assert not (tmp_path / "three").exists() and not (tmp_path / "gone").exists()


def test_a_deleted_file_does_not_stop_the_run(write_study, tmp_path):
    """Another process (or a user) removed a checkpoint first: the pass carries on."""
    path = callable_study(write_study, fn="checkpointed", n=3, extra="export: {keep_checkpoints: 1}\n")
    run_study(load_study(path), progress=False)
    for name in _checkpoint_files(tmp_path / "run"):
        (tmp_path / "run" / "artifacts" / name).unlink()
    result = run_study(load_study(path, {"budget.n_trials": 5}), progress=False)
    assert result.exit_code == 0
    states = itertools.groupby(sorted(t.state.name for t in result.study.trials))
    assert {k: len(list(g)) for k, g in states} == {"COMPLETE": 5}


def test_a_report_whose_best_checkpoint_was_deleted_by_hand_says_so_without_export_s_fix(write_study, tmp_path):
    """The best trial's weights deleted from optuna-dashboard: the report blamed keep_checkpoints (which keeps the
    best) and told to pick another trial with --trial, which report does not take."""
    from searchlab.engine.rundir import open_run
    from searchlab.report.build import report_html

    run_study(load_study(write_study(TINY_CLASSIFY)), progress=False)
    run = open_run(tmp_path / "run")
    best = run.study.best_trial.user_attrs["checkpoint"]
    (run.artifacts / best).unlink()
    page = report_html(run)
    assert f"the checkpoint of trial {run.study.best_trial.number} is not in" in page
    assert "from optuna-dashboard" in page
    assert f"copy the file {best} back" in page and "keep_checkpoints" not in page and "--trial N" not in page
