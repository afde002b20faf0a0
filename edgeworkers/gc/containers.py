"""Container GC (kubelet's containerGC): which dead containers to remove, as a pure function, and its runner.

kubelet's semantics, over the containers of this node's pods:
- only dead (exited) containers are evictable, and none younger than ``min_age_s`` (``MinAge``);
- the dead containers of pods that are no longer desired go first, all of them (sandboxes included);
- then, per evict unit (pod uid, container name), at most ``max_per_pod_container`` are kept, the oldest removed
  first (``MaxPerPodContainer``; negative: no limit);
- then, while more than ``max_containers`` remain (``MaxContainers``; negative: no limit), each unit is cut to its
  fair share (``max_containers`` / units, at least 1), and then the oldest go across all units.
Never removed: a running, created or unknown container; a desired pod's sandbox; the latest instance of a desired
pod's init container (the pod's sync needs it to know the init container succeeded) or ephemeral container (it
tells the sync that one ran: an ephemeral container is never started again).
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from edgeworkers import metrics
from edgeworkers.runtime.errors import ContainerRuntimeError
from edgeworkers.runtime.protocol import Runtime
from edgeworkers.runtime.types import Container, ContainerState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContainerGCPolicy:
    min_age_s: float = 0.0
    max_per_pod_container: int = 1
    max_containers: int = -1


def _created(container: Container) -> float:
    return container.created_at.timestamp() if container.created_at else 0.0


def select_containers(
    containers: list[Container], desired_uids: set[str], now: float, policy: ContainerGCPolicy
) -> list[Container]:
    """The dead containers to remove, in removal order."""
    dead = [c for c in containers if c.state == ContainerState.EXITED and now - _created(c) >= policy.min_age_s]
    removed = [c for c in sorted(dead, key=_created) if c.pod.uid not in desired_uids]
    units: dict[tuple[str, str], list[Container]] = defaultdict(list)
    for container in dead:
        if container.pod.uid in desired_uids and not container.is_sandbox:
            units[(container.pod.uid, container.name)].append(container)
    protected = set()
    for instances in units.values():
        instances.sort(key=_created, reverse=True)  # newest first
        if instances[0].is_init or instances[0].is_ephemeral:
            protected.add(instances[0].id)
    keep = {unit: [c for c in instances if c.id not in protected] for unit, instances in units.items()}

    def cut(limit: int) -> None:
        for unit, instances in keep.items():
            if limit >= 0 and len(instances) > limit:
                removed.extend(sorted(instances[limit:], key=_created))
                keep[unit] = instances[:limit]

    cut(policy.max_per_pod_container)
    if policy.max_containers >= 0:
        remaining = sum(len(instances) for instances in keep.values())
        if remaining > policy.max_containers and keep:
            cut(max(1, policy.max_containers // len(keep)))
            rest = sorted((c for instances in keep.values() for c in instances), key=_created)
            removed.extend(rest[: max(0, len(rest) - policy.max_containers)])
    return removed


class ContainerGC:
    """One public step, ``collect()``: select from a fresh list, remove (a refusal is logged, the rest go on)."""

    def __init__(
        self,
        runtime: Runtime,
        desired_uids: Callable[[], set[str]],
        policy: ContainerGCPolicy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._runtime = runtime
        self._desired_uids = desired_uids
        self._policy = policy
        self._clock = clock

    def collect(self) -> list[Container]:
        containers = self._runtime.list_containers()
        chosen = select_containers(containers, self._desired_uids(), self._clock(), self._policy)
        removed = []
        for container in chosen:
            try:
                self._runtime.remove_container(container.id)
                removed.append(container)
            except ContainerRuntimeError as exc:
                log.warning("container GC: cannot remove %s of pod %s: %s", container.name, container.pod.key, exc)
        metrics.GC_RUNS.labels("container").inc()
        metrics.GC_REMOVED.labels("container").inc(len(removed))
        if removed:
            log.info("container GC removed %d dead container(s)", len(removed))
        return removed
