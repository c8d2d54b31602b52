"""Numeric command-line options out of range are usage errors (exit 2) that say the rule, before any work;
a command stopped from outside says so in one line."""
from __future__ import annotations

import signal
from pathlib import Path

import pytest

from searchlab.cli import main
from searchlab.engine.signals import Interrupted


@pytest.mark.parametrize("argv,rule", [
    (["dashboard", "runs/x", "--port", "99999"], "--port: must be an integer from 1 to 65535 (got '99999')"),
    (["status", "runs/x", "--top", "0"], "--top: must be an integer of at least 1 (got '0')"),
    (["report", "runs/x", "--top", "-3"], "--top: must be an integer of at least 1 (got '-3')"),
    (["export", "runs/x", "--out", "o", "--top-k", "two"], "--top-k: must be an integer of at least 1 (got 'two')"),
    (["export", "runs/x", "--out", "o", "--bootstrap", "10"], "--bootstrap: must be an integer of at least 100"),
    (["export", "runs/x", "--out", "o", "--trial", "-1"], "--trial: must be an integer of at least 0"),
])
def test_out_of_range_numbers_are_usage_errors(argv, rule, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and rule in capsys.readouterr().err


def test_no_command_names_the_commands_and_version_prints_it(capsys):
    from searchlab import __version__

    assert main([]) == 2
    err = capsys.readouterr().err
    assert "error: no command given. Fix: name one of run, status, trials, export" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out == f"searchlab {__version__}\n"


@pytest.mark.parametrize("stop, code, said", [(KeyboardInterrupt(), 130, "Ctrl-C"),
                                              (Interrupted(signal.SIGTERM), 143, "SIGTERM")])
def test_a_command_stopped_by_ctrl_c_or_sigterm_says_so_in_one_line(stop, code, said, monkeypatch, capsys):
    import searchlab.cli as cli

    def stopped(args):
        raise stop

    monkeypatch.setattr(cli, "_cmd_export", stopped)   # e.g. a long bootstrap, stopped by the user
    assert main(["export", "runs/x", "--out", "o"]) == code
    assert capsys.readouterr().err == f"interrupted ({said})\n"   # not a traceback


def test_an_export_that_labels_every_validation_image_alike_is_warned_of(capsys):
    from searchlab.export.export_notes import _warn_if_one_class

    config = {"task": "binary", "class_names": ["malignant", "benign"], "threshold": 0.5,
              "validation_metrics": {"sensitivity": 1.0, "specificity": 0.0, "auc": 0.81}}
    _warn_if_one_class(config)
    err = capsys.readouterr().err
    assert "labels every validation image 'benign' (sensitivity 1, specificity 0)" in err
    assert "imbalance.threshold: youden" in err and "imbalance.loss: weighted_ce" in err
    weighted_by_nothing = {"imbalance": {"loss": "weighted_ce", "class_weight_power": 0.0, "threshold": "youden"}}
    _warn_if_one_class({**config, "trial": {"config": weighted_by_nothing}})
    err = capsys.readouterr().err   # no advice to do what the trial already did; its power 0 weighs nothing
    assert "imbalance.threshold: youden" not in err and "class_weight_power above 0" in err
    _warn_if_one_class({**config, "trial": {"config": {"imbalance": {"loss": "focal", "threshold": "f1"}}}})
    assert capsys.readouterr().err.endswith("Fix: train longer (budget.epochs)\n")   # class-weighted focal
    _warn_if_one_class({**config, "validation_metrics": {"sensitivity": 0.9, "specificity": 0.7}})
    _warn_if_one_class({**config, "task": "multilabel", "threshold": [0.5, 0.5]})
    assert capsys.readouterr().err == ""


def test_an_always_on_label_and_an_ensemble_below_a_member_are_warned_of(capsys):
    from searchlab.export.export_notes import warn_about_export

    config = {"task": "multilabel", "class_names": ["effusion", "nodule", "mass"], "threshold": [0.41, 0.0, 0.5]}
    warn_about_export(config)
    assert "for label(s) 'nodule' is 0: the model flags every image" in capsys.readouterr().err
    # 0.5 for a label whose every test probability is just above it: flagged on all 156 test images as well
    flagged = {**config, "threshold": [0.41, 0.3, 0.5], "test_size": 156,
               "test_confusion": [[100, 6, 10, 40], [120, 0, 30, 6], [0, 156, 0, 0]]}
    warn_about_export(flagged)
    err = capsys.readouterr().err
    assert "flags every one of the 156 test images with label(s) 'mass'" in err and "'nodule'" not in err
    assert "flags none" not in err
    never = {**flagged, "test_confusion": [[100, 6, 10, 40], [120, 0, 36, 0], [150, 6, 0, 0]]}
    warn_about_export(never)   # 'nodule' in 36 test images, flagged in none; 'mass' in none, flagged in 6
    err = capsys.readouterr().err
    assert "flags none of the 156 test images with label(s) 'nodule' (36), though that many images have them" in err
    assert "'mass' (" not in err
    below = {"metric": "auc", "split": "val", "ensemble": 0.871, "member": 7, "member_value": 0.902}
    warn_about_export({**config, "threshold": [0.4, 0.3, 0.5], "ensemble_below_member": below})
    err = capsys.readouterr().err
    assert err.startswith("warning: on the val predictions this ensemble's auc (0.8710) is worse than that of its "
                          "member trial 7 (0.9020)") and "--select greedy" in err and err.count("warning") == 1
    warn_about_export({**config, "threshold": [0.4, 0.3, 0.5], "ensemble_below_member": below, "tta": "flip"})
    assert "member trial 7 (0.9020, both with --tta flip)" in capsys.readouterr().err


def test_few_test_images_of_a_class_and_tta_below_plain_are_warned_of(capsys):
    from searchlab.export.export_notes import warn_about_export

    config = {"task": "binary", "class_names": ["benign", "malignant"], "threshold": 0.5, "test_size": 51,
              "test_confusion": [[41, 4], [6, 0]], "test_metrics_ci95": {"sensitivity": [0.0, 0.4593]}}
    warn_about_export(config)
    assert capsys.readouterr().err == ("warning: the test split has only 6 of class 'malignant': each of those "
                                       "images moves the metrics about it by 1/6 or more (the sensitivity interval "
                                       "is [0.00, 0.46]); read the intervals in config.json, not the point values\n")
    multi = {"task": "multilabel", "class_names": ["effusion", "nodule", "mass"], "threshold": [0.5, 0.5, 0.5],
             "test_confusion": [[32, 2, 3, 13], [30, 5, 2, 13], [47, 0, 0, 3]]}
    warn_about_export(multi)
    assert capsys.readouterr().err.startswith("warning: the test split has only 3 of mass positives: each of "
                                              "those images moves the metrics about it by 1/3 or more;")
    worse = {"metric": "auc", "split": "val", "tta": "dihedral", "with_tta": 0.81, "without_tta": 0.85}
    warn_about_export({**config, "test_confusion": [[41, 4], [16, 10]], "tta_below_plain": worse})
    err = capsys.readouterr().err
    assert err.startswith("warning: --tta dihedral lowers auc on the val split to 0.8100, from 0.8500 without it")
    assert "Fix: --tta none (or flip)," in err
    warn_about_export({**config, "test_confusion": [[41, 4], [16, 10]], "tta_below_plain": {**worse, "tta": "flip"}})
    assert "Fix: --tta none, or search" in capsys.readouterr().err   # not flip again


@pytest.mark.parametrize("value", ["space.optim.lr=[1", "x={float:[1e-3}", "x=*a", "x=!!python/object:os.system {}"])
def test_a_set_value_that_is_not_yaml_is_one_line_and_exit_2(value, capsys):
    from searchlab.cli import main

    quickstart = Path(__file__).resolve().parents[1] / "studies" / "quickstart.yaml"
    assert main(["run", str(quickstart), "--set", value]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --set {value}: the value is not valid YAML (") and err.count("\n") == 1


def test_a_set_value_nested_thousands_deep_is_one_line_and_exit_2(capsys):
    """The YAML parser's RecursionError came out as a traceback."""
    from searchlab.cli import main

    quickstart = Path(__file__).resolve().parents[1] / "studies" / "quickstart.yaml"
    assert main(["run", str(quickstart), "--set", "seed=" + "[" * 3000]) == 2
    assert capsys.readouterr().err == ("error: --set seed=...: the value is nested too deeply to read. Fix: write it "
                                       "with the few levels the study file would have\n")


def test_an_undefined_test_metric_is_null_in_json_and_warned_of(capsys):
    import json

    from searchlab.export.export_notes import warn_about_export
    from searchlab.export.publish import json_text

    config = {"task": "binary", "class_names": ["a", "b"], "threshold": 0.5, "test_size": 12,
              "test_metrics": {"auc": float("nan"), "accuracy": 0.75}, "test_metrics_ci95": {"auc": [float("nan")] * 2},
              "validation_metrics": {"sensitivity": 0.8, "specificity": 0.6}}
    assert json.loads(json_text(config))["test_metrics"] == {"auc": None, "accuracy": 0.75}   # strict JSON
    warn_about_export(config)
    assert capsys.readouterr().err.startswith("warning: auc undefined on this test split (12 images): a class")
    warn_about_export({**config, "task": "multilabel", "class_names": ["effusion", "mass"], "threshold": [0.5, 0.5],
                       "test_metrics": {"auc": float("nan"), "auc_class_0": 0.8, "auc_class_1": float("nan")}})
    assert "a class ('mass') is missing from it" in capsys.readouterr().err


def test_the_export_headline_shows_the_objective_beside_auc_and_accuracy_with_interval_methods():
    from searchlab.export.export_notes import test_headline

    config = {"test_metrics": {"auc": 0.81, "accuracy": 0.8, "sensitivity": 0.7}, "test_size": 156,
              "test_metrics_ci95": {"auc": [0.7, 0.9], "accuracy": [0.73, 0.86], "sensitivity": [0.55, 0.82]},
              "test_metrics_ci95_method": {"auc": "percentile bootstrap, 200 resamples", "accuracy": "exact",
                                           "sensitivity": "exact"}, "objectives": ["sensitivity"]}
    assert test_headline(config) == (
        "test auc 0.810 [0.700, 0.900], accuracy 0.800 [0.730, 0.860], sensitivity 0.700 [0.550, 0.820] (n=156; "
        "95% intervals, auc: percentile bootstrap, 200 resamples; accuracy: exact; sensitivity: exact)")
    assert test_headline({"test_metrics": None, "test_note": "no test split"}) == "no test split"
    undefined = {**config, "test_metrics": {**config["test_metrics"], "auc": float("nan")},
                 "test_metrics_ci95": {**config["test_metrics_ci95"], "auc": [float("nan")] * 2}}
    assert test_headline(undefined).startswith("test auc undefined, accuracy 0.800 [0.730, 0.860]")


def test_a_full_disk_while_writing_out_is_one_line_naming_the_out_file(monkeypatch, capsys):
    import errno

    import searchlab.cli as cli
    from searchlab.cli import main

    def full(args):
        raise OSError(errno.ENOSPC, "No space left on device")   # as a write to a full disk: no filename

    monkeypatch.setattr(cli, "_cmd_trials", full)
    assert main(["trials", "runs/x", "--out", "/dev/full"]) == 1
    assert capsys.readouterr().err.startswith("error: /dev/full: No space left on device. Fix: check that the path")


def test_a_set_value_is_read_as_the_study_file_reads_it():
    from searchlab.cli import parse_overrides

    # PyYAML alone reads 1e-3 as text (YAML 1.1); the study file's reader makes it the number
    assert parse_overrides(["space.optim.lr=1e-3", "export.after_run=false", "x={float: [1e-4, 1.0e-2]}"]) == {
        "space.optim.lr": 0.001, "export.after_run": False, "x": {"float": [0.0001, 0.01]}}


def test_weights_that_cannot_be_written_are_an_os_error_naming_the_file(tmp_path, monkeypatch, capsys):
    import errno

    import torch

    import searchlab.weights_file as weights_file
    from searchlab.cli import main

    target = tmp_path / "missing" / "weights.safetensors"   # a real failure: safetensors' own error type
    with pytest.raises(FileNotFoundError) as info:
        weights_file.save_weights({"w": torch.zeros(2)}, target)
    assert info.value.filename == str(target) and info.value.errno == errno.ENOENT

    def full(*args, **kwargs):   # as safetensors words a full disk
        raise weights_file.SafetensorError('Error while serializing: I/O error: No space left on device '
                                           '(os error 28) at path "/x/.tmp1"')

    monkeypatch.setattr(weights_file, "save_file", full)
    monkeypatch.setattr("searchlab.cli._cmd_trials", lambda args: weights_file.save_weights({}, tmp_path / "w"))
    assert main(["trials", "runs/x"]) == 1
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'w'}: No space left on device (writing the "
                                              "weights). Fix: check")


@pytest.mark.parametrize("command", [["report", "RUN"], ["trials", "RUN"], ["compare", "RUN", "RUN"]])
def test_an_out_that_is_a_folder_is_one_line_and_exit_2(command, tmp_path, capsys):
    """report, trials and compare wrote into it and failed with 'Is a directory ... check the disk' (exit 1)."""
    from searchlab.cli import main

    argv = [str(tmp_path / "nowhere") if part == "RUN" else part for part in command]
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(f"error: --out {tmp_path} is a folder. Fix: name the file to write")
