"""The recorded search setup in words, for `status`, `compare` and the report: kept apart from the recording
(setup_record.py) so that commands which only read a study do not import what a run needs (torch)."""
from __future__ import annotations

import json
from typing import Any

from searchlab.errors import shown_value


def strategy_said(strategy: dict[str, Any]) -> str:
    """The recorded strategy in a few words: "preset quick", "my_module:MySampler", "tpe" (also for a record that
    names none: records before the name was always kept dropped the default, tpe, beside its args)."""
    return strategy.get("preset") and f"preset {strategy['preset']}" or strategy.get("class") or \
        strategy.get("name") or "tpe"


def describe_setup(setup: dict[str, Any]) -> str:
    """One line for `status`: how the search was run."""
    how = strategy_said(setup["strategy"])
    budget, executor = setup["budget"], setup["executor"]
    limits = ", ".join(f"{key} {budget[key]}" for key in ("n_trials", "epochs", "timeout", "trial_timeout")
                       if key in budget)
    # under Ray, what was asked: the cluster's slots (resources_per_trial) decide how many trials really run
    workers = (f"ray, max_concurrent {executor.get('max_concurrent') or 'none'}" if executor.get("kind") == "ray"
               else f"local x{executor.get('workers', 1)}")
    # As typed (true, null, {float: ...}): JSON is YAML, where Python's str() would say True and None
    # masked again: a record written before passwords were masked in it still holds one
    sets = "; " + " ".join(f"{k}={v if isinstance(v, str) else json.dumps(v)}"
                           for k, v in shown_value(setup["overrides"]).items()) if setup["overrides"] else ""
    # a Ray scheduler stopped trials instead of any pruner (records made before that was said held "median")
    scheduler = (executor.get("scheduler") or {}).get("kind")
    stopper = f"pruner none (Ray scheduler {scheduler})" if scheduler else f"pruner {setup['pruner']['kind']}"
    return (f"search:    {how}, {stopper}, {limits}, seed {setup['seed']}, {workers}; "
            f"{len(setup['space_searched'])} searched, {len(setup['space_fixed'])} fixed settings{sets} "
            "(the latest run's; all in the study's searchlab record)")
