"""A run's history entry (searchlab_runs) from runners of one folder that end together."""
from __future__ import annotations

import multiprocessing

import optuna
import pytest

from searchlab.engine.run_history import KEY, record_run


def _record(storage: str, run_dir: str, runner: int, times: int, together) -> None:
    from pathlib import Path

    ostudy = optuna.load_study(study_name="s", storage=storage)
    together.wait()   # both runners past their imports: their writes overlap (without it, half the time they did not)
    for n in range(times):
        record_run(ostudy, Path(run_dir), 0.0, 1.0, f"runner {runner} run {n}", 0, [])


def test_runners_of_one_folder_ending_at_once_keep_every_entry(tmp_path):
    """Each runner read the list and wrote it back with its entry: the other's entry was lost."""
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.create_study(study_name="s", storage=storage)
    context = multiprocessing.get_context("spawn")
    together = context.Barrier(2)
    runners = [context.Process(target=_record, args=(storage, str(tmp_path), runner, 20, together))
               for runner in (0, 1)]
    for process in runners:
        process.start()
    for process in runners:
        process.join(120)
    assert [process.exitcode for process in runners] == [0, 0]
    entries = optuna.load_study(study_name="s", storage=storage).user_attrs[KEY]
    assert sorted(e["stopped_by"] for e in entries) == sorted(f"runner {r} run {n}" for r in (0, 1) for n in range(20))


def test_a_run_that_raised_says_so_in_its_entry_and_the_latest_run_is_said_by_status(write_study, tmp_path,
                                                                                      monkeypatch):
    import searchlab.engine.run as run_module
    from searchlab.config.load import load_study
    from searchlab.engine.run_history import runs_line
    from searchlab.errors import ConfigError
    from test_run import callable_study

    path = callable_study(write_study, n=2)
    run_module.run_study(load_study(path), progress=False)

    def refused(*args, **kwargs):
        raise ConfigError("refused before its first trial")

    monkeypatch.setattr(run_module, "_recover_and_prepare", refused)
    with pytest.raises(ConfigError):
        run_module.run_study(load_study(path), progress=False)
    study = optuna.load_study(study_name="fake", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}")
    first, second = study.user_attrs[KEY]
    assert first["stopped_by"] == "budget.n_trials" and first["trials_finished"] == 2 and first["pid"]
    assert second["stopped_by"] == "error: ConfigError"
    said = runs_line(study, in_progress=False)
    assert said.startswith("runs:      2 recorded; the latest, started ") and "stopped by error: ConfigError" in said
    assert runs_line(study, in_progress=True) == said   # a finished latest run is not called running
