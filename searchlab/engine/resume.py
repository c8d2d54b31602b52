"""What a resumed study must keep, checked once before any trial: its objectives, data and task, and a space
Optuna can still record.

Values of trials scored on another objective or other data would be ranked together with the new ones (and
the export would score an old model on new data). Optuna's storage refuses a parameter whose kind (int,
float, choice), log scale or list of choices differs from what earlier trials used, so every new trial would
fail on its first `suggest`.
"""
from __future__ import annotations

import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  check_distribution_compatibility)
from optuna.trial import FrozenTrial, TrialState

from searchlab.data.fingerprint import comparable as fingerprints_comparable
from searchlab.data.fingerprint import (REORDERED, changed_test_split, kept_test_arrays, kept_test_split,
                                       medmnist_test_arrays_changed, moved_members, multilabel_split_before_the_key,
                                       other_medmnist_file, replaced_contents, why_moved_files_count)
from searchlab.data.member_changes import replaced_said, with_test_of
from searchlab.data.orientation import turned_since
from searchlab.engine.changed_settings import changed_settings_warnings
from searchlab.engine.rundir import WHERE_DATA_LIVES
from searchlab.errors import ConfigError, shown_url
from searchlab.export.weights_origin import replaced_since_warnings
from searchlab.space import searchable_params
from searchlab.tasks import get_task, setting_used_of
from searchlab.tasks.costs import over_budget

if TYPE_CHECKING:
    from searchlab.config.load import Study


# Settings added after studies were recorded without them, with the value those studies had: changing one
# on resume is a change (a folder study recorded before `fit` existed was stretched).
ADDED_LATER = {"data": {"fit": "stretch", "bit_depth": None, "positive_class": None, "group_column": None}}


def _named(study: "Study") -> str:
    return f"study '{study.config.name}' in {shown_url(study.storage_url)}"   # no password shown


def check_resumable(study: "Study", ostudy: optuna.Study, record: dict[str, Any]) -> None:
    """`record`: what this run will store as the study's searchlab record (engine/run.py study_record); when
    only the test split's files changed, it is given the test split the trials were searched with
    (_note_test_split_changed)."""
    stored = [d.name.lower() for d in ostudy.directions]
    if stored != study.directions:
        raise ConfigError(f"{_named(study)} optimises {stored}, but the study file asks for {study.directions}",
                          file=str(study.file), key="objective", got=study.directions, fix="keep the objectives' "
                          "directions to resume, or give the study a new name (or run_dir)")
    trials = ostudy.get_trials(deepcopy=False)
    if trials:
        scored = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
        _check_same_record(study, ostudy.user_attrs.get("searchlab"), record, scored)
        _check_space_fits(study, trials)
        _warn_of_trials_over_budget(study, scored)
        task = get_task(study.config.task)
        for line in changed_settings_warnings(study.config.name, study.space, scored, setting_used_of(study),
                                              getattr(task, "trial_schema", None)):
            print(f"warning: {line}", file=sys.stderr)
        for line in replaced_since_warnings(t.user_attrs for t in scored):
            print(f"warning: {line}", file=sys.stderr)


def _fractions_that_drew_nothing(old: dict[str, Any], new: dict[str, Any]) -> tuple[str, ...]:
    """The split fractions whose split the data gave itself in both runs (a val/ folder, val rows): they drew
    nothing, so one removed since (a load now refuses it beside such a split) changed no split."""
    drawn = [set(d["drawn"]) for d in (old.get("data_files"), new.get("data_files"))
             if isinstance(d, dict) and "drawn" in d]
    if len(drawn) != 2:
        return ()
    return tuple(key for key, split in (("val_fraction", "val"), ("test_fraction", "test"))
                 if split not in drawn[0] | drawn[1])


