"""One conformance suite for every registered strategy (DESIGN.md contract 3): a new strategy gets every check
by adding one entry to ENTRIES.

Each entry is run once per module (real SQLite storage, the cheapest task that exercises it: a callable
objective, or for the NAS strategies, whose stage scores the networks the classify task builds, a tiny ZenNet
space on 32 8x8 images, one epoch); the checks read those runs. The same studies run again, all in one other
process, to check that a seeded run reproduces. A check an entry does not get is named in its `skips`, with why.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from searchlab.strategy import REPO_STRATEGIES, STRATEGIES

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
SEED = 7
FAILS_AT, PRUNED_AT = 2, 3   # trial numbers the callable objective fails and prunes (after the first draws)

# every kind of parameter a space has: float (plain, log, stepped), int, choice, a conditional one_of
CALLABLE_SPACE = """
space:
  x: {float: [-3, 3]}
  lr: {float: [1.0e-4, 1.0e-1], log: true}
  units: {int: [1, 4]}
  act: {choice: [relu, tanh]}
  model:
    one_of:
      a: {depth: {int: [1, 3]}}
      b: {width: {choice: [8, 16]}, drop: {float: [0.0, 0.5], step: 0.1}}
"""
# the smallest Zen-NAS space of the NAS tests (tests/study_texts.py TINY_ZEN_MODEL, one block fewer choices)
NAS_SPACE = """
space:
  model:
    kind: zen
    stem: 8
    blocks:
      b1: {type: {choice: [conv, basic]}, width: {choice: [8, 16]}, depth: {int: [1, 2]}, stride: 2}
      b2: {type: {choice: [basic, bottleneck]}, width: {choice: [16, 32]}, stride: 2}
  train: {batch_size: 128}
  optim: {lr: {float: [1.0e-3, 1.0e-2], log: true}}
"""
MAX_PARAMS = 15000   # bites: NAS_SPACE's networks span ~4k to ~23k parameters (its probe configs)

CHECKS = ("within_space", "reproduces", "failure_alone", "pruned_trial", "resume_new_draws", "budget")


@dataclass(frozen=True)
class Entry:
    name: str
    args: dict[str, Any]
    nas: bool = False          # True: classify task on NAS_SPACE with budget.max_params; False: callable task
    n_trials: int = 6          # first invocation
    resumed_by: int = 3        # finished trials the resume adds (n_trials is a total over invocations)
    skips: dict[str, str] = field(default_factory=dict)   # check -> why this strategy does not promise it
    stage: str | None = None   # the study its stage records before the first trial (its networks are costed too)


NOT_COSTED = ("a callable task's trials are not costed (the task refuses budget.max_*), and this strategy claims "
              "no architecture budget of its own: the classify task prunes an over-budget trial, whatever drew it")
ENTRIES = [
    Entry("random", {}, skips={"budget": NOT_COSTED}),
    # 2 start-up trials: the density model proposes from trial 2 on, so the checks see TPE, not its random start
    Entry("tpe", {"n_startup_trials": 2}, skips={"budget": NOT_COSTED}),
    # population 3: evolution breeds from trial 3 on; its budget promise (breeds within budget.max_*) is
    # checked on the NAS space by test_evolution_breeds_within_the_architecture_budget (no training needed)
    Entry("evolution", {"population_size": 3, "sample_size": 2},
          skips={"budget": "checked by test_evolution_breeds_within_the_architecture_budget"}),
    # The NAS entries train on a classify task, whose trials cannot fail or prune on cue: their failure_alone and
    # pruned_trial checks read a failed and a pruned trial added before the resume (_inject_failed_and_pruned),
    # which the resumed strategy must go past. 6 candidates / 2 iterations: the smallest stages that still
    # leave a choice of top_k 2; n_trials 2 trains those designs, the resume breeds from them.
    Entry("zen_nas", {"candidates": 6, "top_k": 2, "population_size": 3, "sample_size": 2, "batch_size": 4,
                      "threads": 1}, nas=True, n_trials=2, resumed_by=2, stage="zen_proxy"),
    Entry("deepmad", {"top_k": 2, "population_size": 2, "sample_size": 2, "iterations": 2, "popsize": 4},
          nas=True, n_trials=2, resumed_by=2, stage="deepmad"),
]
BY_NAME = {entry.name: entry for entry in ENTRIES}


def objective(config: dict[str, Any], ctx: Any) -> dict[str, float]:
    """The callable entries' task: fails at trial FAILS_AT, prunes itself at PRUNED_AT, else a smooth loss."""
    ctx.record(suite_config=config)   # what the task was given, checked against the space
    if ctx.trial.number == FAILS_AT:
        raise ValueError(f"trial {FAILS_AT} fails on purpose")
    if ctx.trial.number == PRUNED_AT:
        raise optuna.TrialPruned(f"trial {PRUNED_AT} pruned on purpose")
    branch = config["model"]
    extra = branch.get("depth", 0) + branch.get("drop", 0.0)
    return {"loss": (config["x"] - 1) ** 2 + config["lr"] + 0.1 * config["units"] + extra}


