"""Storage URLs in messages: a URL given where a run folder or study file is expected, a password with an
unencoded '@', a URL missing its colon, a database that does not exist. None may print the password."""
from __future__ import annotations

from pathlib import Path

import pytest

from searchlab.cli import main
from searchlab.config.checks_places import storage_url_fix
from searchlab.config.load import load_study
from searchlab.config.yamlsrc import read_yaml
from searchlab.engine.rundir import open_run
from searchlab.engine.storage import _storage_fix, open_storage
from searchlab.errors import ConfigError, SearchlabError, StorageError, without_secrets

PASSWORD = "S3cretPw!x"
URL = f"postgresql://searchlab:{PASSWORD}@127.0.0.1:1/sl"   # port 1: refused at once


@pytest.mark.parametrize("argv", [["status", URL], ["trials", URL], ["report", URL], ["export", URL, "--out", "x"],
                                  ["compare", URL, URL]])
def test_a_storage_url_given_as_the_run_folder_is_said_so_with_its_password_masked(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert PASSWORD not in err
    assert "'postgresql://searchlab:***@127.0.0.1:1/sl' is a storage URL, not a run folder" in err
    assert "searchlab dashboard URL" in err


def test_a_storage_url_given_as_the_study_file_of_run(capsys):
    assert main(["run", URL]) == 2
    err = capsys.readouterr().err
    assert PASSWORD not in err and "is a storage URL, not a study file" in err and "--set storage=URL" in err


def test_a_url_that_became_a_path_is_never_shown_with_its_password():
    """From Python code (a Path, its `//` collapsed by pathlib), past the CLI's own check."""
    for call in (open_run, read_yaml):
        with pytest.raises(SearchlabError) as caught:
            call(Path(URL))
        assert PASSWORD not in str(caught.value) and "storage URL" in str(caught.value)
    assert PASSWORD not in str(ConfigError("file not found", file=str(Path(URL))))


def test_dashboard_of_a_storage_url_opens_it_and_never_prints_the_password(capsys):
    assert main(["dashboard", URL]) == 2   # opened (refused: nothing listens on port 1), not "does not exist"
    err = capsys.readouterr().err
    assert "cannot open storage 'postgresql://searchlab:***@127.0.0.1:1/sl'" in err and PASSWORD not in err


def test_dashboard_of_a_sqlite_url_serves_it_and_refuses_a_missing_file(tmp_path, monkeypatch, capsys):
    import optuna
    import optuna_dashboard

    missing = tmp_path / "typo.db"
    assert main(["dashboard", f"sqlite:///{missing}"]) == 2
    assert "no such file" in capsys.readouterr().err and not missing.exists()   # no empty database made
    url = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(study_name="s", storage=url)
    served = []
    monkeypatch.setattr(optuna_dashboard, "run_server", lambda storage, **kwargs: served.append(storage))
    assert main(["dashboard", url, "--port", "18431"]) == 0
    assert [s.get_all_studies()[0].study_name for s in served] == ["s"]
    assert f"optuna-dashboard for storage '{url}'" in capsys.readouterr().out


AT_URL = "postgresql://searchlab:S3c@ret@127.0.0.1:1/sl"


def test_a_password_with_an_unencoded_at_is_refused_at_load_and_at_open():
    with pytest.raises(ConfigError) as caught:
        load_study("studies/quickstart.yaml", {"storage": AT_URL})
    said = str(caught.value)
    assert "more than one '@'" in said and "%40" in said and "PGPASSWORD" in said
    assert "S3c" not in said and "ret@" not in said
    with pytest.raises(StorageError, match="more than one '@'") as caught:
        open_storage(AT_URL)   # a run folder's manifest, or Python code: the driver is never handed it
    assert "S3c" not in str(caught.value) and "ret@" not in str(caught.value)
    # a user name with an '@' (user@server) and an encoded '@' in the password stay allowed
    load_study("studies/quickstart.yaml", {"storage": "postgresql://us@er:pw@127.0.0.1:1/sl"})
    load_study("studies/quickstart.yaml", {"storage": "postgresql://searchlab:S3c%40ret@127.0.0.1:1/sl"})


def test_a_drivers_error_loses_the_password_and_its_pieces():
    said = without_secrets("failed to resolve host 'ret@127.0.0.1' (password S3c@ret)", AT_URL)
    assert "ret@" not in said and "S3c" not in said
    assert without_secrets("bad password hunter2", "postgresql://u@h/d?password=hunter2") == "bad password ***"


def test_a_url_missing_its_colon_gets_one_scheme_in_the_fix():
    fix = storage_url_fix(f"postgresql//searchlab:{PASSWORD}@127.0.0.1:55437/sl")
    assert fix == "write :// after postgresql, e.g. postgresql://searchlab:***@127.0.0.1:55437/sl"
    assert storage_url_fix("postgres//u@h/db") == "write :// after postgresql, e.g. postgresql://u@h/db"
    assert storage_url_fix("u@h/db") == "for a PostgreSQL server write postgresql://u@h/db"


def test_a_database_that_does_not_exist_gets_createdb():
    fix = _storage_fix("postgresql://searchlab:pw@127.0.0.1:55437/nodb",
                       'connection failed: FATAL:  database "nodb" does not exist')
    assert fix.startswith("create the database (createdb -h 127.0.0.1 -p 55437 -U searchlab nodb")
    assert "correct its name" in fix


def test_a_database_that_does_not_exist_on_a_live_server(postgres):
    with pytest.raises(StorageError) as caught:
        open_storage(postgres.rsplit("/", 1)[0] + "/nodb")
    assert 'database "nodb" does not exist' in str(caught.value) and "Fix: create the database (createdb" in \
        str(caught.value)


def test_the_dashboard_command_printed_after_a_run_works_as_pasted():
    """optuna-dashboard given the masked password (':***@') failed to log in with a traceback."""
    from types import SimpleNamespace

    from searchlab.summary import dashboard_command

    said = dashboard_command(SimpleNamespace(storage_url="postgresql://u:S3cret@127.0.0.1:5432/sl", run_dir="runs/a"))
    assert said == "searchlab dashboard runs/a   (or: PGPASSWORD=... optuna-dashboard postgresql://u@127.0.0.1:5432/sl)"
    assert "***" not in said and "S3cret" not in said
    plain = dashboard_command(SimpleNamespace(storage_url="sqlite:///runs/a/study.db", run_dir="runs/a"))
    assert plain == "optuna-dashboard sqlite:///runs/a/study.db   (or: searchlab dashboard runs/a)"
