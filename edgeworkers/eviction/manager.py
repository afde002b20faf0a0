"""The eviction manager (kubelet's pkg/kubelet/eviction): one step, ``synchronize()``, run as a periodic job.

Each step observes the signals and compares them with the hard thresholds (``policy``). Under one, it first reclaims
node-level resources (dead containers, unused images: the GC's own runners), observes again, and only if a threshold
is still met evicts one pod, the first in kubelet's rank order, as kubelet does once per housekeeping pass: its
containers are killed at once (a hard threshold allows no grace), its status turns ``Failed``/``Evicted`` with the
message naming the resource, and an ``Evicted`` event is recorded. The next step looks again. With eviction off
(``enabled=False``) it only reports: no pod is stopped.

The agent's own reserve (``agentfs.available``: free space on the data dir's filesystem, where Redis keeps its files)
is a threshold like the others, and its crossing is logged and recorded as a node event both ways.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from edgeworkers.events.recorder import EventRecorder
from edgeworkers.eviction.policy import (
    AGENTFS_AVAILABLE,
    MEMORY_AVAILABLE,
    RECLAIM,
    RESOURCE,
    Observation,
    PodUsage,
    Threshold,
    eviction_message,
    format_amount,
    rank,
    thresholds_met,
)
from edgeworkers.k8s.pod import Pod
from edgeworkers.k8s.qos import qos_class
from edgeworkers.k8s.quantity import to_bytes
from edgeworkers.k8s.status import APIError
from edgeworkers.k8s.timefmt import format_time
from edgeworkers.metamanager.store import POD
from edgeworkers.pods.desired import decode_pod
from edgeworkers.pods.evicted import EVICTED, evicted_status, is_evicted
from edgeworkers.pods.lock import PodBusy, pod_lock
from edgeworkers.pods.reconcile import PodWorkers
from edgeworkers.pods.sync import stop_containers
from edgeworkers.runtime.protocol import Runtime
from edgeworkers.runtime.types import Container, ContainerState

log = logging.getLogger(__name__)

# kubelet never evicts a critical pod (system-node-critical and system-cluster-critical priorities).
CRITICAL_PRIORITY = 2_000_000_000


class EvictionManager:
    def __init__(
        self,
        workers: PodWorkers,
        runtime: Runtime,
        thresholds: Sequence[Threshold],
        observe: Callable[[], Mapping[str, Observation]],
        reclaim: Mapping[str, Callable[[], Any]],  # policy.CONTAINERS / IMAGES -> the GC run that frees them
        events: EventRecorder,
        enabled: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._workers = workers
        self._runtime = runtime
        self._thresholds = list(thresholds)
        self._observe = observe
        self._reclaim = reclaim
        self._events = events
        self._enabled = enabled
        self._clock = clock
        self._met: set[str] = set()  # the signals under their threshold at the last step

    def synchronize(self) -> list[str]:
        """One step; returns the keys of the pods evicted (at most one)."""
        observed = self._observe()
        met = thresholds_met(self._thresholds, observed)
        self._report(met, observed)
        if not met or not self._enabled:
            return []
        kinds = {kind for threshold in met for kind in RECLAIM[threshold.signal]}
        if kinds:
            for kind in sorted(kinds):
                self._reclaim[kind]()
            observed = self._observe()
            met = thresholds_met(self._thresholds, observed)
            if not met:
                log.info("eviction: node-level resources reclaimed (%s): no pod to evict", ", ".join(sorted(kinds)))
                return []
        threshold = met[0]
        message = eviction_message(threshold, observed[threshold.signal])
        for candidate in rank(self._candidates(threshold.signal)):
            if self._evict(candidate.key, message):
                return [candidate.key]
        log.warning("eviction: %s under its threshold and no pod left to evict", threshold.signal)
        return []

    def _report(self, met: list[Threshold], observed: Mapping[str, Observation]) -> None:
        """Log each threshold crossed or cleared; the agent's reserve also as a node event."""
        now = {t.signal for t in met}
        for threshold in met:
            if threshold.signal in self._met:
                continue
            available = format_amount(threshold.signal, observed[threshold.signal].available)
            log.warning("eviction: %s is %s, under its threshold %s%s", threshold.signal, available, threshold.text,
                        "" if self._enabled else " (eviction is off: no pod will be stopped)")
            if threshold.signal == AGENTFS_AVAILABLE:
                self._events.node("AgentDataReserve", f"The agent's data filesystem has {available} free, under its "
                                  f"reserve of {threshold.text}: reclaiming disk space")  # fmt: skip
        for signal in self._met - now:
            log.info("eviction: %s is above its threshold again", signal)
            if signal == AGENTFS_AVAILABLE:
                self._events.node("AgentDataReserveRecovered", "The agent's data filesystem is above its reserve again",
                                  "Normal")  # fmt: skip
        self._met = now

    def _candidates(self, signal: str) -> list[PodUsage]:
        """The active pods with running containers, with their usage of the resource in short (memory: the working
        set; disk: writable layers and logs; pids: none measured, so QoS class and priority decide)."""
        containers: dict[str, list[Container]] = defaultdict(list)
        for container in self._runtime.list_containers():
            containers[container.pod.key].append(container)
        if signal == MEMORY_AVAILABLE:
            running = [c.id for group in containers.values() for c in group if c.state == ContainerState.RUNNING]
            usage = {c: u.memory_working_set_bytes for c, u in self._runtime.usage(running).items()}
        elif RESOURCE[signal] in ("ephemeral-storage", "inodes"):
            usage = self._runtime.disk_usage()
        else:
            usage = {}
        candidates = []
        for raw in self._workers.store.each(POD):
            pod = _decoded(raw)
            if pod is None or pod.metadata.deletion_timestamp:
                continue
            if is_evicted(self._workers.status.get(pod.key, pod.metadata.uid)):
                continue
            ours = [c for c in containers.get(pod.key, []) if c.pod.uid == pod.metadata.uid]
            priority = pod.spec.priority or 0
            if priority >= CRITICAL_PRIORITY or not any(c.state == ContainerState.RUNNING for c in ours):
                continue
            used = sum(usage.get(c.id, 0) for c in ours)
            candidates.append(PodUsage(pod.key, qos_class(pod), priority, used, _request(pod, RESOURCE[signal])))
        return candidates

    def _evict(self, key: str, message: str) -> bool:
        """Kill pod ``key``'s containers at once and mark it evicted, under its lock; False when it is busy or gone."""
        workers = self._workers
        namespace, name = key.split("/", 1)
        try:
            with pod_lock(workers.redis, key, lease_s=workers.settings.pod_lock_lease_s):
                raw = workers.store.get(POD, namespace, name)
                pod = _decoded(raw) if raw is not None else None
                if pod is None:
                    return False
                ours = [c for c in self._runtime.list_containers(key) if c.pod.uid == pod.metadata.uid]
                stop_containers(self._runtime, ours, 0)
                status = evicted_status(workers.status.get(key, pod.metadata.uid), message, format_time(self._clock()))
                workers.status.set(key, raw, status)
        except PodBusy:
            log.info("eviction: pod %s is being synced: not evicted now", key)
            return False
        log.warning("eviction: evicted pod %s: %s", key, message.strip())
        self._events(pod, EVICTED, message.strip(), "Warning")
        return True


def _decoded(raw: dict[str, Any]) -> Pod | None:
    try:
        return decode_pod(raw)
    except APIError:
        return None  # invalid: never run, nothing to evict


def _request(pod: Pod, resource: str) -> int:
    """The pod's request of ``resource`` (its app containers' sum; limits stand for missing requests)."""
    total = 0
    for container in pod.spec.containers:
        resources = container.resources
        requests = {**((resources.limits if resources else None) or {}),
                    **((resources.requests if resources else None) or {})}
        if resource in requests:
            total += to_bytes(requests[resource])
    return total
