"""Property-based fuzzing of the study-file reader and the space compiler (hypothesis).

The property: whatever the file holds, `load_study` returns a study or raises a SearchlabError whose message
says what is wrong; never another exception (a traceback from deep inside), never a hang.
"""
from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from searchlab.config.load import load_study  # noqa: E402
from searchlab.errors import SearchlabError  # noqa: E402

# CI runs a small sample, the same every run (a red CI must mean a change broke something); the bench sets
# SEARCHLAB_FUZZ_EXAMPLES and gets a large, new random sample each time (that is how seed: -1 was found)
EXAMPLES = os.environ.get("SEARCHLAB_FUZZ_EXAMPLES")
SETTINGS = settings(max_examples=int(EXAMPLES or 120), derandomize=EXAMPLES is None, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                           HealthCheck.too_slow])

BASE = {
    "name": "fuzz",
    "data": {"source": "medmnist", "name": "breastmnist", "download": False},
    "task": "classify",
    "space": {"model": {"kind": "cnn", "depth": {"int": [1, 3]}, "width": {"choice": [8, 16]}},
              "optim": {"lr": {"float": [1.0e-4, 1.0e-2], "log": True}, "name": {"choice": ["adam", "sgd"]}},
              "augment": {"policy": {"choice": ["none", "flip_rotate"]}},
              "train": {"batch_size": 32}},
    "strategy": "tpe",
    "objective": "auc",
    "budget": {"n_trials": 4, "epochs": 2},
    "pruner": "median",
    "executor": {"kind": "local", "workers": 1},
    "seed": 0,
}

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=-10**30, max_value=10**30),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                    st.sampled_from(["auto", "none", "int", "float", "choice", "include", "-1", "1e999", ""]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            out += _paths(child, prefix + (key,))
    return out


PATHS = _paths(BASE)


def _expect_study_or_searchlab_error(path: Path) -> None:
    try:
        load_study(path)
    except SearchlabError as exc:
        assert str(exc).strip(), "an error without a message"
    # anything else propagates and fails the property, with hypothesis's minimal example


@pytest.fixture()
def study_file(tmp_path, breastmnist_root):
    def write(data: Any = None, text: str | None = None, raw: bytes | None = None) -> Path:
        path = tmp_path / "study.yaml"
        if raw is not None:
            path.write_bytes(raw)
        elif text is not None:
            path.write_text(text, encoding="utf-8")
        else:
            if isinstance(data, dict) and isinstance(data.get("data"), dict):
                data["data"].setdefault("root", str(breastmnist_root))
            path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
        return path

    return write


def test_the_base_study_itself_loads(study_file):
    assert load_study(study_file(copy.deepcopy(BASE))).config.name == "fuzz"


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(PATHS), values), min_size=1, max_size=3))
def test_any_value_at_any_key_gives_a_study_or_a_searchlab_error(study_file, edits):
    data = copy.deepcopy(BASE)
    for path, value in edits:
        node = data
        for key in path[:-1]:
            if not isinstance(node, dict) or not isinstance(node.get(key), dict):
                break
            node = node[key]
        else:
            node[path[-1]] = value
    _expect_study_or_searchlab_error(study_file(data))


numbers = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=True, allow_infinity=True))
params = st.one_of(
    st.fixed_dictionaries({"int": st.lists(numbers, max_size=3)}, optional={"log": st.booleans(), "step": numbers}),
    st.fixed_dictionaries({"float": st.lists(numbers, max_size=3)}, optional={"log": st.booleans(), "step": numbers}),
    st.fixed_dictionaries({"choice": st.lists(scalars, max_size=4)}),
    st.fixed_dictionaries({"include": st.text(max_size=12)}),
    scalars)
spaces = st.recursive(params, lambda inner: st.dictionaries(st.sampled_from(
    ["model", "optim", "augment", "train", "imbalance", "kind", "lr", "width", "depth", "x"]), inner, max_size=4),
    max_leaves=10)


@SETTINGS
@given(spaces)
def test_any_space_compiles_or_gives_a_searchlab_error(study_file, space):
    _expect_study_or_searchlab_error(study_file({**copy.deepcopy(BASE), "space": space}))


@SETTINGS
@given(st.dictionaries(st.text(max_size=10), values, max_size=5))
def test_any_extra_or_missing_sections_give_a_searchlab_error(study_file, extra):
    data = {**{k: v for k, v in copy.deepcopy(BASE).items() if k not in extra}, **extra}
    _expect_study_or_searchlab_error(study_file(data))


@SETTINGS
@given(st.text(max_size=300))
def test_any_text_gives_a_searchlab_error_or_a_study(study_file, text):
    _expect_study_or_searchlab_error(study_file(text=text))


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_give_a_searchlab_error_or_a_study(study_file, raw):
    _expect_study_or_searchlab_error(study_file(raw=raw))


BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefgh", "bcdefghi")) + "name: *i\n"


@pytest.mark.parametrize("case, text", [
    ("alias bomb (10^9 leaves)", BOMB),
    ("deep nesting", "name: x\nspace: " + "[" * 5000 + "]" * 5000 + "\n"),
    ("deep mappings", "name: x\nspace:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 400)) + " " * 400 + "v: 1\n"),
    ("huge integer", "name: x\nseed: " + "9" * 5000 + "\n"),
    ("huge float", "name: x\nbudget: {n_trials: 1e999}\n"),
    ("a document stream", "name: a\n---\nname: b\n"),
    ("a negative seed (found by this fuzzer)", "name: x\ndata: {source: medmnist, name: breastmnist}\nseed: -1\n"),
    ("a step of 1e-96 (found by this fuzzer)", "name: x\ndata: {source: medmnist, name: breastmnist}\n"
                                             "space: {model: {float: [0, 1], step: 5.8e-96}}\n"),
    ("a seed past 32 bits", "name: x\ndata: {source: medmnist, name: breastmnist}\nseed: 4294967296\n"),
    ("merge keys", "base: &b {name: x}\n<<: *b\n"),
])
def test_hostile_yaml_gives_a_searchlab_error(study_file, case, text):
    with pytest.raises(SearchlabError):
        load_study(study_file(text=text))


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1", "utf-32"])
def test_a_file_in_another_encoding_is_named_as_such(study_file, encoding):
    raw = "name: caf\u00e9\ndata: {source: medmnist, name: breastmnist}\n".encode(encoding)
    with pytest.raises(SearchlabError, match=r"not UTF-8 text .*Fix: save the file as UTF-8"):
        load_study(study_file(raw=raw))


def test_a_python_tag_constructs_nothing_and_runs_nothing(study_file, tmp_path):
    """The hostile-file case ran `os.system('true')`, which leaves no trace whether it ran or not."""
    marker = tmp_path / "ran"
    with pytest.raises(SearchlabError):
        load_study(study_file(text=f"name: !!python/object/apply:os.system ['touch {marker}']\n"))
    assert not marker.exists()


def test_nan_and_infinite_bounds_are_refused_by_name(study_file):
    data = copy.deepcopy(BASE)
    data["space"]["optim"]["lr"] = {"float": [math.nan, math.inf]}
    with pytest.raises(SearchlabError, match="space.optim.lr"):
        load_study(study_file(data))
