"""model.save writes its folder whole (a full disk or a Ctrl-C left an earlier save that load() refused, or a
half-written one that save() refused), `--out` through an anonymous pipe's /proc/self/fd/N and a Parquet table
onto a named pipe are written, and a run whose best/ holds fine-tuned weights says one thing about its export.
Saves into one folder at once (every DDP rank) lost the user's files there and left set-aside folders; a read-only
folder inside left each earlier save beside, a read-only save folder was replaced, and hidden folders of the
user's named like leftovers (.tuned.2024-01-05.old) were removed."""
from __future__ import annotations

import errno
import io
import json
import os
import pathlib
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap

import pandas as pd
import pytest
import torch

from searchlab.cli import main
from test_model_save_guards import STUDY, module_of   # source: a run and its export (tests/conftest.py)
from test_paths_and_writes import _read_in_a_thread, finished_run  # noqa: F401  (finished_run: a fixture)
from test_export_out_folder import NOGROUP, root_only
from test_trials_table import REPO


def _fail_at_config_json(monkeypatch, error: BaseException) -> None:
    """Writing a file named config.json raises `error` (a full disk, a Ctrl-C), by either way of writing it."""
    for name in ("write_text", "write_bytes"):
        original = getattr(pathlib.Path, name)

        def write(self, *args, _original=original, **kwargs):
            if self.name == "config.json":
                raise error
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(pathlib.Path, name, write)


