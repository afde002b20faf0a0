"""The ``usage`` job: the node's and its pods' CPU and memory, for the cloud's ``metrics.k8s.io`` (``kubectl top``).

As kubelet's summary API feeds metrics-server: per container, the CPU rate between two samples (Docker's cumulative
CPU time) and the memory working set; for the node, psutil's CPU times and memory in use (total less available).
A report goes into the status outbox (one pending item per node, the latest winning) at most every
``min_interval_s`` (metrics-server's resolution, 15 s), and only once a second sample gives every rate. Pods are
named as the cloud shows them (a static pod's containers carry its mirror pod's name).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psutil

from edgeworkers.k8s.timefmt import format_time
from edgeworkers.metamanager.outbox import Outbox
from edgeworkers.runtime.protocol import Runtime
from edgeworkers.runtime.types import ContainerID, ContainerState, ContainerUsage

MIN_INTERVAL_S = 15.0


@dataclass(frozen=True)
class NodeSample:
    cpu_busy_s: float  # cumulative CPU time not idle, all CPUs
    memory_working_set_bytes: int


def node_sample() -> NodeSample:
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    memory = psutil.virtual_memory()
    return NodeSample(sum(times) - idle, memory.total - memory.available)


def rate(now: float, before: float, seconds: float) -> int:
    """Nanocores from two cumulative CPU times in seconds (0 when the counter went back: a restart)."""
    return max(0, round((now - before) / seconds * 1e9)) if seconds > 0 else 0


@dataclass
class _Previous:
    at: float
    node: NodeSample
    containers: dict[ContainerID, ContainerUsage]


class UsageReporter:
    """One step, ``report()``: sample, and queue a report when one is due."""

    def __init__(
        self,
        runtime: Runtime,
        outbox: Outbox,
        node_name: str,
        *,
        min_interval_s: float = MIN_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sample_node: Callable[[], NodeSample] = node_sample,
    ) -> None:
        self._runtime = runtime
        self._outbox = outbox
        self._node = node_name
        self._min_interval_s = min_interval_s
        self._monotonic = monotonic
        self._now = now
        self._sample_node = sample_node
        self._previous: _Previous | None = None
        self._last_report: float | None = None

    def report(self) -> bool:
        """Sample the node and its running app containers; queue a report if the last is ``min_interval_s`` old.
        True when one was queued."""
        at = self._monotonic()
        if self._last_report is not None and at - self._last_report < self._min_interval_s:
            return False
        containers = [c for c in self._runtime.list_containers()
                      if not c.is_sandbox and not c.is_init and c.state == ContainerState.RUNNING]
        usage = self._runtime.usage([c.id for c in containers])
        node = self._sample_node()
        previous, self._previous = self._previous, _Previous(at, node, usage)
        if previous is None:
            return False  # a rate needs two samples
        window = at - previous.at
        pods: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for container in containers:
            now, before = usage.get(container.id), previous.containers.get(container.id)
            if now is None or before is None:
                continue  # started since the last sample: in the next report
            pods.setdefault((container.pod.namespace, container.pod.name), []).append({
                "name": container.name,
                "cpu": rate(now.cpu_usage_ns / 1e9, before.cpu_usage_ns / 1e9, window),
                "memory": now.memory_working_set_bytes,
            })
        self._outbox.node_metrics(self._node, {
            "timestamp": format_time(self._now()),
            "windowSeconds": round(window, 3),
            "node": {"cpu": rate(node.cpu_busy_s, previous.node.cpu_busy_s, window),
                     "memory": node.memory_working_set_bytes},
            "pods": [{"namespace": ns, "name": name, "containers": sorted(cs, key=lambda c: c["name"])}
                     for (ns, name), cs in sorted(pods.items())],
        })
        self._last_report = at
        return True
