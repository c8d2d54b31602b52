"""The data part of a run's record in its study (engine/run.py study_record): what export and the report read
later to rebuild the run's data as it was read."""
from __future__ import annotations

import weakref
from typing import Any

from searchlab.config.load import Study
from searchlab.data import medmnist_file
from searchlab.data.fingerprint import fingerprint_with_listing
from searchlab.data.loading import medmnist_path, plan_files
from searchlab.data.recorded_split import medmnist_stat, member_stats
from searchlab.data.types import SplitPlan
from searchlab.models.image_files import DECODER

# The listing the run's start line described (summary.py print_run_header), kept for its record: one listing
# for both, so the counts the run says are those it records and its trials are checked against
# (data/recorded_split.py). One at a time, for that study object only.
_LISTED: list[tuple[weakref.ref, SplitPlan]] = []


def listed_for_record(study: Study, plan: SplitPlan) -> None:
    _LISTED[:] = [(weakref.ref(study), plan)]


def data_record(study: Study) -> dict[str, Any]:
    data = study.config.data
    if data is None:   # a callable task without a data section: its function reads its own
        return {"data": None, "data_defaults": [], "data_files": None, "data_listing": None, "data_file": None,
                "data_root_read": None, "data_stat": None}
    files, listing, stats = _fingerprint_and_listing(study)
    return {
        "data": data.model_dump(mode="json"),
        # keys left at their defaults: export rebuilds the data as written (a split folder carves a test split
        # only when test_fraction is written)
        "data_defaults": sorted(set(type(data).model_fields) - data.model_fields_set),
        "data_files": files,
        # each file's name, label, group and digest, compressed (data/member_changes.py): resume and export
        # name the files that changed; kept apart from data_files, which exports copy whole
        "data_listing": listing,
        "data_file": medmnist_file(data, study.base_dir),
        # each file's size and times as the run starts (a MedMNIST file's, with its arrays' CRC-32 and size):
        # every trial checks them (data/recorded_split.py), so a file whose contents are replaced in place while
        # the run runs fails the first trial after it and stops the run, rather than passing to the resume
        "data_stat": stats if stats is not None else medmnist_stat(medmnist_path(data, study.base_dir)),
        "decoder": DECODER,   # how files were decoded (2: EXIF orientation applied; data/orientation.py)
        # where MedMNIST's file was found ($SEARCHLAB_DATA may be unset when export or report run later)
        "data_root_read": _medmnist_root(study),
    }


def _fingerprint_and_listing(study: Study) -> tuple[Any, str | None, dict[str, Any] | None]:
    """The fingerprint, its listing and the files' stat signatures (data/recorded_split.py member_stats; taken
    first, so that a file changed while it is digested is seen by the trials), from the start line's listing
    when it described this study; else (a run from Python, or a file of it gone since: its contents cannot be
    read) listed now. All None for MedMNIST."""
    listed = [plan for study_of, plan in _LISTED if study_of() is study]
    _LISTED.clear()
    if listed:
        try:
            stats = member_stats(listed[0])
            return (*fingerprint_with_listing(listed[0]), stats)
        except OSError:
            pass
    plan = plan_files(study.config.data, study.config.seed, study.base_dir)
    if plan is None:
        return None, None, None
    stats = member_stats(plan)
    return (*fingerprint_with_listing(plan), stats)


def _medmnist_root(study: Study) -> str | None:
    path = medmnist_path(study.config.data, study.base_dir)
    return str(path.parent.resolve()) if path is not None and path.is_file() else None
