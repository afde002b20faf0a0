"""Kubernetes events for what the node does to a pod (kubelet's recorder), through the status outbox.

An event is named ``<pod>.<hash of uid, reason, message, field path>``, so a repeat is the same event: its
``count`` rises (kept in Redis for an hour, as kubelet's aggregation cache), and in the outbox the pending copy is
replaced by the newer one; the bridge's uplink creates it at the cloud or patches its count
(``bridge.uplink``). Best effort, as kubelet's: an event that cannot be recorded is logged and dropped.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import redis

from edgeworkers.constants import KEY_EVENTS
from edgeworkers.k8s.event import event_name, node_event, pod_event
from edgeworkers.metamanager.outbox import Outbox

if TYPE_CHECKING:  # the bridge records events without loading the pod models
    from edgeworkers.k8s.pod import Pod

log = logging.getLogger(__name__)

AGGREGATE_S = 3600
NORMAL, WARNING = "Normal", "Warning"


class EventRecorder:
    def __init__(
        self, client: redis.Redis, node: str, clock: Callable[[], float] = time.time, outbox: Outbox | None = None
    ) -> None:
        self._redis = client
        self._outbox = outbox if outbox is not None else Outbox(client)
        self._node = node
        self._clock = clock

    def __call__(self, pod: Pod, reason: str, message: str, kind: str = NORMAL, field_path: str = "") -> None:
        """Record one occurrence (aggregated); never raises."""
        name = event_name(pod.metadata.name, pod.metadata.uid or "", reason, message, field_path)

        def build(count: int, first: float, now: float) -> dict[str, Any]:
            return pod_event(pod, reason, message, kind, self._node, count, first, now, field_path)

        self._record(pod.metadata.namespace or "default", name, build, f"pod {pod.key}", reason)

    def node(self, reason: str, message: str, kind: str = WARNING) -> None:
        """Record one occurrence of an event about the node itself (FreeDiskSpaceFailed ...); never raises."""

        def build(count: int, first: float, now: float) -> dict[str, Any]:
            return node_event(self._node, reason, message, kind, count, first, now)

        self._record("default", event_name(self._node, self._node, reason, message), build, "the node", reason)

    def _record(self, namespace: str, name: str, build: Callable[[int, float, float], dict[str, Any]], what: str,
                reason: str) -> None:  # fmt: skip
        now = self._clock()
        key = f"{KEY_EVENTS}:{namespace}/{name}"
        try:
            pipe = self._redis.pipeline()
            pipe.hincrby(key, "count", 1)
            pipe.hsetnx(key, "first", repr(now))
            pipe.hget(key, "first")
            pipe.expire(key, AGGREGATE_S)
            count, _, first, _ = pipe.execute()
            self._outbox.event(namespace, build(int(count), float(first), now))
        except redis.RedisError as exc:
            log.info("event %s for %s not recorded: %s", reason, what, exc)