def _check_same_record(study: "Study", old: Any, new: dict[str, Any], scored: list[FrozenTrial]) -> None:
    if not isinstance(old, dict):
        return   # created by a searchlab without the record, or by Optuna directly: nothing to compare
    # A folder or CSV `path` may change only where both records have the files' fingerprint to compare instead
    # (a moved copy); without one it counts as what the data is: another folder may hold other images, and the
    # test split must not move. MedMNIST's root may always change (WHERE_DATA_LIVES).
    fingerprinted = fingerprints_comparable(old.get("data_files"), new.get("data_files"))
    where = WHERE_DATA_LIVES + (("path",) if fingerprinted else ()) + _fractions_that_drew_nothing(old, new)
    for key in ("objectives", "task", "data"):
        before, now = _comparable(key, old.get(key), new[key], where)
        if before is not None and before != now:
            written = "objective" if key == "objectives" else key   # the study file's key for the record's
            raise ConfigError(f"{_named(study)} has trials scored with "
                              f"{_difference(key, before, now)}; their values would be ranked with this run's",
                              file=str(study.file), key=written, fix=f"keep {written} as it was to resume, or give "
                              "the study a new name (or run_dir) for the new setting")
    before, now = old.get("data_files"), new.get("data_files")
    listings = (old.get("data_listing"), new.get("data_listing"))
    moved = moved_members(before, now, listings)
    if moved and multilabel_split_before_the_key(old.get("data")) and new["data"].get("multilabel_split") != "random":
        raise ConfigError(f"{_named(study)} has trials scored on multi-label splits drawn by a searchlab before "
                          "data.multilabel_split: at random, or, with data.group_column, patients dealt otherwise "
                          "than now (stratified per label)", file=str(study.file), key="data.multilabel_split",
                          fix="without a group_column, write multilabel_split: random under data to resume this "
                          "study; with one, give the study a new name (or run_dir) for new splits")
    if moved and old.get("seed", new["seed"]) != new["seed"]:   # same files, splits drawn by another seed
        raise ConfigError(f"{_named(study)} has trials scored on splits that seed {old['seed']} drew from these files; "
                          f"seed {new['seed']} draws others, so trials would be ranked on other validation images, "
                          "and the test split would hold images that trials trained on", file=str(study.file),
                          key="seed", got=new["seed"], fix=f"keep seed: {old['seed']} to resume (--set "
                          f"seed={old['seed']}), or give the study a new name (or run_dir) for a search on new splits")
    if moved and moved.startswith(REORDERED):
        raise ConfigError(f"{_named(study)} has trials scored on other splits of the same files: {moved}",
                          file=str(study.file), key="data.path", fix="restore the CSV's row order to resume, or give "
                          "the study a new name (or run_dir) for a search on the new splits")
    if moved:
        raise ConfigError(f"{_named(study)} has trials scored on other files "
                          f"than data.path holds now ({moved}). {why_moved_files_count(now, resuming=True)}",
                          file=str(study.file), key="data.path",
                          fix="restore the files as they were to resume, or give the study a new name (or "
                          "run_dir) for the changed data set")
    # the search never reads the test split; the files replaced are named when both runs listed them
    replaced = replaced_contents(before, now, ("train", "val"), listings)
    if replaced:
        raise ConfigError(f"{_named(study)} has trials scored on other images "
                          f"than data.path holds now ({replaced}): new trials would be ranked with old ones on "
                          "other pixels", file=str(study.file), key="data.path", fix="restore the files as they "
                          "were to resume, or give the study a new name (or run_dir) for the changed images")
    turned = turned_since(old, study.config.data, study.config.seed, study.base_dir, ("train", "val"))
    if turned:
        raise ConfigError(f"{_named(study)} has trials scored on images read otherwise: {turned}. New trials "
                          "would be ranked with old ones on turned images", file=str(study.file), key="data.path",
                          fix="give the study a new name (or run_dir) to search again on upright images")
    other = other_medmnist_file(old.get("data_file"), new.get("data_file"))
    if other and not medmnist_test_arrays_changed(old.get("data_stat"), new.get("data_stat")):
        raise ConfigError(f"{_named(study)} has trials scored on another data "
                          f"file: {other}. New trials would be ranked with old ones on other images",
                          file=str(study.file), key="data.root", fix="point data.root at the file the trials read, "
                          "or give the study a new name (or run_dir) for this file")
    _note_test_split_changed(study, old, new)
    if scored:   # failed trials trained nothing to be ranked against
        _warn_if_epochs_changed(study, old.get("epochs"), new.get("epochs"), scored)
        if old.get("seed", new["seed"]) != new["seed"]:
            print(f"warning: study '{study.config.name}' ran its trials with seed {old['seed']}; this run's seed "
                  f"{new['seed']} seeds the sampler and new trials' training otherwise, all ranked together (each "
                  "trial's own seed is in its user attr ran_with; the export's bootstrap uses the latest). Fix: "
                  f"--set seed={old['seed']} to resume like for like, or give the study a new name (or run_dir)",
                  file=sys.stderr)
        _note_if_strategy_changed(study, old.get("search"), new.get("search"))
        if old.get("task_code") and new.get("task_code") and old["task_code"] != new["task_code"]:
            print(f"warning: study '{study.config.name}': the file of task.function "
                  f"'{study.config.task.function}' changed since its trials were scored; their values are ranked "
                  "with this run's. Fix: give the study a new name (or run_dir) when the change alters what "
                  "the function measures", file=sys.stderr)


