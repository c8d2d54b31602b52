"""Long studies: thousands of trials over many resumed runs. What reads a whole study must stay linear in it."""
from __future__ import annotations

import re
import time
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from optuna.trial import TrialState


def _finished(n: int) -> list[SimpleNamespace]:
    """n one-second trials run one after another, each 0.1 s after the last (as one worker runs them)."""
    t0 = datetime(2026, 1, 1)
    return [SimpleNamespace(number=i, state=TrialState.COMPLETE, values=[float(i % 7)], user_attrs={},
                            datetime_start=t0 + timedelta(seconds=1.1 * i),
                            datetime_complete=t0 + timedelta(seconds=1.1 * i + 1.0)) for i in range(n)]


class _Study:
    def __init__(self, trials):
        self.trials, self.user_attrs = trials, {}
        self.directions = [SimpleNamespace(name="MAXIMIZE")]

    def get_trials(self, deepcopy=False, states=None):
        return [t for t in self.trials if states is None or t.state in states]


def test_compare_time_axis_is_linear_in_the_trials():
    """compare's search-time axis summed every busy interval for every completed trial: 5,000 trials of one
    worker (5,000 intervals) took ~10 s per run; the curve must be the same and take well under a second."""
    from searchlab.report.compare import best_so_far

    small = best_so_far(SimpleNamespace(study=_Study(_finished(5))), "r")
    assert small.seconds == pytest.approx([1, 2, 3, 4, 5]) and small.best == [0, 1, 2, 3, 4]
    started = time.perf_counter()
    curve = best_so_far(SimpleNamespace(study=_Study(_finished(6000))), "r")
    took = time.perf_counter() - started
    assert curve.seconds[-1] == pytest.approx(6000) and curve.seconds[2999] == pytest.approx(3000)
    assert took < 1.0, took


def test_the_report_importance_plot_reads_the_trials_without_deep_copies():
    """Optuna's plots deep-copy every trial on each read (the importance plot once per parameter): 4.4 s of an
    11 s report of 3,353 trials, 2.7 s more for the history at 4,004. The report reads them uncopied (it only
    draws them)."""
    import optuna

    from searchlab.report.figures import importance_figure, study_sections

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("a", 0, 1) + t.suggest_float("b", 0, 1) + t.suggest_int("c", 0, 3),
                   n_trials=40)
    storage, copies = study._storage, []
    read = storage.get_all_trials

    def counted(study_id, deepcopy=True, states=None):
        copies.append(deepcopy)
        return read(study_id, deepcopy=deepcopy, states=states)

    storage.get_all_trials = counted
    figure = importance_figure(study, "auc")
    assert len(figure.data) == 1 and sorted(figure.data[0].y) == ["a", "b", "c"]
    assert copies and not any(copies), copies
    copies.clear()
    sections = study_sections(study, ["auc"])   # history, parallel coordinates, importances, curves
    assert len(sections) == 4 and all("not drawn" not in s.body for s in sections)
    assert copies and not any(copies), copies


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_runs_start_counts_the_trials_without_reading_them(tmp_path, kind, monkeypatch):
    """open_optuna_study loaded every trial to count them (2.3 s of a run's start at 3,333 trials)."""
    import optuna
    from optuna.distributions import FloatDistribution

    from searchlab.engine.storage import count_trials, open_storage

    url = f"sqlite:///{tmp_path / 's.db'}" if kind == "sqlite" else f"journal://{tmp_path / 's.log'}"
    storage = open_storage(url)
    study = optuna.create_study(study_name="s", storage=storage)
    study.add_trials([optuna.trial.create_trial(params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)},
                                                value=1.0) for _ in range(7)])
    study.ask()
    if kind == "sqlite":   # the count is asked of the database, not made by reading the trials
        monkeypatch.setattr(type(storage), "get_all_trials", lambda *a, **k: pytest.fail("read every trial"))
    assert count_trials(storage, study._study_id) == 8


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_the_report_draws_the_curves_of_the_best_trials_and_a_spread_of_the_rest(direction):
    """One line per trial: 3,001 trials drew an unreadable plot and 497 KB of HTML (73 KB now). Past 400 trials
    the best 100 completed are drawn, and the rest at even steps; the title says which."""
    import optuna

    from searchlab.report.figures import BEST_TRACES, MAX_TRACES, study_sections

    study = optuna.create_study(direction=direction)
    for i in range(1000):   # values 0..999 shuffled by a stride; every 3rd trial pruned after its first report
        value = float((i * 37) % 1000)
        pruned = i % 3 == 0
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.PRUNED if pruned else TrialState.COMPLETE, value=None if pruned else value,
            intermediate_values={0: value / 2} if pruned else {0: value / 2, 1: value}))
    plot = [s for s in study_sections(study, ["auc"]) if s.title.startswith("Intermediate")][0]
    assert f"{MAX_TRACES} of 1000 trials: the {BEST_TRACES} best completed" in plot.title
    drawn = {int(n) for n in re.findall(r'"name":"Trial(\d+)"', plot.body)}
    assert len(drawn) == MAX_TRACES
    trials = study.trials   # read once: each `study.trials` deep-copies all 1,000 (~5 s over 400 reads)
    complete = sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.value,
                      reverse=direction == "maximize")
    assert {t.number for t in complete[:BEST_TRACES]} <= drawn
    assert {t.number for t in complete[-50:]} - drawn   # the worst are not all drawn
    assert sum(trials[n].state == TrialState.PRUNED for n in drawn) > 50   # the spread keeps pruned ones
    few = optuna.create_study(direction=direction)
    for i in range(5):
        few.add_trial(optuna.trial.create_trial(value=float(i), intermediate_values={0: float(i)}))
    plot = [s for s in study_sections(few, ["auc"]) if s.title.startswith("Intermediate")][0]
    assert "of 5" not in plot.title and len(set(re.findall(r'"name":"Trial(\d+)"', plot.body))) == 5


def test_compare_says_when_runs_scored_on_other_validation_images():
    """Runs of one folder set with other seeds hold other validation splits: compare said nothing."""
    from searchlab.report.compare import data_difference

    def run(seed, members):
        splits = {"val": {"members": members}} if members else {}
        return SimpleNamespace(data_read={"source": "folder"}, record={"seed": seed, "data_files": {"splits": splits}})

    said = data_difference([run(0, "aa"), run(1, "bb")], ["runs/a", "runs/b"])
    assert said.startswith("these runs' validation splits hold other images (runs/a: seed 0; runs/b: seed 1")
    assert data_difference([run(0, "aa"), run(1, "aa")], ["runs/a", "runs/b"]) is None   # own val/ folder
    assert data_difference([run(0, None), run(1, None)], ["runs/a", "runs/b"]) is None   # MedMNIST
