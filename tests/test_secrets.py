"""A storage password never leaves the run folder's searchlab.json (mode 0600): not in messages, the study's
record (served by the dashboard), `status`, exports, in whatever form the URL carries it. And a password
rotated, or moved to PGPASSWORD, does not stop a resume."""
from __future__ import annotations

import json
from types import SimpleNamespace

import optuna
import pytest

from searchlab.config.load import load_study
from searchlab.engine.rundir import MANIFEST, OpenRun, database_of, open_run, refuse_other_storage, write_manifest
from searchlab.engine.run import run_study, study_record
from searchlab.engine.setup_record import search_setup
from searchlab.engine.setup_said import describe_setup
from searchlab.engine.storage import open_storage
from searchlab.errors import StorageError, shown_text, shown_url, without_password
from searchlab.export.provenance import search_provenance
from test_run import callable_study

PW = "S3cr3tPw!x"


@pytest.mark.parametrize("url, shown", [
    ("postgresql://sl:S3cr3tPw!x@h:5432/db", "postgresql://sl:***@h:5432/db"),
    ("postgresql://sl@h:5432/db?password=S3cr3tPw!x", "postgresql://sl@h:5432/db?password=***"),
    ("postgresql://sl@h/db?sslmode=require&PassWord=S3cr3tPw!x&x=1",
     "postgresql://sl@h/db?sslmode=require&PassWord=***&x=1"),
    ("postgresql://sl@h/db?PASSWD=S3cr3tPw!x", "postgresql://sl@h/db?PASSWD=***"),
    # typos that do not parse: echoed by the error that says so
    ("postgresql:/sl:S3cr3tPw!x@h:5432/db", "postgresql:/sl:***@h:5432/db"),
    ("postgresql:///sl:S3cr3tPw!x@h/db", "postgresql:///sl:***@h/db"),
    ("postgresql//sl:S3cr3tPw!x@h/db", "postgresql//sl:***@h/db"),
    ("postgresql://sl:S3cr3t Pw?x@h/db", "postgresql://sl:***@h/db"),   # spaces and '?' in the password
    ("sqlite:////tmp/a@b/study.db", "sqlite:////tmp/a@b/study.db"),     # nothing to hide
    ("postgresql://sl@h:5432/db?application_name=a@b", "postgresql://sl@h:5432/db?application_name=a@b"),
])
def test_every_form_of_password_in_a_url_is_masked(url, shown):
    assert shown_url(url) == shown and "S3cr3t" not in shown_url(url)


def test_a_password_in_any_storage_line_of_a_study_file_is_masked_in_its_text():
    text = (f"name: x\nstorage: 'postgresql://sl:{PW}@h/db'\n# storage: postgresql://sl@h/db?password={PW}\n"
            f"other: {{storage: postgresql:/sl:{PW}@h/db, seed: 0}}\nspace: {{lr: {{float: [1.0e-4, 3.0e-3]}}}}\n")
    shown = shown_text(text)
    assert PW not in shown and shown.count("***") == 3
    assert shown.replace("***", PW) == text   # nothing else changed


def test_urls_that_differ_by_their_password_only_name_the_same_database():
    same = {without_password(u) for u in (f"postgresql://sl:{PW}@h/db", "postgresql://sl:rotated@h/db",
                                          "postgresql://sl@h/db", f"postgresql://sl@h/db?password={PW}")}
    assert same == {"postgresql://sl@h/db"}
    assert without_password(f"postgresql://sl@h/db?password={PW}&sslmode=require") == \
        "postgresql://sl@h/db?sslmode=require"
    assert without_password("postgresql://sl@h/other") != without_password("postgresql://sl@h/db")


@pytest.mark.parametrize("url", [f"postgresql:/searchlab:{PW}@127.0.0.1:1/searchlab",
                                 f"postgresql://searchlab@127.0.0.1:1/nosuchdb?password={PW}"])
def test_a_storage_error_never_shows_the_password(url):
    with pytest.raises(StorageError) as info:
        open_storage(url)
    assert PW not in str(info.value) and "***" in str(info.value)


def _study_with_storage(write_study, url: str, extra: str = ""):
    return load_study(callable_study(write_study, n=1, extra=extra), {"storage": url})


def test_a_set_storage_is_recorded_and_described_without_its_password(write_study):
    study = _study_with_storage(write_study, f"postgresql://sl:{PW}@h/db")
    setup = search_setup(study)
    assert setup["overrides"]["--set storage"] == "postgresql://sl:***@h/db"
    assert PW not in json.dumps(setup) and "--set storage=postgresql://sl:***@h/db" in describe_setup(setup)
    old = {**setup, "overrides": {"--set storage": f"postgresql://sl@h/db?password={PW}"}}   # recorded before
    assert PW not in describe_setup(old) and "password=***" in describe_setup(old)


def test_the_study_file_text_is_recorded_without_its_password(write_study):
    study = load_study(callable_study(write_study, n=1, extra=f"\nstorage: 'postgresql://sl:{PW}@h/db'\n"))
    record = study_record(study)
    assert PW not in json.dumps(record) and "storage: 'postgresql://sl:***@h/db'" in record["study_file_text"]