def _note_test_split_changed(study: "Study", old: dict[str, Any], new: dict[str, Any]) -> None:
    """A test split the data fixes whose files changed, or a test image replaced in place: the search never
    reads it, so the run goes on, saying so; and `new` (the record this run stores) keeps the test split the
    trials were searched with, so that every later export says what changed since, as one without this resume
    did (the record stored the files as they were now, and the change went unsaid)."""
    before, now = old.get("data_files"), new.get("data_files")
    listings = (old.get("data_listing"), new.get("data_listing"))
    changed = changed_test_split(before, now, listings)
    replaced = replaced_contents(before, now, ("test",))
    name = f"study '{study.config.name}'"
    if changed:
        print(f"note: {name}: the test split changed since its trials ran ({changed}); the training and "
              "validation splits did not (your own test split moves no other), so the search goes on; an export "
              "scores the test split as it is then, and says it changed", file=sys.stderr)
    elif replaced:
        print(f"note: {name}: {replaced_said(*listings, 'test', before['splits']['test']['files'])} since its "
              "trials ran; the search never reads the test split, so it goes on; an export scores the images as "
              "they are then, and says they were replaced", file=sys.stderr)
    if changed or replaced:
        new["data_files"] = kept_test_split(before, now)
        new["data_listing"] = with_test_of(*listings) if new["data_files"] is not now else new["data_listing"]
    _note_medmnist_test_arrays_changed(study, old, new)


def _note_medmnist_test_arrays_changed(study: "Study", old: dict[str, Any], new: dict[str, Any]) -> None:
    """A MedMNIST file saved again with other test arrays only (_check_same_record refused any other change):
    said, and `new` keeps the file the trials read (data_file) and its test arrays' CRCs, so that every later
    export says its test metrics are of the file as it is then, and a later resume still tells the change."""
    if not other_medmnist_file(old.get("data_file"), new.get("data_file")):
        return
    changed = medmnist_test_arrays_changed(old.get("data_stat"), new.get("data_stat"))
    print(f"note: study '{study.config.name}': {changed} since its trials ran; its train and val arrays did not, "
          "and the search never reads the test split, so it goes on; an export scores the test arrays as they "
          "are then, and says the file changed", file=sys.stderr)
    new["data_file"] = old["data_file"]
    new["data_stat"] = kept_test_arrays(old["data_stat"], new["data_stat"])


def _note_if_strategy_changed(study: "Study", before: Any, now: Any) -> None:
    """Another strategy, its args or its preset's contents since the trials ran: taken, as the search goes on
    from the trials in the study, but said (evolution's population_size changed on a resume without a word)."""
    if not isinstance(before, dict) or not isinstance(now, dict):
        return
    old, new = _recorded_strategy(before), _recorded_strategy(now)
    if old == new:
        return
    preset = old[0].get("preset")
    if preset is not None and preset == new[0].get("preset"):   # what changed is what the preset applies
        print(f"note: study '{study.config.name}': what its strategy applies changed since its trials ran: preset "
              f"{preset}: {_applied_said(*old)} -> {_applied_said(*new)}; this run searches with "
              f"{_applied_said(*new)}, going on from the trials in the study", file=sys.stderr)
        return
    print(f"note: study '{study.config.name}' ran its trials with strategy {_strategy_said(*old)}; this run "
          f"searches with {_strategy_said(*new)}, going on from the trials in the study", file=sys.stderr)


Recorded = tuple[dict[str, Any], dict[str, Any] | None]


def _recorded_strategy(search: dict[str, Any]) -> Recorded:
    """(the strategy as written, its preset's contents as read or None), each naming its strategy (an older
    record may name none: named_strategy)."""
    from searchlab.engine.setup_record import named_strategy

    read = search.get("strategy_preset_read")
    return named_strategy(search.get("strategy")), named_strategy(read) if isinstance(read, dict) else None


def _applied_said(written: dict[str, Any], read: dict[str, Any] | None) -> str:
    """'tpe, args {'n_startup_trials': 2}': the strategy a record ran and its args as they apply (a preset's,
    then the study's own over them); a preset whose contents were not recorded by its written args alone."""
    source = read if read is not None else written
    name = source.get("name") or source.get("class") or f"preset {written.get('preset')}"
    args = {**((read or {}).get("args") or {}), **(written.get("args") or {})}
    return f"{name}, args {args}" if args else str(name)


def _strategy_said(written: dict[str, Any], read: dict[str, Any] | None) -> str:
    """'preset quick (tpe, args {'n_startup_trials': 2})', 'random': the strategy as written and what it applies."""
    preset = written.get("preset")
    if preset is None or read is None:
        return _applied_said(written, read)
    return f"preset {preset} ({_applied_said(written, read)})"


def _warn_of_trials_over_budget(study: "Study", scored: list[FrozenTrial]) -> None:
    """A budget.max_flops/max_params/max_depth tightened on resume prunes new trials over it, but trials
    completed under the old one still rank: one became the best trial and `export` shipped it, unsaid."""
    over = [(t.number, reason) for t in scored if t.state == TrialState.COMPLETE
            and (reason := over_budget(t.user_attrs.get("metrics") or {}, study.config.budget))]
    if over:
        number, reason = over[0]
        print(f"warning: study '{study.config.name}' has {len(over)} completed trial(s) over this run's "
              f"architecture budget (e.g. trial {number}, {reason}), trained under an earlier one: they still "
              "rank with the others, and the best trial and `searchlab export` may be one of them. Fix: export a "
              "trial within the budget with --trial N, or give the study a new name (or run_dir) to search "
              "under the new budget", file=sys.stderr)


