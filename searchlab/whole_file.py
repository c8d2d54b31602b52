"""Files a command writes whole or not at all (`trials --out`, `report --out`): written to a partial file beside
the target and moved over it in one step."""
from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from searchlab.errors import SearchlabError


def write_whole(out: Path, write: Callable[[Path], object]) -> None:
    """`write(part)` writes the file to a partial file beside `out`, then moved over it in one step: a full disk
    or a killed command left a truncated table or report under the final name, and a failed re-run broke a
    good one (as `predict --out` does). A link named as `out` stays a link: the file it points to is replaced."""
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
    """An --out path nothing can be written to: exit code 1, as the CLI's other unwritable paths (OSError)."""

    exit_code = 1


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