def study_text(entry: Entry, strategy: str, folder: Path, root: Path) -> str:
    common = (f"name: suite_{entry.name}\nseed: {SEED}\nstrategy: {strategy}\npruner: none\n"
              f"run_dir: '{folder / 'run'}'\n")
    if not entry.nas:
        return (common + 'task: {kind: callable, function: "test_suite_strategies:objective"}\n'
                "objective: {metric: loss, direction: minimize}\n" + CALLABLE_SPACE
                + f"budget: {{n_trials: {entry.n_trials}}}\n")
    return (common + "task: classify\n" + NAS_SPACE
            + f"budget: {{n_trials: {entry.n_trials}, epochs: 1, max_params: {MAX_PARAMS}}}\n"
            + f"data: {{source: folder, path: '{root}', image_size: 8, test_fraction: 0.25}}\n")


def strategy_of(entry: Entry) -> str:
    return json.dumps({"name": entry.name, "args": entry.args})


# ---- the runs every check reads: one per entry, its reproduction in another process, its resume ----

OTHER_PROCESS = """
import json, sys
from searchlab.cli import main
for name, path, run_dir in json.loads(sys.argv[1]):
    assert main(["run", path, "--no-progress", "--set", f"run_dir={run_dir}"]) == 0, name
"""


@dataclass
class Runs:
    studies: dict[str, Any] = field(default_factory=dict)      # name -> the loaded Study (first invocation)
    first: dict[str, list] = field(default_factory=dict)       # name -> trials after the first invocation
    resumed: dict[str, list] = field(default_factory=dict)     # name -> trials after the resume
    other: dict[str, list] = field(default_factory=dict)       # name -> trials of the run in another process


def _storage(run_dir: Path) -> str:
    return f"sqlite:///{run_dir / 'study.db'}"


def _trials(entry: Entry, run_dir: Path) -> list:
    return optuna.load_study(study_name=f"suite_{entry.name}", storage=_storage(run_dir)).get_trials()


def _inject_failed_and_pruned(entry: Entry, run_dir: Path) -> None:
    """A classify trial cannot be made to fail or prune on cue: a failed and a pruned trial (of trial 0's config)
    are added as a worker would have left them, and the resume must go on past them."""
    study = optuna.load_study(study_name=f"suite_{entry.name}", storage=_storage(run_dir))
    done = study.get_trials(deepcopy=False)[0]
    for state in (TrialState.FAIL, TrialState.PRUNED):
        study.add_trial(optuna.trial.create_trial(params=done.params, distributions=done.distributions, state=state,
                                                  user_attrs={"suite_injected": state.name}))


