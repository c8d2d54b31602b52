"""MedMNIST leaks through a lineage: weights whose lineage lists files (a run started from a folder-trained export)
were not checked for the study's MedMNIST set at all, though their own run learned it: a breastmnist run that
cross-validated (it learned train and val) from a folder export warned of nothing as weights of a breastmnist
study, with or without folds. So for a folder run started from such weights (an ancestor learned breastmnist),
and for an export's own weights file (weights.safetensors), which was checked against nothing while its
folder warned."""
from __future__ import annotations

import pytest

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.export.exporter import export_run
from test_medmnist_sources import started_with, study
from test_synthetic_leak import noise_folder
from tiny_runs import run_on_breastmnist

FOLDER = """name: {name}
task: classify
space:
  model: {{kind: cnn, depth: 1, width: 4{weights}}}
  optim: {{lr: 1.0e-3}}
strategy: random
pruner: none
budget: {{n_trials: 1, epochs: 1}}
data: {{source: folder, path: '{images}', val_fraction: 0.2, test_fraction: 0.2}}
run_dir: '{run}'
"""


def folder_run(tmp, name, weights=None):
    path = tmp / f"{name}.yaml"
    path.write_text(FOLDER.format(name=name, images=tmp / "images", run=tmp / f"{name}_run",
                                  weights=f", transfer: full, weights: '{weights}'" if weights else ""))
    run_study(load_study(path), progress=False)
    return tmp / f"{name}_run"


@pytest.fixture(scope="module")
def lineage(tmp_path_factory, breastmnist_root):
    """folder_best: a folder run's export; folded: a breastmnist run from it that cross-validated (its run
    folder); heir_best: a folder run's export started from `folded`; plain_best: a plain breastmnist export."""
    tmp = tmp_path_factory.mktemp("medmnist_lineage")
    noise_folder(tmp / "images")
    export_run(folder_run(tmp, "folder"), tmp / "folder_best", bootstrap=10)
    (tmp / "folded").mkdir(), (tmp / "plain").mkdir()
    run_on_breastmnist(tmp / "folded", study("folded", tmp / "folder_best", folds=2), breastmnist_root)
    export_run(folder_run(tmp, "heir", tmp / "folded" / "run"), tmp / "heir_best", bootstrap=10)
    export_run(run_on_breastmnist(tmp / "plain", study("plain"), breastmnist_root), tmp / "plain_best", bootstrap=10)
    return tmp


def test_weights_of_the_set_with_a_folder_lineage_are_warned_of_for_val_and_folds(lineage, tmp_path,
                                                                                 breastmnist_root, capsys):
    weights = lineage / "folded" / "run"
    (tmp_path / "val").mkdir(), (tmp_path / "cv").mkdir()
    err = started_with(tmp_path / "val", study("val", weights), breastmnist_root, capsys)
    assert f"'{weights}': their trials cross-validated over breastmnist.npz's train and val images, so they " \
           "trained on all 78 of this study's val images" in err, err
    err = started_with(tmp_path / "cv", study("cv", weights, folds=2), breastmnist_root, capsys)
    assert f"'{weights}': train.cv_folds deals this study's train and val images into folds, and 624 of the 624 " \
           "are images the weights' run trained on" in err, err


def test_weights_whose_ancestor_learned_the_set_are_warned_of_naming_it(lineage, tmp_path, breastmnist_root,
                                                                        capsys):
    err = started_with(tmp_path, study("heir", lineage / "heir_best"), breastmnist_root, capsys)
    assert f"the trials of {lineage / 'folded' / 'run'}, in their lineage (weights their run started from, or a " \
           "generator whose images it trained on), cross-validated over breastmnist.npz's train and val images, " \
           "so they trained on all 78 of this study's val images" in err, err


def test_an_exports_own_weights_file_counts_as_that_export(lineage, tmp_path, breastmnist_root, capsys):
    weights = lineage / "plain_best" / "weights.safetensors"
    err = started_with(tmp_path, study("file", weights, folds=2), breastmnist_root, capsys)
    assert f"'{weights}': train.cv_folds deals this study's train and val images into folds, and 546 of the 624 " \
           "are images the weights' run trained on" in err, err


def test_an_export_of_trials_started_from_an_exports_weights_file_inherits_its_lineage(lineage):
    """What the export's file learned passes down a chain as the export's folder does (trained_on.json)."""
    import json

    from searchlab.export import trained_on

    export_run(folder_run(lineage, "from_file", lineage / "heir_best" / "weights.safetensors"),
               lineage / "from_file_best", bootstrap=10)
    record = json.loads((lineage / "from_file_best" / trained_on.FILE).read_text())
    assert record[trained_on.INHERITED] == [str((lineage / "heir_best").resolve())], record.get(trained_on.INHERITED)
    assert str((lineage / "folder_best").resolve()) in record[trained_on.LEARNED_BY]   # heir's own ancestor too
