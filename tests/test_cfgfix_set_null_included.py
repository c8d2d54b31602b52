"""`--set KEY=null` for a space key an included fragment writes (`include: optim.yaml`): it was set to null over
the fragment's range, and the task refused it as "not a valid number ... leave optim.lr out for its default",
which the study could not do (the fragment wrote it). It is now removed from the merged space the study runs, so
the task's default applies, as a key the study writes is removed from the file."""
from __future__ import annotations

from searchlab.cli import parse_overrides
from searchlab.config.load import load_study
from searchlab.space import FixedParam, FloatParam
from test_config import error_of

OPTIM = "name: s\ntask: classify\nspace:\n  include: optim.yaml\n  model: {kind: cnn, depth: {int: [1, 3]}}\n"
MODELS = "name: s\ntask: classify\nspace:\n  include: optim.yaml\n  model: {include: models.yaml}\n"


def test_null_removes_a_key_an_included_fragment_writes(write_study):
    study = load_study(write_study(OPTIM), parse_overrides(["space.optim.lr=null"]))
    optim = study.space.get("optim")
    assert optim.get("lr") is None
    assert isinstance(optim.get("weight_decay"), FloatParam) and optim.get("name").value == "adamw"
    assert study.overrides == {"space.optim.lr": None}


def test_the_removed_key_is_not_recorded_as_searched_and_a_second_load_is_the_same(write_study):
    from searchlab.engine.setup_record import search_setup

    path = write_study(OPTIM)
    study = load_study(path, {"space.optim.lr": None})
    setup = search_setup(study)
    assert "optim.lr" not in setup["space_searched"] and "optim.weight_decay" in setup["space_searched"]
    assert not any(key.startswith("optim.lr") for key in setup["space_fixed"])
    assert load_study(path, {"space.optim.lr": None}).space == study.space   # a resume with the option


def test_null_removes_a_whole_included_section_and_a_key_beside_a_value(write_study):
    study = load_study(write_study(OPTIM), {"space.augment": None, "space.optim.weight_decay": 0.01})
    assert study.space.get("augment") is None
    assert study.space.get("optim").get("weight_decay") == FixedParam("optim.weight_decay", 0.01)


def test_null_removes_a_key_of_an_included_one_of_option(write_study):
    path = write_study(MODELS)
    for key in ("space.model.cnn.depth", "space.model.depth"):
        model = load_study(path, {key: None}).space.get("model")
        assert model.option("cnn").get("depth") is None and model.option("cnn").get("width") is not None
        assert model.option("timm").get("drop_rate") is not None


def test_a_misspelt_key_under_an_included_section_is_still_refused(write_study):
    err = error_of(write_study, OPTIM, {"space.optim.lrr": None})
    assert err.key == "space.optim.lrr" and err.file.endswith("(--set space.optim.lrr)") and "lr" in err.fix


def test_a_space_key_neither_the_study_nor_a_fragment_writes_is_still_set_to_null(write_study):
    study = load_study(write_study(OPTIM), {"space.train.early_stopping": None})
    assert study.space.get("train").get("early_stopping") == FixedParam("train.early_stopping", None)


def test_null_of_a_section_and_of_a_key_inside_it_together(write_study):
    study = load_study(write_study(OPTIM), {"space.optim": None, "space.optim.lr": None})
    assert study.space.get("optim") is None and study.space.get("model") is not None
