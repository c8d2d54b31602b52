"""Files written whole or not at all (`report --out`, `trials --out` on a full disk), an --out under a file,
`~` in a journal storage URL, and folder data sets as other machines leave them: class and patient names in
decomposed Unicode (macOS), system folders (__MACOSX, @eaDir), empty image files (small generated PNGs)."""
from __future__ import annotations

import errno
import json
import unicodedata
from pathlib import Path

import pandas as pd
import pytest

from searchlab.cli import main
from searchlab.config.load import load_study
from searchlab.config.schema import FolderData
from searchlab.data import load_dataset
from searchlab.data.folder_source import patients_in_two_split_folders, plan_folder, visible_files
from searchlab.engine.run import run_study
from searchlab.errors import DataError
from test_data import COLORS, _fresh_cache, png  # noqa: F401  (_fresh_cache: autouse fixture)
from test_run import callable_study

NFC, NFD = unicodedata.normalize("NFC", "bénin"), unicodedata.normalize("NFD", "bénin")
GOOD = "the good file of an earlier run\n"


@pytest.fixture()
def finished_run(write_study, tmp_path):
    """Four trials of a fake task (no data, no training)."""
    run_study(load_study(callable_study(write_study, fn="fails_when_positive", n=4)), progress=False)
    return tmp_path / "run"


def _disk_full_after_half(monkeypatch, owner, name: str) -> None:
    """`owner.name(target, ...)` writes the start of a file to its target, then fails as on a full disk."""
    def write(self_or_target, *args, **kwargs):
        target = args[0] if isinstance(self_or_target, pd.DataFrame) else self_or_target
        Path(target).write_bytes(b"number,state,va")
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(owner, name, write)


