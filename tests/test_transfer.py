"""Transfer learning: weights from a file, an export or a run; features / cut-off / full fine-tuning."""
from __future__ import annotations

import hashlib
import re

import optuna
import pytest
import torch
from optuna.trial import TrialState
from safetensors.torch import save_file

from searchlab.config.load import load_study
from searchlab.engine.run import run_study
from searchlab.errors import ConfigError
from searchlab.export.exporter import export_run
from searchlab.models.standalone import PlainCNN
from searchlab.tasks.classify_config import PlainCNNSpec
from searchlab.tasks.transfer import apply_transfer

SOURCE = """
name: source
task: classify
space:
  model: {kind: cnn, depth: 2, width: 8}
  train: {batch_size: 64}
strategy: random
pruner: none
budget: {n_trials: 1, epochs: 2}
"""


def target_study(weights: str, transfer: str, extra: str = "") -> str:
    return f"""
name: target
task: classify
space:
  model: {{kind: cnn, depth: 2, width: 8, weights: '{weights}', transfer: {transfer}{extra}}}
  train: {{batch_size: 64}}
strategy: random
pruner: none
budget: {{n_trials: 1, epochs: 2}}
"""


@pytest.fixture(scope="module")
def source_run(tmp_path_factory, breastmnist_root):
    tmp = tmp_path_factory.mktemp("source")
    (tmp / "s.yaml").write_text(SOURCE + f"data: {{source: medmnist, name: breastmnist, root: '{breastmnist_root}'}}\n"
                                f"run_dir: '{tmp / 'run'}'\n")
    run_study(load_study(tmp / "s.yaml"), progress=False)
    export_run(tmp / "run", tmp / "export", bootstrap=100)
    return tmp


def run_target(write_study, text: str) -> optuna.trial.FrozenTrial:
    study = run_study(load_study(write_study(text)), progress=False).study
    return study.trials[-1]


@pytest.mark.parametrize("transfer", ["features", "cutoff", "full"])
def test_transfer_from_an_export(write_study, source_run, transfer):
    trial = run_target(write_study, target_study(str(source_run / "export"), transfer))
    assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("error")
    assert 0 <= trial.value <= 1


def test_transfer_from_a_run_and_from_files(write_study, source_run, tmp_path):
    trial = run_target(write_study, target_study(str(source_run / "run"), "full"))
    assert trial.state == TrialState.COMPLETE
    best = optuna.load_study(study_name="source", storage=f"sqlite:///{source_run / 'run' / 'study.db'}").best_trial
    # a run's best trial may change while it goes on: each trial records which one it started from
    assert trial.user_attrs["weights_from"] == {"run": str(source_run / "run"), "study": "source",
                                                "trial": best.number}
    from searchlab.models.standalone import read_safetensors

    state = read_safetensors(source_run / "export" / "weights.safetensors")
    torch.save({"state_dict": state}, tmp_path / "w.pt")
    save_file(state, str(tmp_path / "w.safetensors"))
    for name in ("w.pt", "w.safetensors"):
        text = target_study(str(tmp_path / name), "cutoff").replace("name: target", f"name: t{name[2:4]}")
        trial = run_target(write_study, text)
        assert trial.state == TrialState.COMPLETE
        # which file, and which bytes: the export carries it (a path alone may name other weights later)
        digest = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
        assert trial.user_attrs["weights_from"] == {"file": str(tmp_path / name), "sha256": digest}
    from searchlab.engine.rundir import open_run
    from searchlab.export.exporter import trial_config

    run = open_run(tmp_path / "run")
    assert trial_config(run, run.study.trials[-1])["trial"]["weights_from"]["sha256"] == digest


def test_loaded_weights_and_freezing_are_real(source_run):
    from searchlab.models.standalone import read_safetensors

    state = read_safetensors(source_run / "export" / "weights.safetensors")
    for transfer, trainable_blocks in (("features", 0), ("cutoff", 1), ("full", 2)):
        net = PlainCNN(1, 2, depth=2, width=8)
        spec = PlainCNNSpec(depth=2, width=8, weights=str(source_run / "export"), transfer=transfer)
        groups = apply_transfer(net, spec, source_run)
        assert torch.equal(net.features[0].weight, state["features.0.weight"])      # loaded
        assert not torch.equal(net.head[3].weight, state["head.3.weight"])         # a new head
        frozen = [all(not p.requires_grad for _, p in block) for block in net.parameter_blocks()]
        assert frozen.count(False) == trainable_blocks
        if transfer == "full":
            scales = [g.get("lr_scale", 1.0) for g in groups]
            assert scales == [1.0, 1.0, 1.0]


