"""What a reviewer needs to rerun a trial: its seed and torch's threads as it ran, the code it ran, and a resume
that changed the seed said as such (found by a reproducibility audit)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import optuna
import pytest

import searchlab
from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError
from searchlab.export.exporter import export_run
from searchlab.versions import source_commit
from test_data import _fresh_cache, class_folder  # noqa: F401  (_fresh_cache: autouse fixture)
from test_run import TINY_CLASSIFY


def test_each_trial_records_its_seed_and_threads_and_the_export_the_seed_it_ran_with(write_study, tmp_path,
                                                                                  capsys):
    """A resume with another seed made the export recompute an older trial's seed from the new one (and say
    nothing at the resume); 1 vs 2 torch threads moved a trial's AUC by up to 0.06, recorded nowhere."""
    path = write_study(TINY_CLASSIFY + "executor: {kind: local, workers: 1, threads_per_worker: 1}\nseed: 0\n")
    run_study(load_study(path), progress=False)
    first = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'run' / 'study.db'}").trials
    ran_with = [t.user_attrs["ran_with"] for t in first]
    assert [r["torch_threads"] for r in ran_with] == [1, 1] and len({r["seed"] for r in ran_with}) == 2
    capsys.readouterr()
    run_study(load_study(path, overrides={"seed": 7, "budget.n_trials": 3}), progress=False)
    assert "ran its trials with seed 0; this run's seed 7" in capsys.readouterr().err
    best = min(first, key=lambda t: -t.value)
    config = export_run(tmp_path / "run", tmp_path / "best", trial_number=best.number, bootstrap=20)
    assert config["trial"]["seed"] == best.user_attrs["ran_with"]["seed"] and config["trial"]["torch_threads"] == 1
    assert config["trial"]["study_seed"] == 0 and config["search"]["seed"] == 7   # the `seed:` a rerun must set
    from searchlab.engine.rundir import open_run
    from searchlab.trials_table import trial_table

    table = trial_table(open_run(tmp_path / "run"))
    assert table["torch_threads"].tolist()[:2] == [1, 1] and table["seed"].tolist()[:2] == [r["seed"] for r in ran_with]
    assert table["study_seed"].tolist() == [0, 0, 7]


def test_a_seed_change_that_moves_a_folders_splits_is_named_as_the_cause(write_study, tmp_path):
    folder = class_folder(tmp_path / "imgs", {"a": 12, "b": 12})
    path = write_study(TINY_CLASSIFY.replace("n_trials: 2", "n_trials: 1") +
                       f"data: {{source: folder, path: '{folder}', image_size: 8}}\nseed: 0\n")
    run_study(load_study(path), progress=False)
    with pytest.raises(ConfigError) as info:
        run_study(load_study(path, overrides={"seed": 5, "budget.n_trials": 2}), progress=False)
    assert info.value.key == "seed" and "splits that seed 0 drew from these files; seed 5 draws others" in \
        str(info.value) and "--set seed=0" in str(info.value)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def test_the_commit_record_tells_one_set_of_uncommitted_changes_from_another(tmp_path, monkeypatch):
    """Two exports 6 s apart recorded the same "<commit>+changes" with different code in between."""
    package = tmp_path / "searchlab"
    package.mkdir()
    (package / "__init__.py").write_text("x = 1\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "one")
    monkeypatch.setattr(searchlab, "__file__", str(package / "__init__.py"))
    clean = source_commit()
    assert clean is not None and len(clean) == 40
    (package / "__init__.py").write_text("x = 2\n")
    edited = source_commit()
    (package / "__init__.py").write_text("x = 3\n")
    edited_again = source_commit()
    assert edited.startswith(clean + "+changes:") and edited_again.startswith(clean + "+changes:")
    assert edited != edited_again
    (package / "new_module.py").write_text("y = 1\n")   # untracked: it runs too
    assert source_commit() not in (edited_again, clean)
    (package / "new_module.py").unlink()
    assert source_commit() == edited_again


def test_the_record_keeps_the_text_of_the_fragments_the_space_included(write_study, tmp_path):
    """A rerun finds `include:` fragments by name (beside the study, $SEARCHLAB_PATH, the checkout's spaces/):
    an edited one gave another space, and the record kept only the study file's text."""
    from searchlab.engine.run import study_record

    fragment = "lr: {float: [1.0e-3, 1.0e-2], log: true}\n"
    (tmp_path / "my_optim.yaml").write_text(fragment)
    study = load_study(write_study(TINY_CLASSIFY.replace("  optim: {lr: {float: [1.0e-3, 1.0e-2], log: true}}\n",
                                                         "  optim: {include: my_optim.yaml}\n")))
    assert study_record(study)["included_file_texts"] == {str((tmp_path / "my_optim.yaml").resolve()): fragment}
