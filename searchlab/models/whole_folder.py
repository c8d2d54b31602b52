"""A folder written whole: save() of an export's model.py (fine_tuning.py) writes its files into a new folder beside
the one it replaces, carries over the files it does not write, and swaps the new folder in, so a full disk or a
Ctrl-C leaves the earlier save as it was, and files other processes write or delete there meanwhile are kept or
stay deleted. Part of every classifier export's model.py (below the body marker, before fine_tuning.py's body)."""
from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

# ---- model.py body ----
TRAINED_ON = "trained_on.json"   # the images the weights' run trained and was selected on (export/trained_on.py)
# what save() writes in a folder, and Python's cache of its model.py: anything else there is carried over
SAVED_FILES = ("config.json", "model.py", "weights.safetensors", "test_predictions.json", TRAINED_ON, "__pycache__")


def _through_link(out_dir: Path) -> Path:
    """The folder a symbolic link `out_dir` points to: the new folder is swapped in there, the link kept."""
    return out_dir.resolve() if out_dir.is_symlink() else out_dir


def _write_whole_folder(out_dir: Path, files: dict[str, str | bytes]) -> None:
    """`files` written into a new folder beside `out_dir`, with out_dir's other files, then swapped in for it.
    Written in place, a full disk or a Ctrl-C between weights.safetensors and config.json left an earlier save
    whose config.json refused its weights (lost for good), or a new folder that save() refused as someone's own."""
    _refuse_to_swap(out_dir)
    _refuse_read_only(out_dir)
    _remove_leftovers(out_dir)
    staging = out_dir.parent / f"{_hidden_name(out_dir)}.{os.getpid()}-{os.urandom(4).hex()}.partial"
    old = staging.with_name(staging.name.removesuffix(".partial") + ".old")
    try:
        staging.mkdir()
        for name, content in files.items():
            path = staging / name
            if isinstance(content, str):
                path.write_text(content)
            else:
                path.write_bytes(content)
        carried = _carry_over(out_dir, staging) if out_dir.is_dir() else {}
        if out_dir.is_dir():
            _keep_modes(out_dir, staging, files)
        swapped = _swap_in(staging, out_dir, old)
    except OSError as exc:   # named by the new folder's file, which is gone: say which folder and what it holds
        left = (f"the earlier save, set aside at {old}, could not be put back. Fix: rename it to {out_dir}"
                if old.exists() else "the folder is as it was")
        raise OSError(exc.errno, f"{exc.strerror or exc}; nothing was saved, {left}", str(out_dir)) from exc
    finally:
        _remove_set_aside(staging)
    try:   # after the swap: saved, whatever happens here
        if old.is_dir():
            _drop_deleted(old, out_dir, carried, swapped)
            _merge_set_aside(old, out_dir, carried)
    except OSError as exc:
        import warnings
        warnings.warn(f"save() saved {out_dir}, but could not move into it the files written in the earlier folder "
                      f"while it saved ({exc}): that folder is kept, at {old}. Fix: move them into {out_dir}, then "
                      "remove it", RuntimeWarning, stacklevel=3)
    else:
        _remove_set_aside(old)


