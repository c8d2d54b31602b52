"""What `--out` names, beyond a new folder. An export is written beside `--out` and renamed into place; the audit
found that the renames lost a shared folder's group and mode, replaced a symbolic link by a local folder (its
target left empty, the study's record naming it), failed at the very end on a mount point (recording the failed
export in the study all the same) and failed on a long folder name (the staging folder's suffix overflowed)."""
from __future__ import annotations

import errno
import grp
import json
import os
import stat
import subprocess
from pathlib import Path

import optuna
import pytest

from searchlab.errors import ExportError
from searchlab.export.exporter import export_run
from searchlab.export.publish import staged
from searchlab.export.scorings import KEY
from tiny_runs import run_on_breastmnist
from test_run import TINY_CLASSIFY

NOGROUP = next((g.gr_gid for g in grp.getgrall() if g.gr_name in ("nogroup", "nobody")), None)
root_only = pytest.mark.skipif(os.geteuid() != 0 or NOGROUP is None, reason="gives folders away: needs root")


@pytest.fixture(scope="module")
def run(tmp_path_factory, breastmnist_root):
    """One tiny finished run, exported by each test into its own folder."""
    return run_on_breastmnist(tmp_path_factory.mktemp("out_folder"), TINY_CLASSIFY, breastmnist_root)


def exports_recorded(run: Path) -> list[dict]:
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{run / 'study.db'}")
    return list(study.user_attrs.get(KEY, []))


def write_export(folder: Path, weights: bytes = b"w") -> None:
    """What an exporter writes into the staging folder: owner-only files, as safetensors writes them."""
    (folder / "config.json").write_text(json.dumps({"format": "searchlab-export/1"}))
    (folder / "weights.safetensors").write_bytes(weights)
    (folder / "weights.safetensors").chmod(0o600)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@root_only
def test_a_shared_folder_keeps_its_owner_group_and_mode_and_its_files_are_the_groups(run, tmp_path):
    team = tmp_path / "team"
    team.mkdir()
    os.chown(team, 65534, NOGROUP)
    team.chmod(0o2770)
    for _ in range(2):   # the empty folder, then the earlier export in it
        export_run(run, team, bootstrap=100)
        assert (mode(team), team.stat().st_uid, team.stat().st_gid) == (0o2770, 65534, NOGROUP)
        inside = {p.name: (mode(p), p.stat().st_gid) for p in team.iterdir()}
        assert "test_predictions.json" in inside and set(inside.values()) == {(0o660, NOGROUP)}, inside


def test_a_user_who_may_not_give_the_folder_away_keeps_its_group_and_mode(tmp_path, monkeypatch):
    team = tmp_path / "team"
    team.mkdir()
    team.chmod(0o2750)
    own_gid = team.stat().st_gid
    real_chown = os.chown

    def as_a_user(path, uid, gid):   # only root gives a file to another user
        if uid != -1:
            raise PermissionError(errno.EPERM, "Operation not permitted")
        real_chown(path, uid, gid)

    monkeypatch.setattr(os, "chown", as_a_user)
    with staged(team) as staging:
        write_export(staging)
    assert (mode(team), team.stat().st_gid) == (0o2750, own_gid)
    assert {mode(p) for p in team.iterdir()} == {0o640}


def test_a_group_that_cannot_be_given_gets_no_more_than_others_and_is_said(tmp_path, monkeypatch, capsys):
    team = tmp_path / "team"
    team.mkdir()
    team.chmod(0o2775)

    def refused(path, uid, gid):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "chown", refused)
    with staged(team) as staging:
        write_export(staging)
    assert mode(team) == 0o2755 and {mode(p) for p in team.iterdir()} == {0o644}   # the group gets what all get
    assert f"note: {team} was shared with group" in capsys.readouterr().err


def test_a_new_folder_gets_the_umasks_modes_as_before(tmp_path):
    umask = os.umask(0o027)
    try:
        with staged(tmp_path / "new") as staging:
            write_export(staging)
    finally:
        os.umask(umask)
    assert mode(tmp_path / "new") == 0o750 and {mode(p) for p in (tmp_path / "new").iterdir()} == {0o640}


def test_a_symbolic_link_is_exported_through_and_the_record_names_where_the_export_is(run, tmp_path):
    target = tmp_path / "disk" / "models"
    target.mkdir(parents=True)
    link = tmp_path / "best"
    link.symlink_to(target)
    for _ in range(2):   # into the empty target, then replacing the export there
        export_run(run, link, bootstrap=100)
        assert link.is_symlink() and link.resolve() == target.resolve()
        assert (target / "config.json").is_file()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["best", "disk"]   # no stray link set aside
        assert [p.name for p in target.parent.iterdir()] == ["models"]
        assert exports_recorded(run)[-1]["out"] == str(target.resolve())


def test_a_dangling_link_is_named_with_its_missing_target(run, tmp_path):
    link = tmp_path / "best"
    link.symlink_to(tmp_path / "gone")
    with pytest.raises(ExportError, match=rf"--out {link} is a symbolic link to {tmp_path / 'gone'}, which does "
                                          r"not exist\. Fix: create the folder it points to"):
        export_run(run, link, bootstrap=100)
    assert link.is_symlink() and not (tmp_path / "gone").exists()


def test_a_folder_the_system_will_not_rename_is_said_and_the_failed_export_is_not_recorded(run, tmp_path,
                                                                                           monkeypatch):
    out = tmp_path / "mnt4"
    export_run(run, out, bootstrap=100)
    before = (out / "config.json").read_text()
    recorded = exports_recorded(run)
    real_rename = os.rename

    def busy(src, dst, *args, **kwargs):   # as rename(2) answers for a mount point
        if Path(src) == out:
            raise OSError(errno.EBUSY, "Device or resource busy", str(src))
        return real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "rename", busy)
    with pytest.raises(ExportError, match=rf"--out {out} cannot be replaced: the system refused to rename it "
                                          rf"\(Device or resource busy\).*Fix: export into a sub-folder, e\.g\. "
                                          rf"--out {out / 'best'}"):
        export_run(run, out, bootstrap=100)
    assert (out / "config.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnt4"]
    assert exports_recorded(run) == recorded   # `status` named the export that failed
    monkeypatch.undo()
    export_run(run, out, bootstrap=100)
    assert len(exports_recorded(run)) == len(recorded) + 1


def test_a_mount_point_is_refused_before_the_export_is_made(run, tmp_path):
    mnt = tmp_path / "mnt4"
    mnt.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        recorded = exports_recorded(run)
        with pytest.raises(ExportError, match=rf"--out {mnt} cannot be replaced: it is a mount point.*"
                                              rf"Fix: export into a sub-folder, e\.g\. --out {mnt / 'best'}"):
            export_run(run, mnt, bootstrap=100)
        assert exports_recorded(run) == recorded and list(mnt.iterdir()) == []
        export_run(run, mnt / "best", bootstrap=100)   # the fix it gives
        assert (mnt / "best" / "config.json").is_file()
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_a_folder_name_as_long_as_the_filesystem_takes_is_exported_and_replaced(tmp_path):
    out = tmp_path / ("x" * 245)
    for weights in (b"first", b"second"):   # new, then replacing the earlier export
        with staged(out) as staging:
            write_export(staging, weights)
        assert (out / "weights.safetensors").read_bytes() == weights
        assert [p.name for p in tmp_path.iterdir()] == [out.name]   # no staging or set-aside folder left
