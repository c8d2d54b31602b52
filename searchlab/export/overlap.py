"""Test images the search also saw: pixel-for-pixel copies of a training or validation image.

Published splits have them too (BreastMNIST's test split holds one copy of a training image, labelled
otherwise), and a folder's copies may be re-encoded files the run-start check could not match by bytes.
Export counts them beside the test metrics, so a reader knows how many test rows were not unseen images;
which rows they are is kept so that the metrics can be recomputed without them.
"""
from __future__ import annotations

import hashlib
from typing import Any

from searchlab.data.types import ImageSplit


def seen_in_search(test: ImageSplit, searched: list[ImageSplit]) -> dict[str, Any] | None:
    """None when every test image is new; else how many are copies, which rows, and how many of those
    copies were labelled otherwise where the search saw them."""
    seen: dict[bytes, set[bytes]] = {}
    for split in searched:
        for image, label in zip(split.images, split.labels):
            seen.setdefault(_digest(image), set()).add(label.numpy().tobytes())
    rows, relabelled = [], 0
    for row, (image, label) in enumerate(zip(test.images, test.labels)):
        labels = seen.get(_digest(image))
        if labels is not None:
            rows.append(row)
            relabelled += label.numpy().tobytes() not in labels
    if not rows:
        return None
    return {"images": len(rows), "labelled_otherwise": relabelled, "test_rows": rows}


def _digest(image: Any) -> bytes:
    return hashlib.sha1(image.numpy().tobytes()).digest()
