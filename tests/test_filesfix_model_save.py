"""Audit verify54, item 7: model.save carries the folder's other files into the new folder and merges in those
written while it saves, but files deleted from the folder meanwhile came back (a keep-last-K loop deleting
ckpt_1.pt while an epoch was saved found it there again)."""
from __future__ import annotations

import os
import shutil

import pytest

from test_model_save_guards import module_of   # source: a run and its export (tests/conftest.py)
from test_model_save_races import _no_hard_links, _write_during_the_save


@pytest.mark.parametrize("hard_links", [True, False], ids=["hard_links", "copies"])
def test_files_deleted_from_the_folder_while_it_is_saved_stay_deleted(source, tmp_path, monkeypatch,  # noqa: F811
                                                                        hard_links):
    model = module_of(source / "run" / "best" / "model.py", f"model_deleted_{hard_links}")
    net, config = model.load(source / "run" / "best")
    tuned = model.save(net, config, tmp_path / "tuned")
    (tuned / "old_logs" / "deep").mkdir(parents=True)
    (tuned / "logs").mkdir()
    for name in ("ckpt_1.pt", "ckpt_2.pt", "renamed.pt", "again.pt", "rewritten.pt", "inplace.pt",
                 "old_logs/deep/a.txt", "old_logs/b.txt", "logs/gone.txt", "logs/kept.txt"):
        (tuned / name).write_text("before\n")
    if not hard_links:   # a file system without them: the files are carried over as copies
        monkeypatch.setattr(os, "link", _no_hard_links)

    def during():   # a keep-last-K loop, another process, deleting by path in the earlier folder
        (tuned / "ckpt_1.pt").unlink()
        (tuned / "ckpt_3.pt").write_text("3")
        os.rename(tuned / "renamed.pt", tuned / "best.pt")
        (tuned / "again.pt").unlink()
        (tuned / "again.pt").write_text("written again\n")
        (tuned / "rewritten.pt").unlink()
        (tuned / "inplace.pt").write_text("written in place, through the new folder's hard link too\n")
        (tuned / "inplace.pt").unlink()   # then deleted: it came back, its link's state having moved
        shutil.rmtree(tuned / "old_logs")
        (tuned / "logs" / "gone.txt").unlink()

    def after():   # written anew in the new folder after the swap: kept, though deleted in the earlier one
        (tuned / "rewritten.pt").write_text("after the swap\n")
    _write_during_the_save(model, monkeypatch, tuned, during, after)
    model.save(net, config, tuned)
    monkeypatch.undo()
    assert sorted(p.name for p in tuned.iterdir()) == [
        "again.pt", "best.pt", "ckpt_2.pt", "ckpt_3.pt", "config.json", "logs", "model.py", "rewritten.pt",
        "trained_on.json", "weights.safetensors"]
    assert sorted(p.name for p in (tuned / "logs").iterdir()) == ["kept.txt"]
    assert (tuned / "again.pt").read_text() == "written again\n" and (tuned / "best.pt").read_text() == "before\n"
    assert (tuned / "rewritten.pt").read_text() == "after the swap\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tuned"]   # the earlier folder removed
    model.load(tuned)


def test_a_file_deleted_while_it_is_carried_over_is_left_out_not_a_failed_save(source, tmp_path,  # noqa: F811
                                                                               monkeypatch):
    """A keep-last-K loop deleting a checkpoint between the folder's listing and its copy failed the save:
    "No such file or directory; nothing was saved", naming no file."""
    model = module_of(source / "run" / "best" / "model.py", "model_vanishing")
    net, config = model.load(source / "run" / "best")
    tuned = model.save(net, config, tmp_path / "tuned")
    (tuned / "vanishing.pt").write_text("deleted meanwhile\n")
    state = model._state

    def deleted_first(path):
        if str(path) == str(tuned / "vanishing.pt") and os.path.exists(path):
            os.unlink(path)   # gone after the folder was listed, before it was looked at
        return state(path)
    monkeypatch.setattr(model, "_state", deleted_first)
    model.save(net, config, tuned)
    monkeypatch.undo()
    assert not (tuned / "vanishing.pt").exists() and (tuned / "weights.safetensors").is_file()
