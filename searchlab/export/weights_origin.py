"""Whether the export or weights file a study's trials learned from (the weights they started from, the generator
whose images they trained on) still holds the weights they used. Each trial records the path with the weights'
SHA-256 (tasks/transfer.py's tell_source); a path alone may name other weights later, when the export or file
was moved away or another was written in its place. Kept free of torch: `status` and `resume` read it."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ORIGIN_KEYS = ("weights_from", "synthetic_from")   # a trial's user attrs (and export records) naming an export


def recorded_digests(origins: Iterable[dict[str, Any]]) -> dict[str, set[str]]:
    """{export folder or weights file: the weights' SHA-256s trials recorded for it}, from their `weights_from`
    and `synthetic_from` records (a run folder's record carries none: its best trial is read each time)."""
    found: dict[str, set[str]] = {}
    for origin in origins:
        where = (origin.get("export") or origin.get("file")) if isinstance(origin, dict) else None
        if where and origin.get("sha256"):
            found.setdefault(str(where), set()).add(str(origin["sha256"]))
    return found


def origins_of(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The origin records among trials' user attrs (or an export's trial records)."""
    return [record[key] for record in records for key in ORIGIN_KEYS if isinstance(record.get(key), dict)]


def file_sha256(path: Path) -> str:
    """The SHA-256 of a weights file, as trials record it (tell_source) and exports write it."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def current_digests(export: Path) -> list[str]:
    """The SHA-256s of the weights in `export` (a folder, or a weights file) now: the file's, then the one an
    export's config.json records (they differ when either was replaced: a file of the same shapes copied in, or
    another export's config.json); none when gone."""
    if export.is_file():
        return [file_sha256(export)]
    found = []
    try:
        found.append(file_sha256(export / "weights.safetensors"))
    except OSError:
        pass
    try:
        recorded = json.loads((export / "config.json").read_text()).get("weights_sha256")
        found += [recorded] if isinstance(recorded, str) and recorded not in found else []
    except (OSError, ValueError, AttributeError):
        pass
    return found


def changed_since(export: Path, used: set[str]) -> str | None:
    """Why `export` (or a run folder the trials started from) no longer holds the weights its trials used
    (`used`: their SHA-256s, none recorded for a run folder's best trial), or None."""
    if not export.exists():
        return "it is no longer at that path"
    digests = current_digests(export) if used else []
    now = next((found for found in digests if found not in used), None)
    if now is not None:
        what = "file" if export.is_file() else "export there"
        # the file they read is there, but config.json (its metrics, trained_on.json's images) is of others
        by_config = (", by its config.json (its weights.safetensors is the file they used: the two do not match)"
                     if digests[0] in used else "")
        return (f"the {what} now holds other weights (sha256 {now[:16]}...) than the trials used "
                f"({', '.join(sorted(d[:16] + '...' for d in used))}){by_config}")
    return None


def replaced_since_warnings(records: Iterable[dict[str, Any]]) -> list[str]:
    """For a resumed study (`records`: its trials' user attrs): each export its earlier trials learned from that
    now holds other weights. The new trials learn from those, ranked beside the earlier ones with nothing in
    the space to tell them apart (one gone is refused when a run still names it)."""
    said = []
    for export, used in recorded_digests(origins_of(records)).items():
        if Path(export).exists() and (why := changed_since(Path(export), used)):
            said.append(f"{export}, which earlier trials of this study learned from: {why}. This run's trials learn "
                        "from what is there now, ranked beside theirs. Fix: put the earlier weights back, or give "
                        "the study a new name (or run_dir) to start afresh")
    return said
