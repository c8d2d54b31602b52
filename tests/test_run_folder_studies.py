"""One run folder, two studies: the fix searchlab itself gives for a finished study ("give the study a new name")
run with `--set name=...` in the same run_dir. Its export replaced the first study's without saying so; the first
study, run again, was called "a new study", let the other study's export "stand" as its own, and `status` and
`export` of its study file opened the other study."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pytest
from PIL import Image

from searchlab.cli import main
from searchlab.export.publish import export_of_another_study


def _run_cli(*argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `searchlab ARGV` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _study_of_export(folder: Path) -> str:
    return json.loads((folder / "config.json").read_text())["trial"]["study"]


@pytest.fixture(scope="module")
def shared_folder(tmp_path_factory):
    """Study 'cxr' run in runs/cxr (1 trial, exported), then the same file with --set name=cxr2 (the folder's
    manifest and best/ now name cxr2)."""
    tmp = tmp_path_factory.mktemp("two_studies")
    for label in ("a", "b"):
        (tmp / "imgs" / label).mkdir(parents=True)
        for i in range(8):
            Image.fromarray(np.full((8, 8), 15 * i + (100 if label == "b" else 0), np.uint8)).save(
                tmp / "imgs" / label / f"{i}.png")
    study = tmp / "study.yaml"
    study.write_text(f"name: cxr\ndata: {{source: folder, path: '{tmp / 'imgs'}', image_size: 8, "
                     "test_fraction: 0.25}\nspace: {model: {kind: cnn, depth: 1, width: 4}}\nstrategy: random\n"
                     f"budget: {{n_trials: 1, epochs: 1}}\nexport: {{after_run: true, bootstrap: 100}}\n"
                     f"run_dir: '{tmp / 'runs' / 'cxr'}'\n")
    assert _run_cli("run", str(study), "--no-progress")[0] == 0
    code, out, err = _run_cli("run", str(study), "--set", "name=cxr2", "--no-progress")
    assert code == 0, err
    run_dir = tmp / "runs" / "cxr"
    return SimpleNamespace(tmp=tmp, study=study, run_dir=run_dir, second_out=out, second_err=err,
                           second_export=_study_of_export(run_dir / "best"))


def test_an_after_run_export_names_the_other_studys_export_it_replaces(shared_folder):
    assert shared_folder.second_export == "cxr2"
    assert f"(a new study 'cxr2'; the folder held 'cxr')" in shared_folder.second_out
    assert (f"note: replaced the earlier export in {shared_folder.run_dir / 'best'} (trial 0 of study 'cxr')"
            in shared_folder.second_err)


def test_a_study_file_opens_its_own_study_not_the_one_its_folder_ran_last(shared_folder):
    manifest = shared_folder.run_dir / "searchlab.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "study_name": "cxr2"}))
    code, out, _ = _run_cli("status", str(shared_folder.study))
    assert code == 0 and out.startswith("study 'cxr' in ")
    assert _run_cli("status", str(shared_folder.run_dir))[1].startswith("study 'cxr2' in ")   # the folder: its record
    code, _, err = _run_cli("export", str(shared_folder.study), "--out", str(shared_folder.tmp / "x"),
                            "--bootstrap", "100")
    assert code == 0, err
    assert _study_of_export(shared_folder.tmp / "x") == "cxr"
    other = shared_folder.tmp / "other.yaml"
    other.write_text(shared_folder.study.read_text().replace("name: cxr", "name: zzz"))
    code, _, err = _run_cli("status", str(other))
    assert code == 2
    assert "names the study 'zzz'" in err and "(it holds: 'cxr', 'cxr2';" in err
    assert f"Fix: run it first (searchlab run {other})" in err


def test_an_export_of_a_study_made_anew_under_the_same_name_is_not_its_own(shared_folder):
    storage = f"sqlite:///{shared_folder.run_dir / 'study.db'}"
    cxr = optuna.load_study(study_name="cxr", storage=storage)
    folder = shared_folder.tmp / "fake_export"
    folder.mkdir()
    trial = cxr.trials[0]
    config = {"format": "searchlab-classifier", "trial": {"study": "cxr", "number": 0, "params": trial.params}}
    (folder / "config.json").write_text(json.dumps(config))
    assert export_of_another_study(folder, cxr) is None
    config["trial"]["params"] = {**trial.params, "model.depth": -1}
    (folder / "config.json").write_text(json.dumps(config))
    assert "(not one of its trials now: the study was made anew)" in export_of_another_study(folder, cxr)
    config["trial"]["number"] = 7
    (folder / "config.json").write_text(json.dumps(config))
    assert export_of_another_study(folder, cxr) is not None


def test_the_first_study_run_again_resumes_and_replaces_the_other_studys_export(shared_folder):
    """Its budget reached, nothing ran: the header said "a new study 'cxr'", and the export in best/ (cxr2's)
    "stood" as cxr's, so `predict runs/cxr/best` used the other study's model."""
    assert _study_of_export(shared_folder.run_dir / "best") == "cxr2"   # the last test to change best/
    code, out, err = _run_cli("run", str(shared_folder.study), "--set", "export.after_run=false", "--no-progress")
    assert code == 0, err
    assert "a new study" not in out
    assert (f"run:  {shared_folder.run_dir} (resuming study 'cxr': 1 trial(s) stored; the folder's record named "
            "'cxr2', the study run there last)") in out
    assert "stands" not in out + err   # the summary's own "exported: ... so it stands"
    assert f"--out {shared_folder.run_dir / 'best'}   ({shared_folder.run_dir / 'best'} holds trial 0 of study " \
           "'cxr2', not this study's)" in out
    code, out, err = _run_cli("run", str(shared_folder.study), "--no-progress")   # with the after-run export
    assert code == 0, err
    assert "stands" not in out + err
    assert f"holds trial 0 of study 'cxr2', not a trial of study 'cxr'; exporting this study's best" in err
    assert f"note: replaced the earlier export in {shared_folder.run_dir / 'best'} (trial 0 of study 'cxr2')" in err
    assert _study_of_export(shared_folder.run_dir / "best") == "cxr"
    assert f"exported:  {shared_folder.run_dir / 'best'}  (load with torch alone" in out
    code, out, err = _run_cli("run", str(shared_folder.study), "--no-progress")   # now its own export stands
    assert code == 0 and "(by an earlier run: nothing ran since, so it stands)" in out
