"""A YAML tag in a study file (`name: !!python/object:os.system t`, `name: !mytag x`) was refused with the fix
written for a number of thousands of digits ("write a number of normal size, or quote it to make it text"); one on
a mapping or `!!binary` passed unsaid. Each is named now, at its line, with a fix that fits it."""
from __future__ import annotations

import pytest

from searchlab.config.load import load_study
from searchlab.errors import ConfigError
from test_run import callable_study

STUDY_NAME_LINE = 2   # CALLABLE's `name:` line (the text starts with a newline)


@pytest.mark.parametrize("tag, value", [("!!python/object:os.system", "t"), ("!mytag", "x"),
                                        ("!!binary", "aGVsbG8=")])
def test_a_tagged_value_is_refused_naming_the_tag_and_how_to_write_it(write_study, tag, value):
    path = callable_study(write_study)
    path.write_text(path.read_text().replace("name: fake", f"name: {tag} {value}"))
    with pytest.raises(ConfigError) as caught:
        load_study(path)
    said = str(caught.value)
    assert said.startswith(f"{path}:{STUDY_NAME_LINE}: name: the YAML tag {tag} is not allowed")
    assert "safe loading" in said and f"Fix: remove {tag}, or quote the value to make it text: '{tag} {value}'" in said
    assert "number of normal size" not in said


def test_a_tagged_mapping_is_refused_not_read_as_plain(write_study):
    path = callable_study(write_study, extra="executor: !local {kind: local}\n")
    with pytest.raises(ConfigError, match=r"executor: the YAML tag !local is not allowed.*Fix: remove !local$"):
        load_study(path)


def test_plain_tags_and_a_huge_number_keep_their_reading(write_study):
    study = load_study(callable_study(write_study, extra="seed: !!int '7'\n"))
    assert study.config.seed == 7
    with pytest.raises(ConfigError, match="number of normal size"):
        load_study(callable_study(write_study, extra="seed: " + "9" * 5000 + "\n"))
