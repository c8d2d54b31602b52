"""Every export scores the test split. The study keeps a list of those scorings (user attribute
`searchlab_exports`: when, where, which trials, TTA; never the test scores, which stay out of the study so that
nothing searching can read them), and each export says how many came before it: a number picked among several
exports' test scores is selected on the test split, and a reader of the model card can now see whether it was."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna

KEY = "searchlab_exports"
KEPT = 50   # the latest scorings listed in a model card (the study keeps all)


def record_scoring(study: optuna.Study, config: dict[str, Any], out: Path) -> dict[str, Any]:
    """Appends this export's test scoring to the study's list; returns what config.json says of the list."""
    numbers = [t["number"] for t in config["trials"]] if "trials" in config else [config["trial"]["number"]]
    entry = {"at_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "out": str(out.resolve()),
             "trials": numbers, "tta": config.get("tta", "none")}
    earlier = list(study.user_attrs.get(KEY, []))
    try:
        study.set_user_attr(KEY, earlier + [entry])
    except Exception as exc:   # noqa: BLE001 -- a read-only copy of a run still exports; the card says so
        return {"times": None, "not_recorded": f"the study could not be written ({type(exc).__name__}: {exc})",
                "earlier_exports": earlier[-KEPT:]}
    return {"times": len(earlier) + 1, "earlier_exports": earlier[-KEPT:],
            "recorded_in": f"the study's user attribute {KEY}"}


def scorings_note(scored: dict[str, Any]) -> str | None:
    """A line for stderr when this is not the test split's first scoring, or when it could not be counted."""
    if scored["times"] is None:
        return f"note: this export's test scoring is not recorded in the study: {scored['not_recorded']}"
    if scored["times"] == 1:
        return None
    earlier = scored["earlier_exports"]
    listed = "; ".join(f"trials {','.join(map(str, e['trials']))} tta {e['tta']} at {e['at_utc']}"
                       for e in earlier[-3:])
    return (f"note: this run's test split has now been scored by {scored['times']} exports (the latest before "
            f"this: {listed}). Reporting the best of several exports' test scores selects on the test split; "
            "config.json lists them under test_split_scored")
