"""Files a command writes whole or not at all (`trials --out`, `report --out`): written to a partial file beside
the target and moved over it in one step; an --out naming one of the command's open descriptors
(`--out /proc/self/fd/3 3>>all.csv`) is written through that descriptor, as the shell opened it; an --out ending
in a path separator names a folder to write the command's default file name in (out_file)."""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from searchlab.errors import SearchlabError


def write_whole(out: Path, write: Callable[[Path], object]) -> None:
    """`write(part)` writes the file to a partial file beside `out`, then moved over it in one step: a full disk
    or a killed command left a truncated table or report under the final name, and a failed re-run broke a
    good one (as `predict --out` does). A link named as `out` stays a link: the file it points to is replaced."""
    descriptor = open_descriptor_named(out)
    if descriptor is not None and stat.S_ISREG(os.fstat(descriptor).st_mode):
        _refuse_read_only(descriptor, out)
        _write_through(descriptor, out, write)
        return
    if not_a_file(out):   # /dev/null, a named pipe: written to, never replaced (as root, replaced for good)
        # as given, through its links: an anonymous pipe's /proc/self/fd/3 links to "pipe:[N]", no path
        write(out)
        return
    final = Path(os.path.realpath(out)) if out.is_symlink() else out
    refuse_file_as_folder(out)
    final.parent.mkdir(parents=True, exist_ok=True)
    with _partial_beside(final, out) as part:
        write(part)
        os.replace(part, final)


# /proc/self/fd/3, /dev/fd/3, /proc/<this process>/fd/3: one of the process's open descriptors, by its number
_DESCRIPTOR_PATH = re.compile(r"/(?:proc/(?:self|thread-self)|dev)/fd/(\d+)")
_STANDARD_STREAMS = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}


def open_descriptor_named(out: Path) -> int | None:
    """The descriptor number `out` names, directly or through links (/dev/stdout -> /proc/self/fd/1), when it is
    one the shell handed over; else None. Its target is not the file to write: reopening /proc/self/fd/3 of
    `3>>f` truncates f (or, written beside and moved over, replaces it), so what was appended to is lost."""
    number = _descriptor_number(os.path.abspath(out))
    if number is None:
        return None
    fix = (f"Fix: open it in the shell, e.g. --out {out} {number}>>FILE (appends; {number}>FILE writes anew), or "
           "name the file itself")
    try:
        handed_over = os.get_inheritable(number)
    except OSError:
        raise OutPathError(f"--out {out} names descriptor {number}, which is not open. {fix}") from None
    if not handed_over:   # opened by searchlab itself (CLOEXEC), e.g. the study's database: never written into
        raise OutPathError(f"--out {out} names descriptor {number}, which searchlab opened for itself (e.g. the "
                           f"study's database), not one the shell opened for it. {fix}")
    return number


def _descriptor_number(path: str) -> int | None:
    """N of /proc/self/fd/N, /dev/fd/N or /dev/stdout (1), found by following `path`'s links; None for a path
    that is not one (its target is checked before each link is read: /dev/fd/3 reads as the file 3 opens)."""
    for _ in range(40):   # the kernel's own limit on links followed
        named = _STANDARD_STREAMS.get(path)
        found = _DESCRIPTOR_PATH.fullmatch(path.replace(f"/proc/{os.getpid()}/", "/proc/self/"))
        if named is not None or found:
            return named if named is not None else int(found[1])
        if not os.path.islink(path):
            return None
        path = os.path.normpath(os.path.join(os.path.dirname(path), os.readlink(path)))
    return None


