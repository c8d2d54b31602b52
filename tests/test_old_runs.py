"""Runs recorded by an older searchlab keep working with this one, and keep being checked: each test builds the
older record synthetically (as that version wrote it), not by checking out old code."""
from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

from searchlab.config.schema import FolderData
from searchlab.data import data_fingerprint
from searchlab.data.fingerprint import fingerprint, moved_members, replaced_contents, sampled_digest
from searchlab.data.loading import plan_files


def _folder(root, n=10):
    for cls, level in (("a", 40), ("b", 200)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.full((12, 12), level + i, dtype=np.uint8)).save(root / cls / f"{i}.png")


def _version_2(cfg: FolderData) -> dict:
    """The fingerprint as version 2 recorded it: the same members, contents from 16 KB of each file."""
    plan = plan_files(cfg)
    record = fingerprint(plan)
    for split, entry in record["splits"].items():
        contents = hashlib.sha256()
        for path in plan.files[split]:
            contents.update(sampled_digest(path))
        record["splits"][split] = {key: value for key, value in entry.items() if key in
                                   ("files", "per_class", "members")} | {"contents": contents.hexdigest()[:32]}
    return {**record, "version": 2}


def test_a_version_2_run_still_has_images_replaced_in_place_told(tmp_path):
    """Version 3 digests whole files; a run recorded by version 2 (16 KB of each file) had its contents no longer
    compared at all, so training images replaced in place were resumed on unsaid (version 2 itself refused)."""
    root = tmp_path / "imgs"
    _folder(root)
    cfg = FolderData(source="folder", path=root, image_size=12, val_fraction=0.2, test_fraction=0.2)
    older = _version_2(cfg)
    assert replaced_contents(older, data_fingerprint(cfg)) is None   # nothing changed: nothing said
    for path in sorted(root.rglob("*.png")):   # every image inverted, under the same name
        Image.fromarray(255 - np.array(Image.open(path))).save(path)
    now = data_fingerprint(cfg)
    assert moved_members(older, now) is None
    said = replaced_contents(older, now, ("train", "val"))
    assert said == ("train: the same files, but some replaced in place (other contents); "
                    "val: the same files, but some replaced in place (other contents)")
    assert "test: the same files" in replaced_contents(older, now)   # export's note on the test split