def _warn_if_epochs_changed(study: "Study", before: Any, now: Any, scored: list[FrozenTrial]) -> None:
    """Warned, not refused: lengthening a short exploratory search is a real use, but its trials are then
    ranked against shorter ones (a trial's own `train.epochs`, when searched, is in its params). Trials that
    recorded their epochs (config_with_defaults) are counted by them: the latest run's record alone named the
    epochs of a run that trained 3 of 13 trials."""
    ran = Counter(t.user_attrs.get("config_with_defaults", {}).get("train", {}).get("epochs") for t in scored)
    ran.pop(None, None)
    if ran and set(ran) != {now}:
        counts = ", ".join(f"{epochs} ({n} trial{'s' * (n > 1)})" for epochs, n in ran.most_common())
        usual = ran.most_common(1)[0][0]
        print(f"warning: study '{study.config.name}' has trials trained for epochs {counts}; this run's train "
              f"{now}, and all are ranked together. Fix: keep budget.epochs={usual} to resume like for like, or "
              "give the study a new name (or run_dir)", file=sys.stderr)
    elif not ran and before is not None and now is not None and before != now:
        print(f"warning: study '{study.config.name}' has trials trained with budget.epochs={before}; this run's "
              f"train {now}, and all are ranked together. Fix: keep budget.epochs={before} to resume like for "
              "like, or give the study a new name (or run_dir)", file=sys.stderr)


def _difference(key: str, before: Any, now: Any) -> str:
    """What changed, setting by setting ("data.size 28, not 64"), not two whole records."""
    if not (isinstance(before, dict) and isinstance(now, dict)):
        return f"{key} {before!r}, not {now!r}"
    changed = [k for k in before if before[k] != now.get(k)] + [k for k in now if k not in before]
    return ", ".join(f"{key}.{k} {before.get(k)!r}, not {now.get(k)!r}" for k in changed)


def _comparable(key: str, old: Any, new: Any,
                where_data_lives: tuple[str, ...] = WHERE_DATA_LIVES) -> tuple[Any, Any]:
    """Settings both records have (a key a later searchlab added is not a change), less where data lives."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return old, new
    old = {**{k: v for k, v in ADDED_LATER.get(key, {}).items() if k in new}, **old}
    shared = [k for k in old if k in new and not (key == "data" and k in where_data_lives)]
    return {k: old[k] for k in shared}, {k: new[k] for k in shared}


def _check_space_fits(study: "Study", trials: list[FrozenTrial]) -> None:
    stored: dict[str, BaseDistribution] = {}
    for trial in trials:
        for name, distribution in trial.distributions.items():
            stored.setdefault(name, distribution)
    for param, _ in searchable_params(study.space):
        old = stored.get(param.name)
        if old is None:
            continue
        new = param.distribution()
        try:
            check_distribution_compatibility(old, new)
        except ValueError:
            raise ConfigError(
                f"{_named(study)} already has trials where this parameter is "
                f"{describe(old)}; Optuna keeps one kind (and one list of choices) per parameter for a whole "
                "study", file=str(study.file), key=f"space.{param.name}", got=describe(new),
                fix=f"keep it {kind_of(old)} to resume this study (a range may move; its kind and log scale may "
                "not), or give the study a new name (or run_dir) to search the new space") from None


def kind_of(distribution: BaseDistribution) -> str:
    """What must stay on resume: a choice's list, a number's kind and log scale (not its range)."""
    if isinstance(distribution, CategoricalDistribution):
        return describe(distribution)
    kind = "a float" if isinstance(distribution, FloatDistribution) else "an int"
    return kind + (" on a log scale" if distribution.log else " on a linear scale")   # type: ignore[attr-defined]


def describe(distribution: BaseDistribution) -> str:
    if isinstance(distribution, CategoricalDistribution):
        return f"a choice of {list(distribution.choices)}"
    kind = "a float" if isinstance(distribution, FloatDistribution) else "an int"
    log = " (log scale)" if distribution.log else ""   # type: ignore[attr-defined]
    step = distribution.step   # type: ignore[attr-defined]
    # two grids are two spaces (an int's step 1 is every value, as unwritten)
    grid = f" in steps of {step:g}" if step is not None and (kind == "a float" or step != 1) else ""
    return f"{kind} in [{distribution.low}, {distribution.high}]{grid}{log}"   # type: ignore[attr-defined]
