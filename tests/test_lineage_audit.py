"""The weights lineage as the audit found it wanting: a run folder used as weights was read by its best trial now,
not the trial the trials started from; files were taken for the same by their first and last 8 KB (uncompressed
BMPs of alike borders) and counted as distinct digests; and a leak from an ancestor of the weights was blamed on
their own run, with a fix that could not work."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
from PIL import Image

from searchlab.config.schema import FolderData
from searchlab.data.fingerprint import sampled_digest
from searchlab.data.loading import files_by_split
from searchlab.engine.rundir import open_run
from searchlab.export import trained_on
from searchlab.export.export_notes import warn_about_export
from searchlab.export.exporter import export_run
from test_weights_lineage import image_set, run_and_export

OLD_DIGEST = "sha1 of size + first and last 8 KB, first 16 hex digits"   # as trained_on.json said before


def split_of(data: Path, seed: int) -> dict[str, list[Path]]:
    """A folder's splits as test_weights_lineage's studies deal them (fractions 0.2)."""
    cfg = FolderData(source="folder", path=data, image_size=8, val_fraction=0.2, test_fraction=0.2)
    return files_by_split(cfg, seed, None, ("train", "val", "test"))


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """a_best: an export of `first`; w: a run of `second` whose trial 0 started from a_best; w_best its export."""
    tmp = tmp_path_factory.mktemp("audit_chain")
    image_set(tmp / "first", 0), image_set(tmp / "second", 60)
    run_and_export(tmp, "a", tmp / "first", 0)
    run_and_export(tmp, "w", tmp / "second", 0, weights=tmp / "a_best")
    return tmp


def leaked(data: Path) -> int:
    """Test images of `data` split with seed 1 that a's run (seed 0) trained or selected on."""
    mine, a = split_of(data, 1), split_of(data, 0)
    return len(set(mine["test"]) & set(a["train"] + a["val"]))


def test_a_run_folder_as_weights_is_read_by_the_trial_the_trials_started_from(chain, tmp_path):
    """s started from the run w (its trial 0, which had started from a_best). Then w's best became another trial
    that started from nothing: s's export followed that one, said none of its test images had been seen, and
    wrote a trained_on.json without a_best's images."""
    config = run_and_export(tmp_path, "s", chain / "first", 1, weights=chain / "w")
    assert config["trial"]["weights_from"]["trial"] == 0
    study = open_run(chain / "w").study
    better = 2.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -2.0
    study.add_trial(optuna.trial.create_trial(params={}, distributions={}, value=better))   # best now: from scratch
    assert study.best_trial.number == 1   # (the other tests read w_best, not the run w)
    again = export_run(tmp_path / "s", tmp_path / "s_again", bootstrap=10)
    [seen] = again["test_images_seen_by_weights"]
    a_best = str((chain / "a_best").resolve())
    assert seen["weights"] == str(chain / "w") and seen["test_images"] == leaked(chain / "first") > 0
    assert seen["seen_by_ancestors"] == {a_best: seen["test_images"]}
    record = json.loads((tmp_path / "s_again" / "trained_on.json").read_text())
    assert record["inherited_from"] == [str(chain / "w")] and a_best in record["learned_by"]
    assert set(record["learned_by"][a_best]["train"]) == trained_on.read(chain / "a_best")["train"]


def test_a_leak_from_an_ancestor_names_it_and_a_fix_that_works(chain, tmp_path, capsys):
    """A study of `first` starting from w_best (trained on `second`, from a_best) was told w_best 'were trained or
    selected on' its test images 'in another split of the run that made them', and to split as w's study did:
    w never had those files; a_best (an ancestor) had."""
    capsys.readouterr()
    config = run_and_export(tmp_path, "c", chain / "first", 1, weights=chain / "w_best")
    err = " ".join(capsys.readouterr().err.split())
    a_best, n = str((chain / "a_best").resolve()), leaked(chain / "first")
    said = re.search(rf"space.model.weights '{re.escape(str(chain / 'w_best'))}' were trained or selected on "
                     r"(\d+) of its 6 test images.*?Fix: [^.]*", err)
    assert said and int(said[1]) == n, err
    assert "by models in their lineage (weights they started from, or a generator whose images they trained on: " \
        f"trained_on.json inherited_from), whose run learned them: {a_best} ({n} test" in said[0]
    assert " images, e.g. " in said[0]   # a test file is named, to find the images
    assert "keep those images out of this study's test and validation splits" in said[0]
    assert "another split of the run that made them" not in said[0] and "split this study as" not in said[0]
    [seen] = config["test_images_seen_by_weights"]
    assert seen["test_images"] == n and seen["seen_by_ancestors"] == {a_best: n}
    capsys.readouterr()
    warn_about_export(config)
    note = " ".join(capsys.readouterr().err.split())
    assert f"by the run of weights it started from (trained_on.json inherited_from): {a_best} ({n})" in note
    assert "Fix: keep those images out of the test split, or start from weights of other data" in note


