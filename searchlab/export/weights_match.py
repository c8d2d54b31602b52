"""Whether an export's weights.safetensors is the file its config.json records (the sha256 `searchlab export`
and model.save write): weights of the same shapes copied in from another trial or export load without a word,
while config.json's test metrics, thresholds and provenance, and trained_on.json's images, describe others.
searchlab's loaders of an export's weights refuse such a file (models/standalone.py's read_safetensors); these
say it where an export is only read about (a study starting from it, a report, an export replaced). Kept free
of torch: summary and status import publish.py."""
from __future__ import annotations

import json
from pathlib import Path

from searchlab.export.weights_origin import file_sha256

RESAVE = ("export the run again, or keep these weights by loading them with the export's model.py and saving them "
          "with model.save(net, config, NEW_FOLDER), which records their sha256 and sets the old metrics aside")


def digests(export_dir: Path) -> tuple[str, str] | None:
    """(the sha256 of the weights file now, the one config.json records) when they differ; None when they are
    the same, when config.json records none (an export from before the digest) or a file cannot be read (said
    where the export is loaded). One pass over the file: exports are small."""
    try:
        recorded = json.loads((export_dir / "config.json").read_text()).get("weights_sha256")
        found = file_sha256(export_dir / "weights.safetensors") if isinstance(recorded, str) else None
    except (OSError, ValueError, AttributeError):
        return None
    return None if found is None or found == recorded else (found, recorded)


def not_described(export_dir: Path) -> str | None:
    """Why the export's weights are not those its config.json (and trained_on.json) describe, in a few words
    for a longer sentence, or None."""
    differ = digests(export_dir)
    if differ is None:
        return None
    found, recorded = differ
    return (f"weights.safetensors is not the file its config.json records (sha256 {found[:16]}..., recorded "
            f"{recorded[:16]}...): replaced (e.g. copied from another trial or export) or damaged, so config.json's "
            "test metrics, thresholds and provenance and trained_on.json's images are not its")
