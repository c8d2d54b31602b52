"""Every export scores the test split. The study keeps a list of those scorings (user attribute
`searchlab_exports`: when, where, which trials, TTA; never the test scores, which stay out of the study so that
nothing searching can read them), and each export says how many came before it: a number picked among several
exports' test scores is selected on the test split, and a reader of the model card can now see whether it was."""
from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna

from searchlab.engine.storage import READ_ONLY, opened_read_only
from searchlab.export.publish import when_published

KEY = "searchlab_exports"
KEPT = 50   # the latest scorings listed in a model card (the study keeps all)


def record_scoring(study: optuna.Study, config: dict[str, Any], out: Path) -> dict[str, Any]:
    """Appends this export's test scoring to the study's list once the export is published (a failed export was
    listed, and `status` pointed at it); returns what config.json says of the list."""
    numbers = [t["number"] for t in config["trials"]] if "trials" in config else [config["trial"]["number"]]
    entry = {"at_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "out": str(out.resolve()),
             "trials": numbers, "tta": config.get("tta", "none")}
    earlier = list(study.user_attrs.get(KEY, []))
    if opened_read_only(study._storage):
        return {"times": None, "not_recorded": f"the run folder's study database is read-only here ({READ_ONLY})",
                "earlier_exports": earlier[-KEPT:]}
    try:   # written unchanged now, so that config.json can say whether the study takes the record
        study.set_user_attr(KEY, earlier)
    except Exception as exc:   # noqa: BLE001 -- a read-only copy of a run still exports; the card says so
        return {"times": None, "not_recorded": f"the study could not be written ({type(exc).__name__}: {exc})",
                "earlier_exports": earlier[-KEPT:]}
    when_published(lambda: _append(study, entry))
    return {"times": len(earlier) + 1, "earlier_exports": earlier[-KEPT:], "this": _model(entry),
            "recorded_in": f"the study's user attribute {KEY}"}


def _model(entry: dict[str, Any]) -> dict[str, Any]:
    """What an export's test scores depend on: its trials and TTA."""
    return {"trials": list(entry["trials"]), "tta": entry.get("tta", "none")}


def _append(study: optuna.Study, entry: dict[str, Any]) -> None:
    """Read again: an export from another folder may have added its own since."""
    try:
        study.set_user_attr(KEY, list(study.user_attrs.get(KEY, [])) + [entry])
    except Exception as exc:   # noqa: BLE001 -- the export is made; only its record is missing
        print(f"note: the export in {entry['out']} is made, but its test scoring could not be recorded in the "
              f"study ({type(exc).__name__}: {exc}), though its config.json counts it", file=sys.stderr)


def scorings_note(scored: dict[str, Any]) -> str | None:
    """A line for stderr when this is not the test split's first scoring, or when it could not be counted."""
    if scored["times"] is None:
        return f"note: this export's test scoring is not recorded in the study: {scored['not_recorded']}"
    if scored["times"] == 1:
        return None
    earlier = scored["earlier_exports"]
    if scored.get("this") and all(_model(e) == _model(scored["this"]) for e in earlier) \
            and len(earlier) + 1 == scored["times"]:
        return None   # the same model scored again (a resume that kept the best trial): the same scores, no pick
    listed = "; ".join(f"trials {','.join(map(str, e['trials']))} tta {e['tta']} at {e['at_utc']}"
                       for e in earlier[-3:])
    return (f"note: this run's test split has now been scored by {scored['times']} exports (the latest before "
            f"this: {listed}). Reporting the best of several exports' test scores selects on the test split; "
            "config.json lists them under test_split_scored")
