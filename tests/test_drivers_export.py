"""Two run folders of one study (two drivers: here two folders sharing one SQLite file, as two Ray drivers share a
PostgreSQL study): the after-run export of the second, when the study's best trial was trained by the first and
its checkpoint lives in the first folder's artifacts/."""
from __future__ import annotations

import json
import shutil

import optuna

from searchlab.cli import main
from searchlab.config.load import load_study
from searchlab.engine.own_trials import TRAINED_IN
from searchlab.engine.run import create_or_load

# `params` minimised: the first folder's trial (width 4) is the study's best over the second's (width 8), whatever
# the training draws
TWO_FOLDERS = """
name: shared
task: classify
space:
  model: {{kind: cnn, depth: 1, width: {{choice: [4, 8]}}, convs_per_stage: 1}}
  train: {{batch_size: 128}}
objective: {{metric: params, direction: minimize}}
strategy: random
pruner: none
budget: {{n_trials: {n}, epochs: 1}}
export: {{after_run: true, bootstrap: 100}}
storage: 'sqlite:///{db}'
run_dir: '{run_dir}'
"""


def _two_folders(write_study, tmp_path):
    """The first folder's run has trained trial 0 (the best); the second folder's study file, to run next, will
    train trial 1 (worse)."""
    db = tmp_path / "shared.db"
    first = write_study(TWO_FOLDERS.format(n=1, db=db, run_dir=tmp_path / "first"), name="first.yaml")
    second = write_study(TWO_FOLDERS.format(n=2, db=db, run_dir=tmp_path / "second"), name="second.yaml")
    (tmp_path / "first").mkdir()
    ostudy = create_or_load(load_study(first))
    ostudy.enqueue_trial({"model.width": 4})   # run by the first folder
    ostudy.enqueue_trial({"model.width": 8})   # left queued: the second folder runs it
    assert main(["run", str(first), "--no-progress", "--set", "export.after_run=false"]) == 0
    return second


def _best(tmp_path) -> optuna.trial.FrozenTrial:
    return optuna.load_study(study_name="shared", storage=f"sqlite:///{tmp_path / 'shared.db'}").best_trial


def test_the_second_folders_after_run_export_reads_the_best_checkpoint_from_the_first_folder(
        write_study, tmp_path, capsys):
    """It exited 1: "the checkpoint of trial 0 is not in second/artifacts: deleted by export.keep_checkpoints"."""
    second = _two_folders(write_study, tmp_path)
    capsys.readouterr()
    code = main(["run", str(second), "--no-progress"])
    out, err = capsys.readouterr()
    assert _best(tmp_path).number == 0 and _best(tmp_path).params["model.width"] == 4
    assert code == 0, err
    config = json.loads((tmp_path / "second" / "best" / "config.json").read_text())
    assert config["trial"]["number"] == 0
    assert (tmp_path / "second" / "best" / "weights.safetensors").is_file()
    assert f"trial 0's checkpoint read from {tmp_path / 'first' / 'artifacts'}" in err
    assert f"exported:  {tmp_path / 'second' / 'best'}" in out
    # status of the second folder: the first folder's checkpoint is not said lost, but where it is
    assert main(["status", str(tmp_path / "second")]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 trials' checkpoints kept" in out
    assert f"trained by other run folders of this study, which hold them: 1 in {tmp_path / 'first'}\n" in out, out
    shutil.rmtree(tmp_path / "first")
    assert main(["status", str(tmp_path / "second")]) == 0
    assert f"1 in {tmp_path / 'first'} (not found on this machine: moved or deleted)" in capsys.readouterr().out


def test_a_checkpoint_held_by_a_folder_on_another_machine_is_said_in_one_line_with_the_command_there(
        write_study, tmp_path, capsys):
    """The first folder is another machine's (its record names that machine, and its path is not here): exit 1,
    the export promised was not made; one line says which trial, which folder and machine hold it, and how to
    export it there (it said "deleted by export.keep_checkpoints" and gave a command failing the same way)."""
    second = _two_folders(write_study, tmp_path)
    ostudy = optuna.load_study(study_name="shared", storage=f"sqlite:///{tmp_path / 'shared.db'}")
    (key, record), = ((k, v) for k, v in ostudy.user_attrs.items() if k.startswith(TRAINED_IN))
    assert record["trials"] == [0] and record["run_dir"] == str((tmp_path / "first").resolve())
    ostudy.set_user_attr(key, {**record, "host": "gpu-node-7"})   # as that machine wrote it
    shutil.move(tmp_path / "first", tmp_path / "first-on-the-other-machine")
    capsys.readouterr()
    code = main(["run", str(second), "--no-progress"])
    out, err = capsys.readouterr()
    assert code == 1
    first = (tmp_path / "first").resolve()
    command = f"searchlab export {first} --trial 0 --bootstrap 100 --out {first / 'best'}"
    said = [line for line in err.splitlines() if line.startswith("export skipped:")]
    assert said == [f"export skipped: trial 0 was trained by another run of this study, in run folder {first} (on "
                    f"machine gpu-node-7), which holds its checkpoint (not in {tmp_path / 'second' / 'artifacts'})"
                    f". Fix: export it there: {command}"], err
    assert "Traceback" not in err and "keep_checkpoints" not in err
    assert f"export:    {command}" in out   # the summary's command is that one, not one failing here again
    assert not (tmp_path / "second" / "best").exists()


def test_a_folder_of_this_machine_that_is_gone_is_to_be_put_back_not_exported_from(write_study, tmp_path, capsys):
    """The first folder was this machine's and was moved away: exporting there cannot work, so the fix is to put
    it back (it said "export it there" with that folder's path)."""
    second = _two_folders(write_study, tmp_path)
    shutil.move(tmp_path / "first", tmp_path / "first-moved")
    capsys.readouterr()
    assert main(["run", str(second), "--no-progress"]) == 1
    err = capsys.readouterr().err
    first = (tmp_path / "first").resolve()
    said = [line for line in err.splitlines() if line.startswith("export skipped:")]
    assert said == [f"export skipped: trial 0 was trained by another run of this study, in run folder {first} (on "
                    "this machine, but that folder is gone or cannot be read now), which holds its checkpoint (not "
                    f"in {tmp_path / 'second' / 'artifacts'}). Fix: put {first} back (or copy its artifacts/ into "
                    f"{tmp_path / 'second' / 'artifacts'}), or export another trial (--trial N)"], err
