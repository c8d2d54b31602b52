"""Finding a run's study from its directory (or its study file) for export, status and dashboard."""
from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from searchlab.engine.storage import open_storage
from searchlab.errors import (SearchlabError, StorageError, shown_path, shown_text, shown_url, shown_value,
                              storage_url_in, without_password)

if TYPE_CHECKING:
    from searchlab.config.load import Study

MANIFEST = "searchlab.json"
# Where MedMNIST's file is read from may change between runs; what the data is may not (engine/resume.py).
WHERE_DATA_LIVES = ("root", "download")


def write_manifest(study: "Study") -> None:
    """The run directory names its storage, so `export RUN`, `status RUN` and `dashboard RUN` find it."""
    manifest = {"study_name": study.config.name, "storage": absolute_url(study.storage_url),
                "artifacts": str((study.run_dir / "artifacts").resolve())}
    path, text = study.run_dir / MANIFEST, json.dumps(manifest, indent=2) + "\n"
    if storage_file(study.storage_url) is None:   # a server's URL may hold its password: readable by its owner only
        _write_private(path, text)
    else:
        path.write_text(text)


def _write_private(path: Path, text: str) -> None:
    """`text` in `path`, mode 0600 from the first byte: a file written and then chmod-ed is readable by all
    in between, and one that exists keeps its mode when rewritten. The whole file replaced at once, so a
    runner of the same folder never reads half of it."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)   # a leftover partial file (a killed run) kept its own mode
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
    os.replace(partial, path)


def check_same_storage(study: "Study") -> None:
    """A run folder belongs to one study in one storage: another would start a new study there while `status`,
    `export` and `report` of the folder would see only the last one, and both studies' checkpoints would share
    artifacts/. (A password in a PostgreSQL URL is not echoed.)"""
    recorded = refuse_other_storage(study)
    if recorded is None:
        return
    before, name, recorded_dir = recorded
    if name and name != study.config.name:   # allowed (one storage holds both), but the folder shows one
        print(f"warning: run folder {study.run_dir} held the study '{name}'; it now names '{study.config.name}', so "
              f"`status`, `export` and `report` of the folder see '{study.config.name}' only ('{name}' stays in the "
              "storage). Fix: give each study its own run_dir (by default runs/<name>)", file=sys.stderr)
    now = absolute_url(study.storage_url)
    if before and before != now and database_of(before) == database_of(now):
        print(f"note: {study.run_dir} recorded its storage with another password (rotated, or moved to PGPASSWORD "
              f"or ~/.pgpass) or other connection options: the same database, {shown_url(now)}, so the run "
              f"resumes; once it opens, the run folder's {MANIFEST} records the URL given", file=sys.stderr)
    elif before and before != now and not _same_folder(study.run_dir, recorded_dir):   # the folder's own copy
        print(f"note: {study.run_dir} is a copy of the run folder {recorded_dir}: this run resumes the copy's own "
              f"study ({shown_url(now)}); the original is left as it is", file=sys.stderr)


def refuse_other_storage(study: "Study") -> tuple[str | None, str | None, Path] | None:
    """The run folder's recorded (storage, study name, folder), after refusing a storage other than the one
    it records (its own copy in a copied folder excepted); None when the folder records none. Says nothing
    else, so the run header can ask first and not describe a run that is then refused. The URLs are compared
    by the database they name (database_of): a password rotated, or moved to PGPASSWORD as the README advises,
    or an sslmode added, reaches the same database (write_manifest then records the URL given)."""
    manifest = study.run_dir / MANIFEST
    if not manifest.is_file():
        return None
    try:
        recorded = json.loads(manifest.read_text())
        before, name = recorded.get("storage"), recorded.get("study_name")
        recorded_dir = Path(recorded.get("artifacts", study.run_dir / "artifacts")).parent
    except (OSError, ValueError, AttributeError, TypeError):
        return None   # unreadable: write_manifest replaces it
    now = absolute_url(study.storage_url)
    if before and database_of(before) != database_of(now) and \
            not _own_copy(before, now, study.run_dir, recorded_dir):
        raise StorageError(f"run folder {study.run_dir} holds the study stored in {shown_url(before)}; this run's "
                           f"storage is {shown_url(now)}. Fix: set storage back to the first to resume, or give "
                           "this storage its own run_dir (or study name)")
    return before, name, recorded_dir


# What names a server's database in a libpq URL's query; every other parameter (sslmode, connect_timeout,
# application_name, ...) says how to connect, and changing it must not make the run folder another study's
_NAMING_PARAMETERS = {"host", "hostaddr", "port", "dbname", "user", "service"}


def database_of(url: str) -> str:
    """`url` reduced to the database it names: no password, no connection options, no SQLAlchemy driver
    (postgresql+psycopg2:// and postgresql:// reach the same server). File storages are left as they are."""
    url = without_password(url)
    if url.startswith(("sqlite:", "journal:")) or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    base, _, query = rest.partition("?")
    naming = sorted(param for param in query.split("&") if param.split("=", 1)[0].lower() in _NAMING_PARAMETERS)
    return scheme.split("+", 1)[0] + "://" + base + ("?" + "&".join(naming) if naming else "")


def _same_folder(here: Path, recorded: Path) -> bool:
    """One folder under two paths (a bind mount, a mounted share seen at another path): no copy."""
    try:
        return os.path.samefile(here, recorded)
    except OSError:   # the recorded folder is gone, or cannot be reached from here
        return False


def _own_copy(before: str, now: str, run_dir: Path, recorded_dir: Path) -> bool:
    """Whether `now` is this folder's copy of the database file the run folder recorded inside another
    folder: a run folder copied (to branch an experiment) or moved, resumed from its new place."""
    for scheme in ("sqlite:///", "journal://"):
        if before.startswith(scheme) and now.startswith(scheme):
            old = Path(before.removeprefix(scheme).split("?")[0])
            new = Path(now.removeprefix(scheme).split("?")[0])
            return _copied(run_dir, recorded_dir, old) and new.resolve() == (run_dir / old.name).resolve()
    return False


def absolute_url(url: str) -> str:
    """File storages are recorded with absolute paths, so the run works from any current directory."""
    for scheme in ("sqlite:///", "journal://"):
        if url.startswith(scheme) and not url.startswith(scheme + "/"):
            return scheme + str(Path(url.removeprefix(scheme)).resolve())
    return url


def storage_file(url: str) -> Path | None:
    """The file of a SQLite or journal storage (None for a database server)."""
    for scheme in ("sqlite:///", "journal://"):
        if url.startswith(scheme):
            return Path(url.removeprefix(scheme))
    return None


@dataclass(frozen=True)
class OpenRun:
    run_dir: Path
    study: optuna.Study
    storage_url: str
    artifacts: Path
    # Opened through its study file: that file's data section and folder, which say where the data is now
    # (a moved data folder is edited there; export reads it if it names the same data otherwise)
    study_file_data: tuple[dict[str, Any], Path] | None = None

    @property
    def record(self) -> dict[str, Any]:
        """What `run` stored in the study about itself (data config, objectives, seed ...)."""
        record = self.study.user_attrs.get("searchlab")
        if not isinstance(record, dict):
            raise StorageError(f"study '{self.study.study_name}' was not created by searchlab run (no 'searchlab' "
                               "user attribute). Fix: give the run folder of a searchlab study, or open this one with "
                               "optuna-dashboard")
        return _without_passwords(record)

    @property
    def search(self) -> dict[str, Any]:
        """How the search was run: strategy, budget, space, seed ... (engine/setup_record.py search_setup)."""
        return self.record.get("search") or {}

    @property
    def data_read(self) -> dict[str, Any]:
        """The recorded data settings, less where the data lives: what the data is."""
        return {k: v for k, v in (self.record.get("data") or {}).items() if k not in WHERE_DATA_LIVES}


def _without_passwords(record: dict[str, Any]) -> dict[str, Any]:
    """A record as exports, `status` and the report read it, passwords masked: one a run made before they were
    masked when recorded still holds the study file's storage URL and the `--set` values as given."""
    masked = dict(record)
    if isinstance(record.get("study_file_text"), str):
        masked["study_file_text"] = shown_text(record["study_file_text"])
    search = record.get("search")
    if isinstance(search, dict) and isinstance(search.get("overrides"), dict):
        masked["search"] = {**search, "overrides": shown_value(search["overrides"])}
    return masked


def open_run(target: str | Path) -> OpenRun:
    """`target` is a run directory, or a study file whose run directory is looked up."""
    if storage_url_in(target) is not None:   # before Path() collapses its `//`, and never echoed with its password
        raise SearchlabError(not_a_run_folder(str(target)))
    target = Path(target)
    if target.is_file() and (target.parent / MANIFEST).is_file() and target.suffix not in (".yaml", ".yml"):
        # its study.db or searchlab.json: read as a study file, it was "not UTF-8 text" or "name: missing"
        raise SearchlabError(f"'{target}' is a file of the run folder {target.parent}. Fix: pass the folder, "
                             f"e.g. searchlab status {shlex.quote(str(target.parent))}")
    study_file = None if target.is_dir() else _study_of_file(target)
    run_dir = target if study_file is None else study_file.run_dir
    manifest_path = run_dir / MANIFEST
    if not manifest_path.is_file():
        found = sorted(p.name for p in run_dir.iterdir())[:10] if run_dir.is_dir() else []
        if "study.db" in found:   # a run stopped before it wrote its record: pointing at that folder again helps not
            raise SearchlabError(f"'{run_dir}' holds a study database but no {MANIFEST}: a searchlab run stopped "
                                 "(or failed) before it recorded its setup, which it does before any trial, or a "
                                 "database searchlab did not make. Fix: run the study again (searchlab run "
                                 "STUDY.yaml), which starts it anew; or open the database with optuna-dashboard")
        raise SearchlabError(f"'{run_dir}' holds no searchlab run (no {MANIFEST}; found: "
                             f"{', '.join(found) or 'nothing'}). Fix: pass the directory `searchlab run` "
                             "printed, e.g. runs/quickstart")
    try:
        manifest = json.loads(manifest_path.read_text())
        name, url = manifest["study_name"], manifest["storage"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SearchlabError(f"{manifest_path} is damaged ({exc}). Fix: re-run `searchlab run` on the study file") \
            from None
    recorded_dir = Path(manifest.get("artifacts", run_dir / "artifacts")).parent
    url = _storage_here(url, run_dir, manifest_path, recorded_dir)
    storage = _open_recorded_storage(url, manifest_path)
    if study_file is not None and study_file.config.name != name:
        # the folder ran another study last (`--set name=...`): the study file's own study is still stored there
        study = _load_named_study(storage, url, study_file.config.name, target, manifest_path, name)
    else:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            raise StorageError(f"storage {shown_url(url)} has no study named '{name}' (named by {manifest_path}). "
                               "Fix: pass the run directory of that study, or re-run `searchlab run` on its study "
                               "file") from None
    artifacts = _artifacts_here(Path(manifest.get("artifacts", run_dir / "artifacts")), run_dir, recorded_dir)
    file_data = None if study_file is None or study_file.config.data is None else \
        (study_file.config.data.model_dump(mode="json", exclude_unset=True), study_file.base_dir)
    return OpenRun(run_dir, study, url, artifacts, file_data)


def _open_recorded_storage(url: str, manifest_path: Path) -> Any:
    """The run folder's storage; an error says where its URL came from (no study file or --set names it here)."""
    try:
        return open_storage(url, reading=True)
    except StorageError as exc:
        rule, _, fix = str(exc).partition(". Fix: ")
        said = f"{rule} (the URL is the run folder's storage, key `storage` of {manifest_path})"
        raise StorageError(f"{said}. Fix: {fix}" if fix else said) from None


def _load_named_study(storage: Any, url: str, name: str, study_file: Path, manifest_path: Path,
                      recorded: str) -> optuna.Study:
    """The study `name` that `study_file` names, from the run folder's storage (whose manifest names `recorded`)."""
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        held = ", ".join(repr(s.study_name) for s in storage.get_all_studies()) or "none"
        raise StorageError(f"{study_file} names the study '{name}', and its run folder's storage {shown_url(url)} "
                           f"holds no study of that name (it holds: {held}; {manifest_path} names '{recorded}', "
                           f"the study run there last). Fix: run it first (searchlab run {shlex.quote(str(study_file))}"
                           f"), or pass the run folder {shlex.quote(str(manifest_path.parent))} for '{recorded}'") \
            from None


def _storage_here(url: str, run_dir: Path, manifest_path: Path, recorded_dir: Path) -> str:
    """The recorded SQLite or journal file, or the one of that name in `run_dir` when the run directory was moved
    or copied (the manifest records absolute paths). Opening a missing file would create an empty database.
    A file that was inside the recorded run directory is read from this one when this is a copy: the
    original's (still there) is another run's."""
    for scheme in ("sqlite:///", "journal://"):
        if url.startswith(scheme):
            path = Path(url.removeprefix(scheme).split("?")[0])
            if path.is_file() and not _copied(run_dir, recorded_dir, path):
                return url
            if (run_dir / path.name).is_file():
                return scheme + str((run_dir / path.name).resolve())
            if path.is_file():   # a copy of the folder without its database: the original is another run
                raise StorageError(f"{run_dir} is a copy of the run folder {recorded_dir} without its own "
                                   f"{path.name} (named by {manifest_path}). Fix: copy {path.name} with it, or "
                                   f"open the original, {recorded_dir}")
            raise StorageError(f"the run's storage file {path} (named by {manifest_path}) does not exist, nor "
                               f"does {run_dir / path.name}. Fix: put the database back, or edit the storage in "
                               "that file if it moved")
    return url


def _artifacts_here(recorded: Path, run_dir: Path, recorded_dir: Path) -> Path:
    """The recorded artifact folder, or the run directory's own when the run directory was moved or copied."""
    own = run_dir / "artifacts"
    if _copied(run_dir, recorded_dir, recorded) and own.is_dir():
        return own
    return recorded if recorded.is_dir() or not own.is_dir() else own


def _copied(run_dir: Path, recorded_dir: Path, path: Path) -> bool:
    """`run_dir` is another folder than the one the run recorded, and `path` lived inside that one."""
    here, there = run_dir.resolve(), recorded_dir.resolve()
    return here != there and path.resolve().is_relative_to(there)


def not_a_run_folder(url: str) -> str:
    """A storage URL given as a command's run folder (or study file): said with its password masked."""
    return (f"'{shown_url(url)}' is a storage URL, not a run folder or study file. Fix: pass the run folder "
            "`searchlab run` printed (e.g. runs/quickstart) or the study file; to look at a storage without its run "
            "folder: searchlab dashboard URL")


def _study_of_file(path: Path) -> Any:
    if not path.exists():
        raise SearchlabError(f"'{shown_path(path)}' does not exist. Fix: pass a run directory (e.g. runs/quickstart) "
                             "or a study file")
    from searchlab.config.load import load_study

    return load_study(path)