def test_layer_decay_scales_lr_per_block(source_run):
    spec = PlainCNNSpec(depth=2, width=8, weights=str(source_run / "export"), transfer="full", layer_decay=0.5)
    groups = apply_transfer(PlainCNN(1, 2, depth=2, width=8), spec, source_run)
    assert [g["lr_scale"] for g in groups] == [0.25, 0.5, 1.0]


def test_a_run_whose_best_weights_are_gone_fails_the_trial_with_the_fix(write_study, tmp_path, breastmnist_root):
    data = f"data: {{source: medmnist, name: breastmnist, root: '{breastmnist_root}'}}\n"
    (tmp_path / "s.yaml").write_text(SOURCE + data + f"run_dir: '{tmp_path / 'src'}'\n")
    run_study(load_study(tmp_path / "s.yaml"), progress=False)
    for weights in (tmp_path / "src" / "artifacts").iterdir():
        weights.unlink()
    trial = run_target(write_study, target_study(str(tmp_path / "src"), "full"))
    assert trial.state == TrialState.FAIL
    error = trial.user_attrs["error"]
    assert error.startswith(f"TrialFailure: weights from run {tmp_path / 'src'}: the checkpoint of trial 0 ")
    assert "Or export the trial you want" in error


def test_a_checkpoint_that_does_not_fit_names_the_layers(write_study, source_run, tmp_path):
    """Refused before any trial (every trial would load the same misfit); what to make equal comes first: both
    architectures, read from the export's config.json."""
    text = target_study(str(source_run / "export"), "full").replace("width: 8,", "width: 16,")
    with pytest.raises(ConfigError) as info:
        run_target(write_study, text)
    error = str(info.value)
    assert info.value.key == "space.model.weights" and not (tmp_path / "run" / "study.db").exists()
    assert "do not fit this model (PlainCNN; this model: plain_cnn (depth=2, width=16," in error
    assert "; the weights' model: plain_cnn (depth=2, width=8," in error
    assert "features.0.weight: weights (8, 1, 3, 3), model (16, 1, 3, 3)" in error


def test_weights_of_a_deeper_network_are_refused_not_partly_loaded(write_study, source_run):
    text = target_study(str(source_run / "export"), "full").replace("depth: 2,", "depth: 1,")
    with pytest.raises(ConfigError, match=r"do not fit this model \(PlainCNN; .*\): not in this model: features\.7, "
                                          r"features\.8, features\.10, features\.11 \(12 tensors\)"):
        run_target(write_study, text)


def test_misfit_weights_under_a_cut_off_are_refused_however_many_networks_the_space_draws(write_study, source_run,
                                                                                          tmp_path):
    """The cut-off check builds every probed network first; the weights are still loaded into them (they were
    skipped once more than a few networks had been built, and every trial then failed on them)."""
    dropouts = ", ".join(str(d / 20) for d in range(10))   # 10 networks: every choice is probed
    text = target_study(str(source_run / "export"), "cutoff", f", cutoff: 1, dropout: {{choice: [{dropouts}]}}")
    text = text.replace("width: 8,", "width: 16,")   # the source is 8 wide: fits none of the networks
    with pytest.raises(ConfigError) as info:
        run_target(write_study, text)
    assert info.value.key == "space.model.weights" and "do not fit this model" in str(info.value)
    assert not (tmp_path / "run" / "study.db").exists()


def test_a_misfit_names_the_outermost_modules_the_other_side_lacks():
    """resnet50 weights into a resnet18: its blocks have a third conv, and layer3 has more blocks."""
    from searchlab.tasks.transfer import _modules

    extra = ["net.layer1.0.conv3.weight", "net.layer1.0.bn3.weight", "net.layer3.3.conv1.weight",
             "net.layer3.3.bn1.weight"]
    model = ["net.layer1.0.conv1.weight", "net.layer3.1.conv1.weight", "net.bn1.weight"]
    assert _modules(extra, model) == "layer1.0.bn3, layer1.0.conv3, layer3.3 (4 tensors)"
    assert _modules(["net.bn1.num_batches_tracked"], model) == "bn1.num_batches_tracked (1 tensors)"


def test_weights_that_fit_only_some_searched_networks_are_warned_about(write_study, source_run, capsys):
    """Width 8 or 16 with weights of width 8: the width-16 trials fail alone, which the run says at its start;
    weights under transfer: scratch are not used, which is said too."""
    text = target_study(str(source_run / "export"), "full").replace("width: 8,", "width: {choice: [8, 16]},")
    run_target(write_study, text.replace("n_trials: 1", "n_trials: 2"))
    err = capsys.readouterr().err
    assert "fit plain_cnn (depth=2, width=8, " in err and "but not plain_cnn (depth=2, width=16, " in err
    run_target(write_study, target_study(str(source_run / "export"), "scratch").replace("name: target", "name: t2"))
    assert "space.model.weights" in capsys.readouterr().err


