"""Orphan cleanup: containers labelled as this node's pods whose pod is no longer desired (after a delete
missed while the agent was down, or a force-delete while offline) are stopped and removed."""

from __future__ import annotations

import logging

from edgeworkers.pods.sync import remove_containers
from edgeworkers.runtime.protocol import Runtime

log = logging.getLogger(__name__)


def remove_orphans(runtime: Runtime, desired_keys: set[str], grace_period_s: float) -> list[str]:
    """Stop and remove every container of this node whose pod key ("namespace/name") is not in
    ``desired_keys``; return the keys cleaned, sorted. App containers stop in parallel, sandboxes last."""
    orphans = [c for c in runtime.list_containers() if c.pod.key not in desired_keys]
    if not remove_containers(runtime, orphans, grace_period_s):
        log.warning("some orphaned containers could not be removed; the next cleanup retries")
    keys = sorted({c.pod.key for c in orphans})
    if keys:
        log.info("removed the containers of %d orphaned pod(s): %s", len(keys), ", ".join(keys))
    return keys
