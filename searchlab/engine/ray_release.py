"""What a Ray run reserved on the cluster, given back when its Tune run ends, stopped or not.

Tune reserves each trial's CPUs and GPUs as a placement group, its trial actor inside. Tune gives them back when
fit() ends normally or on an Exception, but a KeyboardInterrupt (Ctrl-C, SIGTERM, a notebook's stop) skips that
clean-up: they were freed only when the garbage collector happened to collect Tune's controller. Measured with
Ray 2.60: a notebook's second run_study in the same process then waited for the CPUs forever. The command line
was unaffected (its process ends). Here the run removes the placement groups it created. Ray kills the actors
inside them. Ray itself stays up: whether it shuts down is decided as before (engine/ray_cluster.py).
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from searchlab.engine.signals import hold_stops, release_stops

REMOVED = "REMOVED"


@contextmanager
def placement_groups_given_back() -> Iterator[None]:
    """Around tuner.fit(): on the way out, remove the placement groups this driver created meanwhile and still
    holds. A driver runs one study at a time (ray_executor's environment settings are process-wide), so every
    placement group its job created during the block is the run's. Other drivers' groups (another job on a
    shared cluster) are never touched."""
    before = set(_live_groups_of_this_job())
    try:
        yield
    finally:
        # A second Ctrl-C here is only remembered: it would cut the removal short and leave the CPUs held
        hold_stops()
        try:
            _give_back(before)
        finally:
            release_stops()


def _give_back(before: set[str]) -> None:
    """Remove the live placement groups not in `before`. A failure is said, not raised: it must not replace the
    error that ended the run, nor fail a run whose trials are all told (the cluster itself may be gone)."""
    try:
        _remove([group for group in _live_groups_of_this_job() if group not in before])
    except Exception as exc:
        print(f"warning: could not give back the placement groups this Ray run reserved ({type(exc).__name__}: "
              f"{str(exc).strip().splitlines()[0] if str(exc).strip() else 'no details'}); a next run in this Python "
              "process may wait for their CPUs. Fix: ray.shutdown() before it, which frees them", file=sys.stderr)


def _live_groups_of_this_job() -> list[str]:
    """Hex ids of the placement groups this driver's Ray job created that are not removed yet."""
    import ray
    from ray.util import placement_group_table

    # A placement group's id ends with its job's id (Ray's id layout: PlacementGroupID.of(job_id))
    job = ray.get_runtime_context().get_job_id()
    return [group_id for group_id, group in placement_group_table().items()
            if group_id.endswith(job) and group.get("state") != REMOVED]


def _remove(group_ids: list[str]) -> None:
    from ray._raylet import PlacementGroupID
    from ray.util.placement_group import PlacementGroup, remove_placement_group

    for group_id in group_ids:
        remove_placement_group(PlacementGroup(PlacementGroupID.from_hex(group_id)))
