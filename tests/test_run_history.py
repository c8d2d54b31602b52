"""A run's history entry (searchlab_runs) from runners of one folder that end together."""
from __future__ import annotations

import multiprocessing

import optuna

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
