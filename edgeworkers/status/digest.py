"""What of a pod status the node asserts, to tell whether the cloud already shows the node's status."""
from __future__ import annotations

from typing import Any


def status_digest(status: dict[str, Any] | None) -> tuple[Any, ...]:
    """Phase, conditions, and each container's readiness, restarts and state (not timestamps or messages, which the
    cloud and the node may legitimately word differently)."""
    status = status or {}

    def containers(key: str) -> list[tuple[Any, ...]]:
        return sorted(
            (c.get("name"), bool(c.get("ready")), c.get("restartCount", 0), sorted(c.get("state") or {}))
            for c in status.get(key) or []
        )

    conditions = sorted((c.get("type"), c.get("status")) for c in status.get("conditions") or [])
    return status.get("phase"), conditions, containers("initContainerStatuses"), containers("containerStatuses")


def status_differs(cloud: dict[str, Any] | None, local: dict[str, Any] | None) -> bool:
    """Whether the cloud shows another status than the node's last one (by ``status_digest``)."""
    return status_digest(cloud) != status_digest(local)
