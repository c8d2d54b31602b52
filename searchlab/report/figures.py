"""The study-level plots of a report, drawn by Optuna's own plotly visualisations.

A plot that cannot be drawn for this study (too few trials, one objective, no per-epoch reports) becomes a
sentence saying why, never a crash: a report of a young study is still a report.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Container, Iterator
from contextlib import contextmanager

import optuna
import optuna.visualization as vis
import plotly.graph_objects as go
from optuna.importance import PedAnovaImportanceEvaluator
from optuna.trial import TrialState

from searchlab.report.page import Section, figure, note


def study_sections(study: optuna.Study, objectives: list[str]) -> list[Section]:
    study = _UncopiedTrials(study)   # the plots only read the trials
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    names = objectives if len(objectives) == len(study.directions) else [f"objective {i}" for i in range(len(study.directions))]
    sections: list[Section] = []
    for i, name in enumerate(names):
        target = _target(study, i)
        sections.append(_plot(f"Optimisation history: {name}",
                              lambda: vis.plot_optimization_history(study, target=target, target_name=name)))
    if len(names) in (2, 3):
        sections.append(_plot("Pareto front: " + " vs ".join(names),
                              lambda: vis.plot_pareto_front(study, target_names=names)))
    elif len(names) > 3:   # Optuna draws 2 or 3 axes only; left out unsaid, the report read as missing a part
        sections.append(note("Pareto front: " + ", ".join(names), pareto_not_drawn(len(names))))
    sections.append(parallel_section(study, names[0]))
    if len(complete) >= 2 and any(t.params for t in complete):
        best = math.ceil(len(complete) / 10)   # as Optuna's quantile filter counts them (ties kept too)
        few = (f"; only {len(complete)} completed trials: a rough guide, as the best 10% is {best} trial(s)"
               if len(complete) < FEW_FOR_IMPORTANCES else "")
        sections.append(_plot(f"Parameter importances for {names[0]} (PED-ANOVA, best 10% of trials{few})",
                              lambda: importance_figure(study, names[0])))
    else:
        sections.append(note("Parameter importances", "needs at least 2 completed trials with parameters"))
    reported = [t for t in study.get_trials(deepcopy=False) if t.intermediate_values]
    if reported:
        drawn = traced_trials(reported, study.directions[0])
        which = drawn_said(drawn, reported)
        sections.append(_plot(f"Intermediate {names[0]} values (as trials reported them: per epoch, per GAN "
                              f"evaluation, or per run of cross-validated or repeated trials{which})",
                              lambda: vis.plot_intermediate_values(_OnlyTrials(study, drawn))))
    else:
        sections.append(note("Intermediate values", "no trial reported intermediate values"))
    return sections


def drawn_said(drawn: list[optuna.trial.FrozenTrial], reported: list[optuna.trial.FrozenTrial]) -> str:
    """Which trials' curves are drawn when not all are: the best completed ones counted as they are (there may
    be fewer than BEST_TRACES: "the 100 best completed" of a run with 71 completed read as 100)."""
    if len(drawn) == len(reported):
        return ""
    complete = sum(t.state == TrialState.COMPLETE for t in reported)
    best = (f"the {BEST_TRACES} best completed and " if complete > BEST_TRACES else
            f"all {complete} completed and " if complete else "")
    rest = "of the rest " if complete else ""
    return (f"; {len(drawn)} of {len(reported)} trials: {best}an even spread {rest}by number (all in "
            "searchlab trials or the dashboard)")


def pareto_not_drawn(objectives: int) -> str:
    """Why a study of 4 or more objectives has no Pareto plot, and where its front is seen instead."""
    return (f"not drawn: a Pareto plot is drawn for 2 or 3 objectives; this study has {objectives}. The table of "
            "top trials below lists the front's trials with each objective's value (so does searchlab status RUN)")


FEW_FOR_IMPORTANCES = 20   # below this, PED-ANOVA's best 10% of trials is one or two trials


def importance_figure(study: optuna.Study, name: str) -> go.Figure:
    """PED-ANOVA importances for the first objective: what its best 10% of trials share (as optuna-dashboard
    shows). PED-ANOVA takes a target as lower-is-better, so a maximised objective is negated: unnegated, as
    Optuna 5's default plot had it for several objectives, it ranked what makes an AUC worst."""
    with _quiet_importances():
        fig = vis.plot_param_importances(_UncopiedTrials(study), evaluator=PedAnovaImportanceEvaluator(),
                                         target=_importance_target(study), target_name=name)
    # at plotly's fixed 450 px, 40 bars got 20 labels, and a bar read as labelled with its neighbour's name
    bars = len(fig.data[0].y) if fig.data else 0
    fig.update_layout(height=max(MIN_BARS_HEIGHT, PX_PER_BAR * bars + 80))
    fig.update_yaxes(tickmode="linear", dtick=1)   # every bar its own label
    return fig


PX_PER_BAR, MIN_BARS_HEIGHT = 20, 300


def _importance_target(study: optuna.Study) -> Callable[[optuna.trial.FrozenTrial], float] | None:
    first = _target(study, 0)
    maximised = study.directions[0] == optuna.study.StudyDirection.MAXIMIZE
    return (lambda t: -first(t)) if first is not None and maximised else first