def _files(folder: pathlib.Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk_full", "ctrl_c"])
def test_a_failed_save_leaves_the_earlier_save_whole_and_no_half_written_folder(source, tmp_path, monkeypatch,
                                                                                error):
    model = module_of(source / "run" / "best" / "model.py", f"model_whole_{type(error).__name__}")
    net, config = model.load(source / "run" / "best")
    tuned = model.save(net, config, tmp_path / "tuned")
    (tuned / "train.log").write_text("epoch 1\n")   # the user's own file beside the weights
    earlier = _files(tuned)
    with torch.no_grad():
        net.head[3].bias += 0.5   # the next epoch's weights
    _fail_at_config_json(monkeypatch, error)
    for folder in (tuned, tmp_path / "new"):
        with pytest.raises(type(error)):
            model.save(net, config, folder)
    monkeypatch.undo()
    assert _files(tuned) == earlier and model.load(tuned)[1]["weights_sha256"] != config["weights_sha256"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tuned"]   # no new folder, no hidden leftover
    model.save(net, config, tmp_path / "new")   # refused as someone's files when left half-written
    model.save(net, config, tuned)
    again, _ = model.load(tuned)
    assert torch.equal(again.head[3].bias, net.head[3].bias) and (tuned / "train.log").read_text() == "epoch 1\n"


def test_a_save_interrupted_between_its_renames_puts_the_earlier_folder_back(source, tmp_path, monkeypatch):
    model = module_of(source / "run" / "best" / "model.py", "model_rename")
    net, config = model.load(source / "run" / "best")
    tuned = model.save(net, config, tmp_path / "tuned")
    earlier = _files(tuned)
    rename, moved_in = pathlib.Path.rename, []

    def interrupted(self, target):
        if pathlib.Path(target) == tuned and not moved_in:   # the new folder moving in, the earlier one aside
            moved_in.append(self)
            raise KeyboardInterrupt
        return rename(self, target)
    monkeypatch.setattr(pathlib.Path, "rename", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model.save(net, config, tuned)
    monkeypatch.undo()
    assert moved_in and _files(tuned) == earlier and sorted(p.name for p in tmp_path.iterdir()) == ["tuned"]
    model.load(tuned)


def test_the_folder_of_a_save_killed_outright_is_removed_by_the_next_save(source, tmp_path):
    """A SIGKILL runs no cleanup: its new folder stays beside, hidden, until a save of that folder; a running
    process's (a save beside this one) is left alone."""
    model = module_of(source / "run" / "best" / "model.py", "model_leftover")
    net, config = model.load(source / "run" / "best")
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    killed, running = (tmp_path / f".tuned.{pid}-0123abcd.partial" for pid in (ended.pid, os.getpid()))
    for folder in (killed, running):
        folder.mkdir()
        (folder / "weights.safetensors").write_bytes(b"half")
    model.save(net, config, tmp_path / "tuned")
    assert not killed.exists() and running.exists()


def test_save_still_refuses_what_it_cannot_replace_whole(source, tmp_path, monkeypatch):
    """The folder this process works in (it would be left in a deleted folder) and a file."""
    model = module_of(source / "run" / "best" / "model.py", "model_refuse")
    net, config = model.load(source / "run" / "best")
    tuned = model.save(net, config, tmp_path / "tuned")
    monkeypatch.chdir(tuned)
    with pytest.raises(ValueError, match="is the folder this process works in .*Fix: save into a new folder"):
        model.save(net, config, ".")
    (tmp_path / "file").write_text("mine\n")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        model.save(net, config, tmp_path / "file")
    assert (tmp_path / "file").read_text() == "mine\n"
    model.save(net, config, tuned / "tuned")   # the fix the first error gives


def test_a_user_folder_named_like_a_leftover_is_not_removed(source, tmp_path):
    """Only names save() gives (.NAME.PID-8HEX.partial|old): 2024 and 20240105 were taken for dead pids."""
    model = module_of(source / "run" / "best" / "model.py", "model_leftover_names")
    net, config = model.load(source / "run" / "best")
    mine = [tmp_path / name for name in (".tuned.2024-01-05.old", ".tuned.20240105.old", ".tuned.2024.partial")]
    for folder in mine:
        folder.mkdir()
        (folder / "notes.txt").write_text("mine\n")
    model.save(net, config, tmp_path / "tuned")
    model.save(net, config, tmp_path / "tuned")   # the earlier save set aside beside them
    assert all((folder / "notes.txt").read_text() == "mine\n" for folder in mine)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["tuned", *(folder.name for folder in mine)])


SAVE_LOOP = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import model
    net, config = model.load(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()   # all at once
    for _ in range(int(sys.argv[3])):
        try:
            model.save(net, config, sys.argv[2])
            print("saved", flush=True)
        except OSError as error:
            print(error, flush=True)
""")


def test_saves_into_one_folder_from_several_processes_wait_for_each_other(source, tmp_path):
    """Every DDP rank calling save(): one save set aside the folder whose files another was carrying over (the
    user's notes lost), others failed saying 'the folder is as it was' (it had been replaced), .old folders left."""
    model = module_of(source / "run" / "best" / "model.py", "model_ranks")
    net, config = model.load(source / "run" / "best")
    tuned = model.save(net, config, tmp_path / "tuned")
    (tuned / "notes.txt").write_text("mine\n")
    command = [sys.executable, "-c", SAVE_LOOP, str(source / "run" / "best"), str(tuned), "25"]
    ranks = [subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    assert [rank.stdout.readline() for rank in ranks] == ["ready\n"] * 4
    for rank in ranks:
        rank.stdin.write("go\n")
        rank.stdin.flush()
    said = [line for rank in ranks for line in rank.communicate(timeout=120)[0].splitlines()]
    assert said == ["saved"] * 100
    assert (tuned / "notes.txt").read_text() == "mine\n" and sorted(p.name for p in tmp_path.iterdir()) == ["tuned"]
    model.load(tuned)


def test_a_save_whose_earlier_folder_cannot_be_put_back_says_where_it_is(source, tmp_path, monkeypatch):
    """Not 'the folder is as it was': it is set aside, under a hidden name."""
    model = module_of(source / "run" / "best" / "model.py", "model_put_back")
    net, config = model.load(source / "run" / "best")
    tuned = model.save(net, config, tmp_path / "tuned")
    earlier, rename = _files(tuned), pathlib.Path.rename

    def failing(self, target):
        if pathlib.Path(target) == tuned:   # the new folder moving in, and the earlier one back
            raise OSError(errno.EIO, "Input/output error")
        return rename(self, target)
    monkeypatch.setattr(pathlib.Path, "rename", failing)
    with pytest.raises(OSError, match="nothing was saved, the earlier save, set aside at .*could not be put back. "
                                      "Fix: rename it to") as raised:
        model.save(net, config, tuned)
    monkeypatch.undo()
    [aside] = tmp_path.iterdir()
    assert "as it was" not in str(raised.value) and str(aside) in str(raised.value) and _files(aside) == earlier


AS_NOBODY = textwrap.dedent("""
    import errno, fcntl, json, os, re, shutil, stat, sys, warnings   # read before root's files are out of reach
    sys.path.insert(0, sys.argv[1])
    import model
    net, config = model.load(sys.argv[1])
    os.setgroups([])
    os.setgid(int(sys.argv[3]))
    os.setuid(65534)
    said = []
    for make_read_only in (False, False, True):
        if make_read_only:
            os.chmod(sys.argv[2], 0o555)
        try:
            model.save(net, config, sys.argv[2])
            said.append("saved")
        except OSError as error:
            said.append(str(error))
    print(json.dumps(said))
""")


@root_only
def test_a_read_only_folder_inside_leaves_no_earlier_save_and_a_read_only_save_folder_is_refused(source):
    """As a user (uid 65534): rmtree could not empty the set-aside folder's copy of a read-only raw/, so each save
    left the one before beside it, hidden; a save folder made read-only was replaced (saved in place, it failed)."""
    home = pathlib.Path(tempfile.mkdtemp())   # not in tmp_path: its parents are root's alone
    try:
        shutil.copytree(source / "run" / "best", home / "export")
        (home / "tuned" / "raw" / "scans").mkdir(parents=True)
        (home / "tuned" / "raw" / "scans" / "a.png").write_bytes(b"png")
        for path in (home, *home.rglob("*")):
            os.chown(path, 65534, NOGROUP)
        for folder in (home / "tuned" / "raw" / "scans", home / "tuned" / "raw"):
            folder.chmod(0o555)
        command = [sys.executable, "-c", AS_NOBODY, str(home / "export"), str(home / "tuned"), str(NOGROUP)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        said = json.loads(done.stdout)
        assert said[:2] == ["saved", "saved"], done.stderr
        assert "is read-only for this user and save() would replace it: nothing was saved" in said[2]
        assert sorted(p.name for p in home.iterdir()) == ["export", "tuned"], done.stderr   # no hidden .old
        assert (home / "tuned" / "raw" / "scans" / "a.png").read_bytes() == b"png"
        assert stat.S_IMODE((home / "tuned" / "raw").stat().st_mode) == 0o555
    finally:
        shutil.rmtree(home)


def test_a_set_aside_folder_that_cannot_be_removed_is_warned_of(source, tmp_path, monkeypatch):
    model = module_of(source / "run" / "best" / "model.py", "model_warned")
    net, config = model.load(source / "run" / "best")
    tuned = model.save(net, config, tmp_path / "tuned")

    def cannot(folder):
        raise PermissionError(errno.EACCES, "Permission denied", str(folder))
    monkeypatch.setattr(model, "_remove_tree", cannot)
    with pytest.warns(RuntimeWarning, match=r"could not remove .*\.tuned\.\d+-[0-9a-f]{8}\.old.*Fix: remove it"):
        model.save(net, config, tuned)


def test_out_through_a_link_to_a_named_pipe_writes_the_pipe(finished_run, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "link.csv").symlink_to(fifo)
    reader, got = _read_in_a_thread(fifo)
    assert main(["trials", str(finished_run), "--out", str(tmp_path / "link.csv")]) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and (tmp_path / "link.csv").is_symlink()
    assert len(pd.read_csv(io.BytesIO(got[0]))) == 4


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_out_through_an_anonymous_pipe_writes_the_pipe(finished_run, fmt):
    """`--out /proc/self/fd/3 3> >(wc -c)`: the link's target, pipe:[N], is no path, and was followed."""
    read_end, write_end = os.pipe()
    command = [sys.executable, "-m", "searchlab.cli", "trials", str(finished_run), "--format", fmt,
               "--out", f"/proc/self/fd/{write_end}"]
    with subprocess.Popen(command, pass_fds=(write_end,), cwd=REPO, stderr=subprocess.PIPE, text=True) as child:
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            got = pipe.read()
        err = child.stderr.read()
    assert child.returncode == 0, err
    table = pd.read_csv(io.BytesIO(got)) if fmt == "csv" else pd.read_parquet(io.BytesIO(got))
    assert len(table) == 4


def test_a_parquet_table_onto_a_named_pipe_is_written(finished_run, tmp_path):
    """pyarrow seeks in its file: onto a pipe it failed with 'lseek failed'."""
    fifo = tmp_path / "trials.parquet"
    os.mkfifo(fifo)
    reader, got = _read_in_a_thread(fifo)
    assert main(["trials", str(finished_run), "--out", str(fifo)]) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and len(pd.read_parquet(io.BytesIO(got[0]))) == 4


def test_a_run_whose_best_holds_fine_tuned_weights_says_what_it_does_and_a_command_that_works(source, tmp_path,
                                                                                            capsys):
    """Nothing to run: 'exporting this study's best in its place', then 'export skipped'. A resumed run: the
    summary's export command lacked the note that best/ must be moved aside first, and failed when copied."""
    run = tmp_path / "run"
    shutil.copytree(source / "run", run)
    best = run / "best"
    model = module_of(best / "model.py", "model_messages")
    net, config = model.load(best)
    model.save(net, config, best, replace_export=True)
    study = tmp_path / "a.yaml"
    study.write_text(STUDY.format(name="a", weights="", seed=0, run=run, data=source / "set"))
    capsys.readouterr()
    assert main(["run", str(study), "--no-progress"]) == 0   # nothing to run: nothing failed (it exited 1)
    said = capsys.readouterr()
    assert "in its place" not in said.err and "which an export would replace: export skipped" in said.err
    assert f"(after moving {best} aside, or with another --out)" in said.err
    assert f"(after moving {best} aside, or with another --out)" in said.out
    assert main(["run", str(study), "--no-progress", "--set", "budget.n_trials=2"]) == 1   # one trial runs
    said = capsys.readouterr()
    [line] = [line for line in said.out.splitlines() if line.startswith("export:")]
    assert line.endswith(f"(after moving {best} aside, or with another --out)")
    best.rename(tmp_path / "tuned")   # as the note says; then the command, as printed
    assert main(shlex.split(line.removeprefix("export:").split(" (after moving")[0])[1:]) == 0
