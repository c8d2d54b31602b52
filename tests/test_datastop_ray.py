"""Under executor: {kind: ray}, a trial that finds the run's data changed stops the Ray run too: the trials Tune
had queued are not started, the run raises the trial's reason once, and a restore lets the study go on."""
from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

pytest.importorskip("ray")

from searchlab.config.load import load_study  # noqa: E402
from searchlab.engine.ray_executor import STOPPED_FOR_CHANGED_DATA  # noqa: E402
from searchlab.engine.run import run_study  # noqa: E402
from searchlab.errors import DataChanged  # noqa: E402
from test_datastop_changed_data import _changed_once_recorded, _folder, _study  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_ray_for_the_module():
    import ray

    yield
    ray.shutdown()


def test_a_ray_trial_that_finds_the_data_changed_stops_the_ray_run(tmp_path, monkeypatch):
    folder = _folder(tmp_path / "images")
    path = sorted((folder / "b").iterdir())[0]
    kept = _changed_once_recorded(monkeypatch, path)
    study_file = _study(tmp_path, folder, n_trials=8, executor="executor: {kind: ray, max_concurrent: 2}\n")
    with pytest.raises(DataChanged, match="changed since the run started.*The run stops here"):
        run_study(load_study(study_file), progress=False)
    trials = optuna.load_study(study_name="datastop", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    found = [t for t in failed if t.user_attrs["error"].startswith("DataChanged: ")]
    # no more trials than Tune ran at once met the change (not budget.max_failed's 8); those it stopped or never
    # started are interrupted, run again with the study; none is left RUNNING
    assert 1 <= len(found) <= 2 and TrialState.RUNNING not in [t.state for t in trials]
    assert all(t.user_attrs["error"] == STOPPED_FOR_CHANGED_DATA for t in failed if t not in found)
    assert TrialState.WAITING not in [t.state for t in trials]   # queued by the next run, not by the one stopping

    path.write_bytes(kept[0])
    study_file.write_text(study_file.read_text().replace("n_trials: 8", "n_trials: 2"))
    result = run_study(load_study(study_file), progress=False)
    assert [t.state for t in result.study.trials].count(TrialState.COMPLETE) == 2
    assert {t.user_attrs.get("retry_of") for t in result.study.trials} >= {t.number for t in found}