def _only(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("fmt, owner, name", [("csv", pd.DataFrame, "to_csv"), ("json", Path, "write_text"),
                                              ("parquet", pd.DataFrame, "to_parquet")])
def test_a_full_disk_while_writing_the_trial_table_leaves_the_earlier_file_and_no_partial_one(
        finished_run, tmp_path, monkeypatch, capsys, fmt, owner, name):
    out = tmp_path / "tables" / f"trials.{fmt}"
    out.parent.mkdir()
    out.write_text(GOOD)
    _disk_full_after_half(monkeypatch, owner, name)
    assert main(["trials", str(finished_run), "--out", str(out)]) == 1
    assert out.read_text() == GOOD and _only(out.parent) == [out.name]
    err = capsys.readouterr().err
    assert err.startswith(f"error: {out}: No space left on device. Fix: ") and "disk has space" in err


def test_a_full_disk_while_writing_the_report_leaves_the_earlier_report_and_no_partial_file(
        finished_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("searchlab.report.build.report_html", lambda run, top, *rest: "<html>" + "x" * 100_000)
    out = tmp_path / "pages" / "report.html"
    out.parent.mkdir()
    out.write_text(GOOD)
    _disk_full_after_half(monkeypatch, Path, "write_text")
    assert main(["report", str(finished_run), "--out", str(out)]) == 1
    assert out.read_text() == GOOD and _only(out.parent) == ["report.html"]
    assert capsys.readouterr().err.startswith(f"error: {out}: No space left on device. Fix: ")


def test_a_table_written_again_replaces_the_file_whole_keeping_its_mode_and_a_link_named_as_out(finished_run, tmp_path):
    out = tmp_path / "t.json"
    out.write_text(GOOD)
    out.chmod(0o640)
    link = tmp_path / "latest.json"
    link.symlink_to(out)
    assert main(["trials", str(finished_run), "--out", str(link)]) == 0
    assert link.is_symlink() and len(json.loads(out.read_text())) == 4
    assert out.stat().st_mode & 0o777 == 0o640 and not [p for p in _only(tmp_path) if "partial" in p]


@pytest.mark.parametrize("command, name", [("trials", "t.csv"), ("report", "r.html")])
def test_an_out_path_under_a_file_says_the_file_is_not_a_folder(finished_run, tmp_path, capsys, command, name):
    blocker = tmp_path / "afile"
    blocker.write_text("notes")
    for out in (blocker / name, blocker / "deeper" / name):   # mkdir said "File exists", then "Not a directory"
        assert main([command, str(finished_run), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {blocker}: is a file, not a folder, so --out {out} cannot be written")
        assert f"Fix: name a file in a folder (e.g. --out {tmp_path / name})" in err
    assert blocker.read_text() == "notes"


def test_a_journal_storage_in_the_home_folder_is_expanded_as_a_sqlite_one_is(write_study, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    study = load_study(callable_study(write_study, extra="storage: journal:///~/j.log\n"))
    assert study.storage_url == f"journal://{tmp_path / 'home' / 'j.log'}"
    study = load_study(callable_study(write_study, extra="storage: sqlite:///~/x.db\n"))
    assert study.storage_url == f"sqlite:///{tmp_path / 'home' / 'x.db'}"
    study = load_study(callable_study(write_study, extra=f"storage: journal://{tmp_path}/~/j.log\n"))
    assert study.storage_url == f"journal://{tmp_path}/~/j.log"   # a folder named ~ further down is the user's


def _classes(root: Path, names: dict[str, str], n: int = 3) -> None:
    """`n` images in root/<folder name>/, coloured by the class letter each folder name maps to."""
    for folder, letter in names.items():
        for i in range(n):
            png(root / folder / f"{i}.png", COLORS[letter])


def test_a_split_folder_copied_on_a_mac_spells_its_class_names_decomposed_and_they_are_the_same_classes(tmp_path):
    _classes(tmp_path / "set" / "train", {NFC: "a", "malin": "b"})
    _classes(tmp_path / "set" / "val", {NFD: "a", "malin": "b"})
    plan = plan_folder(FolderData(source="folder", path=tmp_path / "set"))
    assert plan.classes == (NFC, "malin")
    assert [p.parent.name == NFD for p in plan.files["val"]] == [label == 0 for label in plan.labels["val"]]


def test_a_class_read_in_both_spellings_is_refused_naming_both_folders(tmp_path):
    _classes(tmp_path / "set" / "train", {NFC: "a", NFD: "a", "malin": "b"})
    with pytest.raises(DataError, match="one name, 'bénin', in two Unicode spellings") as info:
        plan_folder(FolderData(source="folder", path=tmp_path / "set"))
    assert str(tmp_path / "set" / "train" / NFC) in str(info.value)
    assert str(tmp_path / "set" / "train" / NFD) in str(info.value)


def test_patient_folders_of_one_name_in_two_spellings_are_one_patient(tmp_path):
    for cls, spelt in (("a", unicodedata.normalize("NFC", "pé")), ("b", unicodedata.normalize("NFD", "pé"))):
        for i in range(3):
            png(tmp_path / "set" / cls / spelt / f"{i}.png", COLORS[cls])
        for patient in range(6):
            png(tmp_path / "set" / cls / f"p{patient}" / "0.png", COLORS[cls])
    plan = plan_folder(FolderData(source="folder", path=tmp_path / "set", val_fraction=0.3))
    groups = {group for split in plan.groups for path, group in zip(plan.files[split], plan.groups[split])
              if unicodedata.normalize("NFC", path.parent.name) == "pé"}
    assert len(groups) == 1   # one patient: all six images in one split

    _classes(tmp_path / "own" / "train", {"a": "a", "b": "b"})
    _classes(tmp_path / "own" / "val", {"a": "a", "b": "b"})
    png(tmp_path / "own" / "train" / "a" / unicodedata.normalize("NFC", "pé") / "0.png", COLORS["a"])
    png(tmp_path / "own" / "val" / "b" / unicodedata.normalize("NFD", "pé") / "0.png", COLORS["b"])
    said = patients_in_two_split_folders(plan_folder(FolderData(source="folder", path=tmp_path / "own")))
    assert said is not None and "1 patient sub-folder name(s) in more than one split folder: pé (train/val)" in said


def test_system_folders_of_a_mac_zip_a_nas_or_windows_are_no_classes_patients_or_images(tmp_path):
    root = tmp_path / "set"
    _classes(root, {"a": "a", "b": "b"}, n=6)
    png(root / "__MACOSX" / "a" / "._0.png")                       # unzipped from a Mac's archive
    (root / "$RECYCLE.BIN").mkdir()                                 # a Windows drive
    png(root / "a" / "@eaDir" / "0.png" / "SYNOFILE_THUMB_M.png")   # a Synology NAS's thumbnails
    plan = plan_folder(FolderData(source="folder", path=root, val_fraction=0.2))
    assert plan.classes == ("a", "b") and not plan.groups
    assert not any("@eaDir" in str(p) for files in plan.files.values() for p in files)
    assert not any("@eaDir" in str(p) for p in visible_files(root / "a"))   # predict reads folders so too

    _classes(root.with_name("own") / "train", {"a": "a", "b": "b"})
    png(root.with_name("own") / "__MACOSX" / "train" / "a" / "._0.png")   # beside split folders: not a stray class
    assert plan_folder(FolderData(source="folder", path=root.with_name("own"))).classes == ("a", "b")


def test_an_empty_image_file_is_named_as_empty_among_the_unreadable_ones(tmp_path):
    _classes(tmp_path / "set", {"a": "a", "b": "b"}, n=6)
    (tmp_path / "set" / "a" / "empty.png").write_bytes(b"")
    (tmp_path / "set" / "b" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError) as info:
        load_dataset(FolderData(source="folder", path=tmp_path / "set", image_size=8, val_fraction=0.2,
                                test_fraction=0.2), splits=("train", "val", "test"))
    message = str(info.value)
    assert message.startswith("2 of ") and "broken.png: cannot read image (" in message
    assert "empty.png: cannot read image (empty file (0 bytes))" in message


def _read_in_a_thread(fifo: Path) -> tuple[object, list[bytes]]:
    import threading

    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    return reader, got


@pytest.mark.parametrize("command", ["trials", "report"])
def test_an_out_that_is_a_pipe_or_device_is_written_to_not_replaced(finished_run, tmp_path, command):
    """`searchlab trials RUN --out /dev/null`, run as root, moved a regular file over /dev/null: the machine's
    /dev/null was a file from then on (PostgreSQL's initdb, run as its own user, then failed)."""
    import os
    import stat

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader, got = _read_in_a_thread(fifo)
    assert main([command, str(finished_run), "--out", str(fifo)]) == 0
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and got and len(got[0]) > 0
    if os.geteuid() == 0:   # a character device of /dev/null's numbers, as root made it
        device = tmp_path / "null"
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        assert main([command, str(finished_run), "--out", str(device)]) == 0
        assert stat.S_ISCHR(os.stat(device).st_mode)
