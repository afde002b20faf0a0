"""Orphans: containers labelled as this node's pods whose pod is no longer desired (after a delete missed
while the agent was down, or a force-delete while offline)."""

from __future__ import annotations

from collections.abc import Iterable

from edgeworkers.runtime.types import Container


def orphan_keys(containers: Iterable[Container], desired_keys: set[str]) -> list[str]:
    """The pod keys ("namespace/name") that own containers but are not desired, sorted."""
    return sorted({c.pod.key for c in containers} - desired_keys)
