"""Load-time checks of what a study names on disk or by URL: data split fractions the data's own splits make
unused, an export folder that is a file, a storage that is a path rather than a URL. Each was found only
later (after the whole run, or by SQLAlchemy) or not at all (a fraction silently ignored). Kept light: no
torch, no Optuna, nothing decoded; a data set this cannot read is left to the run start's checks."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from searchlab.config import schema
from searchlab.config.yamlsrc import Located
from searchlab.data.given_splits import GivenSplits, csv_splits, folder_splits, resolve_path
from searchlab.errors import AT_IN_PASSWORD_FIX, ats_in_password, shown_url

FRACTIONS = ("val_fraction", "test_fraction")
SPLIT_OF = {"val_fraction": "val", "test_fraction": "test"}
JOURNAL_SUFFIXES = (".log", ".jsonl", ".journal")   # a journal file's usual names; anything else: SQLite
# a URL missing its `//` (postgresql:/user@host/db): a scheme of two letters or more (C: is a Windows drive)
SCHEMED = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]+):(?P<rest>.*)")
SERVER_SCHEMES = ("postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")
# a server URL missing only its colon (postgresql//user@host/db, postgresql+psycopg/user@host/db)
SLASHED = re.compile(rf"(?P<scheme>(?:{'|'.join(SERVER_SCHEMES)})(?:\+\w+)?)/+", re.IGNORECASE)


def check_unused_data_keys(config: schema.StudyConfig, data: dict[str, Any], src: Located, base_dir: Path) -> None:
    """A split fraction written where the data's own split makes it unused is refused: it was ignored without a
    word. As the README says, a fraction carves its split out of train only when the data lacks that split
    (no val/ or test/ folder, no val rows in the split column); a CSV's split column always says which rows
    are test."""
    section = data.get("data")
    if not isinstance(section, dict):
        return
    if section.get("split_column") and "test_fraction" in section:
        raise src.error(("data", "test_fraction"), "not used with split_column: that column says which rows are "
                        "test", got=section["test_fraction"], fix="remove test_fraction, or remove split_column "
                        "to let searchlab split the rows")
    written = [key for key in FRACTIONS if key in section]
    cfg = config.data
    if not written or not isinstance(cfg, (schema.FolderData, schema.CsvData)):
        return
    where = resolve_path(cfg.path, base_dir)
    if isinstance(cfg, schema.FolderData):
        given = folder_splits(where)
    else:
        given = csv_splits(where, cfg.split_column) if cfg.split_column else None
    unused = [key for key in written if SPLIT_OF[key] in given.splits] if given is not None else []
    if given is not None and unused:
        raise _unused_fractions(unused, given, section, src, folder=isinstance(cfg, schema.FolderData),
                                column=getattr(cfg, "split_column", None))


def _unused_fractions(unused: list[str], given: GivenSplits, section: dict[str, Any], src: Located,
                      folder: bool, column: str | None) -> Exception:
    """The refusal of fractions the data's own splits make unused, at the first of them."""
    splits = [SPLIT_OF[key] for key in unused]
    keys = " and ".join(unused)
    also = f" (nor is {unused[1]})" if len(unused) > 1 else ""
    if folder:
        held = " and ".join(f"{given.where / split}/" for split in splits)
        rule = (f"not used{also}: {held} {'are' if len(splits) > 1 else 'is'} the data's own "
                f"{' and '.join(splits)} split{'s' * (len(splits) > 1)}, and a fraction carves its split out of "
                "train/ only where the folder has no such split folder")
        fix = (f"remove {keys}, or move the images of {' and '.join(f'{s}/' for s in splits)} into train/ and "
               "remove the folder(s) to let searchlab carve the split(s) out of train")
    else:
        rule = (f"not used: column {column!r} of {given.where} marks {given.rows['val']} row(s) val, and "
                "val_fraction carves val out of train only when no row is marked val")
        fix = "remove val_fraction, or mark those rows train to let searchlab carve val out of train"
    return src.error(("data", unused[0]), rule, got=section[unused[0]], fix=fix)


def check_export_folder(config: schema.StudyConfig, src: Located) -> None:
    """export.dir naming a file (or a place under one) failed the after-run export only once the whole run was
    done, said of `--out`; refused here, as a run_dir that is a file is."""
    folder = config.export.dir
    if folder is None:
        return
    place = Path(folder).absolute()
    blocker = next((p for p in (place, *place.parents) if p.exists()), None)
    if blocker is None or blocker.is_dir():
        return
    rule = (f"the export folder is a file: {place}" if blocker == place else
            f"the export folder {place} would be made inside {blocker}, which is a file")
    raise src.error(("export", "dir"), rule, got=str(folder), fix="name a folder (new, or an earlier export to "
                    "replace), or leave export.dir out for <run_dir>/best")