def test_a_record_made_before_masking_reaches_exports_and_status_masked():
    """Studies recorded before: `export` copies the record's search setup into config.json."""
    record = {"objectives": [["loss", "minimize"]], "study_file_text": f"storage: postgresql://sl:{PW}@h/db\n",
              "search": {"overrides": {"--set storage": f"postgresql://sl:{PW}@h/db"}}}
    study = SimpleNamespace(user_attrs={"searchlab": record}, study_name="s", get_trials=lambda **kwargs: [])
    run = OpenRun(run_dir=None, study=study, storage_url="sqlite:///x.db", artifacts=None)
    assert PW not in json.dumps(run.record) and PW not in json.dumps(search_provenance(run))


def _manifest_mode(url: str, run_dir) -> int:
    run_dir.mkdir(exist_ok=True)
    write_manifest(SimpleNamespace(config=SimpleNamespace(name="s"), storage_url=url, run_dir=run_dir))
    return (run_dir / MANIFEST).stat().st_mode & 0o777


def test_the_manifest_of_a_server_storage_is_readable_by_its_owner_only(tmp_path):
    """A password as ?password= was not seen as one: searchlab.json was left 0644."""
    assert _manifest_mode(f"postgresql://sl@h/db?password={PW}", tmp_path / "query") == 0o600
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / MANIFEST).write_text("{}")
    (tmp_path / "old" / MANIFEST).chmod(0o644)   # written by an earlier version: rewritten, it is made private
    assert _manifest_mode(f"postgresql://sl:{PW}@h/db", tmp_path / "old") == 0o600
    assert _manifest_mode(f"sqlite:///{tmp_path / 'study.db'}", tmp_path / "file") & 0o044   # no secret: as before


def _recorded(run_dir, url: str) -> SimpleNamespace:
    run_dir.mkdir(exist_ok=True)
    (run_dir / MANIFEST).write_text(json.dumps({"study_name": "s", "storage": url}))
    return SimpleNamespace(config=SimpleNamespace(name="s"), run_dir=run_dir)


def test_a_rotated_password_is_the_same_storage_but_another_database_is_refused(tmp_path):
    folder = _recorded(tmp_path / "run", f"postgresql://sl:{PW}@h/db")
    for now in ("postgresql://sl:rotated@h/db", "postgresql://sl@h/db", "postgresql://sl@h/db?password=rotated"):
        assert refuse_other_storage(SimpleNamespace(**vars(folder), storage_url=now)) is not None
    with pytest.raises(StorageError, match=r"holds the study stored in postgresql://sl:\*\*\*@h/db; this run's "
                                           r"storage is postgresql://sl@h/other\?password=\*\*\*") as info:
        refuse_other_storage(SimpleNamespace(**vars(folder), storage_url=f"postgresql://sl@h/other?password={PW}"))
    assert PW not in str(info.value)


def test_connection_options_and_the_driver_do_not_make_another_database():
    """An sslmode added to the URL (a server moved behind TLS) refused the resume as another study's storage."""
    same = {database_of(u) for u in ("postgresql://sl@h:5432/db", f"postgresql+psycopg2://sl:{PW}@h:5432/db",
                                     "postgresql://sl@h:5432/db?sslmode=require&connect_timeout=10",
                                     "postgresql+psycopg://sl@h:5432/db?application_name=x&password=y")}
    assert same == {"postgresql://sl@h:5432/db"}
    others = ("postgresql://sl@h:5433/db", "postgresql://sl@h:5432/db2", "postgresql://other@h:5432/db",
              "postgresql://sl@h:5432/db?host=/var/run/postgresql", "mysql://sl@h:5432/db")
    assert all(database_of(url) not in same for url in others)
    assert database_of("sqlite:////tmp/a.db?timeout=5") == "sqlite:////tmp/a.db?timeout=5"   # files: as they are


def test_a_resume_with_a_rotated_password_runs_and_records_the_new_url(write_study, tmp_path, postgres, capsys):
    """On the real server (it trusts 127.0.0.1, so any password opens it): the password rotated, then moved to
    PGPASSWORD, resumes the study, and `status`/`export` (open_run) use the URL given last."""
    first, rotated = (postgres.replace("://searchlab@", f"://searchlab:{pw}@") for pw in (PW, "R0tated"))
    extra = f"\nstorage: '{first}'\n"
    path = write_study(callable_study(write_study, n=1, extra=extra).read_text().replace("name: fake",
                                                                                         "name: rotation"))
    run_study(load_study(path), progress=False)
    options = postgres + "?sslmode=disable&connect_timeout=5"   # connection options added: the same database
    for url, n in ((rotated, 2), (postgres, 3), (options, 4)):
        run_study(load_study(path, {"storage": url, "budget.n_trials": n}), progress=False)
        run = open_run(tmp_path / "run")
        assert run.storage_url == url and len(run.study.trials) == n
        assert (tmp_path / "run" / MANIFEST).stat().st_mode & 0o777 == 0o600
    err = capsys.readouterr().err
    assert "recorded its storage with another password" in err and PW not in err and "R0tated" not in err
    attrs = optuna.load_study(study_name="rotation", storage=open_storage(postgres)).user_attrs
    assert PW not in json.dumps(attrs) and "R0tated" not in json.dumps(attrs)   # text, --set, run history
