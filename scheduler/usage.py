"""The ``usage`` job: the node's and its pods' CPU and memory, for the cloud's ``metrics.k8s.io`` (``kubectl top``).

As kubelet's summary API feeds metrics-server: per container, the CPU rate between two samples (Docker's cumulative
CPU time) and the memory working set; for the node, psutil's CPU times and memory in use (total less available).
A report goes into the status outbox (one pending item per node, the latest winning) every ``min_interval_s``
(metrics-server's resolution, 15 s), and at once when a container has started since the last one: its rate is then
its CPU time over its life so far (its counter began at its start), so ``kubectl top pod`` shows a new pod within
seconds instead of answering "not found" for a quarter minute. Each pod carries its own window. Pods are named as the
cloud shows them (a static pod's containers carry its mirror pod's name).
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
TICK_S = 2.0  # how often the job looks for containers started since the last report (a list call, no sampling)
MIN_LIFE_S = 1.0  # a container younger has too short a life for a rate: it waits for the next tick


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
        """Queue a report when one is due or a running app container is new since the last; True when queued."""
        at, wall = self._monotonic(), self._now()
        containers = [c for c in self._runtime.list_containers()
                      if not c.is_sandbox and not c.is_init and c.state == ContainerState.RUNNING]
        previous = self._previous
        known = previous.containers if previous is not None else {}
        # A container too young for a rate, or whose start is unknown, waits: it is not in this sample either.
        lives = {c.id: life for c in containers if c.id not in known
                 and (life := _life_s(c.started_at, wall)) is not None and life >= MIN_LIFE_S}
        sampled = [c for c in containers if c.id in known or c.id in lives]
        due = self._last_report is None or at - self._last_report >= self._min_interval_s
        if previous is not None and not due and not lives:
            return False
        usage = self._runtime.usage([c.id for c in sampled])
        node = self._sample_node()
        self._previous = _Previous(at, node, usage)
        if previous is None:
            return False  # the node's rate needs two samples
        window = at - previous.at
        pods: dict[tuple[str, str], list[tuple[dict[str, Any], float]]] = {}
        for container in sampled:
            now, before = usage.get(container.id), previous.containers.get(container.id)
            if now is None:
                continue
            seconds = lives.get(container.id, window)
            cpu = rate(now.cpu_usage_ns / 1e9, before.cpu_usage_ns / 1e9 if before else 0.0, seconds)
            pods.setdefault((container.pod.namespace, container.pod.name), []).append(
                ({"name": container.name, "cpu": cpu, "memory": now.memory_working_set_bytes}, seconds))
        self._outbox.node_metrics(self._node, {
            "timestamp": format_time(wall),
            "windowSeconds": round(window, 3),
            "node": {"cpu": rate(node.cpu_busy_s, previous.node.cpu_busy_s, window),
                     "memory": node.memory_working_set_bytes},
            "pods": [{"namespace": ns, "name": name, "windowSeconds": round(max(s for _, s in cs), 3),
                      "containers": sorted((c for c, _ in cs), key=lambda c: c["name"])}
                     for (ns, name), cs in sorted(pods.items())],
        })
        self._last_report = at
        return True


def _life_s(started_at: datetime | None, now: datetime) -> float | None:
    return None if started_at is None else (now - started_at).total_seconds()