def check_storage_is_a_url(url: str | None, src: Located) -> None:
    """`storage: /tmp/x.db` is a path, not a URL: SQLAlchemy said it could not parse it, and the fix offered
    (check the server is running) misled. Refused here with the URL that names the file. A password with an
    unencoded '@' is refused too: the driver read its end as the host, and named it in its error."""
    if url is not None and ats_in_password(url):
        raise src.error(("storage",), "the user:password part of the URL holds more than one '@', and a URL's "
                        "password ends at its first '@' (the rest would be read as the host)", got=shown_url(url),
                        fix=AT_IN_PASSWORD_FIX)
    if url is None or "://" in url:
        return
    raise src.error(("storage",), "storage is a URL (sqlite:///..., journal://..., postgresql://...), and this "
                    "value has no scheme", got=shown_url(url), fix=storage_url_fix(url))


def storage_url_fix(value: str) -> str:
    """What to write for a storage value without `://` (also said when such a URL cannot be opened); any password
    in it shown as *** (shown_url), as every storage message shows it."""
    value = value.strip()
    if not value:
        return "leave storage out for a SQLite file in the run folder, or give a URL"
    schemed = SCHEMED.fullmatch(value)
    scheme = schemed["scheme"].lower() if schemed else None
    if scheme in ("sqlite", "journal"):   # sqlite:x.db, journal:/data/j.log: the path after the colon
        return _file_url_fix(schemed["rest"], journal=scheme == "journal")
    if scheme is not None and scheme.split("+")[0] in SERVER_SCHEMES:   # postgresql:/user@host/db
        url = shown_url(f"{schemed['scheme']}://{schemed['rest'].lstrip('/')}")
        return f"write :// after {schemed['scheme']}, e.g. {url}"
    if "@" in value and "/" in value and not value.startswith(("/", ".", "~")):   # user@host/db
        slashed = SLASHED.match(value)   # postgresql//user@host/db: its colon missing, not its scheme
        if slashed:
            scheme = "postgresql" if slashed["scheme"].lower() == "postgres" else slashed["scheme"]
            return f"write :// after {scheme}, e.g. {shown_url(scheme + '://' + value[slashed.end():])}"
        return f"for a PostgreSQL server write {shown_url('postgresql://' + value)}"
    return _file_url_fix(value, journal=value.endswith(JOURNAL_SUFFIXES))


def _file_url_fix(path: str, journal: bool) -> str:
    if journal:
        return f"for this journal file write journal://{path} (journal:///abs/path.log for an absolute path)"
    return (f"for this SQLite file write sqlite:///{path} (sqlite:////abs/path.db for an absolute "
            "path, sqlite:///relative/path.db relative to the folder you run in, sqlite:///~/path.db in your home)")


def check_journal_place(url: str | None, src: Located) -> None:
    """`journal:///jr/study.log` is the absolute /jr/study.log (journal://jr/study.log is relative), while
    `sqlite:///jr/study.db` is relative: written by analogy with SQLite, it made a folder at the filesystem root
    without a word. A journal file directly at the root, or in a root folder that does not exist, is refused;
    a folder that exists there (/data, /mnt) is a place the user meant."""
    if not url or not url.startswith("journal:///"):
        return
    path = Path(storage_file_of(url, "journal://"))
    where = unlikely_root_place(path)
    if where is None:
        return
    relative = "journal://" + str(path.relative_to(path.anchor))
    raise src.error(("storage",), f"a journal:/// URL names an absolute path (unlike sqlite:///, where a third "
                    f"slash starts a relative one): this one would write {path} {where}", got=url,
                    fix=f"for a path relative to the folder you run in, write {relative} (two slashes); for an "
                    f"absolute one, name a folder that exists (make {path.parent} first if it is the place)")


def unlikely_root_place(path: Path) -> str | None:
    """Why an absolute journal path is unlikely to be meant, or None: a file at the root, or a missing top folder."""
    if not path.is_absolute():
        return None   # journal:///~/j.log: the home folder
    if len(path.parts) == 2:
        return "directly at the filesystem root"
    top = Path(path.anchor, path.parts[1])
    return None if top.is_dir() else f"in {top}, a folder the filesystem root does not hold (not made, or not mounted)"


def storage_file_of(url: str, prefix: str) -> str:
    """The file path in a storage URL after `prefix`. A journal URL writes an absolute path after a third
    slash (journal:///data/j.log), so `journal:///~/j.log` means the home folder as `sqlite:///~/x.db` does:
    kept as /~/j.log it made a folder named "~" at the root."""
    path = url.removeprefix(prefix)
    if prefix == "journal://" and path.startswith("/~"):
        return path[1:]
    return path
