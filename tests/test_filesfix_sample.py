"""Audit verify54, items 6 and 9b: `sample --out` written into a data set's class folder past its guard, by a `..`
after a symlink (`--out lnA/../a/new`, lnA -> ../ds/a: abspath read it as ./a/new, the OS as ds/a/new) and by a class
folder under --out that is a symlink (fl/a -> ../../ds/a); a class named synthetic.json failed with a bare
"File exists" after the draw's record of that name was written."""
from __future__ import annotations

import json
import os

from searchlab.export.sample import RECORD
from test_sample import _hand_export, _sample
from test_sample_out_guards import _refused, _tree
from test_synthetic_data import _real_folder


def test_dot_dot_after_a_symlink_is_followed_as_the_os_does(tmp_path, capsys, monkeypatch):
    export = _hand_export(tmp_path / "gen", 2, ["a", "b"])
    data = _real_folder(tmp_path / "ds")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "lnA").symlink_to("../ds/a", target_is_directory=True)
    monkeypatch.chdir(tmp_path / "w")
    _refused(capsys, export, "lnA/../a/new", data, f"--out lnA/../a/new is inside {data / 'a'}, a class folder of a "
             f"data set: {data} holds the class folders a, b")
    assert not (tmp_path / "w" / "a").exists()


def test_a_class_folder_that_is_a_symlink_into_a_data_set_is_refused(tmp_path, capsys):
    export = _hand_export(tmp_path / "gen", 2, ["a", "b"])
    data = _real_folder(tmp_path / "ds")
    out = tmp_path / "fl"
    out.mkdir()
    (out / "a").symlink_to("../ds/a", target_is_directory=True)   # into a class folder holding images
    _refused(capsys, export, out, data, f"--out {out}'s folder of class 'a', {out / 'a'}, already holds image files "
             "that no `searchlab sample` draw wrote")
    os.unlink(out / "a")
    (out / "a").symlink_to("../ds/c", target_is_directory=True)   # a new class folder of the data set
    _refused(capsys, export, out, data, f"--out {out}'s folder of class 'a', {out / 'a'}, leads through a symlink "
             f"to {data / 'c'}, which is a class folder of a data set: {data} holds the class folders a, b")
    assert sorted(p.name for p in out.iterdir()) == ["a"] and not (data / "c").exists()


def test_a_class_folder_that_is_a_symlink_to_nothing_is_said_so(tmp_path, capsys):
    """It was a bare "fl/a: File exists", exit 1."""
    export = _hand_export(tmp_path / "gen", 2, ["a", "b"])
    (tmp_path / "fl").mkdir()
    (tmp_path / "fl" / "a").symlink_to(tmp_path / "nowhere" / "x", target_is_directory=True)
    code, _, err = _sample(capsys, export, "--out", tmp_path / "fl", "--n", 1)
    assert code == 2 and err.count("\n") == 1, err
    assert (f"--out {tmp_path / 'fl'}'s folder of class 'a', {tmp_path / 'fl' / 'a'}, is a symlink to "
            f"{tmp_path / 'nowhere' / 'x'}, which does not exist; nothing was written. Fix: make the folder it names, "
            "or remove the link") in err
    assert [p.name for p in (tmp_path / "fl").iterdir()] == ["a"] and not (tmp_path / "nowhere").exists()


def test_a_class_folder_linked_to_a_folder_of_ones_own_is_drawn_into(tmp_path, capsys):
    export = _hand_export(tmp_path / "gen", 2, ["a", "b"])
    (tmp_path / "own_a").mkdir()
    (tmp_path / "fl").mkdir()
    (tmp_path / "fl" / "a").symlink_to("../own_a", target_is_directory=True)
    code, _, err = _sample(capsys, export, "--out", tmp_path / "fl", "--n", 1, "--seed", 3)
    assert code == 0, err
    assert [p.name for p in (tmp_path / "own_a").iterdir()] == ["synthetic_s3_00000.png"]


def test_a_class_named_as_the_record_is_written_under_its_index(tmp_path, capsys):
    export = _hand_export(tmp_path / "gen", 2, [RECORD, "b"])
    out = tmp_path / "rec"
    code, said, err = _sample(capsys, export, "--out", out, "--n", 1, "--seed", 2)
    assert code == 0, err
    assert f"(1 {RECORD}, 1 b)" in said
    assert {p.name for p in out.iterdir()} == {RECORD, "class_0", "b"} and (out / RECORD).is_file()
    [draw] = json.loads((out / RECORD).read_text())["draws"]
    assert draw["complete"] and "class_0/synthetic_s2_00000.png" in draw["files"] and draw["images"][RECORD] == 1
    assert [p.name for p in _tree(out / "class_0")] == ["synthetic_s2_00000.png"]