def _wait_for_other_saves(out_dir: Path) -> int:
    """A lock file beside out_dir, taken once no other save of out_dir (another process, thread or DDP rank)
    holds it: saving at once, one save set aside the folder whose files another was carrying over, which lost
    them. POSIX: flock, the file removed by its holder (a waiter on the removed file takes the new one). Windows
    (untested): msvcrt's lock of its first byte, tried again while it gives up after 10 s (the file left there)."""
    import errno

    lock = _lock_file(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            # read-only: a lock file another user's killed save left (0o644) is still taken, and not written
            fd = os.open(lock, os.O_RDONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except PermissionError as exc:
            if os.access(out_dir.parent, os.W_OK):
                raise
            raise PermissionError(exc.errno, f"{out_dir.parent} is read-only for this user, and save() writes the "
                                  f"new folder there, beside {out_dir.name}, before renaming it in: nothing was "
                                  "saved. Fix: make it writable, or save into a folder of yours", str(lock)) from exc
        try:
            if os.name != "posix":
                import msvcrt
                while True:
                    try:
                        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                        return fd
                    except OSError as exc:
                        if exc.errno != errno.EDEADLOCK:
                            raise
            import fcntl
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.path.samestat(os.fstat(fd), os.stat(lock)):   # still the file there: not removed meanwhile
                return fd
        except FileNotFoundError:   # removed by the save before this one
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _let_other_saves_in(out_dir: Path, fd: int) -> None:
    """The lock file removed unless it holds something (then it is someone's own file of that name), and let go."""
    try:
        if os.name == "posix" and os.fstat(fd).st_size == 0:
            os.unlink(_lock_file(out_dir))
        elif os.name != "posix":
            import msvcrt
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    except OSError:   # removed or let go all the same when closed
        pass
    finally:
        os.close(fd)


def _lock_file(out_dir: Path) -> Path:
    return out_dir.parent / f"{_hidden_name(out_dir)}.lock"


def _refuse_read_only(out_dir: Path) -> None:
    """A folder made read-only is not replaced (written in place, save() failed there, as it should): one this
    user may not write, or one with no write bit, which root may write (os.access says yes) all the same."""
    import errno

    if not out_dir.is_dir():
        return
    mode, owner, writable = out_dir.stat().st_mode, out_dir.stat().st_uid, os.access(out_dir, os.W_OK)
    if writable and mode & 0o222:
        return
    why = f"is read-only (mode {oct(mode & 0o777)}, no write bit)" if writable else "is read-only for this user"
    mine = getattr(os, "geteuid", lambda: owner)() in (owner, 0)
    fix = "make it writable (chmod u+w) to save there" if mine else "ask its owner to make it writable"
    raise PermissionError(errno.EACCES, f"{out_dir} {why} and save() would replace it: nothing was saved. Fix: "
                          f"{fix}, or save into a new folder of yours, e.g. {str(out_dir) + '_tuned'!r}", str(out_dir))


def _remove_set_aside(folder: Path) -> None:
    """A new or earlier folder beside out_dir removed, or a warning naming it: each is a whole save, and left
    silently (a read-only folder inside that rmtree could not empty) a loop saving every epoch filled the disk."""
    if not os.path.lexists(folder):
        return
    try:
        _remove_tree(folder)
    except OSError as exc:
        import warnings
        warnings.warn(f"save() could not remove {folder}, a hidden folder it set aside ({exc}). Fix: remove it, "
                      "e.g. rm -rf", RuntimeWarning, stacklevel=4)


def _remove_tree(folder: Path) -> None:
    """shutil.rmtree, making a folder inside writable (and listable) when one could not be emptied (a carried-over
    raw/ the user made read-only) and trying once more. Files are left as they are: the set-aside folder's are
    hard links of the saved folder's, whose mode is the user's (Windows keeps a read-only file: save() warns)."""
    import shutil
    import stat
    import sys

    def writable_and_again(func: Any, path: str, error: Any) -> None:
        error = error[1] if isinstance(error, tuple) else error   # onerror's exc_info, onexc's exception
        of_entry = func in (os.unlink, os.remove, os.rmdir)   # else a folder that could not be listed
        folder = os.path.dirname(path) if of_entry else path
        mode = os.lstat(folder).st_mode
        if stat.S_ISLNK(mode) or mode & stat.S_IRWXU == stat.S_IRWXU:
            raise error   # not for want of permission: nothing to make writable, nor loop on
        os.chmod(folder, mode | stat.S_IRWXU)
        if of_entry:
            func(path)
        else:
            shutil.rmtree(path, **handler)

    handler = {"onexc" if sys.version_info >= (3, 12) else "onerror": writable_and_again}
    shutil.rmtree(folder, **handler)


def _refuse_to_swap(out_dir: Path) -> None:
    """A folder that cannot be replaced by renaming a new one in: a file, a mount point, or the folder this
    process works in (replaced, the process would be left in a deleted folder)."""
    whole = ("save() replaces its folder whole (a new one renamed in, so that a failed save leaves the earlier one). "
             f"Fix: save into a new folder, e.g. {str(out_dir.resolve() / 'tuned')!r}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir} is a file, not a folder. Fix: save into a new folder, e.g. "
                         f"{str(out_dir) + '_tuned'!r}")
    try:
        here = Path.cwd().resolve()
    except OSError:   # this process's folder was deleted: out_dir cannot be it
        here = None
    if out_dir.exists() and here is not None and out_dir.resolve() in (here, *here.parents):
        raise ValueError(f"{out_dir} is the folder this process works in (or holds it), and {whole}")
    if os.path.ismount(out_dir):
        raise ValueError(f"{out_dir} is a mount point, which cannot be renamed, and {whole}")


def _hidden_name(out_dir: Path) -> str:
    """The hidden name beside out_dir its new and set-aside folders start with: a name too long to take their
    suffixes within a file name's 255 bytes is cut to a prefix and a hash."""
    if len(os.fsencode(out_dir.name)) <= 200:
        return f".{out_dir.name}"
    return f".{out_dir.name[:16]}.{hashlib.sha256(os.fsencode(out_dir.name)).hexdigest()[:12]}"


def _remove_leftovers(out_dir: Path) -> None:
    """Folders beside out_dir of saves killed outright (which ran no cleanup), by their process id: a new
    folder, and an earlier one set aside once out_dir is back in place. A live process's are its own. Only the
    names save() gives (.NAME.PID-8HEX.partial|old): the user's .tuned.2024-01-05.old was taken for pid 2024's."""
    import re

    made_by_save = re.compile(re.escape(_hidden_name(out_dir)) + r"\.([0-9]+)-[0-9a-f]{8}\.(partial|old)")
    for path in out_dir.parent.iterdir():
        made = made_by_save.fullmatch(path.name)
        if made and (made[2] == "partial" or out_dir.exists()) and not _running(int(made[1])):
            _remove_set_aside(path)


def _running(pid: int) -> bool:
    """Whether process `pid` runs here; True where the system cannot be asked (its leftovers are kept)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)   # signal 0: asks, sends nothing
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):   # another user's process; a number no pid reaches, in no name save() gave
        return True
    return True


def _carry_over(out_dir: Path, staging: Path) -> dict[str, tuple[Any, Any]]:
    """The files of out_dir that save() does not write (a training log, notes) into the new folder: hard links
    where the file system has them (the same files, a log still open for writing included), else copies. Returns,
    by path inside the folder, the state of each file and of its copy, for _merge_set_aside."""
    import shutil

    carried: dict[str, tuple[Any, Any]] = {}

    def carry(source: str | Path, target: str | Path) -> None:
        try:
            was = _state(source)   # taken before: a file written while it was copied counts as changed
        except FileNotFoundError:   # deleted since the folder was listed: nothing to carry
            return
        if os.path.islink(source):
            os.symlink(os.readlink(source), target)
        else:
            try:
                os.link(source, target)
            except OSError:   # a file system without hard links
                shutil.copy2(source, target)
        carried[os.path.relpath(target, staging)] = was, _state(target)

    for path in out_dir.iterdir():
        if path.name in SAVED_FILES:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.copytree(path, staging / path.name, symlinks=True, copy_function=carry)
        else:
            carry(path, staging / path.name)
    return carried


def _state(path: str | Path) -> tuple[int, int, int]:
    """A file's inode (another renamed in its place), size and mtime (written in place); not ctime: links change it"""
    st = os.lstat(path)
    return st.st_ino, st.st_size, st.st_mtime_ns


def _drop_deleted(old: Path, new: Path, carried: dict[str, tuple[Any, Any]], swapped: int) -> None:
    """Files carried over, then deleted from the earlier folder while save() ran (a keep-last-K loop's ckpt_1.pt),
    deleted here too unless written since the swap, with the sub-folders that leaves empty if gone there too. A
    hard link shares its file's writes before the swap (so its state moved): its inode and mtime tell them apart."""
    for name, (was, copy) in carried.items():
        now = _state(new / name) if os.path.lexists(new / name) else None
        linked = now is not None and now[0] == copy[0] == was[0] and now[2] <= swapped
        if not os.path.lexists(old / name) and now is not None and (now == copy or linked):
            os.unlink(new / name)
            for folder in list(Path(name).parents)[:-1]:   # inner first, up to (not including) the saved folder
                if os.path.lexists(old / folder) or any((new / folder).iterdir()):
                    break
                (new / folder).rmdir()


def _merge_set_aside(old: Path, new: Path, carried: dict[str, tuple[Any, Any]], inside: str = "") -> None:
    """Files written in the earlier folder between the carry-over and the swap (an epoch's file, a log another
    process replaced by renaming) moved into the new one, not lost with the earlier folder: those the new one
    lacks, and those changed since they were carried over unless their copy changed too (written after the swap:
    the newer). save()'s own files stay the new ones. Left open: writes into the earlier folder after this looked
    (through a folder or a copied file opened there before), and into the new one between a look and a rename."""
    for path in list(old.iterdir()):
        name, target = os.path.join(inside, path.name), new / path.name
        was, copy = carried.get(name, (None, None))
        is_dir = path.is_dir() and not path.is_symlink()
        if not inside and path.name in SAVED_FILES:
            continue
        if not os.path.lexists(target):
            os.rename(path, target)
        elif is_dir and target.is_dir() and not target.is_symlink():
            _merge_set_aside(path, target, carried, name)
        elif not is_dir and was is not None and _state(path) != was and _state(target) == copy:
            os.replace(path, target)


def _keep_modes(out_dir: Path, staging: Path, files: dict[str, str | bytes]) -> None:
    """The permissions the earlier folder and its files had (a folder shared with a group stays shared), as
    when save() wrote into it; its group where this user may give it."""
    was = out_dir.stat()
    try:
        os.chown(staging, -1, was.st_gid)
    except OSError:   # not a group of this user's
        pass
    staging.chmod(was.st_mode & 0o7777)   # after chown, which may clear setgid
    for name in files:
        if (out_dir / name).is_file():
            (staging / name).chmod((out_dir / name).stat().st_mode & 0o777)


def _swap_in(staging: Path, out_dir: Path, old: Path) -> int:
    """One rename when out_dir is new, else two (the earlier folder aside to `old`, the new one in), the earlier
    one put back when the second fails or is interrupted: out_dir is never missing or half-written. Returns the
    time it swapped (a carried hard link's file written in place later was written in the new folder)."""
    swapped = time.time_ns()
    if not out_dir.exists():
        staging.rename(out_dir)
        return swapped
    try:
        out_dir.rename(old)
        staging.rename(out_dir)
    finally:
        if old.exists() and not out_dir.exists():
            old.rename(out_dir)
    return swapped
