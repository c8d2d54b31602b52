"""model.save writes its folder whole (a full disk or a Ctrl-C left an earlier save that load() refused, or a
half-written one that save() refused), `--out` through an anonymous pipe's /proc/self/fd/N and a Parquet table
onto a named pipe are written, and a run whose best/ holds fine-tuned weights says one thing about its export."""
from __future__ import annotations

import errno
import io
import os
import pathlib
import shlex
import shutil
import stat
import subprocess
import sys

import pandas as pd
import pytest
import torch

from searchlab.cli import main
from test_model_save_guards import STUDY, module_of, source  # noqa: F401  (source: a run and its export)
from test_paths_and_writes import _read_in_a_thread, finished_run  # noqa: F401  (finished_run: a fixture)
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
    assert main(["run", str(study), "--no-progress"]) == 1   # nothing to run
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