def _refuse_read_only(descriptor: int, out: Path) -> None:
    """`--out /proc/self/fd/3 3<f` (a `<` for a `>`): writing failed after the work, said as a bare 'Bad file
    descriptor' with a fix about paths and disk space."""
    if os.name != "posix":   # no fcntl; Windows has no /proc/self/fd either
        return
    import fcntl

    if fcntl.fcntl(descriptor, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
        raise OutPathError(f"--out {out} names descriptor {descriptor}, which is open for reading only, so nothing "
                           f"can be written through it. Fix: open it for writing in the shell, e.g. --out {out} "
                           f"{descriptor}>>FILE (appends; {descriptor}>FILE writes anew)")


def _write_through(descriptor: int, out: Path, write: Callable[[Path], object]) -> None:
    """`write(part)` to a private partial file, then its bytes through a copy of `descriptor`, as the shell
    opened it: `3>>f` appends to f, `3>f` writes the emptied f; nothing is written when `write` fails."""
    try:
        with tempfile.TemporaryDirectory(prefix="searchlab-out-") as folder:
            part = Path(folder) / Path(out).name
            write(part)
            with part.open("rb") as written, open(os.dup(descriptor), "wb", closefd=True) as through:
                shutil.copyfileobj(written, through)
    except OSError as exc:   # a full disk: named as --out, as beside a file (the partial file's name would mislead)
        raise OSError(exc.errno, exc.strerror or str(exc), str(out)) from exc


def not_a_file(path: Path) -> bool:
    """A device, a pipe or a socket (`--out /dev/null`), links followed: a file moved over it would take its
    place. Run as root, `searchlab trials RUN --out /dev/null` left /dev/null a regular file, and every later
    `> /dev/null` of the machine wrote into it, while programs that open it as root's postgres user failed."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


class OutPathError(SearchlabError):
    """An --out that names nothing a file can be written to (a path under a file, a descriptor not open for
    writing): refused as bad input, with the exit code (2) of every other refused --out (an existing folder, an
    empty value) and argument. It was 1, so the same mistake exited 2 or 1
    by how it was spelt; 1 stays for a write the system fails (a full disk, no permission: an OSError)."""


def out_file(out: str | os.PathLike[str], default_name: str) -> Path:
    """The file an --out names. One ending in a path separator (`--out reports/`) names a folder, written as
    <folder>/<default_name>: Path() drops the separator, and the page was written as a file named `reports`.
    Its missing folders are made (write_whole), as for a file (`--out a/b/t.csv`) and as export and sample make
    theirs: a folder two levels down was refused as a likely typo while `a/b/t.csv` made both, now one rule
    for both spellings of a place."""
    text = os.fspath(out)
    if not text.endswith(tuple(sep for sep in (os.sep, os.altsep) if sep)):
        return Path(out)
    folder = Path(text)
    if folder.exists() and not folder.is_dir():
        raise OutPathError(f"--out {text} names a folder (it ends in {text[-1]}), but {folder} is a file. Fix: name "
                           f"the file itself (--out {folder}) or another folder")
    refuse_file_as_folder(folder)
    return folder / default_name


def refuse_file_as_folder(out: Path) -> None:
    """`--out afile/t.csv` where afile is a file: mkdir said only 'File exists' (or 'Not a directory'), with
    the fix for any unwritable path."""
    for folder in reversed(out.parents):
        if folder.exists() and not folder.is_dir():
            raise OutPathError(f"{folder}: is a file, not a folder, so --out {out} cannot be written under it. Fix: "
                               f"name a file in a folder (e.g. --out {folder.parent / out.name}), or move {folder} "
                               "away")


@contextmanager
def _partial_beside(final: Path, out: Path) -> Iterator[Path]:
    """A new hidden file in final's folder (same file system: the move is one step), unique to this process
    (two commands writing one name each move a whole file), with final's permissions when it exists (a
    report made group-readable stays so); removed unless moved in. An OSError names `out`, as the CLI's
    message for an unwritable --out does: the partial file's name would mislead."""
    part = final.with_name(f".{final.name}.{os.getpid()}.partial")
    try:
        part.unlink(missing_ok=True)   # left by a killed command of the same process id
        os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))   # the umask applies, as to any file
        if final.exists():
            os.chmod(part, final.stat().st_mode & 0o7777)
        yield part
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(out)) from exc
    finally:
        with contextlib.suppress(OSError):   # on a read-only disk this fails too, and its error named the partial
            part.unlink(missing_ok=True)