def bmp_set(root: Path, seed: int) -> Path:
    """15 uncompressed 256x256 BMPs per class: the same black bands at the top and bottom (more than 8 KB each),
    noise between them, so that every file has the same size and first and last 8 KB."""
    rng = np.random.default_rng(seed)
    for cls, scale in (("a", 2), ("b", 1)):
        for i in range(15):
            img = np.zeros((256, 256), np.uint8)
            img[48:208, 16:240] = rng.integers(0, 255, (160, 224)) // scale
            (root / cls).mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / cls / f"{i}.bmp")
    return root


def test_bmps_alike_at_both_ends_are_not_taken_for_the_same_files(tmp_path, capsys):
    """A study of other BMPs starting from an export of these was warned its 1 of 1 test images had been seen
    (every file one digest); one of the same BMPs split otherwise was told the digests' count, not the files'."""
    run_and_export(tmp_path, "p", bmp_set(tmp_path / "bmp1", 1), 0)
    assert len({sampled_digest(path) for path in (tmp_path / "bmp1").rglob("*.bmp")}) == 1   # the audit's case
    assert len(json.loads((tmp_path / "p_best" / "trained_on.json").read_text())["train"]) == 18
    capsys.readouterr()
    run_and_export(tmp_path, "q", bmp_set(tmp_path / "bmp2", 2), 0, weights=tmp_path / "p_best")
    assert "were trained or selected on" not in capsys.readouterr().err
    run_and_export(tmp_path, "r", tmp_path / "bmp1", 1, weights=tmp_path / "p_best")
    err = " ".join(capsys.readouterr().err.split())
    assert f"were trained or selected on {leaked(tmp_path / 'bmp1')} of its 6 test images" in err


def test_copies_of_a_learned_image_count_as_test_images_each(chain, tmp_path):
    """Two copies of one image a_best trained on were one digest, so counted as one test image seen."""
    learned = split_of(chain / "first", 0)["train"][0]
    copies = [shutil.copy(learned, tmp_path / "x.png"), shutil.copy(learned, tmp_path / "y.png")]
    sha = json.loads((chain / "a_best" / "config.json").read_text())["weights_sha256"]
    config = {"trial": {"weights_from": {"export": str(chain / "a_best"), "sha256": sha}}}
    [seen] = trained_on.test_seen_by_weights(config, copies)
    assert seen["test_images"] == 2 and "seen_by_ancestors" not in seen


def test_a_record_of_the_older_digest_is_read_and_compared_by_it_along_a_chain(tmp_path):
    """A trained_on.json of before whole-file digests (e.g. copied by model.save) is still compared, by its own
    digest, and an export starting from it keeps it apart under learned_by."""
    image_set(tmp_path / "imgs", 0)
    old_file = next((tmp_path / "imgs" / "a").iterdir())
    old = tmp_path / "old"
    old.mkdir()
    (old / "trained_on.json").write_text(json.dumps({"digest": OLD_DIGEST, "train": [sampled_digest(old_file).hex()
                                                                                      [:16]], "val": []}))
    assert trained_on.read(old) == {"train": {sampled_digest(old_file).hex()[:16]}, "val": set()}
    own = {"digest": trained_on.DIGEST, "train": ["0123456789abcdef"], "val": []}
    merged = trained_on.with_ancestors(own, {"trial": {"weights_from": {"export": str(old)}}})
    assert merged["train"] == own["train"] and merged["learned_by"][str(old)]["digest"] == OLD_DIGEST
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "trained_on.json").write_text(json.dumps(merged))
    config = {"trial": {"weights_from": {"export": str(tmp_path / "new")}}}
    [seen] = trained_on.test_seen_by_weights(config, [old_file])
    assert seen["test_images"] == 1 and seen["seen_by_ancestors"] == {str(old): 1}
