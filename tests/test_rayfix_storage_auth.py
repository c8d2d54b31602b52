"""A PostgreSQL storage refusing the password: the fix names the password's places (PGPASSWORD, ~/.pgpass),
for a Ray node its own Ray's environment, and for status/trials the run folder's record the URL came from."""
from __future__ import annotations

import json

import pytest
import sqlalchemy.exc

from searchlab.engine import storage
from searchlab.errors import SearchlabError, StorageError

URL = "postgresql://searchlab@127.0.0.1:5432/searchlab"
NO_PASSWORD = 'connection to server at "127.0.0.1", port 5432 failed: fe_sendauth: no password supplied'
WRONG_PASSWORD = ('connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed '
                  'for user "searchlab"')


def _server_says(monkeypatch, words):
    """The server refuses every connection with `words`, as libpq reports them (through SQLAlchemy)."""
    def refused(*args, **kwargs):
        raise sqlalchemy.exc.OperationalError("connect", {}, Exception(words))

    monkeypatch.setattr(storage, "_rdb", refused)


@pytest.mark.parametrize("words", [NO_PASSWORD, WRONG_PASSWORD])
def test_a_refused_password_is_said_with_where_the_password_goes(monkeypatch, words):
    _server_says(monkeypatch, words)
    with pytest.raises(StorageError) as caught:
        storage.open_storage(URL)
    message = str(caught.value)
    assert message.count("Fix:") == 1 and words.splitlines()[0] in message
    assert "PGPASSWORD" in message and "~/.pgpass" in message
    assert "that the server is running" not in message   # it answered: URL, server and driver are fine


def test_another_failure_keeps_the_general_fix(monkeypatch):
    _server_says(monkeypatch, 'connection to server at "127.0.0.1", port 1 failed: Connection refused')
    with pytest.raises(StorageError, match="Fix: check the URL, that the server is running"):
        storage.open_storage(URL)


def test_a_ray_node_without_the_password_is_told_to_start_its_ray_with_it(write_study, monkeypatch):
    from searchlab.config.load import load_study
    from searchlab.engine.ray_cluster import _open_study_here, _storage_unreachable
    from test_run import callable_study

    _server_says(monkeypatch, NO_PASSWORD)
    problem = _open_study_here(URL, "fake")   # what the node's check returns
    study = load_study(callable_study(write_study, n=1, extra=f"\nstorage: '{URL}'\n"))
    with pytest.raises(SearchlabError) as caught:
        _storage_unreachable(study, {"NodeManagerAddress": "192.0.2.2"}, problem)
    message = str(caught.value)
    assert message.startswith("Ray node 192.0.2.2 cannot open the study 'fake'") and "no password supplied" in message
    assert message.count("Fix:") == 1, message
    assert "ray start" in message and "PGPASSWORD" in message and "~/.pgpass" in message
    assert "not localhost" not in message


def test_status_of_a_run_folder_names_the_record_its_storage_url_came_from(tmp_path, monkeypatch):
    from searchlab.engine.rundir import open_run

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "searchlab.json").write_text(json.dumps({"study_name": "fake", "storage": URL}))
    _server_says(monkeypatch, NO_PASSWORD)
    with pytest.raises(StorageError) as caught:
        open_run(run_dir)
    message = str(caught.value)
    assert f"key `storage` of {run_dir / 'searchlab.json'}" in message and message.count("Fix:") == 1
    assert message.index("searchlab.json") < message.index("Fix:") < message.index("PGPASSWORD")