def test_cutoff_beyond_the_depth(write_study, source_run, tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"space.model.cutoff: cut-off block 5 \(the smallest this space draws\) "
                                          r"is beyond the depth of the plain_cnn \(depth=2, .*\) network, which has 2 blocks "
                                          r"\(got 5\). Fix: use cut-offs from 1 to 2"):
        run_target(write_study, target_study(str(source_run / "export"), "cutoff", ", cutoff: 5"))
    with pytest.raises(ConfigError, match=r"cut-off block 3 \(the smallest this space draws\)"):
        run_target(write_study, target_study(str(source_run / "export"), "cutoff", ", cutoff: {int: [3, 6]}"))
    assert not (tmp_path / "run" / "study.db").exists()                      # refused before any trial
    searched = target_study(str(source_run / "export"), "cutoff", ", cutoff: {int: [1, 5]}").replace(
        "n_trials: 1", "n_trials: 6")                                          # some cut-offs fit: trials decide
    study = run_study(load_study(write_study(searched)), progress=False).study
    assert ("warning: space.model.cutoff: some drawn cut-offs are beyond their network's depth (e.g. 5 on plain_cnn "
            "(depth=2, ") in capsys.readouterr().err
    for trial in study.trials:
        assert (trial.state == TrialState.FAIL) == (trial.params["model.cutoff"] > 2)
        if trial.state == TrialState.FAIL:
            assert "beyond the depth of PlainCNN: it has 2 blocks" in trial.user_attrs["error"]


def test_weights_that_do_not_exist_stop_the_run_before_any_trial(write_study, source_run, tmp_path):
    text = target_study("x", "full").replace("weights: 'x'", f"weights: {{choice: ['{source_run / 'export'}', gone]}}")
    with pytest.raises(ConfigError, match=r"space.model.weights: .*gone does not exist \(got 'gone'\)"):
        run_study(load_study(write_study(text)), progress=False)
    assert not (tmp_path / "run" / "study.db").exists()


def test_weights_that_cannot_be_read_stop_the_run_before_any_trial(write_study, tmp_path):
    torch.save(torch.nn.Linear(2, 2), tmp_path / "whole_model.pth")   # a pickled module, not a state dict
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "scan.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))   # not a checkpoint at all
    for weights, message in (("whole_model.pth", "holds a pickled object"),
                             ("scan.png", r"is not a torch checkpoint \(.pt/.pth from torch.save\) or a "
                                          r".safetensors file: an image, text or other file\?"),
                             ("checkpoints", "is a folder but neither an export")):
        with pytest.raises(ConfigError, match=f"space.model.weights: .*{message}") as info:
            run_study(load_study(write_study(target_study(str(tmp_path / weights), "full"))), progress=False)
        assert "\x1b[" not in str(info.value) and info.value.line is not None
    assert not (tmp_path / "run" / "study.db").exists()


def test_transfer_needs_weights(write_study):
    with pytest.raises(ConfigError, match="needs weights"):
        load_study(write_study("name: s\nspace:\n  model: {kind: cnn, transfer: features}\n"))
    with pytest.raises(ConfigError, match="needs weights"):   # `none`, as the README writes it, is no weights
        load_study(write_study("name: s\nspace:\n  model: {kind: cnn, weights: none, transfer: features}\n"))
    load_study(write_study("name: s\nspace:\n  model: {kind: cnn, weights: none}\nbudget: {n_trials: 1}\n"))


def test_offline_timm_hub_weights_fail_with_the_fix(write_study):
    text = target_study("timm", "features").replace("kind: cnn, depth: 2, width: 8,",
                                                    "kind: timm, backbone: mobilenetv3_small_050,")
    trial = run_target(write_study, text)
    if trial.state == TrialState.COMPLETE:
        pytest.skip("this machine reached the hub: the online path worked")
    error = trial.user_attrs["error"]
    assert "timm could not fetch pretrained weights for 'mobilenetv3_small_050'" in error and "save_file" in error


