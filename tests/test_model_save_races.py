"""model.save swaps a new folder in for the earlier one: files written into the folder between the carry-over of
its other files and the swap (a training loop's epoch file, a log another process replaced by renaming, a log
appended to where hard links are not to be had) were deleted with the earlier folder, set aside. As root, a
folder made read-only (chmod a-w) was replaced, since os.access says root may write anything. A user saving into
another user's folder was told to chmod u+w it, which only its owner may."""
from __future__ import annotations

import os
import pathlib
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap

import pytest
import torch

from test_export_out_folder import NOGROUP, root_only
from test_model_save_guards import module_of   # source: a run and its export (tests/conftest.py)


def _write_during_the_save(model, monkeypatch, tuned, write_before, write_after=lambda: None) -> None:
    """`write_before` runs once the files were carried over into the new folder, just before it is swapped in;
    `write_after` just after the swap, before the earlier folder is looked at and removed."""
    swap_in = model._swap_in

    def writing(staging, out_dir, old):
        if out_dir == tuned:
            write_before()
        swapped = swap_in(staging, out_dir, old)
        if out_dir == tuned:
            write_after()
        return swapped
    monkeypatch.setattr(model, "_swap_in", writing)


def _no_hard_links(*args, **kwargs):
    raise OSError(95, "Operation not supported")   # os.link on a file system without hard links


def _replace_by_rename(path, text) -> None:
    path.with_name(path.name + ".tmp").write_text(text)
    os.replace(path.with_name(path.name + ".tmp"), path)


@pytest.mark.parametrize("hard_links", [True, False], ids=["hard_links", "copies"])
def test_files_written_in_the_folder_while_it_is_saved_are_kept(source, tmp_path, monkeypatch, hard_links):
    model = module_of(source / "run" / "best" / "model.py", f"model_races_{hard_links}")
    net, config = model.load(source / "run" / "best")
    tuned = model.save(net, config, tmp_path / "tuned")
    (tuned / "logs").mkdir()
    for name in ("train.log", "notes.txt", "kept.txt", "both.txt", "logs/a.txt"):
        (tuned / name).write_text("before\n")
    if not hard_links:   # a file system without them: the files are carried over as copies
        monkeypatch.setattr(os, "link", _no_hard_links)

    def during():   # a training loop's writer, another process, writing by path into the earlier folder
        (tuned / "epoch_7.txt").write_text("7")
        (tuned / "logs" / "b.txt").write_text("b")
        (tuned / "new_logs").mkdir()
        (tuned / "new_logs" / "c.txt").write_text("c")
        with open(tuned / "train.log", "a") as log:
            log.write("during\n")
        _replace_by_rename(tuned / "notes.txt", "replaced during\n")
        _replace_by_rename(tuned / "both.txt", "replaced during\n")
        (tuned / "config.json").write_text("{}")   # save()'s own files stay the new ones

    def after():   # written in the new folder after the swap: newer than the earlier folder's copy
        _replace_by_rename(tuned / "kept.txt", "replaced after\n")
        _replace_by_rename(tuned / "both.txt", "replaced after\n")
    _write_during_the_save(model, monkeypatch, tuned, during, after)
    with torch.no_grad():
        net.head[3].bias += 0.5
    model.save(net, config, tuned)
    monkeypatch.undo()
    assert (tuned / "epoch_7.txt").read_text() == "7"
    assert (tuned / "logs" / "b.txt").read_text() == "b" and (tuned / "logs" / "a.txt").read_text() == "before\n"
    assert (tuned / "new_logs" / "c.txt").read_text() == "c"
    assert (tuned / "train.log").read_text() == "before\nduring\n"
    assert (tuned / "notes.txt").read_text() == "replaced during\n"
    assert (tuned / "kept.txt").read_text() == (tuned / "both.txt").read_text() == "replaced after\n"
    again, saved = model.load(tuned)   # the new config.json and weights
    assert torch.equal(again.head[3].bias, net.head[3].bias) and "fine_tuned_from" in saved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tuned"]   # the earlier folder removed


def test_files_that_could_not_be_moved_in_keep_the_earlier_folder_and_are_warned_of(source, tmp_path, monkeypatch):
    model = module_of(source / "run" / "best" / "model.py", "model_races_kept")
    net, config = model.load(source / "run" / "best")
    tuned = model.save(net, config, tmp_path / "tuned")
    _write_during_the_save(model, monkeypatch, tuned, lambda: (tuned / "epoch_7.txt").write_text("7"))

    def cannot(*args):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(model, "_merge_set_aside", cannot)
    with pytest.warns(RuntimeWarning, match=r"saved .*tuned, but could not move into it the files written in the "
                                            r"earlier folder while it saved .*: that folder is kept, at .*\.old\. "
                                            r"Fix: move them into .*tuned, then remove it"):
        model.save(net, config, tuned)
    [kept] = [path for path in tmp_path.iterdir() if path.name.endswith(".old")]
    assert (kept / "epoch_7.txt").read_text() == "7" and not (tuned / "epoch_7.txt").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="os.access lies only to root")
def test_a_folder_made_read_only_is_refused_as_root(source, tmp_path):
    model = module_of(source / "run" / "best" / "model.py", "model_races_read_only")
    net, config = model.load(source / "run" / "best")
    tuned = model.save(net, config, tmp_path / "tuned")
    (tuned / "notes.txt").write_text("mine\n")
    earlier = {path.name: path.read_bytes() for path in tuned.iterdir()}
    tuned.chmod(0o555)   # chmod a-w
    try:
        with torch.no_grad():
            net.head[3].bias += 0.5
        with pytest.raises(PermissionError, match=r"tuned is read-only \(mode 0o555, no write bit\) and save\(\) "
                                                  r"would replace it: nothing was saved\. Fix: make it writable "
                                                  r"\(chmod u\+w\) to save there, or save into a new folder"):
            model.save(net, config, tuned)
        assert {path.name: path.read_bytes() for path in tuned.iterdir()} == earlier
        assert stat.S_IMODE(tuned.stat().st_mode) == 0o555
    finally:
        tuned.chmod(0o755)


AS_NOBODY = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, sys.argv[1])
    import model
    net, config = model.load(sys.argv[1])
    model.save(net, config, sys.argv[2])   # as root: root's folder
    os.setgroups([])
    os.setgid(int(sys.argv[3]))
    os.setuid(65534)
    try:
        model.save(net, config, sys.argv[2])
        print("saved")
    except PermissionError as error:
        print(error)
""")


@root_only
def test_a_folder_of_another_user_is_refused_with_a_fix_this_user_can_apply(source):
    home = pathlib.Path(tempfile.mkdtemp())   # not in tmp_path: its parents are root's alone
    try:
        shutil.copytree(source / "run" / "best", home / "export")
        os.chown(home, 65534, NOGROUP)   # the lock file goes beside the folder: this user may write there
        command = [sys.executable, "-c", AS_NOBODY, str(home / "export"), str(home / "tuned"), str(NOGROUP)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        said = done.stdout.strip()
        assert "tuned is read-only for this user and save() would replace it: nothing was saved." in said, done.stderr
        assert "Fix: ask its owner to make it writable, or save into a new folder of yours, e.g." in said
        assert "chmod" not in said and (home / "tuned").stat().st_uid == 0   # root's save, as it was
    finally:
        shutil.rmtree(home)
