"""`storage: journal:///jr/study.log` (three slashes, as `sqlite:///jr/study.db` is written for a relative path)
is the absolute /jr/study.log: it made a folder at the filesystem root without a word. It is refused at load,
naming the relative spelling; a journal in a root folder that exists, and a relative one, still load."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from searchlab.config.load import load_study
from searchlab.errors import ConfigError
from test_run import callable_study


def test_a_journal_in_a_root_folder_that_does_not_exist_is_refused(write_study):
    missing = f"jr_{uuid.uuid4().hex[:8]}"
    assert not Path("/", missing).exists()
    path = callable_study(write_study, extra=f"storage: journal:///{missing}/study.log\n")
    with pytest.raises(ConfigError) as caught:
        load_study(path)
    said = str(caught.value)
    assert f"{path}:" in said and "storage" in said and f"/{missing}/study.log" in said
    assert f"journal://{missing}/study.log (two slashes)" in said
    assert not Path("/", missing).exists()


def test_a_journal_directly_at_the_root_is_refused(write_study):
    with pytest.raises(ConfigError, match="directly at the filesystem root"):
        load_study(callable_study(write_study, extra="storage: journal:///study.log\n"))


def test_an_absolute_journal_in_an_existing_folder_and_a_relative_one_load(write_study, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    absolute = load_study(callable_study(write_study, extra=f"storage: journal://{tmp_path / 'j.log'}\n"))
    assert absolute.storage_url == f"journal://{tmp_path / 'j.log'}"
    relative = load_study(callable_study(write_study, extra="storage: journal://jr/study.log\n"))
    assert relative.storage_url == f"journal://{tmp_path / 'jr' / 'study.log'}"