def test_an_unreachable_hub_is_found_in_seconds_not_after_a_minute_of_retries(monkeypatch):
    import socket
    import time

    from searchlab.tasks.transfer import hub_unreachable

    with socket.socket() as server:                  # a port nothing listens on: bound, never listening
        server.bind(("127.0.0.1", 0))
        closed = server.getsockname()[1]
        for name in ("HF_HUB_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")
        hub_unreachable.cache_clear()
        started = time.monotonic()
        assert hub_unreachable().startswith(f"cannot reach 127.0.0.1:{closed}: ")
        assert time.monotonic() - started < 5
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        hub_unreachable.cache_clear()
        assert hub_unreachable() is None
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")
    for name, value in (("HF_HUB_OFFLINE", "1"), ("HTTPS_PROXY", "http://proxy:3128")):   # timm's own way
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            hub_unreachable.cache_clear()
            assert hub_unreachable() is None
    hub_unreachable.cache_clear()


def test_an_rgb_timm_state_dict_loads_into_a_grayscale_backbone_with_the_same_features(tmp_path):
    """The offline route for hub weights: timm's own state dict saved to a file. A 1-channel copy must
    see a gray image as the RGB original sees that image repeated over its 3 channels."""
    import timm

    from searchlab.models.timm_backbone import TimmClassifier
    from searchlab.tasks.classify_config import TimmSpec

    torch.manual_seed(0)
    rgb = timm.create_model("resnet10t", pretrained=False, num_classes=1000).eval()
    save_file({k: v.contiguous() for k, v in rgb.state_dict().items()}, str(tmp_path / "resnet10t.safetensors"))
    gray = TimmClassifier(1, 2, "resnet10t").eval()
    spec = TimmSpec(kind="timm", backbone="resnet10t", weights="resnet10t.safetensors", transfer="features")
    apply_transfer(gray, spec, tmp_path)
    image = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        expected = rgb.forward_head(rgb.forward_features(image.repeat(1, 3, 1, 1)), pre_logits=True)
        assert torch.allclose(gray.embed(image), expected, atol=1e-5)


def test_checkpoint_files_as_users_have_them_load_or_say_what_to_save(tmp_path):
    from searchlab.errors import TrialFailure
    from searchlab.models.timm_backbone import TimmClassifier
    from searchlab.tasks.classify_config import TimmSpec
    from searchlab.tasks.transfer import source_state

    model = TimmClassifier(1, 2, "resnet10t")
    state = {k: v.contiguous() for k, v in model.net.state_dict().items()}
    save_file({f"module.{k}": v for k, v in state.items()}, str(tmp_path / "dp.safetensors"))   # DataParallel's

    def read(weights: str):
        spec = TimmSpec(kind="timm", backbone="resnet10t", weights=weights, transfer="full")
        return source_state(spec, model, tmp_path)

    assert read("dp.safetensors").keys() == {f"net.{k}" for k in state}
    (tmp_path / "cut.safetensors").write_bytes((tmp_path / "dp.safetensors").read_bytes()[:1000])
    with pytest.raises(TrialFailure, match=r"cannot read weights file .*cut.safetensors .*truncated or damaged"):
        read("cut.safetensors")
    (tmp_path / "checkpoints").mkdir()
    with pytest.raises(TrialFailure, match="is a folder but neither an export .* nor a run"):
        read("checkpoints")


def test_weights_trained_on_this_studys_test_images_are_warned_of(write_study, tmp_path, capsys):
    """Warm-starting from an export of the same folder split with another seed: 21 of 24 test images had been
    the weights' training images, and nothing said so."""
    from test_data import COLORS, png

    for cls in ("a", "b"):
        for i in range(15):
            png(tmp_path / "set" / cls / f"{i}.png", tuple(min(255, c + i) for c in COLORS[cls]))
    study = ("name: {name}\nspace:\n  model: {{kind: cnn, depth: 1, width: 4{weights}}}\nstrategy: random\n"
             "pruner: none\nbudget: {{n_trials: 1, epochs: 1}}\nseed: {seed}\nrun_dir: '{run}'\n"
             f"data: {{{{source: folder, path: '{tmp_path / 'set'}', image_size: 8, val_fraction: 0.2, "
             "test_fraction: 0.2}}\n")
    run_study(load_study(write_study(study.format(name="a", weights="", seed=0, run=tmp_path / "a"))), progress=False)
    export_run(tmp_path / "a", tmp_path / "a_best", bootstrap=10)
    assert (tmp_path / "a_best" / "trained_on.json").is_file()
    capsys.readouterr()
    for source in ("a_best", "a"):   # an export, and the run folder itself
        weights = f", transfer: full, weights: '{tmp_path / source}'"
        text = study.format(name=f"b{source}", weights=weights, seed=1, run=tmp_path / f"b{source}")
        run_study(load_study(write_study(text)), progress=False)
        err = capsys.readouterr().err
        assert f"space.model.weights '{tmp_path / source}' were trained or selected on " in err
        assert re.search(r"\d+ of its 6 test images", err) and "Test metrics of this study's exports" in err
        # splitting alike cannot move copies that sit in another data set's own split folders
        assert "where the files are copies in another data set, keep them out of this study's test and" in err
    config = export_run(tmp_path / "ba", tmp_path / "ba_export", bootstrap=10)   # the export says so too
    [seen] = config["test_images_seen_by_weights"]
    assert seen["weights"] == str(tmp_path / "a") and 1 <= seen["test_images"] <= 6
    from searchlab.export.export_notes import warn_about_export

    capsys.readouterr()
    warn_about_export(config)
    assert f"test images were trained or selected on by the run of the weights these trials started from " \
           f"({tmp_path / 'a'}): the test metrics are optimistic. Fix: split as that study did, or where the files " \
           "are copies in another data set, keep them out of the test split" in capsys.readouterr().err
    same = study.format(name="c", weights=f", transfer: full, weights: '{tmp_path / 'a_best'}'", seed=0,
                        run=tmp_path / "c")
    run_study(load_study(write_study(same)), progress=False)   # split as the weights' study was: nothing seen
    assert "were trained or selected on" not in capsys.readouterr().err