@contextmanager
def _quiet_importances() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes the importances")
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)   # experimental in Optuna 4.x
        yield


MAX_AXES = 12   # parameters on the parallel coordinates: 40 axes in a 1,200 px page drew their names over each other


def parallel_section(study: optuna.Study, name: str) -> Section:
    """Parallel coordinates of the first objective: every parameter up to MAX_AXES, else the most important
    ones (as the importance plot ranks them), named in the title."""
    with warnings.catch_warnings(record=True) as caught:   # ranking the axes warns as the importance plot does
        warnings.simplefilter("always")
        params, said = parallel_params(study)
    section = _plot(f"Parallel coordinates: {name}{said}",
                    lambda: vis.plot_parallel_coordinate(study, params=params, target=_target(study, 0),
                                                         target_name=name))
    return with_warnings_said(section, caught)


def parallel_params(study: optuna.Study) -> tuple[list[str] | None, str]:
    """(the parameters to draw, None for all; what the title says of them). Ranked by PED-ANOVA importance;
    parameters it cannot rank (absent from some trials, or too few trials) follow by name."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    every = sorted({p for t in complete for p in t.params})
    if len(every) <= MAX_AXES:
        return None, ""
    try:
        with _quiet_importances():
            ranked = list(optuna.importance.get_param_importances(
                study, evaluator=PedAnovaImportanceEvaluator(), target=_importance_target(study)))
        how = "the most important by PED-ANOVA, as the importance plot below ranks them"
    except Exception:   # noqa: BLE001 - e.g. too few trials to rank: the plot is still drawn, by name
        ranked, how = [], "by name, as the importances could not be computed"
    shown = (ranked + [p for p in every if p not in ranked])[:MAX_AXES]
    return shown, f" ({len(shown)} of {len(every)} parameters, {how}: {', '.join(shown)})"


class _UncopiedTrials(optuna.Study):
    """The study, its trials read without Optuna's deep copy, for plots that only read them. Optuna's plots
    deep-copy every trial on each read (the importance plot's hover text once per parameter): 4.4 s of an 11 s
    report at 3,353 trials of 5 parameters, the optimisation history 2.7 s of 13.6 s at 4,004 classify trials."""

    def __init__(self, study: optuna.Study) -> None:   # the same study object's state, no storage round trip
        self.__dict__.update(study.__dict__)

    @property
    def trials(self) -> list[optuna.trial.FrozenTrial]:
        return self.get_trials(deepcopy=False)

    def get_trials(self, deepcopy: bool = True,
                   states: Container[TrialState] | None = None) -> list[optuna.trial.FrozenTrial]:
        return super().get_trials(deepcopy=False, states=states)


MAX_TRACES = 400   # one line per trial: thousands of them drew an unreadable plot, 6.6 MB of a report's HTML
BEST_TRACES = 100


def traced_trials(reported: list[optuna.trial.FrozenTrial],
                  direction: optuna.study.StudyDirection) -> list[optuna.trial.FrozenTrial]:
    """The trials whose reports are drawn: all up to MAX_TRACES; beyond, the BEST_TRACES best completed by the
    first objective, and the others at even steps by trial number (pruned and failed curves show where
    the search cut trials short)."""
    if len(reported) <= MAX_TRACES:
        return reported
    sign = -1 if direction == optuna.study.StudyDirection.MAXIMIZE else 1
    complete = sorted((t for t in reported if t.state == TrialState.COMPLETE), key=lambda t: sign * t.values[0])
    best = {t.number for t in complete[:BEST_TRACES]}
    rest = [t for t in reported if t.number not in best]
    step = len(rest) / (MAX_TRACES - len(best))
    spread = {rest[int(i * step)].number for i in range(MAX_TRACES - len(best))}
    return [t for t in reported if t.number in best or t.number in spread]


class _OnlyTrials(_UncopiedTrials):
    """The study as a plot sees it, holding only the given trials."""

    def __init__(self, study: optuna.Study, trials: list[optuna.trial.FrozenTrial]) -> None:
        super().__init__(study)
        self._only = trials

    def get_trials(self, deepcopy: bool = True,
                   states: Container[TrialState] | None = None) -> list[optuna.trial.FrozenTrial]:
        return [t for t in self._only if states is None or t.state in states]


def _target(study: optuna.Study, index: int) -> Callable[[optuna.trial.FrozenTrial], float] | None:
    """Optuna wants no target for a single objective and one per objective otherwise."""
    return None if len(study.directions) == 1 else (lambda t: t.values[index])


def _plot(title: str, draw: Callable[[], go.Figure]) -> Section:
    """The plot, with what Optuna warned while drawing it said under it (not on the terminal, where it
    reads as a problem of the run), or the reason it was not drawn."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            section = figure(title, draw())
    except Exception as exc:   # Optuna refuses some plots for some studies; the reason is what the user needs
        return note(title, f"not drawn: {exc}")
    return with_warnings_said(section, caught)


def with_warnings_said(section: Section, caught: list[warnings.WarningMessage]) -> Section:
    """The section with the UserWarnings Optuna gave while making it said under it, each once."""
    said = dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, UserWarning))
    if not said:
        return section
    return Section(section.title, section.body + note(section.title, " ".join(said)).body)