def tiny_image_folder(folder: Path) -> Path:
    """Two classes of 16 grey 8x8 images each, told apart by brightness: a classify trial on it costs little
    beyond its fixed overhead (on BreastMNIST the NAS entries' runs took 3-5 times as long on this machine)."""
    import numpy as np
    from PIL import Image

    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
        for i in range(16):
            pixels = np.full((8, 8), 5 * i + (120 if label == "b" else 0), np.uint8)
            Image.fromarray(pixels).save(folder / label / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return tiny_image_folder(tmp_path_factory.mktemp("images") / "imgs")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, images) -> Runs:
    from searchlab.config.load import load_study
    from searchlab.engine.run import run_study

    paths = {}
    for entry in ENTRIES:
        folder = tmp_path_factory.mktemp(entry.name)
        paths[entry.name] = folder / "study.yaml"
        paths[entry.name].write_text(study_text(entry, strategy_of(entry), folder, images))
    jobs = [(name, str(path), str(path.parent / "other")) for name, path in paths.items()]
    # one torch thread: the other process shares the two cores with the runs here, which go on meanwhile
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(TESTS)]), "OMP_NUM_THREADS": "1"}
    other = subprocess.Popen([sys.executable, "-c", OTHER_PROCESS, json.dumps(jobs)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = Runs()
    try:
        for entry in ENTRIES:
            out.studies[entry.name] = load_study(paths[entry.name])
            run_study(out.studies[entry.name], progress=False)
            out.first[entry.name] = _trials(entry, paths[entry.name].parent / "run")
        for entry in ENTRIES:
            run_dir = paths[entry.name].parent / "run"
            if entry.nas:
                _inject_failed_and_pruned(entry, run_dir)
            run_study(load_study(paths[entry.name], {"budget.n_trials": entry.n_trials + entry.resumed_by}),
                      progress=False)
            out.resumed[entry.name] = _trials(entry, run_dir)
        said, _ = other.communicate(timeout=600)
    finally:
        if other.poll() is None:
            other.kill()
    assert other.returncode == 0, said[-3000:]
    for entry in ENTRIES:
        out.other[entry.name] = _trials(entry, paths[entry.name].parent / "other")
    return out


# ---- the checks, one per property, each for every entry that promises it ----

def each_entry(check: str) -> list:
    """ENTRIES as parameters of `check`, an entry that does not promise it skipped with its documented reason."""
    return [pytest.param(entry, id=entry.name, marks=pytest.mark.skip(reason=entry.skips[check]))
            if check in entry.skips else pytest.param(entry, id=entry.name) for entry in ENTRIES]


def test_every_registered_strategy_has_an_entry_and_every_skip_names_a_check():
    assert sorted(BY_NAME) == sorted(STRATEGIES.names()), "add an Entry for each registered strategy"
    assert all(set(entry.skips) <= set(CHECKS) for entry in ENTRIES)


def _broken_space_rule(trial: Any, space: Any, complete: bool) -> str | None:
    """Why the trial's params are not a draw of `space` (None: they are): a parameter the space lacks, a value
    outside its range or choices or of the wrong type, a branch's parameter without its branch drawn, or (with
    `complete`) a parameter its drawn branches make exist left undrawn."""
    from searchlab.space import searchable_params
    from searchlab.space.params import FloatParam, IntParam, within

    params = dict(trial.params)
    known = {param.name: (param, needs) for param, needs in searchable_params(space)}
    for name, value in params.items():
        if name not in known:
            return f"{name} is no parameter of the space"
        param, needs = known[name]
        wanted = {IntParam: int, FloatParam: float}.get(type(param))
        if not within(param.distribution(), value) or (wanted and type(value) is not wanted):
            return f"{name}={value!r} is not within {param.distribution()}"
        if any(params.get(selector) != label for selector, label in needs.items()):
            return f"{name} exists only on branch {needs}, but the trial drew {params}"
    reachable = [name for name, (_, needs) in known.items()
                 if all(params.get(selector) == label for selector, label in needs.items())]
    if complete and (missing := sorted(set(reachable) - set(params))):
        return f"{missing} exist under the branches drawn but were not drawn"
    return None


@pytest.mark.parametrize("entry", each_entry("within_space"))
def test_draws_stay_within_the_space(entry, runs):
    space = runs.studies[entry.name].space
    trials = [t for t in runs.resumed[entry.name] if "suite_injected" not in t.user_attrs]
    for trial in trials:
        assert _broken_space_rule(trial, space, complete=True) is None, f"trial {trial.number}"
        given = trial.user_attrs.get("suite_config")
        if not entry.nas and given is not None:   # the objective got the config of those params
            assert given["x"] == trial.params["x"] and given["model"]["kind"] == trial.params["model.kind"]


@pytest.mark.parametrize("entry", each_entry("reproduces"))
def test_a_seeded_run_repeats_exactly_in_another_process(entry, runs):
    first, other = runs.first[entry.name], runs.other[entry.name]
    assert [t.params for t in other] == [t.params for t in first]          # the same configs in the same order
    assert [t.state for t in other] == [t.state for t in first]
    assert [t.values for t in other] == [t.values for t in first]         # and the same results


def _finished(trials: list) -> int:
    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)


@pytest.mark.parametrize("entry", each_entry("failure_alone"))
def test_a_failing_trial_fails_alone_and_the_strategy_goes_on(entry, runs):
    trials = runs.resumed[entry.name]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(failed) == 1, [(t.number, t.state.name) for t in trials]
    after = [t for t in trials if t.number > failed[0].number and "suite_injected" not in t.user_attrs]
    on_purpose = set() if entry.nas else {PRUNED_AT}   # the callable objective prunes this one itself
    assert after and all(t.state == TrialState.COMPLETE for t in after if t.number not in on_purpose)
    assert _finished(trials) == entry.n_trials + entry.resumed_by   # a failure is not counted as a finished trial


@pytest.mark.parametrize("entry", each_entry("pruned_trial"))
def test_a_pruned_trial_does_not_break_the_strategy(entry, runs):
    trials = runs.resumed[entry.name]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert len(pruned) == 1, [(t.number, t.state.name) for t in trials]
    later = [t for t in trials if t.number > pruned[0].number and "suite_injected" not in t.user_attrs]
    assert later and all(t.state == TrialState.COMPLETE for t in later)


@pytest.mark.parametrize("entry", each_entry("resume_new_draws"))
def test_a_resume_continues_to_the_total_with_new_draws(entry, runs):
    first, resumed = runs.first[entry.name], runs.resumed[entry.name]
    assert [t.params for t in resumed[:len(first)]] == [t.params for t in first]   # kept as they were
    assert _finished(resumed) == entry.n_trials + entry.resumed_by
    new = [t.params for t in resumed[len(first):] if "suite_injected" not in t.user_attrs]
    earlier = [t.params for t in first]
    assert new != earlier[:len(new)], "the resume replayed the first run's draws"
    assert not [params for params in new if params in earlier], "the resume drew configs the first run had"


@pytest.mark.parametrize("entry", each_entry("budget"))
def test_trained_trials_stay_within_the_architecture_budget(entry, runs):
    trained = [t for t in runs.resumed[entry.name] if t.state == TrialState.COMPLETE]
    assert trained and all(t.user_attrs["params"] <= MAX_PARAMS for t in trained)
    if entry.stage is not None:   # the networks it scored or designed without training kept the budget too
        run_dir = runs.studies[entry.name].run_dir
        staged = optuna.load_study(study_name=f"suite_{entry.name}.{entry.stage}", storage=_storage(run_dir))
        kept = [t for t in staged.get_trials() if t.state == TrialState.COMPLETE]
        assert kept and all(t.user_attrs["params"] <= MAX_PARAMS for t in kept)


def test_evolution_breeds_within_the_architecture_budget(tmp_path, images):
    """evolution's budget promise (it breeds only architectures within budget.max_*) needs a costed task: the
    sampler searchlab builds for a classify study on NAS_SPACE, asked as a run would, the networks costed but
    not trained, each told its size as the value to maximise (so the search pushes against the budget)."""
    from searchlab.config.load import load_study
    from searchlab.config.schema import StrategyConfig
    from searchlab.strategy import build_sampler
    from searchlab.tasks import get_task, sample_trial_config

    entry = BY_NAME["evolution"]
    path = tmp_path / "study.yaml"
    path.write_text(study_text(Entry("evolution", entry.args, nas=True), strategy_of(entry), tmp_path,
                               images))
    study = load_study(path)
    sampler = build_sampler(StrategyConfig(name="evolution", args=entry.args), SEED, study=study)
    task = get_task(study.config.task)
    memory = optuna.create_study(direction="maximize", sampler=sampler)
    sizes = []
    for _ in range(12):
        trial = memory.ask()
        size = task.candidate(study, sample_trial_config(trial, study)).costs["params"]
        sizes.append(size)
        memory.tell(trial, size if size <= MAX_PARAMS else None,
                    state=None if size <= MAX_PARAMS else TrialState.PRUNED)
    assert max(sizes) <= MAX_PARAMS, sizes


# ---- the shipped presets ----

PRESETS = sorted(REPO_STRATEGIES.glob("*.yaml"))


def test_every_registered_strategy_has_a_preset_of_its_name():
    """DESIGN.md: strategies/ holds a preset per strategy, so `strategy: {preset: NAME}` works for each."""
    assert set(STRATEGIES.names()) <= {path.stem for path in PRESETS}


@pytest.mark.parametrize("path", PRESETS, ids=[path.stem for path in PRESETS])
def test_each_shipped_preset_loads_and_builds_its_sampler(path):
    from searchlab.config.schema import StrategyConfig
    from searchlab.config.yamlsrc import read_yaml
    from searchlab.strategy import build_sampler, load_preset

    text = path.read_text()
    assert text.startswith("#") or "description:" in text, f"{path.name}: say what the preset is for"
    preset = load_preset(path.stem, None, extra_args={})
    assert preset.name in STRATEGIES.names() or preset.class_ is not None
    assert isinstance(build_sampler(StrategyConfig(preset=path.stem), SEED), optuna.samplers.BaseSampler)
    assert isinstance(read_yaml(path).data, dict)