def test_a_run_folder_with_no_completed_trial_and_none_running_is_refused_as_weights(write_study, tmp_path):
    """Every trial failed with "has no completed trial to export yet" until max_failed stopped the run."""
    import sqlite3

    from test_data import COLORS, png

    for cls in ("a", "b"):
        for i in range(10):
            png(tmp_path / "set" / cls / f"{i}.png", tuple(min(255, c + i) for c in COLORS[cls]))
    study = ("name: {name}\nspace:\n  model: {{kind: cnn, depth: 1, width: 4{weights}}}\nstrategy: random\n"
             "pruner: none\nbudget: {{n_trials: 1, epochs: 1}}\nrun_dir: '{run}'\n"
             f"data: {{{{source: folder, path: '{tmp_path / 'set'}', image_size: 8}}}}\n")
    run_study(load_study(write_study(study.format(name="a", weights="", run=tmp_path / "a"))), progress=False)
    with sqlite3.connect(tmp_path / "a" / "study.db") as db:   # as a run whose trials all failed leaves it
        db.execute("UPDATE trials SET state = 'FAIL'")
    weights = f", transfer: full, weights: '{tmp_path / 'a'}'"
    with pytest.raises(ConfigError) as exc:
        run_study(load_study(write_study(study.format(name="b", weights=weights, run=tmp_path / "b"))),
                  progress=False)
    said = str(exc.value)
    assert f"run {tmp_path / 'a'} (study 'a') has no completed trial, and none running" in said
    assert "space.model.weights" in said and "Fix: run that study until a trial completes" in said
    assert not (tmp_path / "b" / "study.db").exists() or not optuna.load_study(
        study_name="b", storage=f"sqlite:///{tmp_path / 'b' / 'study.db'}").trials


def test_an_ensemble_export_as_weights_is_refused_with_its_own_fix(write_study, tmp_path):
    """A --top-k export given as weights was refused at start with the fix for another architecture ("weights of
    the same architecture and settings..."), though no architecture fits an ensemble: export one trial."""
    from test_data import COLORS, png

    for cls in ("a", "b"):
        for i in range(10):
            png(tmp_path / "set" / cls / f"{i}.png", tuple(min(255, c + i) for c in COLORS[cls]))
    study = ("name: {name}\nspace:\n  model: {{kind: cnn, depth: 1, width: {{choice: [4, 6]}}{weights}}}\n"
             "strategy: random\n"
             "pruner: none\nbudget: {{n_trials: 2, epochs: 1}}\nrun_dir: '{run}'\n"
             f"data: {{{{source: folder, path: '{tmp_path / 'set'}', image_size: 8}}}}\n")
    run_study(load_study(write_study(study.format(name="a", weights="", run=tmp_path / "a"))), progress=False)
    export_run(tmp_path / "a", tmp_path / "pair", top_k=2, bootstrap=10)
    weights = f", transfer: full, weights: '{tmp_path / 'pair'}'"
    with pytest.raises(ConfigError) as exc:
        run_study(load_study(write_study(study.format(name="b", weights=weights, run=tmp_path / "b"))),
                  progress=False)
    said = str(exc.value)
    assert "are an ensemble of 2 networks" in said and "space.model.weights" in said
    assert "Fix: export one trial (searchlab export RUN --trial N)" in said and "same architecture" not in said
